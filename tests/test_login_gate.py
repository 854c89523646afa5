"""The login gate: nothing reaches Streamlit before the password, tried against the app's real server.

The server is started the way the appliance starts it (`streamlit run
ui/server.py`), and attacked over HTTP at its public port: a pre-login upload,
a pre-login websocket session, and password guessing.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, free_port, wait_for_http
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from dataperf_appliance import login_gate

PASSWORD = "a long enough operator password"
UPLOAD_BYTES = 64 * 2**20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, int]]:
    """(port, pid) of `streamlit run ui/server.py` on 127.0.0.1."""
    port = free_port()
    data = tmp_path_factory.mktemp("gate-data")
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(data), "APPLIANCE_UI_PASSWORD": PASSWORD}
    log = open(data / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "ui" / "server.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", timeout_s=90)
        yield port, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    content = response.read()
    conn.close()
    return response, content


def log_in(port: int, password: str):
    return request(port, "POST", "/login?next=/runs", urllib.parse.urlencode({"password": password}).encode(),
                   {"Content-Type": "application/x-www-form-urlencoded"})


def test_a_pre_login_upload_is_refused_without_being_read(server):
    port, pid = server
    before = rss_bytes(pid)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
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
    grown = rss_bytes(pid) - before
    print(f"server memory after a refused {UPLOAD_BYTES / 2**20:.0f} MiB pre-login upload: {grown / 2**20:+.1f} MiB")
    assert grown < UPLOAD_BYTES / 4


def test_a_pre_login_websocket_session_is_refused(server):
    port, _ = server
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=10)
    assert refused.value.response.status_code == 403


def test_pages_send_the_browser_to_the_login_page_and_the_password_opens_the_app(server):
    port, _ = server
    response, _ = request(port, "GET", "/runs?x=1", headers={"Accept": "text/html"})
    assert response.status == 303 and response.getheader("Location") == "/login?next=/runs%3Fx%3D1"
    response, page = request(port, "GET", "/login")
    assert response.status == 200 and b'type="password"' in page and PASSWORD.encode() not in page

    response, page = log_in(port, PASSWORD)  # from /login?next=/runs
    assert response.status == 303 and response.getheader("Location") == "/runs"
    cookie = response.getheader("Set-Cookie")
    assert cookie.startswith(f"{login_gate.COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=20,
                 additional_headers={"Cookie": f"{login_gate.COOKIE}={token}"}) as session:
        assert session.protocol.state.name == "OPEN"
    response, _ = request(port, "GET", "/_stcore/host-config", headers={"Cookie": f"{login_gate.COOKIE}={token}"})
    assert response.status == 200


def test_failed_logins_are_throttled_process_wide_and_logged(server):
    port, _ = server
    timings = []
    for _ in range(3):
        started = time.monotonic()
        response, page = log_in(port, "not the password")
        timings.append(time.monotonic() - started)
        assert response.status == 401 and b"Wrong password." in page and response.getheader("Set-Cookie") is None
    print("failed logins took " + ", ".join(f"{t:.1f} s" for t in timings))
    assert timings[1] >= login_gate.BACKOFF_FIRST_S * 0.9 and timings[2] >= 2 * login_gate.BACKOFF_FIRST_S * 0.9
    response, _ = log_in(port, PASSWORD)  # the right password still opens, and resets the count
    assert response.status == 303


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
