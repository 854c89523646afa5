"""The image, built from the Dockerfile and run with podman (no Docker engine runs here), the way the README
and the deployment run it: a data volume, the published ports, `--stop-timeout 120`.

No registry is reachable: the Dockerfile's base is a local stand-in bootstrapped from the Debian mirror
(scripts/dev/local-base-image.sh), kept in podman's storage between runs. The tests run in order and share one
container:

1. the image builds, is at most 2 GB, and holds no compiler and no pip or uv cache;
2. the container becomes healthy by its own HEALTHCHECK, and both services answer on the published ports;
3. a benchmark runs inside, through the local client (tests/gateway_client.py, fed to the image's Python);
4. stopped and started again, the container finds the run (in Airflow and on the volume);
5. it stops within the stop timeout, with supervisord's clean exit.

Build and run must take under 10 minutes in CI: the module prints each step's seconds.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import REPO_ROOT, free_port
from dataperf_appliance.orchestration.airflow_gateway import DAG_ID

# `image`: scripts/test.sh -m image runs this module alone.
pytestmark = [pytest.mark.slow, pytest.mark.image]

IMAGE = "localhost/dataperf-appliance:test"
MAX_IMAGE_BYTES = 2 * 10**9
STOP_TIMEOUT_S = 120  # as the README and terraform/user_data.sh.tftpl run the container
HEALTHY_WITHIN_S = 300  # the HEALTHCHECK's start period
BUDGET_S = 600  # build and run, in CI
GATEWAY_CLIENT = Path(__file__).resolve().parent / "gateway_client.py"
SMALL = ("train_size=60", "val_size=20", "test_size=40", "tasks=digit-3", "strategies=random,loss")
#: Airflow's settings, then the image's Python: what the supervised programs run with.
IMAGE_PYTHON = ("/opt/appliance/src/scripts/runtime/airflow-cli.sh", "exec", "python")


def _containers_conf(folder: Path) -> Path:
    """podman's settings for these tests: the runc runtime, and the limits this process has.

    As root, podman raises every container's open files to 1,048,576 and processes to 4,194,304; a
    sandbox that forbids raising a limit (CI's) then refuses to start any container. The containers get
    this process's own limits instead (processes: no more than there are pids).
    """
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    nofile = 1_048_576 if nofile == resource.RLIM_INFINITY else nofile
    path = folder / "containers.conf"
    path.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n\n'
                    '[engine]\nruntime = "runc"\n')
    return path


class Podman:
    def __init__(self, conf: Path):
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(self, *args: str, timeout_s: float = 120, check: bool = True, stdin=None,
                 ) -> subprocess.CompletedProcess:
        done = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout_s,
                              stdin=stdin if stdin is not None else subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def inspect(self, name: str, template: str) -> str:
        return self("inspect", "--format", template, name).stdout.strip()


class Container:
    """The container under test: its name, volume, published ports, and the seconds each step took."""

    def __init__(self, podman: Podman):
        self.podman = podman
        suffix = uuid.uuid4().hex[:8]
        self.name, self.volume = f"dataperf-test-{suffix}", f"dataperf-test-data-{suffix}"
        self.ui_port, self.airflow_port = free_port(), free_port()
        self.seconds: dict[str, float] = {}
        self.run_id: str | None = None

    def timed(self, step: str, started: float) -> float:
        self.seconds[step] = time.monotonic() - started
        print(f"image test: {step} took {self.seconds[step]:.1f} s")
        return self.seconds[step]

    def run(self) -> None:
        self.podman("volume", "create", self.volume)
        self.podman("run", "--detach", "--name", self.name, "--stop-timeout", str(STOP_TIMEOUT_S),
                    "--publish", f"127.0.0.1:{self.ui_port}:8501",
                    "--publish", f"127.0.0.1:{self.airflow_port}:8080",
                    "--volume", f"{self.volume}:/data", IMAGE)

    def wait_healthy(self, step: str) -> None:
        """Run the image's HEALTHCHECK until it passes (podman schedules it through systemd, absent here)."""
        started = time.monotonic()
        while True:
            if self.podman("healthcheck", "run", self.name, check=False, timeout_s=60).returncode == 0:
                break
            running = self.podman.inspect(self.name, "{{.State.Running}}")
            if running != "true" or time.monotonic() - started > HEALTHY_WITHIN_S:
                pytest.fail(f"{self.name} not healthy within {HEALTHY_WITHIN_S} s (running: {running}):\n"
                            f"{self.logs()}")
            time.sleep(3)
        self.timed(step, started)
        assert self.podman.inspect(self.name, "{{.State.Health.Status}}") == "healthy"

    def client(self, *args: str, timeout_s: float = 600) -> dict:
        """tests/gateway_client.py run by the image's Python, with the appliance's settings; its JSON."""
        with GATEWAY_CLIENT.open() as script:
            done = self.podman("exec", "-i", self.name, *IMAGE_PYTHON, "-", *args, stdin=script, timeout_s=timeout_s)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def stop(self, step: str) -> None:
        started = time.monotonic()
        self.podman("stop", self.name, timeout_s=STOP_TIMEOUT_S + 60)
        seconds = self.timed(step, started)
        assert seconds < STOP_TIMEOUT_S, f"stop took {seconds:.0f} s, over the stop timeout {STOP_TIMEOUT_S} s"
        # supervisord stopped every program and exited 0: not killed when the timeout ran out (137).
        assert self.podman.inspect(self.name, "{{.State.ExitCode}}") == "0", self.logs()

    def task_logs(self, run_id: str) -> str:
        """The last lines of each task's Airflow log of a run (what a failure is explained by)."""
        folder = f"/data/airflow/logs/dag_id={DAG_ID}/run_id={run_id}"
        done = self.podman("exec", self.name, "sh", "-c", f"tail -n 15 {folder}/task_id=*/attempt=*.log",
                           check=False)
        return done.stdout + done.stderr

    def logs(self) -> str:
        done = self.podman("logs", "--tail", "60", self.name, check=False)
        return done.stdout + done.stderr

    def remove(self) -> None:
        self.podman("rm", "--force", "--time", "5", self.name, check=False)
        self.podman("volume", "rm", "--force", self.volume, check=False)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    return Podman(_containers_conf(tmp_path_factory.mktemp("podman")))


@pytest.fixture(scope="module")
def container(podman: Podman) -> Container:
    container = Container(podman)
    started = time.monotonic()
    done = subprocess.run([str(REPO_ROOT / "scripts" / "dev" / "local-base-image.sh")], env=podman.env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout.strip())
    container.timed("the base image (cached when present)", started)

    started = time.monotonic()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    build = ["build", "--format", "docker", "--pull=never", "--build-arg", f"GIT_COMMIT={commit}", "--tag", IMAGE]
    # pip in the build trusts what pip here trusts (a proxy's CA), given as a build secret.
    if os.environ.get("PIP_CERT"):
        build += ["--secret", f"id=pip-ca,src={os.environ['PIP_CERT']}"]
    podman(*build, str(REPO_ROOT), timeout_s=900)
    container.timed("podman build", started)
    try:
        yield container
    finally:
        container.remove()
        print("image test: " + ", ".join(f"{step} {seconds:.0f} s" for step, seconds in container.seconds.items())
              + f"; total {sum(container.seconds.values()):.0f} s (budget {BUDGET_S} s)")


def test_image_is_small_and_has_no_build_leftovers(container: Container):
    size = int(container.podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print(f"image test: image size {size / 1e9:.2f} GB")
    assert size <= MAX_IMAGE_BYTES, f"the image is {size / 1e9:.2f} GB, over {MAX_IMAGE_BYTES / 1e9:.0f} GB"
    leftovers = container.podman(
        "run", "--rm", "--user", "0", "--entrypoint", "sh", IMAGE, "-c",
        "for tool in cc gcc g++ make; do command -v $tool; done;"
        " find / -xdev -type d \\( -path '*/.cache/pip' -o -path '*/.cache/uv' \\) 2>/dev/null; true").stdout
    assert leftovers.strip() == "", f"compilers or pip/uv caches in the image: {leftovers}"


def test_container_becomes_healthy(container: Container):
    started = time.monotonic()
    container.run()
    container.wait_healthy("from podman run to healthy")
    assert time.monotonic() - started < HEALTHY_WITHIN_S
    # Both services answer on the published ports, from the host.
    with urllib.request.urlopen(f"http://127.0.0.1:{container.ui_port}/_stcore/health", timeout=10) as response:
        assert response.read().decode().strip() == "ok"
    with urllib.request.urlopen(f"http://127.0.0.1:{container.airflow_port}/api/v2/monitor/health",
                                timeout=10) as response:
        assert response.status == 200
    # Everything runs as the image's user, and the volume is that user's.
    owners = container.podman("exec", container.name, "stat", "-c", "%u", "/data", "/data/airflow").stdout.split()
    assert owners == ["10001", "10001"]


def test_benchmark_runs_inside(container: Container):
    started = time.monotonic()
    run_id = container.client("trigger", *SMALL)["run_id"]
    result = container.client("wait", run_id, "420")
    container.timed("a benchmark through the local client", started)
    assert result["state"] == "success" and result["manifest_state"] == "success", \
        f"{result}\n{container.task_logs(run_id)}"
    container.run_id = run_id
    container.podman("exec", container.name, "test", "-s", f"/data/runs/{run_id}/results.json")


def test_restarted_container_finds_the_run(container: Container):
    assert container.run_id, "no run to look for: the benchmark inside failed"
    container.stop("podman stop (restart)")
    started = time.monotonic()
    container.podman("start", container.name)
    container.timed("podman start", started)
    container.wait_healthy("from podman start to healthy")
    result = container.client("state", container.run_id)
    assert result["state"] == "success" and result["manifest_state"] == "success", result


def test_container_stops_within_the_stop_timeout(container: Container):
    container.stop("podman stop")
    assert container.podman.inspect(container.name, "{{.State.Running}}") == "false"
