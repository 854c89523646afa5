"""The app's real server behind its login gate, and clients that attack it (no pytest: the bench uses it too).

`GateServer.start` runs ``streamlit run ui/server.py`` on 127.0.0.1 with the environment scripts/runtime/service.sh
gives it (FORWARDED_ALLOW_IPS empty) and PROXY_ADDRESS as its one trusted reverse proxy. Clients connect from
addresses of their own: all of 127.0.0.0/8 is this host's, so each test or attacker is a distinct peer, and
one connecting from PROXY_ADDRESS plays the proxy, naming the client in X-Forwarded-For. A logged-in client
can open a Streamlit session over its websocket (`open_session`) and upload to it (`upload`), as a browser
does or with file ids of its own.
"""

from __future__ import annotations

import http.client
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from helpers import REPO_ROOT, free_port, wait_for_http
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string
from streamlit.web.server.starlette.starlette_server_config import XSRF_COOKIE_NAME
from websockets.sync.client import ClientConnection, connect

from dataperf_appliance.interface import login_gate
from dataperf_appliance.engine.settings import TRUSTED_PROXIES_ENV

#: The address the tests' reverse proxy connects from (the server trusts its X-Forwarded-For).
PROXY_ADDRESS = "127.0.0.2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class GateServer:
    port: int
    process: subprocess.Popen
    log_path: Path

    @classmethod
    def start(cls, folder: Path, password: str, timeout_s: float = 90,
              options: dict[str, str] | None = None) -> GateServer:
        """The server on a free port; `options` are more of Streamlit's, e.g. {"server.disconnectedSessionTTL":
        "2"}."""
        port = free_port()
        env = {**os.environ, "APPLIANCE_DATA_DIR": str(folder), "APPLIANCE_UI_PASSWORD": password,
               TRUSTED_PROXIES_ENV: PROXY_ADDRESS, login_gate.UVICORN_FORWARDED_ALLOW_IPS: ""}
        flags = [arg for name, value in (options or {}).items() for arg in (f"--{name}", value)]
        log_path = folder / "streamlit.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "ui" / "server.py"), "--server.port",
                 str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                 "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", *flags],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        server = cls(port, process, log_path)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", timeout_s=timeout_s)
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
            source: str = "127.0.0.1") -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def log_in(port: int, password: str, source: str,
           forwarded_for: str | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    headers = {**FORM, **({"X-Forwarded-For": forwarded_for} if forwarded_for else {})}
    return request(port, "POST", "/login?next=/runs", urllib.parse.urlencode({"password": password}).encode(),
                   headers, source)


def abandon_wrong_guess(port: int, source: str, forwarded_for: str | None = None) -> None:
    """POST a wrong password and hang up at once, without waiting for the answer."""
    body = urllib.parse.urlencode({"password": "an abandoned wrong guess"}).encode()
    head = (f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {FORM['Content-Type']}\r\n"
            f"Content-Length: {len(body)}\r\n" + (f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else "")
            + "\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(head + body)


def server_wait_s(response: http.client.HTTPResponse) -> float:
    """How long the server says the login waited for its check (its Server-Timing header)."""
    match = re.search(rf"{login_gate.LOGIN_WAIT_METRIC};dur=([\d.]+)", response.getheader("Server-Timing") or "")
    if not match:
        raise AssertionError(f"no {login_gate.LOGIN_WAIT_METRIC} in Server-Timing: {response.getheaders()}")
    return float(match.group(1)) / 1000


def log_in_as_a_person(port: int, password: str, source: str, attempts: int, pause) -> tuple[
        http.client.HTTPResponse, float, int]:
    """Log in, trying again after Retry-After when told to (at most `attempts` tries; `pause(seconds)` waits):
    the answer, the seconds it took by the server's account (the Retry-Afters and the final wait), the tries."""
    told_to_wait_s = 0.0
    for attempt in range(1, attempts + 1):
        response, _ = log_in(port, password, source)
        if response.status != 429:
            return response, told_to_wait_s + server_wait_s(response), attempt
        retry_after = int(response.getheader("Retry-After"))
        told_to_wait_s += retry_after
        pause(retry_after)
    raise AssertionError(f"still 429 after {attempts} attempts ({told_to_wait_s:.0f} s of Retry-After)")


def abandoned_flood_bound_s(attempts: int) -> float:
    """The longest a person's login may take, by the gate's constants, after a flood of abandoned guesses:
    each 429 asks for at most the global backoff (rounded up), and an admitted login waits at most
    LONGEST_LOGIN_WAIT_S."""
    return attempts * math.ceil(login_gate.GLOBAL_BACKOFF_MAX_S) + login_gate.LONGEST_LOGIN_WAIT_S


@dataclass
class StreamlitSession:
    """A Streamlit session opened over its websocket by a logged-in client, and what uploading to it takes."""

    websocket: ClientConnection
    session_id: str
    headers: dict[str, str]  # the login cookie, and Streamlit's XSRF cookie and header (a pair of the client's)


@contextmanager
def open_session(port: int, token: str, timeout_s: float = 60) -> Iterator[StreamlitSession]:
    """A session opened as the browser opens one (the websocket, then a first run of the script), once that run
    has finished (what the app imports is then in the server's memory); its websocket closes on leaving."""
    xsrf = generate_xsrf_token_string()
    cookie = f"{login_gate.COOKIE}={token}; {XSRF_COOKIE_NAME}={xsrf}"
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=20,
                 additional_headers={"Cookie": cookie}, max_size=None) as websocket:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        websocket.send(rerun.SerializeToString())
        deadline, session_id = time.monotonic() + timeout_s, None
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"the session's first run did not finish within {timeout_s} s")
            message = ForwardMsg()
            message.ParseFromString(websocket.recv(timeout=max(0.0, deadline - time.monotonic())))
            if message.HasField("new_session"):
                session_id = message.new_session.initialize.session_id
            elif message.HasField("script_finished") and session_id:
                break
        yield StreamlitSession(websocket, session_id, {"Cookie": cookie, "X-Xsrftoken": xsrf})


def upload(port: int, session: StreamlitSession, file_id: str, size: int,
           source: str = "127.0.0.1") -> tuple[int, bytes]:
    """PUT a file of `size` zero bytes to the session under `file_id` (any id: Streamlit issued it or not), as
    the browser's form-data: the answer's status and body. A server that answers before it has read the body
    and hangs up is answered all the same."""
    boundary = "appliance-upload-test"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_id}.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        conn.putrequest("PUT", f"/_stcore/upload_file/{session.session_id}/{file_id}")
        for name, value in {**session.headers, "Content-Type": f"multipart/form-data; boundary={boundary}",
                            "Content-Length": str(len(head) + size + len(tail))}.items():
            conn.putheader(name, value)
        conn.endheaders()
        chunk = bytes(2**20)
        try:
            conn.send(head)
            for start in range(0, size, len(chunk)):
                conn.send(chunk[:min(len(chunk), size - start)])
            conn.send(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered without reading the body, and closed the connection
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
