"""The appliance's executor (dataperf_appliance/orchestration/airflow_executor.py): Airflow's LocalExecutor with real
worker processes, whose idle workers end after APPLIANCE_EXECUTOR_IDLE_S seconds and stay while work runs.
Running tasks through it, and workers started again for the next run, is what every test through the
real Airflow does (tests/test_orchestration.py, tests/test_appliance.py)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from multiprocessing import forkserver

import pytest

IDLE_S = 0.5


def _executor(start_method: str):
    """The executor with two idle workers, started with `start_method` (each one Airflow may use here)."""
    multiprocessing.set_start_method(start_method, force=True)
    from dataperf_appliance.orchestration.airflow_executor import IdleEndingLocalExecutor

    executor = IdleEndingLocalExecutor(parallelism=2)
    executor.start()
    if not executor.workers:  # spawn and forkserver start them on demand: start two as fork does
        executor._spawn_worker()
        executor._spawn_worker()
    return executor


def _sync_for(executor, seconds: float, until=lambda: False) -> None:
    """The scheduler's loop: sync for `seconds`, or until `until()` is true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        executor.sync()
        time.sleep(0.05)


#: Long enough for a worker to start (from the forkserver it imports Airflow's executor first) and exit.
WORKERS_GONE_S = 90


def idle_workers_end_after_the_idle_time(executor):
    pids = [proc.pid for proc in executor.workers.values()]
    assert len(pids) == 2 and executor.idle_s == IDLE_S
    _sync_for(executor, IDLE_S / 2)
    assert [proc.pid for proc in executor.workers.values()] == pids  # not before the idle time
    _sync_for(executor, WORKERS_GONE_S, until=lambda: not executor.workers)
    assert executor.workers == {}  # ended and reaped
    executor.sync()
    # The forkserver (which held the preloaded modules) is stopped with its workers.
    assert forkserver._forkserver._forkserver_pid is None


def workers_stay_while_work_runs(executor):
    executor.running.add("a task instance key")
    _sync_for(executor, IDLE_S * 4)
    assert len(executor.workers) == 2 and all(proc.is_alive() for proc in executor.workers.values())
    executor.running.clear()
    _sync_for(executor, WORKERS_GONE_S, until=lambda: not executor.workers)
    assert executor.workers == {}


CASES = {case.__name__: case for case in (idle_workers_end_after_the_idle_time, workers_stay_while_work_runs)}


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_executor(case: str, start_method: str, tmp_path):
    """Each case in a Python of its own: Airflow imported here would hold this process's settings, which
    the test Airflow stack (tests/airflow_harness.py) must set first."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "APPLIANCE_EXECUTOR_IDLE_S": str(IDLE_S)}
    done = subprocess.run([sys.executable, __file__, case, start_method], env=env, capture_output=True, text=True,
                          timeout=WORKERS_GONE_S * 3)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr[-4000:]


if __name__ == "__main__":
    chosen, method = sys.argv[1:3]
    executor = _executor(method)
    try:
        CASES[chosen](executor)
    finally:
        executor.end()
    print("ok")
