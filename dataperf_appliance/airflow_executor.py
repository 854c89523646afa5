"""The appliance's Airflow executor: Airflow's LocalExecutor, whose idle worker processes end after a while.

The LocalExecutor keeps its worker processes (up to [core] parallelism) for as long as the scheduler runs.
A worker that has supervised a task keeps about 100 MB it never gives back, so after a few runs an
appliance that does nothing holds them all. This executor ends every worker once nothing has been queued
or running for `APPLIANCE_EXECUTOR_IDLE_S` seconds (default 30): it sends each one the stop message the
LocalExecutor itself sends at shutdown. The LocalExecutor starts workers again when tasks come (it starts
one whenever a task waits and fewer than `parallelism` are alive), so the next task waits a moment longer:
the time to fork one from the forkserver.

Airflow loads it in the scheduler from [core] executor (scripts/airflow-env.sh sets it); the engine never
imports this module.
"""

from __future__ import annotations

import os
import time

from airflow.executors.local_executor import LocalExecutor

IDLE_S_VARIABLE = "APPLIANCE_EXECUTOR_IDLE_S"
DEFAULT_IDLE_S = 30.0


class IdleEndingLocalExecutor(LocalExecutor):
    """LocalExecutor whose workers end after `APPLIANCE_EXECUTOR_IDLE_S` seconds without any workload."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_s = float(os.environ.get(IDLE_S_VARIABLE) or DEFAULT_IDLE_S)
        self._idle_since: float | None = None

    def _busy(self) -> bool:
        with self._unread_messages:
            unread = self._unread_messages.value
        return bool(unread or self.running or self.queued_tasks or self.queued_callbacks
                    or self.queued_connection_tests)

    def sync(self) -> None:
        super().sync()  # reads results, reaps workers that have exited, starts workers for waiting tasks
        if self._busy() or not self.workers:
            self._idle_since = None
            return
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        elif now - self._idle_since >= self.idle_s:
            # Every worker is idle, blocked on the queue: each takes one stop message and exits; the next
            # sync reaps them. (sync and the queueing of work both run in the scheduler's one loop.)
            alive = [proc for proc in self.workers.values() if proc.is_alive()]
            for _ in alive:
                self.activity_queue.put(None)
            self.log.info("Ending %d idle LocalExecutor worker(s) after %.1f s without work", len(alive),
                          self.idle_s)
            self._idle_since = None
