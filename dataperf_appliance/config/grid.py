"""The grid of a sweep: which cells a setup runs, and the one-valued setup of each.

A grid has named axes (`AXES`), each of one kind: a benchmark *condition*
(train size, noise level, evaluation model) or a method's own *parameter*.
A setup model names the axes of its track (`TaskSetup.SETTING_AXES`) and
gives each task's values of them (`TaskSetup.axis_values`); a *setting* is
one value of every axis. A setup runs more than one cell (`is_sweep`) when
one of those fields is a list, or ``repeats`` is more than 1. Repeats are
replicates of one setting, not settings: a setup whose only list is
``repeats`` (`is_grid` false) is reported as its one setting. Its grid has one
*cell* per

    task x setting (its axes in order) x repeat

enumerated in that order (`cells`). A cell is exactly the run of one task at
one setting with the seed ``seed + repeat`` (`cell_setup`). At most
`MAX_CELLS` cells, checked when the file is validated.

Light on purpose: the setup models use it to check a file. Running the cells
is `dataperf_appliance.stages.sweeps`'s job.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from dataperf_appliance.config.loader import Loc

#: Most cells of a sweep grid.
MAX_CELLS = 500


@dataclass(frozen=True)
class Cell:
    """One point of the grid: a task at one setting ((axis name, value) pairs, in the setup's axis order), and
    its repeat and seed (seed + repeat)."""

    task: str
    setting: tuple[tuple[str, Any], ...]
    repeat: int
    seed: int

    def value(self, axis: str) -> Any:
        """The cell's value of the axis `axis`."""
        return dict(self.setting)[axis]


#: The kinds of a grid axis. A benchmark *condition* changes the question (how noisy, how large, which model
#: judges), so methods are only ever compared at the same conditions; a *method parameter* (a method's own K
#: or iterations) changes the answer, so a method may be shown at its best value of it.
CONDITION, METHOD_PARAMETER = "condition", "method parameter"


@dataclass(frozen=True)
class Axis:
    """A named axis of a sweep's grid: the setup field it sweeps, what the pages call it, its kind, whether
    its values are numbers (a log axis in the plots) and whether it changes a cell's data (the model does
    not: cells that differ in it only share their data)."""

    name: str
    label: str
    kind: str
    numeric: bool
    changes_data: bool


#: Every axis a setting can have, in the order of the grid and of the pages. The task and the repeat are not
#: setting axes: a setting's figures are over its tasks and repeats.
AXES = {axis.name: axis for axis in (
    Axis("train_size", "train size", CONDITION, numeric=True, changes_data=True),
    Axis("noise_level", "noise level", CONDITION, numeric=True, changes_data=True),
    Axis("model", "evaluation model", CONDITION, numeric=False, changes_data=False),
)}


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
    """Number of cells: sum over tasks of the product of its axes' numbers of values, times repeats."""
    per_task = sum(math.prod(len(found) for found in axes.values()) for _, axes in setup.axis_values())
    return per_task * setup.repeats


def describe_grid(setup) -> str:
    """The factors of `grid_size`, in words (for messages)."""
    return f"{setup.describe_task_axes()} x {len(values(setup.model))} model(s) x {setup.repeats} repeat(s)"


def cells(setup, tasks: list[str] | None = None) -> list[Cell]:
    """Every cell of the grid (of `tasks` only, if given), task-major, then each axis in order, then repeat."""
    return [Cell(task, tuple(zip(axes, setting)), repeat, setup.seed + repeat)
            for task, axes in setup.axis_values() if tasks is None or task in tasks
            for setting in itertools.product(*axes.values())
            for repeat in range(setup.repeats)]


def primary_setup(setup):
    """`setup` with the first value of every list and one repeat: what the run writes as an ordinary run."""
    return setup.primary()


def cell_setup(setup, cell: Cell):
    """The one-valued setup of one cell: its task only, its values, its seed, one repeat. A user's own
    files (allowed with repeats alone) belong to the first repeat: they fit that seed's data only."""
    return setup.for_cell(cell)


def parameter_names(setup) -> list[str]:
    """The parameters of a cell: the first columns of a sweep table (the task, each axis, repeat, seed)."""
    return ["task", *setup.SETTING_AXES, "repeat", "seed"]


def cell_parameters(cell: Cell) -> dict[str, Any]:
    """{parameter: value} of a cell, as `parameter_names` orders them."""
    return {"task": cell.task, **dict(cell.setting), "repeat": cell.repeat, "seed": cell.seed}


def setting_axes(setup) -> list[Axis]:
    """The axes of a setting of `setup`, in order."""
    return [AXES[name] for name in setup.SETTING_AXES]


def setting_of(setup, cell_or_row) -> tuple:
    """The values of a cell's (or a table row's) setting axes, in `setting_axes` order."""
    get = cell_or_row.get if isinstance(cell_or_row, dict) else cell_or_row.value
    return tuple(get(name) for name in setup.SETTING_AXES)


def data_of(cell: Cell) -> tuple:
    """What makes a cell's data: its task, the values of the axes that change data, and its seed."""
    return (cell.task, *(value for name, value in cell.setting if AXES[name].changes_data), cell.seed)
