"""The appliance's executor (dataperf_appliance/airflow_executor.py): Airflow's LocalExecutor with real
worker processes, whose idle workers end after APPLIANCE_EXECUTOR_IDLE_S seconds and stay while work runs.
Running tasks through it, and workers started again for the next run, is what every test through the
real Airflow does (tests/test_orchestration.py, tests/test_appliance.py)."""

from __future__ import annotations

import time

import pytest

IDLE_S = 0.5


@pytest.fixture
def executor(monkeypatch, tmp_path):
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


def _sync_for(executor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        executor.sync()
        time.sleep(0.05)


def test_idle_workers_end_after_the_idle_time(executor):
    pids = [proc.pid for proc in executor.workers.values()]
    assert len(pids) == 2 and executor.idle_s == IDLE_S
    _sync_for(executor, IDLE_S / 2)
    assert [proc.pid for proc in executor.workers.values()] == pids  # not before the idle time
    _sync_for(executor, IDLE_S * 4)
    assert executor.workers == {}  # ended and reaped


def test_workers_stay_while_work_runs(executor):
    executor.running.add("a task instance key")
    _sync_for(executor, IDLE_S * 4)
    assert len(executor.workers) == 2 and all(proc.is_alive() for proc in executor.workers.values())
    executor.running.clear()
    _sync_for(executor, IDLE_S * 4)
    assert executor.workers == {}
