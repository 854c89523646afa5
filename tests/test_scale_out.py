"""Scale-out on Airflow's CeleryExecutor, on one machine, through the real parts.

The appliance is started by `scripts/start.sh` with APPLIANCE_EXECUTOR=celery and no worker of its own
(APPLIANCE_LOCAL_WORKER=false): its PostgreSQL, its Redis (Debian's redis-server under supervisord) and
Airflow, on free ports. Two workers are started the way another machine starts one, by
`scripts/entrypoint.sh worker` with the settings `scripts/airflow-env.sh worker-env HOST` prints on the
main machine; each has its own name, Airflow home, log folder and log server port, and they share only
the data root. Each runs one task process at a time, so that two workers run twice the tasks of one.

Three runs of a 3-task benchmark (THREE_TASKS, which tests/test_orchestration.py runs on the
LocalExecutor; that run is reused when that module ran first):
  1. on both workers: results.json is the LocalExecutor's, timings aside, and the mapped `evaluate`
     instances ran on both workers (Airflow's task instance records, read from its database);
  2. one worker is SIGKILLed (its whole process group, as if its machine died) while it runs an
     `evaluate`: Airflow fails that try once its heartbeats stop, retries it on the other worker, and the
     run succeeds with the same results;
  3. on the one worker left: the evaluation's wall time against run 1's is printed (a figure, not a
     check: the machine's two cores are shared with whatever else runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from airflow_harness import AirflowStack, airflow_stack  # noqa: F401 - fixture
from appliance_harness import Appliance, _processes, new_appliance
from helpers import REPO_ROOT, free_port
from test_orchestration import SMALL, THREE_TASKS, small_setup, wait_for_run, without_timings

from dataperf_appliance import airflow_gateway as gateway
from dataperf_appliance import pipeline
from dataperf_appliance.settings import load_settings

pytestmark = pytest.mark.slow

WORKERS = ("worker-a", "worker-b")
#: Seconds without a heartbeat before the scheduler fails a task whose worker died (the appliance: 90).
HEARTBEAT_TIMEOUT_S = 15


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def ready(self) -> bool:
        return f"celery@{self.name} ready" in self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to every process of the worker (its session): the celery worker and its task processes."""
        pids = [pid for pid, info in _processes().items() if info["session"] == self.process.pid]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)


@dataclass
class Cluster:
    appliance: Appliance
    workers: dict[str, Worker]

    @property
    def runs_dir(self) -> Path:
        return self.appliance.data_dir / "runs"

    def records(self, run_id: str) -> list[dict]:
        """Every try of every task instance of the run (current and history), from Airflow's database."""
        url = self.appliance.client_env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", "", 1)
        columns = "task_id, map_index, try_number, state, hostname, start_date, end_date"
        with psycopg.connect(url) as connection:
            rows = connection.execute(
                f"SELECT {columns} FROM task_instance WHERE dag_id = %(dag)s AND run_id = %(run)s UNION ALL "
                f"SELECT {columns} FROM task_instance_history WHERE dag_id = %(dag)s AND run_id = %(run)s",
                {"dag": gateway.DAG_ID, "run": run_id}).fetchall()
        names = [name.strip() for name in columns.split(",")]
        return [dict(zip(names, row)) for row in rows]

    def run(self, timeout_s: float = 400) -> str:
        """Trigger the THREE_TASKS benchmark; its run id."""
        return self.appliance.gateway("trigger", *SMALL, *THREE_TASKS, timeout_s=timeout_s)["run_id"]

    def wait(self, run_id: str, timeout_s: float = 400) -> dict:
        return self.appliance.gateway("wait", run_id, str(timeout_s), timeout_s=timeout_s + 60)


def evaluate_tries(records: list[dict], state: str | None = "success") -> list[dict]:
    return [r for r in records if r["task_id"] == "evaluate" and (state is None or r["state"] == state)]


def evaluation_seconds(records: list[dict]) -> float:
    """From the first successful `evaluate` try's start to the last one's end."""
    tries = evaluate_tries(records)
    return (max(r["end_date"] for r in tries) - min(r["start_date"] for r in tries)).total_seconds()


def overlapping(tries: list[dict]) -> bool:
    spans = sorted((r["start_date"], r["end_date"]) for r in tries)
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


def results_text(runs_dir: Path, run_id: str) -> str:
    return (runs_dir / run_id / "results.json").read_text()


def start_worker(appliance: Appliance, worker_env: dict[str, str], name: str, root: Path) -> Worker:
    folder = root / name
    folder.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW__", "APPLIANCE_")) and key not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG")}
    env.update(worker_env)
    env.update({
        "APPLIANCE_DATA_DIR": str(appliance.data_dir),  # the one thing shared with the main machine
        "APPLIANCE_WORKER_NAME": name,
        "AIRFLOW_HOME": str(folder / "airflow-home"),
        "APPLIANCE_LOG_DIR": str(folder / "logs"),
        "APPLIANCE_RUN_DIR": str(folder / "run"),
        "APPLIANCE_AIRFLOW_LOG_PORT": str(free_port()),
        "APPLIANCE_WORKER_CONCURRENCY": "1",
    })
    if appliance.env.get("APPLIANCE_VENV"):
        env["APPLIANCE_VENV"] = appliance.env["APPLIANCE_VENV"]
    log = folder / "worker.log"
    with log.open("ab") as out:
        process = subprocess.Popen([str(REPO_ROOT / "scripts" / "entrypoint.sh"), "worker"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Worker(name, process, log)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("scale-out")
    appliance = new_appliance(root / "main", {
        "APPLIANCE_EXECUTOR": "celery",
        "APPLIANCE_LOCAL_WORKER": "false",
        "APPLIANCE_REDIS_PORT": str(free_port()),
        "APPLIANCE_AIRFLOW_PARALLELISM": "4",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # Should the killed worker have held a queued task's message, it is queued again after this long.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
    })
    workers: dict[str, Worker] = {}
    try:
        started = time.monotonic()
        appliance.start()
        status = appliance.status()
        assert status["redis"][0] == "RUNNING" and status["worker"][0] == "STOPPED", status
        printed = subprocess.run([str(REPO_ROOT / "scripts" / "airflow-env.sh"), "worker-env", "127.0.0.1"],
                                 env={**appliance.env, "APPLIANCE_DATA_DIR": str(appliance.data_dir)},
                                 capture_output=True, text=True, check=True, timeout=60).stdout
        worker_env = dict(line.split("=", 1) for line in printed.splitlines())
        assert set(worker_env) == {"APPLIANCE_EXECUTOR", "APPLIANCE_BROKER_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                                   "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__API_AUTH__JWT_SECRET"}
        for name in WORKERS:
            workers[name] = start_worker(appliance, worker_env, name, root / "workers")
        deadline = time.monotonic() + 180
        while not all(worker.ready() for worker in workers.values()):
            for worker in workers.values():
                assert worker.process.poll() is None, worker.log.read_text()[-3000:]
            assert time.monotonic() < deadline, {name: w.log.read_text()[-2000:] for name, w in workers.items()}
            time.sleep(0.5)
        print(f"\nscale-out: appliance and two workers up in {time.monotonic() - started:.0f} s")
        yield Cluster(appliance, workers)
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                worker.kill()
        appliance.cleanup()


@pytest.fixture(scope="module")
def two_worker_run(cluster: Cluster) -> dict:
    run_id = cluster.run()
    result = cluster.wait(run_id)
    return {"run_id": run_id, "result": result, "records": cluster.records(run_id)}


@pytest.fixture(scope="module")
def killed_worker_run(cluster: Cluster, two_worker_run: dict) -> dict:
    """A run during which worker-a is SIGKILLed while it runs an `evaluate` (and stays dead)."""
    victim = cluster.workers["worker-a"]
    run_id = cluster.run()
    deadline = time.monotonic() + 300
    while True:
        running = [r for r in evaluate_tries(cluster.records(run_id), state="running") if r["hostname"] == victim.name]
        if running:
            break
        assert time.monotonic() < deadline, cluster.records(run_id)
        time.sleep(0.2)
    victim.kill()  # at once: the task has its imports and a few seconds of work ahead
    killed_at = time.monotonic()
    result = cluster.wait(run_id, timeout_s=400)
    return {"run_id": run_id, "result": result, "records": cluster.records(run_id), "cut": running[0],
            "seconds_after_kill": time.monotonic() - killed_at}


@pytest.fixture(scope="module")
def one_worker_run(cluster: Cluster, killed_worker_run: dict) -> dict:
    assert cluster.workers["worker-a"].process.poll() is not None
    run_id = cluster.run()
    result = cluster.wait(run_id)
    return {"run_id": run_id, "result": result, "records": cluster.records(run_id)}


def local_executor_results(stack: AirflowStack) -> str:
    """results.json of THREE_TASKS on the LocalExecutor: tests/test_orchestration.py's run when that module ran
    first in this session, else a run of it now."""
    text = small_setup(*THREE_TASKS)
    runs = load_settings().runs_dir
    for candidate in sorted(runs.glob("*/task_setup.yml")):
        manifest = candidate.parent / "manifest.json"
        if candidate.read_text() == text and json.loads(manifest.read_text())["state"] == "success":
            return (candidate.parent / "results.json").read_text()
    run_id = pipeline.create_run(text)
    gateway.trigger_run(run_id)
    assert wait_for_run(stack, run_id, timeout_s=400).state == "success"
    return results_text(runs, run_id)


def test_two_workers_give_the_local_executors_results(cluster, two_worker_run, airflow_stack):
    assert two_worker_run["result"]["state"] == "success", two_worker_run["result"]
    celery = results_text(cluster.runs_dir, two_worker_run["run_id"])
    local = local_executor_results(airflow_stack)
    # Byte for byte, once the wall-clock fields are taken out: same keys in the same order, same figures.
    assert json.dumps(without_timings(json.loads(celery)), indent=1) == \
        json.dumps(without_timings(json.loads(local)), indent=1)
    assert celery != local  # the timings are there, and differ


def test_mapped_evaluate_ran_on_both_workers(two_worker_run):
    tries = evaluate_tries(two_worker_run["records"], state=None)
    assert sorted(r["map_index"] for r in tries) == [0, 1, 2] and all(r["state"] == "success" for r in tries)
    assert {r["hostname"] for r in tries} == set(WORKERS)
    # The other tasks ran on the workers too: nothing ran on the main machine.
    assert {r["hostname"] for r in two_worker_run["records"]} <= set(WORKERS)


def test_killed_worker_task_is_retried_on_the_other(cluster, two_worker_run, killed_worker_run):
    result, records, cut = killed_worker_run["result"], killed_worker_run["records"], killed_worker_run["cut"]
    assert result["state"] == "success" and result["manifest_state"] == "success", result
    tries = sorted((r for r in evaluate_tries(records, state=None) if r["map_index"] == cut["map_index"]),
                   key=lambda r: r["try_number"])
    assert [(r["try_number"], r["hostname"]) for r in tries] == [(1, "worker-a"), (2, "worker-b")], tries
    assert tries[0]["state"] == "failed" and tries[1]["state"] == "success"
    # Every task after the kill ran on the worker left.
    after = [r for r in records if r["start_date"] and r["start_date"] > tries[0]["start_date"]]
    assert after and {r["hostname"] for r in after} == {"worker-b"}
    assert without_timings(json.loads(results_text(cluster.runs_dir, killed_worker_run["run_id"]))) == \
        without_timings(json.loads(results_text(cluster.runs_dir, two_worker_run["run_id"])))
    print(f"\nscale-out: the cut task was retried and the run finished {killed_worker_run['seconds_after_kill']:.0f} s "
          f"after the SIGKILL (heartbeat timeout {HEARTBEAT_TIMEOUT_S} s)")


def test_wall_time_two_workers_vs_one(cluster, two_worker_run, one_worker_run):
    assert one_worker_run["result"]["state"] == "success", one_worker_run["result"]
    assert {r["hostname"] for r in evaluate_tries(one_worker_run["records"])} == {"worker-b"}
    # Two workers ran evaluate instances at the same time; one worker ran them one after the other.
    assert overlapping(evaluate_tries(two_worker_run["records"]))
    assert not overlapping(evaluate_tries(one_worker_run["records"]))
    two, one = evaluation_seconds(two_worker_run["records"]), evaluation_seconds(one_worker_run["records"])
    print(f"\nscale-out: evaluation of 3 benchmark tasks (one task process per worker): two workers {two:.1f} s, "
          f"one worker {one:.1f} s; one/two = {one / two:.2f}")
