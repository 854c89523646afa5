"""The appliance's Airflow executor: Airflow's LocalExecutor, whose idle worker processes end after a while.

The LocalExecutor keeps its worker processes (up to [core] parallelism) for as long as the scheduler runs.
A worker that has supervised a task keeps about 100 MB it never gives back, so after a few runs an
appliance that does nothing holds them all. This executor ends every worker once nothing has been queued
or running for `APPLIANCE_EXECUTOR_IDLE_S` seconds (default 30): it sends each one the stop message the
LocalExecutor itself sends at shutdown. The LocalExecutor starts workers again when tasks come (it starts
one whenever a task waits and fewer than `parallelism` are alive). With the forkserver start method (the
appliance's), the forkserver, which holds the preloaded benchmark libraries (about 250 MB), is stopped
too once its workers are gone; multiprocessing starts it again, with the same preloads, for the next
worker. The first task after an idle spell therefore waits a few seconds longer.

Airflow loads it in the scheduler from [core] executor (scripts/runtime/airflow-env.sh sets it). It lives beside
airflow_gateway.py, the package's other Airflow adapter, rather than in dags/: Airflow imports an executor
by its dotted path from the installed package (dags/ is no package, and the DAG processor would parse a
module there as a DAG file). The engine never imports either module.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing import forkserver

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
        if self._busy():
            self._idle_since = None
            return
        if not self.workers:
            self._idle_since = None
            self._stop_forkserver()
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

    def _stop_forkserver(self) -> None:
        """Stop multiprocessing's forkserver, once no worker of it is left; the next worker starts it again.

        There is no public way: a public `ForkServer.stop()` was proposed and declined
        (python/cpython#81688), and `ForkServer._stop`, which CPython's own tests call, is the same from
        3.8 to 3.13. Without it (a later Python) the forkserver just stays.
        """
        if multiprocessing.get_start_method(allow_none=True) != "forkserver":
            return
        server = forkserver._forkserver
        pid = getattr(server, "_forkserver_pid", None)
        if pid is None or not hasattr(server, "_stop"):
            return
        # The forkserver ends when its "alive" pipe closes, but a process forked from the scheduler (its log
        # server) holds that pipe too, and `_stop` would then wait for it forever: end it by signal first
        # (it has no worker left), so that `_stop` only reaps it.
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        server._stop()
        self.log.info("Stopped the idle forkserver (it starts again with the next task)")
