"""The appliance's executor (dataperf_appliance/airflow_executor.py): Airflow's LocalExecutor with real
worker processes, whose idle workers end after APPLIANCE_EXECUTOR_IDLE_S seconds and stay while work runs.
Running tasks through it, and workers started again for the next run, is what every test through the
real Airflow does (tests/test_orchestration.py, tests/test_appliance.py)."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing import forkserver

import pytest

IDLE_S = 0.5


@pytest.fixture(params=["fork", "forkserver"])
def executor(request, monkeypatch, tmp_path):
    """The executor with two idle workers, started with each start method Airflow may use here."""
    saved_method = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(request.param, force=True)
    request.addfinalizer(lambda: multiprocessing.set_start_method(saved_method, force=True))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("APPLIANCE_EXECUTOR_IDLE_S", str(IDLE_S))
    from dataperf_appliance.airflow_executor import IdleEndingLocalExecutor

    executor = IdleEndingLocalExecutor(parallelism=2)
    executor.start()
    if not executor.workers:  # spawn and forkserver start them on demand: start two as fork does
        executor._spawn_worker()
        executor._spawn_worker()
    yield executor
    executor.end()


def _sync_for(executor, seconds: float, until=lambda: False) -> None:
    """The scheduler's loop: sync for `seconds`, or until `until()` is true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        executor.sync()
        time.sleep(0.05)


#: Long enough for a worker to start (from the forkserver it imports Airflow's executor first) and exit.
WORKERS_GONE_S = 90


def test_idle_workers_end_after_the_idle_time(executor):
    pids = [proc.pid for proc in executor.workers.values()]
    assert len(pids) == 2 and executor.idle_s == IDLE_S
    _sync_for(executor, IDLE_S / 2)
    assert [proc.pid for proc in executor.workers.values()] == pids  # not before the idle time
    _sync_for(executor, WORKERS_GONE_S, until=lambda: not executor.workers)
    assert executor.workers == {}  # ended and reaped
    executor.sync()
    # The forkserver (which held the preloaded modules) is stopped with its workers.
    assert forkserver._forkserver._forkserver_pid is None


def test_workers_stay_while_work_runs(executor):
    executor.running.add("a task instance key")
    _sync_for(executor, IDLE_S * 4)
    assert len(executor.workers) == 2 and all(proc.is_alive() for proc in executor.workers.values())
    executor.running.clear()
    _sync_for(executor, WORKERS_GONE_S, until=lambda: not executor.workers)
    assert executor.workers == {}
