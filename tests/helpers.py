"""Helpers of the tests that need no pytest, so that scripts/bench/bench_*.py run with the runtime install alone."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Airflow's settings (only sourced) and its commands (init, exec, print, worker-env).
AIRFLOW_ENV_SCRIPT = REPO_ROOT / "scripts" / "runtime" / "airflow-env.sh"
AIRFLOW_CLI_SCRIPT = REPO_ROOT / "scripts" / "runtime" / "airflow-cli.sh"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout_s: float = 60.0) -> None:
    """Poll `url` until it answers at all (any HTTP status), or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError as error:
            last_error = error
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s: {last_error}")


def sourced_env(base: dict[str, str]) -> dict[str, str]:
    """The environment after `source scripts/runtime/airflow-env.sh` in a shell started with `base`."""
    out = subprocess.run(["bash", "-c", f'source "{AIRFLOW_ENV_SCRIPT}" >/dev/null && env -0'], env=base,
                         capture_output=True, check=True, timeout=60)
    pairs = (item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    return {key: value for key, value in pairs if not key.startswith("BASH_FUNC_")}
