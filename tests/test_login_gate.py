"""The login gate: nothing reaches Streamlit before the password, tried against the app's real server.

The server is started the way the appliance starts it (`streamlit run
ui/server.py`, tests/login_harness.py), and attacked over HTTP at its public
port from addresses of their own: a pre-login upload, a pre-login websocket
session, password guessing, abandoned guesses, a spoofed X-Forwarded-For, a
logged-out cookie replayed. The throttle's rules are also checked on their own
against a fake clock (its figures over an hour of guessing are docs/security.md's),
and the gate's handling of a hung-up client and a full queue on the ASGI level.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO_ROOT
from login_harness import (
    PROXY_ADDRESS,
    GateServer,
    abandon_wrong_guess,
    abandoned_flood_bound_s,
    log_in,
    log_in_as_a_person,
    request,
    server_wait_s,
)
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from dataperf_appliance.interface import login_gate
from dataperf_appliance.interface.login_gate import LoginGate, LoginThrottle, ProxyTrust, Sessions
from dataperf_appliance.engine.settings import TRUSTED_PROXIES_ENV, load_settings

PASSWORD = "a long enough operator password"
UPLOAD_BYTES = 64 * 2**20
#: Event-loop and thread latency on a loaded 2-core machine, on top of what the gate's constants allow.
SCHEDULING_SLACK_S = 1.0
#: Tries a person makes, honouring Retry-After, after a flood of abandoned guesses from many addresses.
ATTEMPTS = 2

_loopback_hosts = (f"127.0.1.{n}" for n in itertools.count(1))


def fresh_address() -> str:
    """A loopback address no other test connected from: a client the gate has not met."""
    return next(_loopback_hosts)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[GateServer]:
    """`streamlit run ui/server.py` on 127.0.0.1, trusting PROXY_ADDRESS as its reverse proxy."""
    server = GateServer.start(tmp_path_factory.mktemp("gate-data"), PASSWORD)
    try:
        yield server
    finally:
        server.stop()


def session_cookie(response) -> str:
    cookie = response.getheader("Set-Cookie")
    assert cookie and cookie.startswith(f"{login_gate.COOKIE}="), cookie
    return cookie.split(";")[0].split("=", 1)[1]


# ---- the real server ------------------------------------------------------------------------------

def test_a_pre_login_upload_is_refused_without_being_read(server):
    before = rss_bytes(server.process.pid)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("PUT", "/_stcore/upload_file/any-session/any-file")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(UPLOAD_BYTES))
    conn.endheaders()
    try:
        for _ in range(UPLOAD_BYTES // 2**20):
            conn.send(b"\0" * 2**20)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the gate answered and closed the connection without reading the body
    response = conn.getresponse()
    assert response.status == 401 and response.read() == b"log in first"
    conn.close()
    grown = rss_bytes(server.process.pid) - before
    print(f"server memory after a refused {UPLOAD_BYTES / 2**20:.0f} MiB pre-login upload: {grown / 2**20:+.1f} MiB")
    assert grown < UPLOAD_BYTES / 4


def test_a_pre_login_websocket_session_is_refused(server):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{server.port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=10)
    assert refused.value.response.status_code == 403


def test_pages_send_the_browser_to_the_login_page_and_the_password_opens_the_app(server):
    port, me = server.port, fresh_address()
    response, _ = request(port, "GET", "/runs?x=1", headers={"Accept": "text/html"}, source=me)
    assert response.status == 303 and response.getheader("Location") == "/login?next=/runs%3Fx%3D1"
    response, page = request(port, "GET", "/login", source=me)
    assert response.status == 200 and b'type="password"' in page and PASSWORD.encode() not in page

    response, page = log_in(port, PASSWORD, me)  # from /login?next=/runs
    assert response.status == 303 and response.getheader("Location") == "/runs"
    cookie = response.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # plain HTTP here
    token = session_cookie(response)
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=20,
                 additional_headers={"Cookie": f"{login_gate.COOKIE}={token}"}) as session:
        assert session.protocol.state.name == "OPEN"
    response, _ = request(port, "GET", "/_stcore/host-config", headers={"Cookie": f"{login_gate.COOKIE}={token}"},
                          source=me)
    assert response.status == 200


def test_a_wrong_password_bars_its_address_and_not_the_others(server):
    port, guesser, owner = server.port, fresh_address(), fresh_address()
    response, page = log_in(port, "not the password", guesser)
    assert response.status == 401 and b"Wrong password." in page and response.getheader("Set-Cookie") is None
    # At once again, even with the right password: refused unchecked, told when to come back.
    response, page = log_in(port, PASSWORD, guesser)
    assert response.status == 429 and response.getheader("Set-Cookie") is None
    assert int(response.getheader("Retry-After")) == math.ceil(login_gate.ADDRESS_BACKOFF_FIRST_S)
    assert b"Too many failed logins from your address" in page
    # Another address logs in, after at most the process-wide backoff.
    response, _ = log_in(port, PASSWORD, owner)
    assert response.status == 303
    assert server_wait_s(response) <= login_gate.GLOBAL_BACKOFF_MAX_S + SCHEDULING_SLACK_S
    assert f"failed login from {guesser} (1 in a row" in server.log()


def test_x_forwarded_for_counts_only_from_the_trusted_proxy(server):
    port, direct = server.port, fresh_address()
    # A client's own X-Forwarded-For is ignored: it is throttled and logged as its peer address.
    response, _ = log_in(port, "not the password", direct, forwarded_for="198.51.100.1")
    assert response.status == 401
    response, _ = log_in(port, "not the password", direct, forwarded_for="198.51.100.2")
    assert response.status == 429  # a new X-Forwarded-For does not make it a new client
    assert f"failed login from {direct} (1 in a row" in server.log() and "198.51.100." not in server.log()
    # Through the proxy, the client is the rightmost address the proxy did not add for itself.
    response, _ = log_in(port, "not the password", PROXY_ADDRESS, forwarded_for="192.0.2.66, 203.0.113.5")
    assert response.status == 401
    assert f"failed login from 203.0.113.5 (via {PROXY_ADDRESS}) (1 in a row" in server.log()
    response, _ = log_in(port, "not the password", PROXY_ADDRESS, forwarded_for="192.0.2.67, 203.0.113.5")
    assert response.status == 429  # what the client wrote itself (on the left) changes nothing
    response, _ = log_in(port, "not the password", PROXY_ADDRESS, forwarded_for="203.0.113.6")
    assert response.status == 401  # another client behind the same proxy is not barred


def test_a_client_at_127_0_0_1_cannot_choose_its_address_either(server):
    # uvicorn (Streamlit's server) believes X-Forwarded-For from 127.0.0.1 unless FORWARDED_ALLOW_IPS says
    # otherwise; the service starts it with the variable empty, as the harness does.
    response, _ = log_in(server.port, "not the password", "127.0.0.1", forwarded_for="192.0.2.99")
    assert response.status == 401
    assert "failed login from 127.0.0.1 (" in server.log() and "192.0.2.99" not in server.log()
    service = (REPO_ROOT / "scripts" / "runtime" / "service.sh").read_text()
    streamlit = service[service.index("  streamlit)"):service.index("exec streamlit run")]
    assert f'export {login_gate.UVICORN_FORWARDED_ALLOW_IPS}=""' in streamlit


def test_the_right_password_logs_in_at_once_after_abandoned_wrong_guesses_from_another_address(server):
    # The finding: six wrong guesses whose clients hung up made the right password wait 61 s.
    port, attacker, owner = server.port, fresh_address(), fresh_address()
    for _ in range(6):
        abandon_wrong_guess(port, attacker)
    started = time.monotonic()
    response, _ = log_in(port, PASSWORD, owner)
    took_s = time.monotonic() - started
    # Ahead of the owner: at most the attacker's one login being checked and its one waiting (a newer login
    # from an address takes its older one's place), each holding the next check back by the global backoff.
    bound_s = 2 * login_gate.GLOBAL_BACKOFF_MAX_S + SCHEDULING_SLACK_S
    print(f"right password after 6 abandoned wrong guesses from another address: {took_s:.2f} s "
          f"(waited {server_wait_s(response):.2f} s for its check; bound {bound_s:.1f} s)")
    assert response.status == 303 and server_wait_s(response) <= bound_s
    assert "Traceback" not in server.log()  # a hung-up client is no error


def test_the_right_password_logs_in_within_seconds_after_abandoned_wrong_guesses_from_many_addresses(server):
    port, owner = server.port, fresh_address()
    for n in range(24):  # through the proxy, each from an address of its own: they fill the queue
        abandon_wrong_guess(port, PROXY_ADDRESS, forwarded_for=f"203.0.113.{100 + n}")
    started = time.monotonic()
    response, took_s, _ = log_in_as_a_person(port, PASSWORD, owner, ATTEMPTS, time.sleep)
    print(f"right password after 24 abandoned wrong guesses from 24 addresses: {time.monotonic() - started:.2f} s "
          f"({took_s:.2f} s by the server's account; bound {abandoned_flood_bound_s(ATTEMPTS):.0f} s)")
    assert response.status == 303
    assert took_s <= abandoned_flood_bound_s(ATTEMPTS) + SCHEDULING_SLACK_S < 10
    assert "Traceback" not in server.log()


def test_a_logged_out_cookie_is_refused(server):
    port, me = server.port, fresh_address()
    response, _ = log_in(port, PASSWORD, me)
    token = session_cookie(response)
    with_cookie = {"Cookie": f"{login_gate.COOKIE}={token}"}
    response, _ = request(port, "GET", "/_stcore/host-config", headers=with_cookie, source=me)
    assert response.status == 200
    response, _ = request(port, "GET", login_gate.LOGOUT_PATH, headers=with_cookie, source=me)
    assert response.status == 303 and response.getheader("Location") == login_gate.LOGIN_PATH
    assert f'{login_gate.COOKIE}=""' in response.getheader("Set-Cookie")  # the browser forgets it
    # The old cookie, replayed: refused as if there were none.
    response, _ = request(port, "GET", "/_stcore/host-config", headers=with_cookie, source=me)
    assert response.status == 401
    response, _ = request(port, "GET", "/runs", headers={**with_cookie, "Accept": "text/html"}, source=me)
    assert response.status == 303 and response.getheader("Location").startswith(login_gate.LOGIN_PATH)
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=10,
                additional_headers=with_cookie)
    assert refused.value.response.status_code == 403


# ---- sessions -------------------------------------------------------------------------------------

@pytest.mark.parametrize("next_path, expected", [("/runs", "/runs"), ("//evil.example", "/"),
                                                 ("https://evil.example", "/"), ("/\\evil", "/"), (None, "/")])
def test_the_page_after_login_is_on_this_site_only(next_path, expected):
    assert login_gate._safe_next(next_path) == expected


def test_session_tokens_are_signed_and_expire():
    sessions = login_gate.Sessions(lifetime_s=60)
    token = sessions.issue(now=1000)
    assert sessions.valid(token, now=1059) and not sessions.valid(token, now=1061)
    expiry, nonce, signature = token.split(".")
    assert not sessions.valid(f"{int(expiry) + 10**6}.{nonce}.{signature}", now=1000)
    assert not login_gate.Sessions(lifetime_s=60).valid(token, now=1000)  # another process's key
    for bad in (None, "", "a.b", "1.2.3.4", 7):
        assert not sessions.valid(bad)


def test_a_revoked_token_is_refused_and_revocations_are_kept_only_until_expiry():
    sessions = Sessions(lifetime_s=60)
    kept, ended = sessions.issue(now=1000), sessions.issue(now=1000)
    assert sessions.revoke(ended, now=1010)
    assert not sessions.valid(ended, now=1011) and sessions.valid(kept, now=1011)
    assert not sessions.revoke("not a token", now=1011) and sessions.revoked_count() == 1
    later = sessions.issue(now=1100)  # the first two have expired by now: their revocation is pruned
    assert sessions.revoke(later, now=1100) and sessions.revoked_count() == 1


# ---- the throttle, on a fake clock ----------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: LoginThrottle, address: str) -> None:
    """One checked wrong password from `address`, at its turn."""
    ticket = throttle.join(address)
    assert ticket is not None and throttle.turn_wait_s(ticket) == 0
    throttle.begin_check(ticket)
    throttle.end_check(address, False)


def test_an_address_is_barred_for_a_doubling_time_up_to_its_cap():
    clock = FakeClock()
    throttle = LoginThrottle(clock)
    waits = []
    for _ in range(9):
        fail(throttle, "203.0.113.9")
        waits.append(throttle.address_wait_s("203.0.113.9"))
        clock.now += waits[-1]
    first, cap = login_gate.ADDRESS_BACKOFF_FIRST_S, login_gate.ADDRESS_BACKOFF_MAX_S
    assert waits == [min(first * 2**n, cap) for n in range(9)] and waits[-1] == cap
    assert throttle.address_wait_s("198.51.100.7") == 0  # another address is not barred
    ticket = throttle.join("203.0.113.9")
    throttle.begin_check(ticket)
    throttle.end_check("203.0.113.9", True)  # the right password clears the address and the process-wide count
    assert throttle.failures_from("203.0.113.9") == 0 and throttle.failures_in_a_row == 0


def test_addresses_are_forgotten_after_a_quiet_while_and_their_number_is_bounded():
    clock = FakeClock()
    throttle = LoginThrottle(clock, max_addresses=3)
    fail(throttle, "203.0.113.1")
    clock.now += login_gate.ADDRESS_FORGET_S
    assert throttle.address_wait_s("203.0.113.1") == 0 and throttle.failures_from("203.0.113.1") == 0
    for n in range(2, 7):
        clock.now += login_gate.GLOBAL_BACKOFF_MAX_S
        fail(throttle, f"203.0.113.{n}")
    assert throttle.remembered_addresses() == 3
    assert throttle.failures_from("203.0.113.6") == 1 and throttle.failures_from("203.0.113.2") == 0


def test_the_process_wide_backoff_is_mild_and_capped():
    clock = FakeClock()
    throttle = LoginThrottle(clock)
    backoffs = []
    for n in range(8):  # each from an address of its own
        clock.now += throttle.global_backoff_s()
        fail(throttle, f"198.51.100.{n}")
        backoffs.append(throttle.global_backoff_s())
    first, cap = login_gate.GLOBAL_BACKOFF_FIRST_S, login_gate.GLOBAL_BACKOFF_MAX_S
    assert backoffs == [min(first * 2**n, cap) for n in range(8)] and backoffs[-1] == cap


def test_the_queue_is_bounded_one_place_an_address_one_check_at_a_time():
    clock = FakeClock()
    throttle = LoginThrottle(clock)
    fail(throttle, "192.0.2.1")  # the next check waits for the process-wide backoff
    tickets = [throttle.join(f"198.51.100.{n}") for n in range(login_gate.MAX_WAITING_LOGINS)]
    assert all(tickets) and throttle.join("203.0.113.1") is None  # full: the gate answers 429
    assert 0 < throttle.place_frees_in_s() <= login_gate.GLOBAL_BACKOFF_MAX_S
    newer = throttle.join("198.51.100.0")  # the same address again: takes its older login's place and rank
    assert newer is not None and tickets[0].displaced and throttle.waiting == login_gate.MAX_WAITING_LOGINS
    assert throttle.turn_wait_s(newer) == throttle.global_backoff_s() and throttle.turn_wait_s(tickets[1]) == math.inf
    clock.now += throttle.global_backoff_s()
    throttle.begin_check(newer)
    assert throttle.turn_wait_s(tickets[1]) == math.inf  # one check at a time
    throttle.end_check("198.51.100.0", False)
    throttle.leave(tickets[1])  # its client hung up: the next moves up
    assert throttle.turn_wait_s(tickets[2]) == throttle.global_backoff_s()


def test_in_a_full_queue_a_login_from_an_address_with_fewer_failures_goes_first():
    clock = FakeClock()
    throttle = LoginThrottle(clock)
    guessers = [f"198.51.100.{n}" for n in range(login_gate.MAX_WAITING_LOGINS + 1)]
    for guesser in guessers:  # each has failed once, and its bar has passed
        fail(throttle, guesser)
        clock.now += login_gate.ADDRESS_BACKOFF_FIRST_S
    waiting = [throttle.join(guesser) for guesser in guessers[:-1]]
    assert throttle.join(guessers[-1]) is None  # it failed before too: no better than those waiting
    newcomer = throttle.join("192.0.2.7")  # never failed: takes the place of the last in line, and goes first
    assert newcomer is not None and waiting[-1].displaced and not any(t.displaced for t in waiting[:-1])
    assert throttle.turn_wait_s(newcomer) == 0 and all(throttle.turn_wait_s(t) == math.inf for t in waiting)


def guess_for(seconds: float, attackers: list[str], step_s: float = 0.125,
              owner_arrives_at: float | None = None) -> tuple[int, float | None]:
    """Attackers guess as fast as the throttle lets them (each keeps a login waiting whenever its address may
    try); the wrong guesses checked in `seconds`, and when the owner, arriving at `owner_arrives_at` from an
    address of its own and honouring Retry-After, had the right password checked, counted from arrival."""
    clock = FakeClock()
    throttle = LoginThrottle(clock)
    waiting: dict[str, login_gate.Ticket] = {}
    guesses, owner_ticket, owner_checked_s = 0, None, None
    owner_next_try = owner_arrives_at
    while clock.now < seconds and owner_checked_s is None:
        for address in attackers:
            if (address not in waiting or waiting[address].displaced) and throttle.address_wait_s(address) == 0:
                ticket = throttle.join(address)
                if ticket is not None:
                    waiting[address] = ticket
                else:
                    waiting.pop(address, None)
        if owner_arrives_at is not None and owner_ticket is None and clock.now >= owner_next_try:
            owner_ticket = throttle.join("owner")
            if owner_ticket is None:
                owner_next_try = clock.now + max(1, math.ceil(throttle.place_frees_in_s()))
        while True:  # the check whose turn it is (instant here)
            ready = [t for t in [*waiting.values(), owner_ticket] if t is not None and throttle.turn_wait_s(t) == 0]
            if not ready:
                break
            throttle.begin_check(ready[0])
            if ready[0] is owner_ticket:
                throttle.end_check("owner", True)
                owner_checked_s = clock.now - owner_arrives_at
                break
            throttle.end_check(ready[0].address, False)
            del waiting[ready[0].address]
            guesses += 1
        clock.now += step_s
    return guesses, owner_checked_s


def test_guessing_rates_over_an_hour():
    hour = 3600.0
    one_address, _ = guess_for(hour, ["203.0.113.9"])
    # Doubling from the first backoff to the cap, then one a cap: the figure of docs/security.md.
    doublings = math.ceil(math.log2(login_gate.ADDRESS_BACKOFF_MAX_S / login_gate.ADDRESS_BACKOFF_FIRST_S))
    at_the_cap = hour / login_gate.ADDRESS_BACKOFF_MAX_S
    assert at_the_cap <= one_address <= doublings + 1 + at_the_cap
    many = [f"198.51.100.{n}" for n in range(100)]  # more than it takes to keep the queue full
    ten_minutes = 600.0
    many_addresses, _ = guess_for(ten_minutes, many)
    assert ten_minutes / login_gate.GLOBAL_BACKOFF_MAX_S * 0.9 <= many_addresses
    assert many_addresses <= ten_minutes / login_gate.GLOBAL_BACKOFF_MAX_S + 3  # + the ramp up to the cap
    print(f"guesses: {one_address} in an hour from one address, {many_addresses} in ten minutes from "
          f"{len(many)} addresses")


def test_the_owner_gets_in_within_seconds_during_a_flood_from_many_addresses():
    many = [f"198.51.100.{n}" for n in range(100)]
    _, owner_s = guess_for(400.0, many, owner_arrives_at=300.0)
    print(f"the owner, arriving during a flood from {len(many)} addresses, is checked after {owner_s} s")
    assert owner_s is not None and owner_s <= login_gate.LONGEST_LOGIN_WAIT_S


# ---- who the client is ----------------------------------------------------------------------------

def connection(peer: str, forwarded_for: list[str] = (), proto: str | None = None) -> HTTPConnection:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    headers += [(b"x-forwarded-proto", proto.encode())] if proto else []
    return HTTPConnection({"type": "http", "scheme": "http", "path": "/login", "query_string": b"",
                           "headers": headers, "client": (peer, 40000), "server": ("10.0.0.1", 8501)})


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy():
    nobody = ProxyTrust(())
    spoofed = nobody.client(connection("203.0.113.9", ["198.51.100.1"], proto="https"))
    assert (spoofed.address, spoofed.https) == ("203.0.113.9", False)
    proxies = ProxyTrust(["10.0.0.5", "172.18.0.0/16"])
    assert proxies.client(connection("10.0.0.5", ["198.51.100.1, 203.0.113.9"])).address == "203.0.113.9"
    two_hops = proxies.client(connection("10.0.0.5", ["198.51.100.1", "203.0.113.9, 172.18.0.3"], proto="https"))
    assert (two_hops.address, two_hops.peer, two_hops.https) == ("203.0.113.9", "10.0.0.5", True)
    assert str(two_hops) == "203.0.113.9 (via 10.0.0.5)"
    assert proxies.client(connection("10.0.0.5")).address == "10.0.0.5"  # no header: the proxy itself
    assert proxies.client(connection("10.0.0.6", ["198.51.100.1"])).address == "10.0.0.6"  # not a trusted peer


def test_ipv6_clients_count_by_their_64():
    assert login_gate.client_key("2001:db8:1:2::1") == login_gate.client_key("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert login_gate.client_key("2001:db8:1:3::1") != login_gate.client_key("2001:db8:1:2::1")
    assert login_gate.client_key("::ffff:198.51.100.1") == "198.51.100.1"
    assert login_gate.client_key("[2001:db8::1]:443") == "2001:db8::/64"


def test_the_trusted_proxies_setting():
    assert load_settings({}).trusted_proxies == ()
    assert load_settings({TRUSTED_PROXIES_ENV: " 10.0.0.5, 172.18.0.0/16 ,"}).trusted_proxies == (
        "10.0.0.5", "172.18.0.0/16")
    with pytest.raises(ValueError, match=f"{TRUSTED_PROXIES_ENV}: 'caddy' is neither"):
        ProxyTrust(["10.0.0.5", "caddy"])


# ---- the gate on the ASGI level -------------------------------------------------------------------

class Caller:
    """One client of the gate: it sends its form, then waits, or hangs up."""

    def __init__(self, gate: LoginGate, peer: str, password: str) -> None:
        self.gate, self.peer, self.body = gate, peer, f"password={password}".encode()
        self.body_read, self.messages = False, []
        self.hung_up = asyncio.Event()

    async def receive(self) -> dict:
        if not self.body_read and not self.hung_up.is_set():
            self.body_read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.hung_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.messages.append(message)

    async def request(self, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": headers, "client": (self.peer, 40000), "server": ("127.0.0.1", 8501)}
        await self.gate(scope, self.receive, self.send)

    async def post(self) -> None:
        await self.request("POST", login_gate.LOGIN_PATH, [(b"content-type", b"application/x-www-form-urlencoded")])

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.messages if m["type"] == "http.response.start"), None)

    def header(self, name: str) -> str | None:
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        return dict(start["headers"]).get(name.lower().encode(), b"").decode() or None


async def _app(scope, receive, send) -> None:
    await PlainTextResponse("the app")(scope, receive, send)


def gate_with(throttle: LoginThrottle, checked: list[str]) -> LoginGate:
    def check(password: str) -> bool:
        checked.append(password)
        return password == PASSWORD
    return LoginGate(_app, check_password=check, sessions=Sessions(), throttle=throttle, trusted_proxies=())


def test_a_waiting_login_whose_client_hung_up_is_dropped_unchecked():
    async def scenario() -> tuple[list[str], Caller, Caller, Caller]:
        checked: list[str] = []
        gate = gate_with(LoginThrottle(global_first_s=0.5, global_max_s=0.5), checked)
        first = Caller(gate, "192.0.2.1", "wrong")
        await first.post()  # checked at once; the next check waits 0.5 s
        gone, owner = Caller(gate, "192.0.2.2", "abandoned"), Caller(gate, "192.0.2.3", PASSWORD)
        gone_task = asyncio.create_task(gone.post())
        await asyncio.sleep(0)  # it has joined the queue, first
        owner_task = asyncio.create_task(owner.post())
        gone.hung_up.set()
        await asyncio.wait_for(asyncio.gather(gone_task, owner_task), timeout=30)
        return checked, first, gone, owner

    checked, first, gone, owner = asyncio.run(scenario())
    assert first.status == 401 and owner.status == 303 and gone.messages == []
    assert checked == ["wrong", PASSWORD]  # the abandoned guess was never checked
    assert float(owner.header("Server-Timing").split("dur=")[1]) / 1000 <= 0.5 + SCHEDULING_SLACK_S


def test_a_client_that_hangs_up_before_its_form_arrives_gets_nothing_and_raises_nothing():
    checked: list[str] = []
    gone = Caller(gate_with(LoginThrottle(), checked), "192.0.2.1", PASSWORD)
    gone.hung_up.set()
    asyncio.run(gone.post())
    assert gone.messages == [] and checked == []


def test_a_full_queue_and_a_barred_address_are_answered_429_at_once():
    async def scenario() -> tuple[Caller, Caller, Caller, list[str]]:
        checked: list[str] = []
        gate = gate_with(LoginThrottle(global_first_s=5, global_max_s=5, max_waiting=1), checked)
        first = Caller(gate, "192.0.2.1", "wrong")
        await first.post()
        waiting = Caller(gate, "192.0.2.2", "wrong")
        waiting_task = asyncio.create_task(waiting.post())
        await asyncio.sleep(0)
        over, again = Caller(gate, "192.0.2.3", PASSWORD), Caller(gate, "192.0.2.1", PASSWORD)
        await asyncio.wait_for(over.post(), timeout=1)
        await asyncio.wait_for(again.post(), timeout=1)
        waiting.hung_up.set()
        await asyncio.wait_for(waiting_task, timeout=30)
        return over, again, waiting, checked

    over, again, waiting, checked = asyncio.run(scenario())
    assert over.status == 429 and over.header("Retry-After") == "5"
    assert again.status == 429 and again.header("Retry-After") == str(math.ceil(login_gate.ADDRESS_BACKOFF_FIRST_S))
    assert not again.body_read  # a barred address's form is not even read
    assert checked == ["wrong"] and waiting.messages == []


def test_logout_revokes_the_session_on_the_server():
    gate = gate_with(LoginThrottle(), [])

    async def scenario() -> tuple[str, list[int]]:
        owner = Caller(gate, "192.0.2.1", PASSWORD)
        await owner.post()
        token = owner.header("Set-Cookie").split(";")[0].split("=", 1)[1]
        statuses = []
        for path in ("/", login_gate.LOGOUT_PATH, "/"):  # the app, log out, the old cookie replayed
            visitor = Caller(gate, "192.0.2.1", "")
            await visitor.request("GET", path, [(b"cookie", f"{login_gate.COOKIE}={token}".encode())])
            statuses.append(visitor.status)
        return token, statuses

    token, statuses = asyncio.run(scenario())
    assert statuses == [200, 303, 401]  # the replayed cookie is refused as if there were none
    assert not gate.sessions.valid(token) and gate.sessions.revoked_count() == 1
