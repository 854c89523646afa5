"""What uploads may hold in the app's memory: the login gate's check of every upload before Streamlit reads it.

Streamlit (1.67) takes ``PUT /_stcore/upload_file/<session id>/<file id>`` with
any file id for a live session: it hands ids out over the session's websocket
but keeps no record of them. It keeps each file's bytes in memory
(``MemoryUploadedFileManager``) until the file is deleted or its session shuts
down; and a disconnected session that its storage forgets after
``server.disconnectedSessionTTL`` is never shut down, so its files stay for the
life of the process. So for every upload request of a logged-in browser, the
gate (``login_gate.py``):

- refuses one without a Content-Length, or with a Transfer-Encoding (411:
  browsers send a file with the one and without the other), or over
  ``MAX_UPLOAD_REQUEST_BYTES`` (413), without reading its body: the server's
  HTTP parser frames the body by that length, so no more is read as part of it;
- adds what the session holds (Streamlit's own record of its files, so a file
  removed or a session shut down is counted out at once) to what its requests
  being received declared, and refuses with 413 a request that would take this
  over ``SESSION_UPLOAD_BUDGET_BYTES``;
- refuses with 503 and Retry-After one that would take all sessions together
  over ``TOTAL_UPLOAD_BUDGET_BYTES`` (a browser may open any number of sessions);
- drops the files of a session that has had no websocket for longer than
  ``server.disconnectedSessionTTL``, the time after which Streamlit's own
  contract lets them go: looked for at every upload, when a websocket ends, and
  again that long after.

File ids are not checked against those Streamlit issued: it issues them to any
session that asks, as many as it asks for, so an issued id bounds nothing that
the byte budgets do not, and checking would mean decoding every message of
the session's websocket or patching Streamlit's upload manager.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Protocol

from starlette.responses import PlainTextResponse

from dataperf_appliance.engine.upload_limits import MAX_UPLOAD_REQUEST_BYTES, SESSION_UPLOAD_BUDGET_BYTES, TOTAL_UPLOAD_BUDGET_BYTES

logger = logging.getLogger(__name__)

#: Streamlit's upload route (no server.baseUrlPath in the appliance).
UPLOAD_PATH = re.compile(r"^/_stcore/upload_file/(?P<session>[^/]+)/(?P<file>[^/]+)$")
UPLOAD_PREFIX = "/_stcore/upload_file/"
#: A sweep that follows a websocket's end runs this long after the session may be forgotten: by then Streamlit's
#: storage has forgotten it too, if it has not come back.
SWEEP_MARGIN_S = 1.0


class HeldUploads(Protocol):
    """The uploaded files the app holds: Streamlit's, through ui/streamlit_uploads.py (the package itself
    imports no Streamlit); a fake in tests."""

    def held(self) -> dict[str, int]:
        """Bytes held per session id."""

    def active(self, session_id: str) -> bool:
        """Whether the session has a websocket now."""

    def drop(self, session_id: str) -> None:
        """Forget every file of the session."""

    def reconnect_s(self) -> float:
        """How long a session without a websocket may come back and find its files."""


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _refused(status: int, message: str, headers: dict[str, str] | None = None) -> PlainTextResponse:
    # Connection: close, so that the unread body is not taken for the next request.
    return PlainTextResponse(message, status_code=status, headers={"Connection": "close", **(headers or {})})


class UploadBudget:
    """The gate's check of upload requests; see the module's docstring. One per gate, on its event loop: its
    bookkeeping changes only between awaits, so it needs no lock."""

    def __init__(self, uploads: HeldUploads, *, clock: Callable[[], float] = time.monotonic,
                 max_request_bytes: int = MAX_UPLOAD_REQUEST_BYTES,
                 session_bytes: int = SESSION_UPLOAD_BUDGET_BYTES,
                 total_bytes: int = TOTAL_UPLOAD_BUDGET_BYTES) -> None:
        self.uploads = uploads
        self.clock = clock
        self.max_request_bytes, self.session_bytes, self.total_bytes = max_request_bytes, session_bytes, total_bytes
        self._receiving: dict[str, int] = {}  # session id -> the Content-Lengths of its requests being received
        self._idle_since: dict[str, float] = {}  # session id holding files -> when it was first seen without one
        self._timer: asyncio.TimerHandle | None = None
        self._sweep_again = False

    def receiving(self) -> int:
        """Bytes declared by upload requests being received now."""
        return sum(self._receiving.values())

    async def __call__(self, scope, receive, send, app) -> None:
        """Pass an upload request (``UPLOAD_PREFIX``) of a logged-in browser to `app`, or refuse it unread."""
        if scope["method"] != "PUT":  # DELETE frees memory; OPTIONS holds none
            await app(scope, receive, send)
            return
        match = UPLOAD_PATH.match(scope["path"])
        if match is None:
            await _refused(404, "no such upload")(scope, receive, send)
            return
        session = match["session"]
        length = self._content_length(scope)
        refusal = self._refusal(session, length)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        self._receiving[session] = self._receiving.get(session, 0) + length
        try:
            await app(scope, receive, send)  # Streamlit stores the file before it answers
        finally:
            left = self._receiving.pop(session) - length
            if left:
                self._receiving[session] = left

    @staticmethod
    def _content_length(scope) -> int | None:
        """The request's one Content-Length; None without it, or with a Transfer-Encoding, which would frame the
        body instead (browsers send neither for a file)."""
        values = [value for name, value in scope["headers"] if name == b"content-length"]
        if len(values) != 1 or not values[0].isdigit() or any(name == b"transfer-encoding"
                                                              for name, _ in scope["headers"]):
            return None
        return int(values[0])

    def _refusal(self, session: str, length: int | None) -> PlainTextResponse | None:
        if length is None:
            return _refused(411, "an upload needs one Content-Length")
        if length > self.max_request_bytes:
            return _refused(413, f"an upload may have at most {_mib(self.max_request_bytes)}")
        try:
            held = self.sweep()
        except Exception:  # noqa: BLE001 - fail closed: without the count, no upload
            logger.exception("uploads refused: the files the app holds cannot be counted")
            return _refused(503, "uploads cannot be taken now")
        in_session = held.get(session, 0) + self._receiving.get(session, 0) + length
        if in_session > self.session_bytes:
            logger.warning("upload of %d bytes to session %s refused: it would hold %d bytes", length, session,
                           in_session)
            return _refused(413, f"this page's uploads would hold {_mib(in_session)}, at most "
                                 f"{_mib(self.session_bytes)}: remove files you no longer need, or reload the page")
        in_all = sum(held.values()) + self.receiving() + length
        if in_all > self.total_bytes:
            logger.warning("upload of %d bytes refused: all uploads would hold %d bytes", length, in_all)
            wait_s = self.uploads.reconnect_s() + SWEEP_MARGIN_S  # by then closed pages' files are dropped
            return _refused(503, "the app holds as many uploads as it may; try again later",
                            {"Retry-After": str(math.ceil(wait_s))})
        return None

    def sweep(self) -> dict[str, int]:
        """Drop the files of sessions without a websocket for longer than the reconnect time; what the sessions
        hold afterwards (bytes per session id)."""
        now, reconnect_s = self.clock(), self.uploads.reconnect_s()
        held = self.uploads.held()
        for session in list(held):
            if session in self._receiving or self.uploads.active(session):
                self._idle_since.pop(session, None)
            elif now - self._idle_since.setdefault(session, now) >= reconnect_s:
                self.uploads.drop(session)
                del self._idle_since[session]
                logger.info("dropped the uploads of session %s (%d bytes): no websocket for %.0f s", session,
                            held.pop(session), reconnect_s)
        for session in set(self._idle_since) - set(held):
            del self._idle_since[session]
        return held

    def websocket_ended(self) -> None:
        """A session's websocket has ended: note its files as idle now, and sweep once they may go."""
        self._sweep_logged()
        try:
            delay = self.uploads.reconnect_s() + SWEEP_MARGIN_S
        except Exception:  # noqa: BLE001 - logged by the sweep above; uploads fail closed meanwhile
            return
        self._schedule(delay)

    def _schedule(self, delay_s: float) -> None:
        # One timer at a time, however many websockets end: a session that ends while it runs is swept by the
        # next one, at most twice the delay after its end.
        if self._timer is not None:
            self._sweep_again = True
            return
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._timer_fired, delay_s)

    def _timer_fired(self, delay_s: float) -> None:
        self._timer = None
        self._sweep_logged()
        if self._sweep_again:
            self._sweep_again = False
            self._schedule(delay_s)

    def _sweep_logged(self) -> None:
        try:
            self.sweep()
        except Exception:  # noqa: BLE001 - housekeeping: never the websocket's or the timer's failure
            logger.exception("the uploads of closed sessions cannot be swept")
