"""The grid of a sweep: which cells a setup runs, and the one-valued setup of each.

A setup runs more than one cell (`is_sweep`) when ``model``, ``train_size``
or ``noise_level`` (the setup model's `SWEEP_AXES`) is a list, or ``repeats``
is more than 1. Repeats are replicates of one setting, not settings: a setup
whose only list is ``repeats`` (`is_grid` false) is reported as its one
setting. Its grid has one *cell* per

    task x train_size x noise_level (where the track has it) x model x repeat

enumerated in that order (`cells`). A cell is exactly the run of one task with
one value of each field and the seed ``seed + repeat`` (`cell_setup`). At most
`MAX_CELLS` cells, checked when the file is validated.

Light on purpose: the setup models use it to check a file. Running the cells
is `dataperf_appliance.sweeps`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .loader import Loc

#: Most cells of a sweep grid.
MAX_CELLS = 500


@dataclass(frozen=True)
class Cell:
    """One point of the grid: a task with one value of every swept field, and its seed (seed + repeat)."""

    task: str
    train_size: int
    noise_level: float | None  # None in a track without label noise
    model: str
    repeat: int
    seed: int


#: The fields of a cell that are a track's per-task axes (a setup model's SWEEP_AXES names some of them).
TASK_AXES = ("train_size", "noise_level")


def values(value: Any) -> tuple:
    """The values of a sweepable field: its items if it is a list (a tuple once validated), else (value,)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def sweep_loc(value: Any, field_name: str, index: int) -> Loc:
    """The loc of the `index`-th value of a sweepable field: the item of a list, else the field."""
    return (field_name, index) if isinstance(value, tuple) else (field_name,)


def swept_fields(setup) -> list[Loc]:
    """The locations (as in a ConfigIssue) of the fields that make `setup` a sweep, in file order."""
    found: list[Loc] = [("model",)] if isinstance(setup.model, tuple) else []
    if setup.repeats > 1:
        found.append(("repeats",))
    return found + setup.swept_task_fields()


def is_sweep(setup) -> bool:
    """Whether `setup` has a list in a sweepable field or more than one repeat."""
    return bool(swept_fields(setup))


def is_grid(setup) -> bool:
    """Whether `setup` has more than one setting (a list in a sweepable field), repeats aside."""
    return any(location != ("repeats",) for location in swept_fields(setup))


def grid_size(setup) -> int:
    """Number of cells: sum over tasks of (train sizes x noise levels), times models, times repeats."""
    per_task = sum(len(sizes) * len(noises) for _, sizes, noises in setup.task_axes())
    return per_task * len(values(setup.model)) * setup.repeats


def describe_grid(setup) -> str:
    """The factors of `grid_size`, in words (for messages)."""
    return f"{setup.describe_task_axes()} x {len(values(setup.model))} model(s) x {setup.repeats} repeat(s)"


def cells(setup, tasks: list[str] | None = None) -> list[Cell]:
    """Every cell of the grid (of `tasks` only, if given), task-major, then train size, noise, model, repeat."""
    return [Cell(task, size, noise, model, repeat, setup.seed + repeat)
            for task, sizes, noises in setup.task_axes() if tasks is None or task in tasks
            for size in sizes for noise in noises for model in values(setup.model)
            for repeat in range(setup.repeats)]


def primary_setup(setup):
    """`setup` with the first value of every list and one repeat: what the run writes as an ordinary run."""
    return setup.primary()


def cell_setup(setup, cell: Cell):
    """The one-valued setup of one cell: its task only, its values, its seed, one repeat. A user's own
    files (allowed with repeats alone) belong to the first repeat: they fit that seed's data only."""
    return setup.for_cell(cell)


def parameter_names(setup) -> list[str]:
    """The parameters of a cell that the track has: the first columns of a sweep table."""
    return [f.name for f in fields(Cell) if f.name not in TASK_AXES or f.name in setup.SWEEP_AXES]


def in_primary_setting(setup, cell_or_row) -> bool:
    """Whether a cell (or a table row) has the first value of every list: a repeat of the primary setting."""
    get = (cell_or_row.get if isinstance(cell_or_row, dict) else lambda name: getattr(cell_or_row, name))
    sizes, noises = next((sizes, noises) for task, sizes, noises in setup.task_axes() if task == get("task"))
    first = {"train_size": sizes[0], "noise_level": noises[0]}
    return get("model") == values(setup.model)[0] and all(get(axis) == first[axis] for axis in setup.SWEEP_AXES)
