"""Airflow for tests, started the way the image starts it.

The settings come from sourcing scripts/runtime/airflow-env.sh (the same file the
image's supervisord programs use), the first-start steps from
`scripts/runtime/airflow-cli.sh init`, and the programs are the image's:

    scripts/runtime/start-postgres.sh run
    scripts/runtime/airflow-cli.sh exec airflow api-server
    scripts/runtime/airflow-cli.sh exec airflow scheduler
    scripts/runtime/airflow-cli.sh exec airflow dag-processor

each its own process group, stopped (SIGTERM, then SIGKILL) by `stop()`.
Ports are free ones, folders are temporary, nothing is shared with another
engineer's Airflow on the same machine.

The test process itself uses the gateway (Airflow's local client) after
`activate()`, which puts the same settings into os.environ: Airflow reads its
settings when first imported, so nothing in the test process may import
Airflow before that.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import AIRFLOW_CLI_SCRIPT as CLI_SCRIPT
from helpers import REPO_ROOT, free_port, sourced_env, wait_for_http

PG_SCRIPT = REPO_ROOT / "scripts" / "runtime" / "start-postgres.sh"
COMPONENTS = ("api-server", "scheduler", "dag-processor")


@dataclass
class AirflowStack:
    """A running Airflow (and its PostgreSQL) under `root`."""

    root: Path
    base_env: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    scratch_dirs: list[Path] = field(default_factory=list)
    _saved_environ: dict[str, str | None] | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.env["APPLIANCE_DATA_DIR"])

    @property
    def airflow_home(self) -> Path:
        return Path(self.env["AIRFLOW_HOME"])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['APPLIANCE_AIRFLOW_PORT']}"

    @property
    def logs_dir(self) -> Path:
        return self.root / "process-logs"

    # ---- start and stop ----------------------------------------------------------------------

    def start(self, components: Iterable[str] = COMPONENTS, timeout_s: float = 240) -> "AirflowStack":
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        init = subprocess.run([str(CLI_SCRIPT), "init"], env=self.base_env, capture_output=True, text=True,
                              timeout=timeout_s)
        if init.returncode != 0:
            raise RuntimeError(f"airflow-cli.sh init failed:\n{init.stdout}\n{init.stderr}")
        self.env = sourced_env(self.base_env)
        if self.env["APPLIANCE_AIRFLOW_DB"] == "postgres":
            self._spawn("postgres", [str(PG_SCRIPT), "run"])
            self._wait(lambda: subprocess.run([str(PG_SCRIPT), "status"], env=self.base_env).returncode == 0,
                       "PostgreSQL", 60)
        for name in components:
            self._spawn(name, [str(CLI_SCRIPT), "exec", "airflow", name])
        if "api-server" in components:
            wait_for_http(f"{self.api_url}/api/v2/monitor/health", timeout_s=timeout_s)
            # The execution API is built on its first request (~6 s): do it now, not in the first task.
            wait_for_http(f"{self.api_url}/execution/health", timeout_s=timeout_s)
        return self

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.logs_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(command, env=self.base_env, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _wait(self, ready, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.logs_dir / name}.log")
            time.sleep(0.3)
        raise TimeoutError(f"{what} not ready within {timeout_s}s; logs in {self.logs_dir}")

    def stop(self) -> None:
        """Stop every process this stack started: Airflow first, PostgreSQL last."""
        for name in [n for n in self.processes if n != "postgres"] + ["postgres"]:
            process = self.processes.pop(name, None)
            if process is None:
                continue
            _stop_group(process, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        self.deactivate()
        for folder in self.scratch_dirs:
            shutil.rmtree(folder, ignore_errors=True)

    # ---- the test process -----------------------------------------------------------------------

    def activate(self) -> None:
        """Put the stack's settings into os.environ (before Airflow is first imported here)."""
        if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != self.env["AIRFLOW_HOME"]:
            raise RuntimeError("Airflow was imported in the test process before the test stack's settings were "
                               "set: it would use other settings. Import it only through the gateway.")
        self._saved_environ = {key: os.environ.get(key) for key in self.env}
        for key in [k for k in os.environ if k.startswith("AIRFLOW__") and k not in self.env]:
            self._saved_environ[key] = os.environ.pop(key)
        os.environ.update(self.env)

    def deactivate(self) -> None:
        if self._saved_environ is None:
            return
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ = None

    def wait_for_dag(self, dag_id: str, timeout_s: float = 120) -> None:
        """Wait until the DAG processor has stored `dag_id` (unpaused) in the metadata database."""
        from sqlalchemy import select

        from airflow.models import DagModel
        from airflow.utils.session import create_session

        def ready() -> bool:
            with create_session() as session:
                model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
                return model is not None and not model.is_paused and not model.has_import_errors

        self._wait(ready, f"DAG {dag_id}", timeout_s)

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
        """The text of one task instance's log file."""
        folder = self.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        path = folder / f"attempt={try_number}.log"
        return path.read_text() if path.exists() else ""

    def process_log(self, name: str) -> str:
        path = self.logs_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _stop_group(process: subprocess.Popen, first_signal: int, timeout_s: float = 30) -> None:
    try:
        os.killpg(process.pid, first_signal)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    # Whatever is left of the group (task processes, workers): killed.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def new_stack(root: Path, extra_env: dict[str, str] | None = None, *, db: str | None = None) -> AirflowStack:
    """A stack (not started) under `root`, with free ports and its own data root and AIRFLOW_HOME.

    PostgreSQL's folder is made outside `root` when running as root, since
    the server runs as the `postgres` OS user and must reach it.
    """
    root.mkdir(parents=True, exist_ok=True)
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW__", "APPLIANCE_")) and key not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG")}
    pg_parent = Path(tempfile.mkdtemp(prefix="dataperf-pg-"))
    pg_parent.chmod(0o711)
    log_port = free_port()
    base.update({
        "APPLIANCE_DATA_DIR": str(root / "data"),
        "AIRFLOW_HOME": str(root / "airflow-home"),
        "APPLIANCE_AIRFLOW_DB": db or os.environ.get("APPLIANCE_TEST_AIRFLOW_DB", "postgres"),
        "APPLIANCE_PGDATA": str(pg_parent / "data"),
        "APPLIANCE_PG_PORT": str(free_port()),
        "APPLIANCE_AIRFLOW_PORT": str(free_port()),
        "APPLIANCE_AIRFLOW_HOST": "127.0.0.1",
        "APPLIANCE_AIRFLOW_LOG_PORT": str(log_port),
    })
    if os.environ.get("APPLIANCE_VENV"):
        base["APPLIANCE_VENV"] = os.environ["APPLIANCE_VENV"]
    base.update(extra_env or {})
    return AirflowStack(root=root, base_env=base, scratch_dirs=[pg_parent])


def api_ready(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


# ---- the pytest fixture ---------------------------------------------------------------------------

TEST_BUCKET = "dataperf-orchestration-test"
TEST_PREFIX = "dataperf-appliance/"


#: The stack of the session, once a module has started it. Each test module that imports the fixture
#: gets a fixture of its own (pytest keys session fixtures by where they are defined): without this, every
#: such module would start (and keep until the session ends) an Airflow of its own.
_session_stack: AirflowStack | None = None


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory, moto_server) -> Iterator[AirflowStack]:
    """Airflow (api-server, scheduler, dag-processor) + PostgreSQL, synced to a bucket of the moto server.

    The test process's environment holds the stack's settings while it runs
    (the gateway and `pipeline` use them); every process is stopped at the end.
    One stack serves every module of the session.
    """
    global _session_stack
    if _session_stack is not None:
        yield _session_stack
        return
    import boto3

    env = moto_server.env()
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                 aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=TEST_BUCKET)
    stack = new_stack(tmp_path_factory.mktemp("airflow-stack"),
                      {**env, "APPLIANCE_S3_BUCKET": TEST_BUCKET, "APPLIANCE_S3_PREFIX": TEST_PREFIX})
    try:
        stack.start()
        stack.activate()
        stack.wait_for_dag("dataperf_benchmark")
        _session_stack = stack
        yield stack
    finally:
        _session_stack = None
        stack.stop()
