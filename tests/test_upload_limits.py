"""What a logged-in browser's uploads may hold in the app's memory (dataperf_appliance.interface.upload_budget), and where
the upload limit comes from (dataperf_appliance.engine.upload_limits).

Through the real server (`streamlit run ui/server.py`, tests/login_harness.py): a session that PUTs file after
file under ids it made up gets the first ones in, up to its budget, and 413 for the rest; the server's memory
(RSS) grows by at most the budget and one file; and once the session's websocket is gone for Streamlit's
reconnect time, its files are dropped and the memory is back. On the ASGI level, with a fake of Streamlit's
files: the per-request limit without reading the body, the budget of a session and of all, requests being
received counted, the sweep of closed sessions, failing closed, a logged-in websocket from another site.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import psutil
import pytest
from helpers import REPO_ROOT
from login_harness import GateServer, log_in, open_session, request, upload
from starlette.responses import PlainTextResponse

from dataperf_appliance.interface import login_gate, upload_budget
from dataperf_appliance.engine.datasets.dataperf_files import MAX_PARQUET_VALUES
from dataperf_appliance.interface.login_gate import LoginGate, LoginThrottle, Sessions
from dataperf_appliance.interface.ui_support import dataset_upload, form
from dataperf_appliance.interface.upload_budget import UploadBudget
from dataperf_appliance.engine.upload_limits import (
    MAX_FILES_PER_UPLOADER,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_REQUEST_BYTES,
    SESSION_UPLOAD_BUDGET_BYTES,
    TOTAL_UPLOAD_BUDGET_BYTES,
)
from dataperf_appliance.engine.user_files import MAX_SUBMISSION_BYTES, MAX_TRAINING_SET_BYTES

PASSWORD = "a long enough operator password"
#: One file of the real server's series: over glibc's largest mmap threshold (32 MiB), so that a file's bytes,
#: once dropped, go back to the system at once, and Streamlit's memory shows it.
FILE_BYTES = 64 * 2**20
#: The series: past the session's budget.
FILES = SESSION_UPLOAD_BUDGET_BYTES // FILE_BYTES + 2
#: Uploads of that size made and removed before the series: over its first ones the server's allocator grows
#: once (about 60 MiB: its worker threads' arenas), then no more; the series is measured from there.
WARM_UPS = 3
#: The server's reconnect time (server.disconnectedSessionTTL) in the test, instead of Streamlit's 120 s.
RECONNECT_S = 2
#: The most a test waits for the server to drop a closed session's files: many times the reconnect time.
FREED_WITHIN_S = 60
#: What the server's allocator and Python's own objects may add to the files held and the one being parsed
#: (seen: up to 7 MiB on a busy CI machine). Without the budget the series would hold its last two files too,
#: 128 MiB more, and still fail the bound.
ALLOCATOR_SLACK_BYTES = 32 * 2**20


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


# ---- the real server ------------------------------------------------------------------------------

def test_invented_upload_ids_hold_at_most_the_session_budget_and_are_freed_when_the_session_ends(tmp_path):
    server = GateServer.start(tmp_path, PASSWORD, options={"server.disconnectedSessionTTL": str(RECONNECT_S)})
    try:
        response, _ = log_in(server.port, PASSWORD, "127.0.4.1")
        token = response.getheader("Set-Cookie").split(";")[0].split("=", 1)[1]
        with open_session(server.port, token) as session:
            for index in range(WARM_UPS):  # each removed again, as the browser's × does
                assert upload(server.port, session, f"warm-up-{index}", FILE_BYTES)[0] == 204
                removed, _ = request(server.port, "DELETE", f"/_stcore/upload_file/{session.session_id}/"
                                     f"warm-up-{index}", headers=session.headers)
                assert removed.status == 204
            baseline = peak = rss(server.process.pid)
            statuses, refusal = [], b""
            for index in range(FILES):
                status, body = upload(server.port, session, f"invented-{index}", FILE_BYTES)
                statuses.append(status)
                refusal = body if status != 204 else refusal
                peak = max(peak, rss(server.process.pid))
        print(f"\n{FILES} uploads of {FILE_BYTES >> 20} MiB under invented ids: {statuses}; server memory "
              f"{baseline >> 20} MiB before, peak +{(peak - baseline) >> 20} MiB (the session's budget "
              f"{SESSION_UPLOAD_BUDGET_BYTES >> 20} MiB)")
        accepted = SESSION_UPLOAD_BUDGET_BYTES // FILE_BYTES
        assert statuses == [204] * accepted + [413] * (FILES - accepted)
        assert b"remove files you no longer need" in refusal
        # The files held, at most one more file's worth (the last request parsed), and the allocator's slack.
        assert peak - baseline <= SESSION_UPLOAD_BUDGET_BYTES + FILE_BYTES + ALLOCATOR_SLACK_BYTES

        # The websocket has closed: once the reconnect time has passed, the session's files are dropped.
        deadline = time.monotonic() + FREED_WITHIN_S
        while rss(server.process.pid) - baseline > FILE_BYTES and time.monotonic() < deadline:
            time.sleep(0.5)
        after = rss(server.process.pid)
        print(f"after the session's websocket closed: +{(after - baseline) >> 20} MiB "
              f"({accepted * FILE_BYTES >> 20} MiB of files dropped)")
        assert after - baseline <= FILE_BYTES
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_streamlit_takes_the_largest_file_a_reader_takes_even_after_its_config_is_read_again():
    script = ("import runpy, sys; from streamlit import config; runpy.run_path(sys.argv[1]); "
              "first = config.get_option('server.maxUploadSize'); config.get_config_options(force_reparse=True); "
              "print(first, config.get_option('server.maxUploadSize'))")
    done = subprocess.run([sys.executable, "-c", script, str(REPO_ROOT / "ui" / "server.py")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(MAX_UPLOAD_BYTES // 2**20)] * 2


# ---- the limits -----------------------------------------------------------------------------------

def test_the_upload_limit_is_the_largest_file_a_reader_takes():
    assert MAX_UPLOAD_BYTES == max(MAX_SUBMISSION_BYTES, MAX_TRAINING_SET_BYTES, dataset_upload.MAX_ARCHIVE_BYTES)
    # A dataset zip: the largest pool a check reads, as float32, and as much again.
    assert dataset_upload.MAX_ARCHIVE_BYTES == 2 * MAX_PARQUET_VALUES * 4
    assert MAX_UPLOAD_BYTES % 2**20 == 0  # Streamlit's limit is whole MiB
    assert SESSION_UPLOAD_BUDGET_BYTES >= MAX_UPLOAD_REQUEST_BYTES  # a session can upload the largest file


def test_a_dataset_zip_over_its_limit_is_refused_before_it_is_written(tmp_path, monkeypatch):
    from dataperf_appliance.engine.settings import load_settings

    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(dataset_upload, "MAX_ARCHIVE_BYTES", 100)
    check = dataset_upload.upload_dataset("big", b"PK" + bytes(99), load_settings())
    assert check.problems == ["the zip has 101 bytes; at most 100"]
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").iterdir())


def test_an_uploader_holding_more_files_than_it_takes_is_refused_with_the_reason():
    assert form.too_many_files(MAX_FILES_PER_UPLOADER) is None
    problem = form.too_many_files(MAX_FILES_PER_UPLOADER + 1)
    assert problem.startswith(f"{MAX_FILES_PER_UPLOADER + 1} files chosen") and "Remove some" in problem


# ---- the budget, on the ASGI level ----------------------------------------------------------------

class FakeUploads:
    """Streamlit's files, as the budget sees them."""

    def __init__(self, held: dict[str, int] | None = None, active: set[str] | None = None,
                 reconnect_s: float = 120) -> None:
        self.files = dict(held or {})
        self.live = set(active or ())
        self.reconnect = reconnect_s
        self.dropped: list[str] = []
        self.broken = False

    def held(self) -> dict[str, int]:
        if self.broken:
            raise RuntimeError("Streamlit's upload manager changed")
        return dict(self.files)

    def active(self, session_id: str) -> bool:
        return session_id in self.live

    def drop(self, session_id: str) -> None:
        self.files.pop(session_id, None)
        self.dropped.append(session_id)

    def reconnect_s(self) -> float:
        return self.reconnect


class App:
    """Streamlit's upload route: stores what it reads (after `hold` is set, when given)."""

    def __init__(self, uploads: FakeUploads, hold: asyncio.Event | None = None) -> None:
        self.uploads, self.hold, self.calls = uploads, hold, 0

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        if self.hold is not None:
            await self.hold.wait()
        session = scope["path"].split("/")[3]
        self.uploads.files[session] = self.uploads.files.get(session, 0) + size
        await PlainTextResponse("", status_code=204)(scope, receive, send)


async def put(budget: UploadBudget, app, session: str, length: int | None, method: str = "PUT",
              extra_headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, dict[str, str], bool]:
    """One upload request through the budget: its status, headers, and whether its body was read."""
    headers = ([] if length is None else [(b"content-length", str(length).encode())]) + list(extra_headers)
    scope = {"type": "http", "method": method, "path": f"/_stcore/upload_file/{session}/f{id(object())}",
             "headers": headers, "query_string": b""}
    read, sent = [], []

    async def receive():
        read.append(True)
        return {"type": "http.request", "body": bytes(length or 0), "more_body": False}

    async def send(message):
        sent.append(message)

    await budget(scope, receive, send, app)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, bool(read)


def test_an_upload_over_the_limit_or_without_its_length_is_refused_unread():
    uploads = FakeUploads()
    budget, app = UploadBudget(uploads), App(uploads)
    status, headers, read = asyncio.run(put(budget, app, "s1", MAX_UPLOAD_REQUEST_BYTES + 1))
    assert (status, read, app.calls) == (413, False, 0) and headers["connection"] == "close"
    status, _, read = asyncio.run(put(budget, app, "s1", None))
    assert (status, read, app.calls) == (411, False, 0)
    status, _, read = asyncio.run(put(budget, app, "s1", 10, extra_headers=[(b"transfer-encoding", b"chunked")]))
    assert (status, read, app.calls) == (411, False, 0)
    assert asyncio.run(put(budget, app, "s1", 10))[0] == 204 and uploads.files == {"s1": 10}


def test_a_session_holds_at_most_its_budget_and_all_sessions_the_total():
    uploads = FakeUploads({"s1": 90, "s2": 50}, active={"s1", "s2", "s3"})
    budget = UploadBudget(uploads, session_bytes=100, total_bytes=200)
    app = App(uploads)
    status, _, read = asyncio.run(put(budget, app, "s1", 11))  # 90 + 11 > 100
    assert (status, read) == (413, False)
    assert asyncio.run(put(budget, app, "s1", 10))[0] == 204  # exactly the budget
    status, headers, read = asyncio.run(put(budget, app, "s3", 70))  # 100 + 50 + 70 > 200
    assert (status, read) == (503, False) and int(headers["retry-after"]) > uploads.reconnect
    assert asyncio.run(put(budget, app, "s3", 50))[0] == 204
    # Removing a file (DELETE) goes through; what it frees is Streamlit's record, which the budget reads.
    assert asyncio.run(put(budget, App(uploads), "s1", None, method="DELETE"))[0] == 204


def test_requests_being_received_count_against_the_budget_until_they_end():
    async def scenario() -> tuple[int, int, int]:
        uploads = FakeUploads(active={"s1"})
        budget, hold = UploadBudget(uploads, session_bytes=100, total_bytes=1000), asyncio.Event()
        first = asyncio.create_task(put(budget, App(uploads, hold), "s1", 60))
        while budget.receiving() == 0:
            await asyncio.sleep(0)
        second = (await put(budget, App(uploads), "s1", 60))[0]  # 60 being received + 60 > 100
        hold.set()
        first_status = (await first)[0]
        return first_status, second, budget.receiving()

    assert asyncio.run(scenario()) == (204, 413, 0)


def test_the_files_of_a_session_gone_longer_than_the_reconnect_time_are_dropped():
    now = [0.0]
    uploads = FakeUploads({"gone": 10, "live": 20, "back": 30}, active={"live"}, reconnect_s=120)
    budget = UploadBudget(uploads, clock=lambda: now[0])
    assert budget.sweep() == {"gone": 10, "live": 20, "back": 30}  # first seen without a websocket now
    now[0] = 119
    uploads.live.add("back")  # it reconnected in time
    assert budget.sweep() == {"gone": 10, "live": 20, "back": 30}
    now[0] = 120
    assert budget.sweep() == {"live": 20, "back": 30} and uploads.dropped == ["gone"]


def test_a_websocket_ending_sweeps_then_sweeps_again_once_its_session_may_go(monkeypatch):
    monkeypatch.setattr(upload_budget, "SWEEP_MARGIN_S", 0.01)

    async def scenario() -> list[str]:
        # A reconnect time far longer than the two calls below take even on a busy machine (at 0.05 s, a CI
        # machine once let it pass between them, and the second call dropped the files at once).
        uploads = FakeUploads({"closed": 10}, reconnect_s=0.5)
        budget = UploadBudget(uploads)
        budget.websocket_ended()  # "closed" is seen without a websocket now
        budget.websocket_ended()  # a second end while the timer waits: one timer, then one more
        assert uploads.dropped == []
        deadline = time.monotonic() + 30
        while "closed" in uploads.files and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return uploads.dropped

    assert asyncio.run(scenario()) == ["closed"]


def test_uploads_are_refused_when_the_held_files_cannot_be_counted():
    uploads = FakeUploads()
    uploads.broken = True
    app = App(uploads)
    status, _, read = asyncio.run(put(UploadBudget(uploads), app, "s1", 10))
    assert (status, read, app.calls) == (503, False, 0)


# ---- the gate -------------------------------------------------------------------------------------

def _logged_in_gate(uploads: UploadBudget | None, app) -> tuple[LoginGate, bytes]:
    sessions = Sessions()
    gate = LoginGate(app, check_password=lambda password: False, sessions=sessions, throttle=LoginThrottle(),
                     trusted_proxies=(), uploads=uploads)
    return gate, f"{login_gate.COOKIE}={sessions.issue()}".encode()


@pytest.mark.parametrize("origin, opened", [(None, True), (b"http://app.example:8501", True),
                                            (b"http://evil.example", False), (b"http://app.example", False)])
def test_a_logged_in_websocket_must_come_from_this_site(origin, opened):
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    uploads = FakeUploads()
    gate, cookie = _logged_in_gate(UploadBudget(uploads), app)
    headers = [(b"cookie", cookie), (b"host", b"app.example:8501")] + ([(b"origin", origin)] if origin else [])
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/_stcore/stream", "headers": headers, "query_string": b"",
             "client": ("192.0.2.1", 1234), "scheme": "ws", "server": ("app.example", 8501)}
    asyncio.run(gate(scope, receive, send))
    assert (reached == ["/_stcore/stream"]) is opened
    assert (sent == [{"type": "websocket.close", "code": login_gate.WS_POLICY_VIOLATION}]) is not opened


def test_a_gate_without_an_upload_budget_takes_no_upload():
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    gate, cookie = _logged_in_gate(None, app)
    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "PUT", "path": "/_stcore/upload_file/s1/f1", "query_string": b"",
             "headers": [(b"cookie", cookie), (b"content-length", b"10")], "client": ("192.0.2.1", 1234),
             "scheme": "http", "server": ("app.example", 8501)}
    asyncio.run(gate(scope, None, send))
    assert reached == [] and sent[0]["status"] == 503
