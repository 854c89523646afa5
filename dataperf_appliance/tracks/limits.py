"""A run's size against the appliance's limits, checked when its file is validated.

Each track estimates what a setup of its own needs (`RunEstimate`, made in the
track's module): the embeddings its evaluation holds at once, and the fits of
the classifier it needs in all. `limit_problems` compares an estimate with the
limits of the settings (APPLIANCE_MAX_RUN_MEMORY_MIB, APPLIANCE_MAX_RUN_FITS),
so that a run the machine cannot hold is refused at its file's line, by the
CLI's `validate`, the form's live check and the DAG's validate alike, instead
of filling the machine's memory or its Airflow slots.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataperf_appliance.config import Loc, TaskSetup
from dataperf_appliance.engine.settings import MAX_RUN_FITS_ENV, MAX_RUN_MEMORY_ENV, RunLimits, load_run_limits

MIB, GIB = 2**20, 2**30


@dataclass(frozen=True)
class RunEstimate:
    """What a setup needs, each figure with its factors in words and the field a user changes to lower it.

    memory_bytes: the embeddings held at once (None when unknown: an official folder not on disk yet);
    fits: the fits of the classifier in all, at most.
    """

    memory_bytes: int | None
    memory_terms: str
    memory_loc: Loc
    fits: int
    fits_terms: str
    fits_loc: Loc
    #: What lowers the fits, in the track's words.
    fits_advice: str = "give fewer repeats, tasks, settings or methods"


def counted(number: int, word: str) -> str:
    """``1 task``, ``3 tasks``, ``100,200 rows``."""
    return f"{number:,} {word}{'' if number == 1 else 's'}"


def fits_field(setup: TaskSetup) -> Loc:
    """Where a file is told it needs too many fits: its repeats when it has several (they multiply
    everything), else its tasks."""
    return ("repeats",) if setup.repeats > 1 else ("tasks",)


def _sizes(needed: int, allowed: int) -> tuple[str, str]:
    """Both sizes in words (``4.6 GiB``, ``512 MiB``), in bytes when those would show them equal."""
    def rounded(n: int) -> str:
        return f"{n / GIB:.1f} GiB" if n >= GIB else f"{max(1, round(n / MIB)):,} MiB"

    if rounded(needed) == rounded(allowed):
        return f"{needed:,} bytes", f"{allowed:,} bytes"
    return rounded(needed), rounded(allowed)


def limit_problems(estimate: RunEstimate, limits: RunLimits | None = None) -> list[tuple[Loc, str]]:
    """(loc, message) of each limit the estimate is above; `limits` default to the settings'."""
    limits = limits or load_run_limits()
    problems: list[tuple[Loc, str]] = []
    allowed = limits.max_memory_mib * MIB
    if estimate.memory_bytes is not None and estimate.memory_bytes > allowed:
        needed_text, allowed_text = _sizes(estimate.memory_bytes, allowed)
        problems.append((estimate.memory_loc, f"this setup needs about {needed_text} of embeddings at once "
                                              f"({estimate.memory_terms}), above the {allowed_text} this "
                                              f"appliance allows ({MAX_RUN_MEMORY_ENV}): give fewer tasks or "
                                              "smaller sizes"))
    if estimate.fits > limits.max_fits:
        problems.append((estimate.fits_loc, f"this setup needs up to {estimate.fits:,} fits of the classifier "
                                            f"({estimate.fits_terms}), above the {limits.max_fits:,} this "
                                            f"appliance allows ({MAX_RUN_FITS_ENV}): {estimate.fits_advice}"))
    return problems
