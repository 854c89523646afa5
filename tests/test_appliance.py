"""The whole appliance, started the way a person starts it on a fresh host: `scripts/start.sh`.

One appliance for the module (tests/appliance_harness.py): its own data root in a temporary folder, free
ports, services on 127.0.0.1, synced to a bucket of the moto S3 server that already holds one run, which
the first boot must restore. The tests run in order and share it:

1. both services answer, every program is RUNNING, the passwords are generated and private;
2. a default run completes;
3. each supervised program, SIGKILLed in turn, is brought back by supervisord (new pid, RUNNING), and a
   run in flight while the scheduler is killed still finishes: success, or failed with its reason;
4. SIGTERM to the entrypoint (supervisord) stops everything, and no process is left.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import time

import boto3
import psutil
import pytest
from appliance_harness import SERVICES, Appliance, new_appliance
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.slow

BUCKET = "dataperf-appliance-image-test"
PREFIX = "dataperf-appliance/"
RESTORED_RUN = "20250101-000000-restored"
SMALL = ("train_size=60", "val_size=20", "test_size=40", "tasks=digit-3,digit-8", "strategies=random,loss",
         "repeats=1")


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory, moto_server) -> Appliance:
    env = moto_server.env()
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    s3.create_bucket(Bucket=BUCKET)
    # A run an earlier instance published: the first boot of a new one restores it.
    run_key = f"{PREFIX}runs/{RESTORED_RUN}/"
    s3.put_object(Bucket=BUCKET, Key=run_key + "results.json", Body=b'{"tasks": {}}')
    s3.put_object(Bucket=BUCKET, Key=run_key + "manifest.json",
                  Body=json.dumps({"run_id": RESTORED_RUN, "state": "success"}).encode())
    app = new_appliance(tmp_path_factory.mktemp("appliance"),
                        {**env, "APPLIANCE_S3_BUCKET": BUCKET, "APPLIANCE_S3_PREFIX": PREFIX,
                         # Task instances of a killed scheduler are reset for the new one at this interval
                         # (Airflow's default: 300 s; shorter here so that the test waits less for it).
                         "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "20",
                         # A task whose process died with the killed scheduler is failed (and retried) once its
                         # heartbeats stop for this long (the appliance: 90 s), so the test waits less for it.
                         "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                         "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5"})
    app.s3 = s3
    try:
        app.start_seconds = app.start()
        yield app
    finally:
        app.cleanup()


def _wait(condition, what: str, timeout_s: float, interval_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not within {timeout_s}s")


def _port_open(port: str) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", int(port))) == 0


# ---- 1. it starts ---------------------------------------------------------------------------------

def test_start_brings_up_both_services_with_private_passwords(appliance: Appliance):
    env, out = appliance.env, appliance.start_output
    # start.sh prints the two URLs and where the passwords are.
    ui_password_file = appliance.data_dir / "secrets" / "ui-password"
    admin_password_file = appliance.data_dir / "airflow" / "secrets" / "airflow-admin-password.json"
    assert f"http://localhost:{env['APPLIANCE_UI_PORT']}" in out
    assert f"http://localhost:{env['APPLIANCE_AIRFLOW_PORT']}" in out
    assert f"cat {ui_password_file}" in out
    # The Airflow password line prints the password itself (the file is JSON).
    show_admin = out[out.index("password: python3 -c"):]
    show_admin = show_admin[:show_admin.index(f"<{admin_password_file}") + len(f"<{admin_password_file}")]
    show_admin = show_admin.removeprefix("password: ")
    shown = subprocess.run(["bash", "-c", show_admin], capture_output=True, text=True, timeout=30).stdout.strip()
    assert shown == json.loads(admin_password_file.read_text())["admin"] and len(shown) >= 16

    status, health = appliance.get_json("/api/v2/monitor/health")
    assert status == 200 and health["metadatabase"]["status"] == "healthy"
    status, body = appliance.get_json("/_stcore/health", base=appliance.ui_url)
    assert status == 200 and body.get("text", "").strip() == "ok"
    # The app's public port: no upload and no session before the password (the login gate).
    port = int(env["APPLIANCE_UI_PORT"])
    upload = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    upload.request("PUT", "/_stcore/upload_file/any-session/any-file", body=b"\0" * 2**16,
                   headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert upload.getresponse().status == 401
    upload.close()
    with pytest.raises(InvalidStatus, match="403"):
        connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=20)
    # The scheduler and DAG processor report in (heartbeats) shortly after the start.
    # The scheduler, DAG processor and triggerer report in (heartbeats) shortly after the start: no component
    # is painted red on Airflow's home page.
    _wait(lambda: all(appliance.get_json("/api/v2/monitor/health")[1].get(name, {}).get("status") == "healthy"
                      for name in ("scheduler", "dag_processor", "triggerer")), "Airflow components healthy", 90)

    states = appliance.wait_running()
    assert set(SERVICES) <= set(states)
    # The one-shot program unpaused the DAG once the DAG processor had stored it, and exited.
    _wait(lambda: appliance.status().get("unpause-dag", ("",))[0] == "EXITED", "unpause-dag done", 120)
    assert "is unpaused" in (appliance.log_dir / "unpause-dag.log").read_text() or \
        "unpaused it" in (appliance.log_dir / "unpause-dag.log").read_text()

    # Generated passwords, readable by the owner only, never in a log.
    ui_password = ui_password_file.read_text().strip()
    admin_password = json.loads(admin_password_file.read_text())["admin"]
    assert len(ui_password) >= 20 and len(admin_password) >= 20 and ui_password != admin_password
    for path in (ui_password_file, admin_password_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
    for log in appliance.log_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        assert ui_password not in text and admin_password not in text, log
    # supervisord's control socket: the owner only.
    assert stat.S_IMODE((appliance.run_dir / "supervisor.sock").stat().st_mode) == 0o700
    assert stat.S_IMODE(appliance.run_dir.stat().st_mode) == 0o700

    # One rotated log per program in the log folder.
    for name in (*SERVICES, "supervisord"):
        assert (appliance.log_dir / f"{name}.log").exists(), name
    # The run history was restored from the bucket before the services started.
    restored = appliance.data_dir / "runs" / RESTORED_RUN / "manifest.json"
    assert json.loads(restored.read_text())["state"] == "success"


# ---- 2. a default run -----------------------------------------------------------------------------

def test_default_run_completes(appliance: Appliance):
    started = time.monotonic()
    run_id = appliance.gateway("trigger")["run_id"]
    result = appliance.gateway("wait", run_id, "300")
    assert result["state"] == "success", result
    assert result["manifest_state"] == "success"
    run_dir = appliance.data_dir / "runs" / run_id
    assert (run_dir / "results.json").exists() and list((run_dir / "plots").glob("*.png"))
    assert appliance.s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}runs/{run_id}/manifest.json")
    print(f"default run: {time.monotonic() - started:.1f} s from trigger to published")


# ---- 3. programs that die come back ---------------------------------------------------------------

def test_each_killed_program_is_restarted(appliance: Appliance):
    for name in ("streamlit", "dag-processor", "api-server", "postgres"):
        pid = appliance.wait_running()[name][1]
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        states = appliance.wait_running(not_pids={name: pid}, timeout_s=120)
        assert states[name][0] == "RUNNING" and states[name][1] != pid
        appliance.wait_healthy(timeout_s=120)
        print(f"{name}: SIGKILLed, RUNNING again with a new pid and healthy after {time.monotonic() - started:.1f} s")
    assert "exited: postgres (terminated by SIGKILL; not expected)" in \
        (appliance.log_dir / "supervisord.log").read_text()


def test_run_in_flight_survives_a_killed_scheduler(appliance: Appliance):
    run_id = appliance.gateway("trigger", *SMALL)["run_id"]
    airflow_logs = appliance.data_dir / "airflow" / "logs" / "dag_id=dataperf_benchmark" / f"run_id={run_id}"
    # Kill the scheduler while the mapped `evaluate` tasks run (their processes are its LocalExecutor's).
    _wait(lambda: (airflow_logs / "task_id=evaluate").exists(), "evaluate started", 180, 0.2)
    pid = appliance.wait_running()["scheduler"][1]
    os.kill(pid, signal.SIGKILL)
    states = appliance.wait_running(not_pids={"scheduler": pid}, timeout_s=120)
    assert states["scheduler"][1] != pid

    result = appliance.gateway("wait", run_id, "360", timeout_s=420)
    # Finished either way, never hanging: published, or failed with the reason in its manifest.
    assert result["state"] in ("success", "failed"), result
    if result["state"] == "success":
        assert result["manifest_state"] == "success", result
    else:
        assert result["manifest_state"] == "failed" and result["manifest_error"], result
    print(f"run in flight while the scheduler was killed: {result['state']}; tasks {result['tasks']}")
    appliance.wait_healthy(timeout_s=60)
    # A task the killed scheduler left behind can still run after the run has ended (seen once, and SIGTERM
    # then waited for it): the next test stops the appliance, so wait until no task process is left.
    _wait(lambda: not _task_processes(), "no task process left", 180, 1)


def _task_processes() -> list[int]:
    """The pids of Airflow task processes on this machine: Airflow titles each `airflow worker -- <ti id>`."""
    return [proc.info["pid"] for proc in psutil.process_iter(["pid", "cmdline"])
            if " ".join(proc.info["cmdline"] or []).startswith("airflow worker -- ")]


# ---- 4. SIGTERM stops everything ------------------------------------------------------------------

def test_sigterm_to_the_entrypoint_stops_everything(appliance: Appliance):
    appliance.remember_pids()
    supervisord, keeper = appliance.supervisord_pid, appliance.keeper_pid
    assert supervisord and keeper and len(appliance.seen_pids) > len(SERVICES)
    started = time.monotonic()
    os.kill(supervisord, signal.SIGTERM)
    _wait(lambda: not appliance.leftover_pids(), "every process of the appliance ended", 180)
    seconds = time.monotonic() - started
    for port in ("APPLIANCE_AIRFLOW_PORT", "APPLIANCE_UI_PORT", "APPLIANCE_PG_PORT", "APPLIANCE_AIRFLOW_LOG_PORT"):
        assert not _port_open(appliance.env[port]), port
    log = (appliance.log_dir / "supervisord.log").read_text()
    tail = log[log.rindex("received SIGTERM"):]
    for name in SERVICES:
        assert f"stopped: {name}" in tail, (name, tail)
    assert "killed" not in tail.lower() and "SIGKILL" not in tail, tail
    start_log = (appliance.log_dir / "start.log").read_text()
    assert "the appliance has stopped" in start_log
    print(f"SIGTERM to supervisord: everything stopped in {seconds:.1f} s")
