"""The login in front of the app: no request reaches Streamlit without the password.

An ASGI middleware (Starlette's), mounted in front of Streamlit's own server by
``ui/server.py`` (``st.App(..., middleware=[...])``). Until a browser holds a
valid session cookie, it gets only the login page (``/login``) and
Streamlit's health check: every other request is answered here, before
Streamlit sees it. A file upload (``PUT /_stcore/upload_file/...``) is refused
without reading its body, and the websocket that carries a Streamlit session
is refused before it opens, so an unauthenticated client can neither fill the
app's memory nor resume a session by presenting its id.

The session cookie is ``<expiry>.<nonce>.<HMAC-SHA256>`` under a key made at
process start (a restart logs everyone out, as it ends Streamlit's sessions
too); HttpOnly, SameSite=Strict, and Secure when served over HTTPS.

Failed logins are throttled process-wide, whatever client they come from:
one login is checked at a time, and after the n-th failure in a row every
attempt waits BACKOFF_FIRST_S * 2**(n-1) seconds, up to BACKOFF_MAX_S. Each
failure is logged with the client's address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qs, quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from . import access

logger = logging.getLogger(__name__)

COOKIE = "appliance_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
OPEN_PATHS = frozenset({"/_stcore/health"})  # the container's health check
SESSION_S = 12 * 3600
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
MAX_FORM_BYTES = 4096
#: What a websocket refused before it opens is closed with: "policy violation".
WS_POLICY_VIOLATION = 1008


class Sessions:
    """Signed, expiring session tokens under one key."""

    def __init__(self, key: bytes | None = None, lifetime_s: float = SESSION_S) -> None:
        self._key = key or secrets.token_bytes(32)
        self.lifetime_s = lifetime_s

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        payload = f"{int((now or time.time()) + self.lifetime_s)}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._sign(payload)}"

    def valid(self, token: object, now: float | None = None) -> bool:
        if not isinstance(token, str) or token.count(".") != 2:
            return False
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return False
        expiry = payload.split(".", 1)[0]
        return expiry.isdigit() and int(expiry) > (now or time.time())


#: The sessions of this process: the gate and the app's pages (which skip their own login form) share it.
SESSIONS = Sessions()


class Backoff:
    """Failed logins of the whole process: one check at a time, each failure in a row doubling the wait."""

    def __init__(self, first_s: float = BACKOFF_FIRST_S, max_s: float = BACKOFF_MAX_S) -> None:
        self.first_s, self.max_s = first_s, max_s
        self.failures = 0
        self.lock = asyncio.Lock()

    def delay_s(self) -> float:
        return 0.0 if self.failures == 0 else min(self.first_s * 2 ** (self.failures - 1), self.max_s)


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DataPerf Appliance</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:22rem;margin:5rem auto;color:#222}}
input,button{{font-size:1rem;padding:.45rem;width:100%;box-sizing:border-box;margin:.3rem 0}}
button{{background:#3b5bdb;color:#fff;border:0;border-radius:.3rem}}.error{{color:#c92a2a}}</style></head>
<body><h1>DataPerf Appliance</h1>
<p>Benchmark training data the DataPerf way: configure, run and compare benchmarks.</p>
<form method="post" action="{action}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" autofocus required>
<button type="submit">Log in</button></form>
<p class="error">{error}</p></body></html>
"""


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
    action = f"{LOGIN_PATH}?next={html.escape(quote(next_path, safe='/'), quote=True)}"
    return HTMLResponse(LOGIN_PAGE.format(action=action, error=html.escape(error)), status_code=status,
                        headers={"Cache-Control": "no-store"})


class LoginGate:
    """ASGI middleware: the app behind it is reached only with a valid session cookie."""

    def __init__(self, app, *, check_password: Callable[[str], bool] = access.check_password,
                 sessions: Sessions = SESSIONS, backoff: Backoff | None = None) -> None:
        self.app = app
        self.check_password = check_password
        self.sessions = sessions
        self.backoff = backoff or Backoff()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if scope["type"] == "http" and scope["path"] == LOGIN_PATH:
            response = await self._login(Request(scope, receive))
        elif scope["type"] == "http" and scope["path"] == LOGOUT_PATH:
            response = RedirectResponse(LOGIN_PATH, status_code=303)
            response.delete_cookie(COOKIE, path="/")
        elif self.sessions.valid(connection.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        elif scope["method"] == "GET" and "text/html" in connection.headers.get("accept", ""):
            target = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else "")
            response = RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}", status_code=303)
        else:  # an upload, an API call: refused without reading the body
            response = PlainTextResponse("log in first", status_code=401, headers={"Connection": "close"})
        await response(scope, receive, send)

    async def _login(self, request: Request) -> Response:
        next_path = _safe_next(request.query_params.get("next"))
        if request.method != "POST":
            return _login_page(next_path)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return PlainTextResponse("the login form is larger than it can be", status_code=413)
        password = (parse_qs(body.decode("utf-8", "replace")).get("password") or [""])[0]
        client = request.headers.get("x-forwarded-for") or (request.client.host if request.client else "?")
        async with self.backoff.lock:  # one check at a time, process-wide: guesses cannot run in parallel
            await asyncio.sleep(self.backoff.delay_s())
            try:
                ok = await asyncio.to_thread(self.check_password, password)
            except access.PasswordUnavailable as error:
                return _login_page(next_path, str(error), status=503)
            if not ok:
                self.backoff.failures += 1
                logger.warning("failed login from %s (%d in a row; the next waits %.0f s)", client,
                               self.backoff.failures, self.backoff.delay_s())
                return _login_page(next_path, "Wrong password.", status=401)
            self.backoff.failures = 0
        logger.info("login from %s", client)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE, self.sessions.issue(), max_age=int(self.sessions.lifetime_s), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
        return response
