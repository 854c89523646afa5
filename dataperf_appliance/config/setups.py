"""What every valid ``task_setup.yml`` is: `TaskSetup`, the base of each track's frozen setup model, and
the parts the tracks build theirs from.

Each track's own model (``track: Literal[<its name>]``) is in its module,
``dataperf_appliance/tracks/<name>.py``; here are the parts that are not one
track's alone: the user's methods as code (`MethodFile`), the DataPerf
folders of the debugging reference (`Paths`, also read by the official
evaluator's file), a debugging task and baseline, and the checks shared by
the models (`method_name_problems`, `sweep_problems`). Models refuse unknown
keys; numbers and text are strict (`types`).

Sweeps: ``train_size``, ``noise_level`` (debugging) and ``model`` take a list
of distinct values instead of one, and ``repeats: R`` runs every combination
R times with the seeds seed..seed+R-1 (`grid`). A field with one value stays
that value, so a file without lists or repeats is exactly what it was before
sweeps. Each model says how its grid is laid out (`TaskSetup.SETTING_AXES`,
`axis_values`, `primary`, `for_cell`), so the grid and the sweeps engine never
ask which track a setup is.

These models check a file on its own. Whether its dataset can serve it is the
track's check (`dataperf_appliance.tracks`), run by the same parse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, Strict, model_serializer, model_validator

from dataperf_appliance.config import grid
from dataperf_appliance.config.catalog import DEBUGGING_LIBRARY_METHODS, ParameterValue, library_method_parameters
from dataperf_appliance.config.grid import Cell
from dataperf_appliance.config.issues import ConfigModel, FieldProblems, shown
from dataperf_appliance.config.loader import Loc
from dataperf_appliance.config.types import (
    MAX_SEED,
    MAX_SPLIT_SIZE,
    DataFile,
    Folder,
    MethodParameter,
    NoiseLevel,
    SafeName,
    StrategyName,
    TrainSize,
    duplicates,
    sweepable,
)

#: A method's memory limit (MiB) and time limit on one task (seconds): the defaults and the bounds a file may set.
DEFAULT_METHOD_MEMORY_MIB, MIN_METHOD_MEMORY_MIB, MAX_METHOD_MEMORY_MIB = 8192, 256, 20480
DEFAULT_METHOD_TIMEOUT_S, MAX_METHOD_TIMEOUT_S = 3600, 86400

#: The generated dataset of the selection track, and the name its tasks' own train csv is reported under.
SELECTION_DIGITS, SELECTION_DATASET_CSV = "digits", "train_csv"


class _OptionalKeysLeftOut(ConfigModel):
    """A list item whose optional keys are written only when given: its YAML is what the file says."""

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler):
        written = handler(self)
        return {key: value for key, value in written.items()
                if type(self).model_fields[key].is_required() or getattr(self, key) != _default_of(type(self), key)}


def _default_of(model: type[ConfigModel], key: str) -> Any:
    field = model.model_fields[key]
    return field.default_factory() if field.default_factory is not None else field.default


def _method_file(suffix: str):
    def check(value: str) -> str:
        if not value.endswith(suffix):
            raise ValueError(f"{value!r} is not a {suffix} file")
        return value
    return Annotated[DataFile, AfterValidator(check)]


class MethodFile(_OptionalKeysLeftOut):
    """A user's method as code, run for every task, repeat and setting (`dataperf_appliance.engine.methods`).

    Paths are relative to the folder of the task file (and stored with a run at the same place)."""

    name: SafeName = Field(description="the method's name in the results")
    file: _method_file(".py") = Field(
        description="a Python file with one class: fit/propose (debugging) or select (selection)")
    requirements: _method_file(".txt") | None = Field(
        None, description="a requirements.txt: the method runs in an environment of its own built from it")
    class_name: SafeName | None = Field(None, description="the class to run, when the file has several")
    params: dict[SafeName, MethodParameter] = Field(
        default_factory=dict, description="read by the method as the environment variables DATAPERF_PARAM_<NAME>")
    memory_mib: Annotated[int, Strict(), Field(ge=MIN_METHOD_MEMORY_MIB, le=MAX_METHOD_MEMORY_MIB)] = Field(
        DEFAULT_METHOD_MEMORY_MIB, description="the most memory the method's process may take (MiB)")
    timeout_s: Annotated[int, Strict(), Field(ge=1, le=MAX_METHOD_TIMEOUT_S)] = Field(
        DEFAULT_METHOD_TIMEOUT_S, description="the longest the method may run on one task (seconds)")


class TaskSetup(ConfigModel):
    """A validated setup of any track: what the grid, the sweeps and the stages rely on."""

    #: The axes of a setting of the track (names of `grid.AXES`), in the order of its grid.
    SETTING_AXES: ClassVar[tuple[str, ...]] = ("train_size", "model")

    if TYPE_CHECKING:  # every track's fields; declared by each model, in the order of its file
        track: str
        dataset: str
        model: Any
        seed: int
        repeats: int
        submissions: tuple[str, ...]
        methods: tuple[MethodFile, ...]

    @property
    def submission_folder(self) -> str:
        """Where a user's own files are, relative to the task_setup.yml (and in the run folder)."""
        raise NotImplementedError

    def task_ids(self) -> list[str]:
        """The benchmark tasks evaluated, in order (one mapped `evaluate` task each)."""
        raise NotImplementedError

    def axis_values(self) -> list[tuple[str, dict[str, tuple]]]:
        """(task, {axis: its values for that task}) of every task evaluated, in order, for each of
        `SETTING_AXES`."""
        raise NotImplementedError

    def swept_task_fields(self) -> list[Loc]:
        """The locations of the lists of the track's own sweep axes, in file order."""
        raise NotImplementedError

    def describe_task_axes(self) -> str:
        """The task factor of the grid's size, in words."""
        raise NotImplementedError

    def swept_values(self) -> dict[str, Any]:
        """The values of the track's sweep axes, as the file gives them (for results.json)."""
        raise NotImplementedError

    def primary(self) -> TaskSetup:
        """This setup with the first value of every list and one repeat."""
        raise NotImplementedError

    def for_cell(self, cell: Cell) -> TaskSetup:
        """The one-valued setup of `cell` (see `grid.cell_setup`)."""
        raise NotImplementedError

    def _cell_update(self, cell: Cell) -> dict[str, Any]:
        update: dict[str, Any] = {"model": cell.value("model"), "seed": cell.seed, "repeats": 1}
        if cell.repeat > 0:
            update["submissions"] = ()
        return update

    def method_names(self) -> list[str]:
        """Every method the setup evaluates, in file order: the appliance's, the submitted files', the code's."""
        raise NotImplementedError

    def isolated_methods(self) -> list[str]:
        """The methods run in a child process of their own (methods as code): each is a unit of work."""
        return [method.name for method in self.methods]

    def with_methods(self, names: set[str]) -> TaskSetup:
        """This setup evaluating only the methods `names` (not validated again: a part of a valid setup)."""
        raise NotImplementedError

    def to_yaml_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, str, numbers, None) in the file's key order; loads back to an equal setup."""
        return self.model_dump(mode="json")


class Paths(ConfigModel):
    """The DataPerf folders, relative to the dataset folder (inputs) or the run folder (outputs)."""

    embedding_folder: Folder = Field("embeddings/", description="the train, val and test parquet files")
    groundtruth_folder: Folder = Field("data/", description="the dataset_{data_id}_train.csv ground truth files")
    submission_folder: Folder = Field("submissions/", description="the inspection orders, {data_id}_{method}.txt")
    results_folder: Folder = Field("results/", description="the {data_id}_evaluation.json files")


class DebuggingTask(ConfigModel):
    """One binary task of the debugging track (DataPerf's keys, in DataPerf's order)."""

    data_id: SafeName = Field(description="the task's name; its files are named after it")
    train_size: sweepable(TrainSize) = Field(
        description="training rows (every budget 1..train_size is evaluated); a list sweeps")
    noise_level: sweepable(NoiseLevel) = Field(description="fraction of the training labels flipped; a list sweeps")
    test_size: Annotated[int, Strict(), Field(gt=0, le=MAX_SPLIT_SIZE)] = Field(
        description="test rows: the accuracy of each curve point")
    val_size: Annotated[int, Strict(), Field(gt=0, le=MAX_SPLIT_SIZE)] = Field(
        description="validation rows with clean labels, given to the strategies")


class Baseline(_OptionalKeysLeftOut):
    """A cleaning strategy of the appliance, or a library's method, to run on every task."""

    name: StrategyName
    params: dict[SafeName, MethodParameter] = Field(
        default_factory=dict, description="a library method's parameters (DATAPERF_PARAM_<NAME>; docs/methods.md)")

    @model_validator(mode="after")
    def _check_params(self) -> Baseline:
        problems = _baseline_parameter_problems(self.name, self.params)
        if problems:
            raise FieldProblems(problems)
        return self


# What a parameter's value must be, by the type of its default: values the method's read_parameter
# (methods/shim/method_parameters.py) reads as that type, so that a valid file never fails in its constructor.
_PARAMETER_KINDS: dict[type, tuple[str, tuple[type, ...]]] = {
    bool: ("true or false", (bool,)), int: ("a whole number", (int,)), float: ("a number", (int, float)),
    str: ("text", (str,)),
}


def _baseline_parameter_problems(name: str, params: dict[str, Any]) -> list[tuple[Loc, str]]:
    """(loc under the baseline, message) of each parameter that the method `name` does not take, or whose
    value is not of its default's type; the appliance's own strategies take none."""
    taken: dict[str, ParameterValue] = library_method_parameters(name) if name in DEBUGGING_LIBRARY_METHODS else {}
    problems: list[tuple[Loc, str]] = []
    for key, value in params.items():
        if key not in taken:
            takes = (", ".join(taken) if taken else
                     "none" if name in DEBUGGING_LIBRARY_METHODS else "none: params are for the libraries' methods")
            problems.append((("params", key), f"{name} takes no parameter {key!r} (it takes {takes})"))
            continue
        default = taken[key]
        words, accepted = _PARAMETER_KINDS[type(default)]
        flag_for_number = isinstance(value, bool) and type(default) is not bool  # true is not the number 1
        if flag_for_number or not isinstance(value, accepted):
            problems.append((("params", key), f"{name}'s {key} must be {words}, like its default "
                                              f"{default!r}; got {shown(value)}"))
    return problems


def method_name_problems(methods: tuple[MethodFile, ...], taken: dict[str, set[str]]) -> list[tuple[Loc, str]]:
    """Methods with the same name, or the name of another method of the file (they would write the same files)."""
    problems = list(duplicates(methods, "methods", "name", lambda m: m.name))
    for index, method in enumerate(methods):
        for what, names in taken.items():
            if method.name in names:
                problems.append((("methods", index, "name"), f"{method.name!r} is also a {what}: rename the method"))
    return problems


def method_file_problems(setup: TaskSetup, source_dir: Path) -> list[tuple[Loc, str]]:
    """Each method file or requirements file of `setup` that is not a file under `source_dir`."""
    problems: list[tuple[Loc, str]] = []
    for index, method in enumerate(setup.methods):
        for key in ("file", "requirements"):
            relative = getattr(method, key)
            if relative is not None and not (Path(source_dir) / relative).is_file():
                problems.append((("methods", index, key), f"no file {relative} next to the task file"))
    return problems


def sweep_problems(setup) -> list[tuple[Loc, str]]:
    """The rules of sweeps common to both tracks: the grid bound, seeds in range, no user files."""
    if not grid.is_sweep(setup):
        return []
    problems: list[tuple[Loc, str]] = []
    written = grid.swept_fields(setup)  # the locs of the values that make it a sweep, in file order
    cells = grid.grid_size(setup)
    if cells > grid.MAX_CELLS:
        problems.append((written[0], f"the sweep has {cells:,} cells ({grid.describe_grid(setup)}); at most "
                                     f"{grid.MAX_CELLS} are run: give fewer values or repeats"))
    if setup.seed + setup.repeats - 1 > MAX_SEED:
        problems.append((("repeats",), f"seed + repeats - 1 = {setup.seed + setup.repeats - 1} is more than "
                                       f"{MAX_SEED}; lower the seed"))
    if setup.submissions and grid.is_grid(setup):
        # With repeats alone a file is evaluated on the first repeat's data, the one it was made for.
        problems.append((("submissions",), "your own files cannot be part of a sweep (a file fits one train size "
                                           "and seed): evaluate them in a run without lists"))
    return problems
