"""The whole appliance for tests and benchmarks, started the way a person starts it: `scripts/start.sh`.

`new_appliance(root)` gives an appliance (not started) with its own data root under `root`, free ports
(PostgreSQL, Airflow's API server and log server, Streamlit) and its own supervisord socket, so that
nothing collides with another engineer's Airflow on the same machine. `start()` runs
`scripts/start.sh --background` (which returns once both services answer), `stop()` runs
`scripts/start.sh --stop`, and whatever is still alive after that is killed by pid.

The test process never imports Airflow for the appliance: it reaches the appliance over HTTP,
through `supervisorctl`, and through the gateway in a subprocess (tests/gateway_client.py) that has the
appliance's settings, so other test modules can still run their own Airflow in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from helpers import REPO_ROOT, free_port, sourced_env

GATEWAY_CLIENT = Path(__file__).resolve().parent / "gateway_client.py"
#: The supervised services on the default settings (the one-shot `unpause-dag` is not one; the triggerer is
#: left off only with APPLIANCE_AIRFLOW_TRIGGERER=false).
SERVICES = ("postgres", "api-server", "dag-processor", "scheduler", "triggerer", "streamlit")


@dataclass
class Appliance:
    root: Path
    env: dict[str, str]
    #: the checkout whose scripts/start.sh starts it
    repo: Path = REPO_ROOT
    scratch_dirs: list[Path] = field(default_factory=list)
    start_output: str = ""
    seen_pids: set[int] = field(default_factory=set)
    sessions: set[int] = field(default_factory=set)

    # ---- where things are ----------------------------------------------------------------------

    # Where start.sh puts them when the environment does not say (the README's defaults).
    @property
    def data_dir(self) -> Path:
        return Path(self.env.get("APPLIANCE_DATA_DIR") or self.repo / "data")

    @property
    def run_dir(self) -> Path:
        return Path(self.env.get("APPLIANCE_RUN_DIR") or self.data_dir / "run")

    @property
    def log_dir(self) -> Path:
        return Path(self.env.get("APPLIANCE_LOG_DIR") or self.data_dir / "logs")

    @property
    def start_script(self) -> Path:
        return self.repo / "scripts" / "start.sh"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.env['APPLIANCE_AIRFLOW_PORT']}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.env['APPLIANCE_UI_PORT']}"

    def pid_file(self, name: str) -> int | None:
        try:
            return int((self.run_dir / name).read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def supervisord_pid(self) -> int | None:
        return self.pid_file("supervisord.pid")

    @property
    def keeper_pid(self) -> int | None:
        """The pid of `scripts/start.sh`, which runs the entrypoint (then supervisord) in its own session."""
        return self.pid_file("start.pid")

    # ---- start and stop ------------------------------------------------------------------------

    def start(self, timeout_s: float = 420) -> float:
        """`scripts/start.sh --background`; the seconds it took until both services answered."""
        started = time.monotonic()
        done = subprocess.run([str(self.start_script), "--background"], env=self.env, capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        self.start_output = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"scripts/start.sh --background failed ({done.returncode}):\n{self.start_output}\n"
                               f"{self.log_tail('supervisord')}")
        # start.sh's keeper and the entrypoint (then supervisord) each lead a session of their own.
        self.sessions = {pid for pid in (self.keeper_pid, self.supervisord_pid) if pid}
        self.remember_pids()
        return seconds

    def stop(self, timeout_s: float = 200) -> None:
        """`scripts/start.sh --stop`, then SIGKILL by pid to anything of this appliance still alive."""
        if self.keeper_pid and _alive(self.keeper_pid):
            subprocess.run([str(self.start_script), "--stop"], env=self.env, capture_output=True, timeout=timeout_s)
        self.remember_pids()
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cleanup(self) -> None:
        self.stop()
        for folder in self.scratch_dirs:
            shutil.rmtree(folder, ignore_errors=True)

    # ---- processes ----------------------------------------------------------------------------

    def session_pids(self) -> set[int]:
        """Every live process in the sessions of start.sh's keeper and of the entrypoint (supervisord)."""
        return {pid for pid, info in _processes().items() if info["session"] in self.sessions and _alive(pid)}

    def tree_pids(self, root: int | None = None) -> list[int]:
        """`root` (default supervisord) and its descendants, parents first."""
        root = root or self.supervisord_pid
        children: dict[int, list[int]] = {}
        for pid, info in _processes().items():
            children.setdefault(info["ppid"], []).append(pid)
        tree, i = [root], 0
        while i < len(tree):
            tree.extend(sorted(children.get(tree[i], [])))
            i += 1
        return [pid for pid in tree if pid]

    def remember_pids(self) -> None:
        """Note every process of the appliance seen now (checked again after the stop)."""
        self.seen_pids |= self.session_pids()
        for pid in (self.keeper_pid, self.supervisord_pid):
            if pid and _alive(pid):
                self.seen_pids.add(pid)

    def leftover_pids(self) -> set[int]:
        """Processes of this appliance still alive: any noted one, or any in its session."""
        return {pid for pid in self.seen_pids if _alive(pid)} | self.session_pids()

    def pss_kb(self) -> dict[int, int]:
        """{pid: Pss in kB} of supervisord and all its descendants (from /proc/<pid>/smaps_rollup)."""
        out = {}
        for pid in self.tree_pids():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        out[pid] = int(line.split()[1])
                        break
            except OSError:
                continue
        return out

    # ---- supervisorctl ------------------------------------------------------------------------

    def supervisorctl(self, *args: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
        """supervisorctl with the control socket and credentials the entrypoint wrote for this start."""
        venv = Path(self.env.get("APPLIANCE_VENV") or REPO_ROOT / ".venv")
        return subprocess.run([str(venv / "bin" / "supervisorctl"), "-c", str(self.run_dir / "supervisorctl.conf"),
                               *args], env=self.env, capture_output=True, text=True, timeout=timeout_s)

    def status(self) -> dict[str, tuple[str, int | None]]:
        """{program: (state, pid)} from `supervisorctl status`."""
        out = {}
        for line in self.supervisorctl("status").stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                pid = int(parts[3].rstrip(",")) if len(parts) > 3 and parts[2] == "pid" else None
                out[parts[0]] = (parts[1], pid)
        return out

    def wait_running(self, names=SERVICES, timeout_s: float = 120, not_pids: dict[str, int] | None = None) -> dict:
        """Wait until every program in `names` is RUNNING (with a pid other than `not_pids[name]`)."""
        deadline = time.monotonic() + timeout_s
        status: dict = {}
        while time.monotonic() < deadline:
            status = self.status()
            if all(status.get(name, ("", None))[0] == "RUNNING"
                   and status[name][1] != (not_pids or {}).get(name) for name in names):
                self.remember_pids()
                return status
            time.sleep(0.5)
        raise TimeoutError(f"not all of {names} RUNNING within {timeout_s}s: {status}\n{self.log_tail('supervisord')}")

    # ---- HTTP and the gateway -----------------------------------------------------------------

    def healthy(self) -> bool:
        """Both services answer (the image's HEALTHCHECK)."""
        return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "runtime" / "healthcheck.py")], env=self.env,
                              capture_output=True, timeout=30).returncode == 0

    def wait_healthy(self, timeout_s: float = 180) -> None:
        done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "runtime" / "healthcheck.py"), "--wait",
                               str(timeout_s)], env=self.env, capture_output=True, text=True, timeout=timeout_s + 30)
        if done.returncode != 0:
            raise TimeoutError(f"appliance not healthy within {timeout_s}s: {done.stderr}")

    def get_json(self, path: str, base: str | None = None) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"{base or self.airflow_url}{path}", timeout=5) as response:
                body = response.read()
                try:
                    return response.status, json.loads(body)
                except ValueError:
                    return response.status, {"text": body.decode(errors="replace")}
        except urllib.error.HTTPError as error:
            return error.code, {}

    def client_env(self) -> dict[str, str]:
        """The appliance's settings, as its programs see them, for a process started from the tests."""
        return sourced_env({**self.env, "APPLIANCE_DATA_DIR": str(self.data_dir)})

    def gateway(self, *args: str, timeout_s: float = 400) -> dict:
        """Run tests/gateway_client.py with the appliance's settings; its JSON answer."""
        done = subprocess.run([str(Path(self.env.get("APPLIANCE_VENV") or REPO_ROOT / ".venv") / "bin" / "python"),
                               str(GATEWAY_CLIENT), *args], env=self.client_env(), capture_output=True,
                              text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"gateway_client {args} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def gateway_in_background(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(Path(self.env.get("APPLIANCE_VENV") or REPO_ROOT / ".venv") / "bin" / "python"),
                                 str(GATEWAY_CLIENT), *args], env=self.client_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def log_tail(self, program: str, lines: int = 40) -> str:
        path = self.log_dir / f"{program}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def new_appliance(root: Path, extra_env: dict[str, str] | None = None) -> Appliance:
    """An appliance (not started) under `root`: own data root, free ports, services on 127.0.0.1 only.

    As root, PostgreSQL runs as the `postgres` OS user, which cannot enter pytest's 0700 temporary
    folders: its cluster is then made in a folder of its own under /tmp (removed by `cleanup`).
    """
    root.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW__", "APPLIANCE_")) and key not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG")}
    pg_parent = Path(tempfile.mkdtemp(prefix="dataperf-pg-"))
    pg_parent.chmod(0o711)
    data = root / "data"
    env.update({
        "APPLIANCE_DATA_DIR": str(data),
        "APPLIANCE_LOG_DIR": str(data / "logs"),
        "APPLIANCE_RUN_DIR": str(data / "run"),
        "APPLIANCE_PGDATA": str(pg_parent / "data"),
        "APPLIANCE_PG_PORT": str(free_port()),
        "APPLIANCE_AIRFLOW_PORT": str(free_port()),
        "APPLIANCE_AIRFLOW_HOST": "127.0.0.1",
        "APPLIANCE_AIRFLOW_LOG_PORT": str(free_port()),
        "APPLIANCE_UI_PORT": str(free_port()),
        "APPLIANCE_UI_HOST": "127.0.0.1",
    })
    if os.environ.get("APPLIANCE_VENV"):
        env["APPLIANCE_VENV"] = os.environ["APPLIANCE_VENV"]
    env.update(extra_env or {})
    return Appliance(root=root, env=env, scratch_dirs=[pg_parent])


def _processes() -> dict[int, dict[str, int]]:
    """{pid: {"ppid", "session"}} of every process, from /proc/<pid>/stat."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        out[int(entry.name)] = {"ppid": int(fields[1]), "session": int(fields[3])}
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
