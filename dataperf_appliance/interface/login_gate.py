"""The login in front of the app: no request reaches Streamlit without the password.

An ASGI middleware (Starlette's), mounted in front of Streamlit's own server by
``ui/server.py`` (``st.App(..., middleware=[...])``). Until a browser holds a
valid session cookie, it gets only the login page (``/login``) and
Streamlit's health check: every other request is answered here, before
Streamlit sees it. A file upload (``PUT /_stcore/upload_file/...``) is refused
without reading its body, and the websocket that carries a Streamlit session
is refused before it opens, so an unauthenticated client can neither fill the
app's memory nor resume a session by presenting its id. A logged-in browser's
upload passes through the upload budget (``upload_budget.py``: what uploads
hold in memory is bounded per session and in all), and its websocket must come
from this site.

The session cookie is ``<expiry>.<nonce>.<HMAC-SHA256>`` under a key made at
process start (a restart logs everyone out, as it ends Streamlit's sessions
too); HttpOnly, SameSite=Strict, and Secure when served over HTTPS. Logging
out (``/logout``) revokes the cookie's nonce on the server: the same cookie,
replayed, is refused until it would have expired anyway (revocations are kept
that long, then pruned).

Password guessing is throttled (`LoginThrottle`) without letting the throttle
lock the operator out:

- per client address: after an address's n-th failure in a row it may not try
  again for ``ADDRESS_BACKOFF_FIRST_S * 2**(n-1)`` s, up to
  ``ADDRESS_BACKOFF_MAX_S``; an attempt inside that window is answered 429
  with Retry-After at once, its body unread. IPv6 clients count by their /64.
- for the whole process: checks run one at a time, and after the n-th failure
  in a row (any address) the next check starts ``GLOBAL_BACKOFF_FIRST_S *
  2**(n-1)`` s after the last, up to ``GLOBAL_BACKOFF_MAX_S``: a mild cap, so
  that many addresses together guess at most one password a second.
- at most ``MAX_WAITING_LOGINS`` logins wait for their check, one per
  address (a newer attempt takes the place of the older), those from
  addresses with fewer recent failures first: when the queue is full, a
  login from an address with fewer failures than the last in line takes its
  place, any other is answered 429 with Retry-After at once. So guessers who
  have failed before cannot keep a new client, the operator, out. No request
  sleeps holding a lock, and a waiting login whose client has hung up is
  dropped unchecked: a login from an address without recent failures waits
  at most ``LONGEST_LOGIN_WAIT_S`` for its check (reported in its
  Server-Timing header).

The client is the connection's peer; X-Forwarded-For is believed only from
the reverse proxies of ``APPLIANCE_TRUSTED_PROXIES`` (settings.py), and then
its rightmost address that is not one of them is the client. Each failure is
logged with the client's address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import ipaddress
import itertools
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from dataperf_appliance.interface import access
from dataperf_appliance.engine.settings import TRUSTED_PROXIES_ENV, load_settings
from dataperf_appliance.interface.upload_budget import UPLOAD_PREFIX, UploadBudget

logger = logging.getLogger(__name__)

COOKIE = "appliance_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
OPEN_PATHS = frozenset({"/_stcore/health"})  # the container's health check
SESSION_S = 12 * 3600
#: An address's n-th failed login in a row bars it for ADDRESS_BACKOFF_FIRST_S * 2**(n-1) s, up to the max.
ADDRESS_BACKOFF_FIRST_S = 1.0
ADDRESS_BACKOFF_MAX_S = 60.0
#: An address whose last failure is older than this starts again from the first backoff.
ADDRESS_FORGET_S = 15 * 60
#: The most addresses remembered (the one whose last failure is oldest is forgotten first): a bound on memory.
MAX_REMEMBERED_ADDRESSES = 10_000
#: After the n-th failed check in a row, process-wide, the next starts GLOBAL_BACKOFF_FIRST_S * 2**(n-1) s after
#: it, up to the max: mild, as every waiting login, the operator's too, waits for it.
GLOBAL_BACKOFF_FIRST_S = 0.25
GLOBAL_BACKOFF_MAX_S = 1.0
#: The most logins waiting for their check; beyond, 429 at once.
MAX_WAITING_LOGINS = 4
#: The longest a login from an address without recent failures waits for its check: every login ahead of it
#: (the one being checked, the others waiting; none can overtake it) holds the next check back by at most the
#: global backoff.
LONGEST_LOGIN_WAIT_S = MAX_WAITING_LOGINS * GLOBAL_BACKOFF_MAX_S
#: How often a waiting login looks whether its client has hung up.
DISCONNECT_POLL_S = 0.1
#: IPv6 clients count by this prefix: one host commonly holds a whole /64.
IPV6_CLIENT_PREFIX = 64
#: Where the Server-Timing header of a checked login reports how long it waited for its check.
LOGIN_WAIT_METRIC = "login-wait"
MAX_FORM_BYTES = 4096
#: What a websocket refused before it opens is closed with: "policy violation".
WS_POLICY_VIOLATION = 1008
#: uvicorn (Streamlit's server) rewrites the client's address from X-Forwarded-For for the peers this variable
#: names, 127.0.0.1 and ::1 when it is unset; set empty (scripts/runtime/service.sh), it leaves the gate to decide.
UVICORN_FORWARDED_ALLOW_IPS = "FORWARDED_ALLOW_IPS"


class Sessions:
    """Signed, expiring session tokens under one key; a revoked (logged-out) token is refused."""

    def __init__(self, key: bytes | None = None, lifetime_s: float = SESSION_S) -> None:
        self._key = key or secrets.token_bytes(32)
        self.lifetime_s = lifetime_s
        self._revoked: dict[str, int] = {}  # nonce -> expiry: kept until the token would have expired anyway

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        payload = f"{int(now + self.lifetime_s)}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._sign(payload)}"

    def _signed_and_current(self, token: object, now: float | None) -> tuple[int, str] | None:
        """(expiry, nonce) of a token this process signed and that has not expired; else None."""
        if not isinstance(token, str) or token.count(".") != 2:
            return None
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        expiry, _, nonce = payload.partition(".")
        if not expiry.isdigit() or int(expiry) <= (time.time() if now is None else now):
            return None
        return int(expiry), nonce

    def valid(self, token: object, now: float | None = None) -> bool:
        parts = self._signed_and_current(token, now)
        return parts is not None and parts[1] not in self._revoked

    def revoke(self, token: object, now: float | None = None) -> bool:
        """Refuse `token` from now on (logout); False if it was not a valid token."""
        parts = self._signed_and_current(token, now)
        if parts is None:
            return False
        now = time.time() if now is None else now
        self._revoked = {nonce: expiry for nonce, expiry in self._revoked.items() if expiry > now}
        expiry, nonce = parts
        self._revoked[nonce] = expiry
        return True

    def revoked_count(self) -> int:
        return len(self._revoked)


#: The sessions of this process: the gate and the app's pages (which skip their own login form) share it.
SESSIONS = Sessions()


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a peer or an X-Forwarded-For entry writes it (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_key(host: str) -> str:
    """What the throttle counts a client by: its address, an IPv6 one's /64."""
    address = _parse_address(host)
    if address is None:
        return host[:64]  # not an address (a test client, a socket path): counted as written, bounded
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


@dataclass(frozen=True)
class Client:
    """Who a request comes from: `address` (what is throttled and logged), `peer` (the connection's end)."""

    address: str
    peer: str
    https: bool  # the browser's connection is HTTPS (here, or at a trusted proxy)

    def __str__(self) -> str:
        return self.address if self.address == self.peer else f"{self.address} (via {self.peer})"


class ProxyTrust:
    """The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as error:
                raise ValueError(f"{TRUSTED_PROXIES_ENV}: {entry!r} is neither an address nor a network") from error

    def trusts(self, host: str) -> bool:
        address = _parse_address(host)
        return address is not None and any(address in network for network in self.networks)

    def client(self, connection: HTTPConnection) -> Client:
        peer = connection.client.host if connection.client else "?"
        https = connection.url.scheme in ("https", "wss")
        if not self.trusts(peer):  # a client's own X-Forwarded-For is its word only: ignored
            return Client(client_key(peer), peer, https)
        hops = [hop.strip() for header in connection.headers.getlist("x-forwarded-for")
                for hop in header.split(",") if hop.strip()]
        # Each proxy appends the peer it saw: the rightmost entry no trusted proxy stands for is the client.
        address = next((hop for hop in reversed(hops) if not self.trusts(hop)), hops[0] if hops else peer)
        forwarded_proto = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return Client(client_key(address), peer, https or forwarded_proto == "https")


class Ticket:
    """A login waiting for its check. Its rank: the failures of its address when it came, then its arrival:
    the lowest goes first, so that guessers who have failed before cannot keep a new client out."""

    __slots__ = ("address", "rank", "displaced")

    def __init__(self, address: str, rank: tuple[int, int]) -> None:
        self.address, self.rank = address, rank
        self.displaced: str | None = None  # why another login took its place


@dataclass
class _AddressFailures:
    count: int
    last_at: float
    barred_until: float


class LoginThrottle:
    """When a password may be checked: per client address, one at a time process-wide, and who waits.

    Pure bookkeeping against `clock` (no sleeping: the gate sleeps, outside any lock); the module's docstring
    gives the rules.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 address_first_s: float = ADDRESS_BACKOFF_FIRST_S, address_max_s: float = ADDRESS_BACKOFF_MAX_S,
                 global_first_s: float = GLOBAL_BACKOFF_FIRST_S, global_max_s: float = GLOBAL_BACKOFF_MAX_S,
                 max_waiting: int = MAX_WAITING_LOGINS, forget_s: float = ADDRESS_FORGET_S,
                 max_addresses: int = MAX_REMEMBERED_ADDRESSES) -> None:
        self.clock = clock
        self.address_first_s, self.address_max_s = address_first_s, address_max_s
        self.global_first_s, self.global_max_s = global_first_s, global_max_s
        self.max_waiting, self.forget_s, self.max_addresses = max_waiting, forget_s, max_addresses
        self._failures: dict[str, _AddressFailures] = {}  # ordered by last failure, oldest first
        self.failures_in_a_row = 0  # process-wide
        self._next_check_at = -math.inf
        self._checking = False
        self._waiting: list[Ticket] = []  # at most max_waiting: scanned, not sorted
        self._waiting_by_address: dict[str, Ticket] = {}
        self._arrivals = itertools.count()

    @staticmethod
    def _doubling(failures: int, first_s: float, max_s: float) -> float:
        return 0.0 if failures <= 0 else min(first_s * 2 ** min(failures - 1, 32), max_s)

    def _current(self, address: str) -> _AddressFailures | None:
        record = self._failures.get(address)
        return record if record is not None and self.clock() - record.last_at < self.forget_s else None

    def address_wait_s(self, address: str) -> float:
        """Seconds until `address` may try again (0: now)."""
        record = self._current(address)
        return 0.0 if record is None else max(0.0, record.barred_until - self.clock())

    def global_backoff_s(self) -> float:
        """The least time between the end of one check and the start of the next, now."""
        return self._doubling(self.failures_in_a_row, self.global_first_s, self.global_max_s)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def place_frees_in_s(self) -> float:
        """About when the first waiting login's check starts, freeing a place (the Retry-After of a full queue)."""
        if self._checking:
            return self.global_backoff_s()
        return max(0.0, self._next_check_at - self.clock())

    def join(self, address: str) -> Ticket | None:
        """A place in the queue for a login from `address`; None when the queue is full.

        An address waits in one place only: a newer login takes its older one's place and rank (that one is
        answered unchecked; its browser has usually given up on it). In a full queue, a login whose address
        has fewer failures than the last in line takes that one's place.
        """
        older = self._waiting_by_address.get(address)
        ticket = Ticket(address, (self.failures_from(address), older.rank[1] if older else next(self._arrivals)))
        if older is not None:
            self._displace(older, "A newer login from your address took this one's place")
        elif len(self._waiting) >= self.max_waiting:
            last = max(self._waiting, key=lambda waiting: waiting.rank)
            if ticket.rank[0] >= last.rank[0]:
                return None
            self._displace(last, "Logins from addresses with fewer failed logins go first")
        self._waiting.append(ticket)
        self._waiting_by_address[address] = ticket
        return ticket

    def _displace(self, ticket: Ticket, why: str) -> None:
        ticket.displaced = why
        self.leave(ticket)

    def leave(self, ticket: Ticket) -> None:
        """`ticket` waits no more (its login was checked, refused, or its client went away)."""
        if ticket in self._waiting:
            self._waiting.remove(ticket)
        if self._waiting_by_address.get(ticket.address) is ticket:
            del self._waiting_by_address[ticket.address]

    def turn_wait_s(self, ticket: Ticket) -> float:
        """0 when `ticket`'s check may start now; else seconds to wait (inf: others are ahead of it)."""
        if self._checking or min(self._waiting, key=lambda waiting: waiting.rank, default=None) is not ticket:
            return math.inf
        return max(0.0, self._next_check_at - self.clock())

    def begin_check(self, ticket: Ticket) -> None:
        assert self.turn_wait_s(ticket) == 0.0, "a check starts only at its turn"
        self.leave(ticket)
        self._checking = True

    def end_check(self, address: str, ok: bool | None) -> None:
        """The check of a login from `address` is over: `ok` the password was right, None it was not known."""
        self._checking = False
        now = self.clock()
        if ok:
            self._failures.pop(address, None)
            self.failures_in_a_row = 0
        elif ok is not None:
            record = self._current(address)
            self._failures.pop(address, None)  # re-inserted last: the dict stays ordered by last failure
            count = 1 if record is None else record.count + 1
            self._failures[address] = _AddressFailures(
                count, now, now + self._doubling(count, self.address_first_s, self.address_max_s))
            self.failures_in_a_row += 1
            self._forget_old(now)
        self._next_check_at = now + self.global_backoff_s()

    def _forget_old(self, now: float) -> None:
        while self._failures:
            oldest, record = next(iter(self._failures.items()))
            if now - record.last_at < self.forget_s and len(self._failures) <= self.max_addresses:
                return
            del self._failures[oldest]

    def failures_from(self, address: str) -> int:
        """Failed logins in a row from `address` (0 once forgotten)."""
        record = self._current(address)
        return 0 if record is None else record.count

    def remembered_addresses(self) -> int:
        return len(self._failures)


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


def _try_later(next_path: str, wait_s: float, why: str) -> HTMLResponse:
    """429 with Retry-After (whole seconds, at least 1); the body of the request is left unread."""
    seconds = max(1, math.ceil(wait_s))
    response = _login_page(next_path, f"{why}: try again in {seconds} s.", status=429)
    response.headers["Retry-After"] = str(seconds)
    response.headers["Connection"] = "close"  # the unread body is not taken for the next request
    return response


class LoginGate:
    """ASGI middleware: the app behind it is reached only with a valid session cookie."""

    def __init__(self, app, *, check_password: Callable[[str], bool] = access.check_password,
                 sessions: Sessions = SESSIONS, throttle: LoginThrottle | None = None,
                 trusted_proxies: Iterable[str] | None = None, uploads: UploadBudget | None = None) -> None:
        self.app = app
        self.check_password = check_password
        self.sessions = sessions
        self.throttle = throttle or LoginThrottle()
        self.uploads = uploads  # None: no upload is let through (nothing would count what they hold)
        self.proxies = ProxyTrust(load_settings().trusted_proxies if trusted_proxies is None else trusted_proxies)
        if os.environ.get(UVICORN_FORWARDED_ALLOW_IPS) is None:
            logger.warning("%s is unset: under uvicorn a client at 127.0.0.1 or ::1 chooses its own address with "
                           "X-Forwarded-For; set it empty (scripts/runtime/service.sh does) and name proxies in %s",
                           UVICORN_FORWARDED_ALLOW_IPS, TRUSTED_PROXIES_ENV)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if scope["type"] == "http" and scope["path"] == LOGIN_PATH:
            response = await self._login(Request(scope, receive))
            if response is None:  # the client hung up: nobody to answer
                return
        elif scope["type"] == "http" and scope["path"] == LOGOUT_PATH:
            if self.sessions.revoke(connection.cookies.get(COOKIE)):
                logger.info("logout from %s", self.proxies.client(connection))
            response = RedirectResponse(LOGIN_PATH, status_code=303)
            response.delete_cookie(COOKIE, path="/")
        elif self.sessions.valid(connection.cookies.get(COOKIE)):
            await self._pass(scope, receive, send, connection)
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

    async def _pass(self, scope, receive, send, connection: HTTPConnection) -> None:
        """A logged-in browser's request, to the app: an upload through the upload budget, a websocket of this
        site only (Streamlit would check another site's against its external address, an outside lookup)."""
        if scope["type"] == "websocket":
            origin = connection.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc.lower() != connection.headers.get("host", "").lower():
                logger.warning("websocket from another site (%s) refused for %s", origin[:100],
                               self.proxies.client(connection))
                await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
                return
            try:
                await self.app(scope, receive, send)
            finally:
                if self.uploads is not None:  # its session's files may go once it cannot come back
                    self.uploads.websocket_ended()
        elif scope["path"].startswith(UPLOAD_PREFIX):
            if self.uploads is None:
                await PlainTextResponse("uploads are not taken here", status_code=503,
                                        headers={"Connection": "close"})(scope, receive, send)
            else:
                await self.uploads(scope, receive, send, self.app)
        else:
            await self.app(scope, receive, send)

    async def _login(self, request: Request) -> Response | None:
        """The login page, or the answer to a password; None when the client has hung up."""
        next_path = _safe_next(request.query_params.get("next"))
        if request.method != "POST":
            return _login_page(next_path)
        client = self.proxies.client(request)
        barred_s = self.throttle.address_wait_s(client.address)
        if barred_s > 0:
            return _try_later(next_path, barred_s, "Too many failed logins from your address")
        body = b""
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    return PlainTextResponse("the login form is larger than it can be", status_code=413)
        except ClientDisconnect:
            return None
        password = (parse_qs(body.decode("utf-8", "replace")).get("password") or [""])[0]
        ticket = self.throttle.join(client.address)
        if ticket is None:
            return _try_later(next_path, self.throttle.place_frees_in_s(), "Too many logins are waiting")
        joined_at = self.throttle.clock()
        try:
            while True:  # never sleeping in a lock: the throttle is bookkeeping, the sleep is this request's own
                if ticket.displaced:
                    return _try_later(next_path, self.throttle.place_frees_in_s(), ticket.displaced)
                if await request.is_disconnected():
                    logger.debug("login from %s dropped unchecked: its client hung up", client)
                    return None
                wait_s = self.throttle.turn_wait_s(ticket)
                if wait_s <= 0:
                    break
                await asyncio.sleep(min(wait_s, DISCONNECT_POLL_S))
            barred_s = self.throttle.address_wait_s(client.address)  # its earlier login may have failed meanwhile
            if barred_s > 0:
                return _try_later(next_path, barred_s, "Too many failed logins from your address")
            self.throttle.begin_check(ticket)
        finally:
            self.throttle.leave(ticket)
        waited = {"Server-Timing": f"{LOGIN_WAIT_METRIC};dur={(self.throttle.clock() - joined_at) * 1000:.0f}"}
        ok = None
        try:
            ok = await asyncio.to_thread(self.check_password, password)
        except access.PasswordUnavailable as error:
            return _login_page(next_path, str(error), status=503)
        finally:
            self.throttle.end_check(client.address, ok)
        if not ok:
            logger.warning("failed login from %s (%d in a row from it; it may try again in %.0f s)", client,
                           self.throttle.failures_from(client.address), self.throttle.address_wait_s(client.address))
            response = _login_page(next_path, "Wrong password.", status=401)
            response.headers.update(waited)
            return response
        logger.info("login from %s", client)
        response = RedirectResponse(next_path, status_code=303, headers=waited)
        response.set_cookie(COOKIE, self.sessions.issue(), max_age=int(self.sessions.lifetime_s), httponly=True,
                            samesite="strict", secure=client.https, path="/")
        return response
