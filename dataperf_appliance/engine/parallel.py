"""Independent jobs on all cores: forked worker processes, results in the order of the jobs.

The one process-pool recipe of the engine (the debugging fixing curves, the
selection strategies, the sweep cells). Results come back in job order
whatever the number of workers, so a caller that is deterministic per job is
deterministic as a whole.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

#: `progress(done, total)`: called as pieces of work finish (a progress bar, a task's log line).
ProgressCallback = Callable[[int, int], None]

Job = TypeVar("Job")
Result = TypeVar("Result")


def worker_count(n_jobs: int, n_items: int) -> int:
    """Workers to start for `n_items` jobs: all cores when `n_jobs` < 0, else `n_jobs`; never more than the
    cores or the jobs, never fewer than 1."""
    available = os.cpu_count() or 1
    wanted = available if n_jobs < 0 else n_jobs
    return max(1, min(wanted, available, n_items))


def ordered_map(fn: Callable[[Job], Result], jobs: Sequence[Job], *, n_jobs: int = -1) -> Iterator[Result]:
    """Yield ``fn(job)`` for every job, in the order of `jobs`, computed by up to `n_jobs` processes.

    With one worker the jobs run in this process, one after the other (no
    pool). Otherwise the workers are forked: they start in milliseconds and
    inherit the imported libraries and whatever module-level data the caller
    set before iterating (never pickled); `fn` must be a module-level
    function, and jobs and results are pickled. Stopping the iteration early
    shuts the pool down.
    """
    workers = worker_count(n_jobs, len(jobs))
    if workers == 1:
        yield from map(fn, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        try:
            yield from pool.map(fn, jobs)
        except BaseException:
            # A failed job (or a caller that stops) ends the work: the jobs not started yet are dropped.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
