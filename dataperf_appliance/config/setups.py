"""What a valid ``task_setup.yml`` is: one frozen model per track, all `TaskSetup`s.

* `DebuggingSetup` keeps the DataPerf debugging reference keys (``paths``,
  ``tasks`` with ``data_id``/``train_size``/``noise_level``/``test_size``/
  ``val_size``, ``baselines`` with ``name``) and adds the appliance's own
  (``track``, ``dataset``, ``model``, ``seed``, ``repeats``, ``eval_points``,
  ``dim``, ``submissions``);
* `SelectionSetup` keeps the DataPerf selection reference keys (``dim``,
  ``emb_file``, a ``[train_csv, test_parquet]`` pair per task -- under
  ``tasks`` --, ``eval_tasks``, ``results_dir``) and adds ``track``,
  ``dataset``, ``model``, ``seed``, ``repeats``, ``train_size``,
  ``test_size``, ``strategies`` and ``submissions``.

They refuse unknown keys; numbers and text are strict (`types`).

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
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, Strict, model_serializer, model_validator

from . import grid
from .catalog import (
    DEBUGGING_LIBRARY_METHODS,
    DEFAULT_DEBUGGING_MODEL,
    DEFAULT_SELECTION_MODEL,
    ParameterValue,
    library_method_parameters,
)
from .grid import Cell, values
from .issues import ConfigModel, FieldProblems, shown
from .loader import Loc
from .types import (
    MAX_DIM,
    MAX_SEED,
    MAX_SELECTION_DIM,
    MAX_SPLIT_SIZE,
    MAX_TASKS,
    MIN_DIM,
    DataFile,
    Folder,
    MethodParameter,
    ModelName,
    NoiseLevel,
    Repeats,
    SafeName,
    Seed,
    SelectionStrategyName,
    StrategyName,
    TaskPair,
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
    """A user's method as code, run for every task, repeat and setting (`dataperf_appliance.methods`).

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


class DebuggingSetup(TaskSetup):
    """A valid ``task_setup.yml`` of the debugging track."""

    track: Literal["debugging"] = "debugging"
    dataset: SafeName = Field("digits", description="digits, synthetic, or a folder under <data root>/datasets")
    model: sweepable(ModelName) = Field(DEFAULT_DEBUGGING_MODEL, description="the classifier retrained at every budget")
    seed: Seed = 0
    repeats: Repeats = Field(1, description="R replicates of every setting, with the seeds seed..seed+R-1")
    eval_points: Annotated[int, Strict(), Field(ge=2)] | None = Field(
        None, description="null: every budget 1..train_size; N: N evenly spaced budgets")
    dim: Annotated[int, Strict(), Field(ge=MIN_DIM, le=MAX_DIM)] | None = Field(
        None, description="embedding length of the synthetic dataset (null: 256)")
    paths: Paths = Paths()
    tasks: Annotated[tuple[DebuggingTask, ...], Field(min_length=1, max_length=MAX_TASKS)]
    baselines: tuple[Baseline, ...] = ()
    submissions: tuple[SafeName, ...] = Field(
        (), description="your own methods' outputs: {submission_folder}/{data_id}_{method}.txt for every task")
    methods: tuple[MethodFile, ...] = Field((), description="your own methods as code, run on every task")

    SETTING_AXES: ClassVar[tuple[str, ...]] = ("train_size", "noise_level", "model")

    def task_ids(self) -> list[str]:
        return [task.data_id for task in self.tasks]

    def method_names(self) -> list[str]:
        return [*(b.name for b in self.baselines), *self.submissions, *(m.name for m in self.methods)]

    def isolated_methods(self) -> list[str]:
        return [*(b.name for b in self.baselines if b.name in DEBUGGING_LIBRARY_METHODS), *super().isolated_methods()]

    def with_methods(self, names: set[str]) -> DebuggingSetup:
        return self.model_copy(update={"baselines": tuple(b for b in self.baselines if b.name in names),
                                       "submissions": tuple(s for s in self.submissions if s in names),
                                       "methods": tuple(m for m in self.methods if m.name in names)})

    def axis_values(self) -> list[tuple[str, dict[str, tuple]]]:
        return [(t.data_id, {"train_size": values(t.train_size), "noise_level": values(t.noise_level),
                             "model": values(self.model)}) for t in self.tasks]

    def swept_task_fields(self) -> list[Loc]:
        return [("tasks", index, name) for index, task in enumerate(self.tasks)
                for name in ("train_size", "noise_level") if isinstance(getattr(task, name), tuple)]

    def describe_task_axes(self) -> str:
        combos = sum(len(axes["train_size"]) * len(axes["noise_level"]) for _, axes in self.axis_values())
        return f"{combos} (task, train_size, noise_level) combination(s)"

    def swept_values(self) -> dict[str, Any]:
        return {"train_size": {t.data_id: list(values(t.train_size)) for t in self.tasks},
                "noise_level": {t.data_id: list(values(t.noise_level)) for t in self.tasks}}

    def primary(self) -> DebuggingSetup:
        tasks = tuple(t.model_copy(update={"train_size": values(t.train_size)[0],
                                           "noise_level": values(t.noise_level)[0]}) for t in self.tasks)
        return self.model_copy(update={"model": values(self.model)[0], "repeats": 1, "tasks": tasks})

    def for_cell(self, cell: Cell) -> DebuggingSetup:
        task = next(t for t in self.tasks if t.data_id == cell.task)
        one = task.model_copy(update={"train_size": cell.value("train_size"),
                                      "noise_level": cell.value("noise_level")})
        return self.model_copy(update={**self._cell_update(cell), "tasks": (one,)})

    @model_validator(mode="after")
    def _check_across_fields(self) -> DebuggingSetup:
        problems = list(duplicates(self.tasks, "tasks", "data_id", lambda t: t.data_id))
        problems += duplicates(self.baselines, "baselines", "name", lambda b: b.name)
        problems += duplicates(self.submissions, "submissions", None, lambda name: name)
        baseline_names = {b.name for b in self.baselines}
        problems += [(("submissions", index), f"{name!r} is also a baseline: the two would write the same "
                                              "submission files; rename your method")
                     for index, name in enumerate(self.submissions) if name in baseline_names]
        problems += _method_problems(self.methods, {"baseline": baseline_names, "submission": set(self.submissions)})
        if not self.baselines and not self.submissions and not self.methods:
            problems.append((("baselines",), "nothing to evaluate: list at least one baseline, submission or "
                                             "method"))
        if self.eval_points is not None:
            size, data_id = min((min(values(t.train_size)), t.data_id) for t in self.tasks)
            if self.eval_points > size:
                problems.append((("eval_points",), f"{self.eval_points} is more than the train_size "
                                 f"{size} of task {data_id}; use at most {size}, or null for every budget"))
        if self.dim is not None and self.dataset != "synthetic":
            problems.append((("dim",), f"dim applies only to dataset synthetic; set it to null for dataset "
                                       f"{self.dataset!r}"))
        problems += _sweep_problems(self)
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def submission_folder(self) -> str:
        """Where a user's own submission files are, relative to the task_setup.yml."""
        return self.paths.submission_folder



class SelectionSetup(TaskSetup):
    """A valid ``task_setup.yaml`` of the selection track (the reference's keys, then the appliance's)."""

    track: Literal["selection"] = "selection"
    dataset: SafeName = Field("digits", description="digits, or a folder under <data root>/datasets")
    model: sweepable(ModelName) = Field(DEFAULT_SELECTION_MODEL, description="the classifier fitted on each training set")
    seed: Seed = 0
    repeats: Repeats = Field(1, description="R replicates of every setting, with the seeds seed..seed+R-1")
    dim: Annotated[int, Strict(), Field(ge=1, le=MAX_SELECTION_DIM)] = Field(
        description="embedding length of the pool and test sets")
    emb_file: DataFile = Field(description="the candidate pool parquet, inside the dataset folder")
    train_size: sweepable(TrainSize) = Field(description="the budget: most pool points a training set may hold")
    test_size: Annotated[int, Strict(), Field(ge=2, le=MAX_SPLIT_SIZE)] | None = Field(
        None, description="digits only: rows of each generated test set; null for a dataset folder")
    tasks: Annotated[dict[SafeName, TaskPair], Field(min_length=1, max_length=MAX_TASKS)] = Field(
        description="task -> [train_csv or null, test_parquet], paths inside the dataset folder")
    eval_tasks: Annotated[tuple[SafeName, ...], Field(min_length=1, max_length=MAX_TASKS)] = Field(
        description="the tasks evaluated, in order")
    strategies: tuple[SelectionStrategyName, ...] = ()
    submissions: tuple[SafeName, ...] = Field(
        (), description="your own methods' outputs: submissions/{task}_{method}.csv for every task")
    methods: tuple[MethodFile, ...] = Field((), description="your own methods as code, run on every task")
    results_dir: Folder = Field("results", description="the reference's result files, inside the run folder")

    IDENTIFYING_KEYS: ClassVar[tuple[str, ...]] = ("emb_file", "eval_tasks")

    @classmethod
    def unknown_key_hint(cls, key: str, value: Any) -> str | None:
        if key in _SELECTION_REFERENCE_ONLY:
            return _SELECTION_REFERENCE_ONLY[key]
        if isinstance(value, list) and len(value) == 2:
            # The reference writes each task's pair at the top level; here they are grouped under `tasks`.
            return f"a task's [train_csv, test_parquet] pair goes under tasks:, as tasks: {{{key}: [...]}}"
        return None

    def task_ids(self) -> list[str]:
        return list(self.eval_tasks)

    def method_names(self) -> list[str]:
        return [*self.strategies, *self.submissions, *(m.name for m in self.methods)]

    def with_methods(self, names: set[str]) -> SelectionSetup:
        return self.model_copy(update={"strategies": tuple(s for s in self.strategies if s in names),
                                       "submissions": tuple(s for s in self.submissions if s in names),
                                       "methods": tuple(m for m in self.methods if m.name in names)})

    def axis_values(self) -> list[tuple[str, dict[str, tuple]]]:
        return [(task, {"train_size": values(self.train_size), "model": values(self.model)})
                for task in self.eval_tasks]

    def swept_task_fields(self) -> list[Loc]:
        return [("train_size",)] if isinstance(self.train_size, tuple) else []

    def describe_task_axes(self) -> str:
        return f"{len(self.eval_tasks)} task(s) x {len(values(self.train_size))} train size(s)"

    def swept_values(self) -> dict[str, Any]:
        return {"train_size": list(values(self.train_size))}

    def primary(self) -> SelectionSetup:
        return self.model_copy(update={"model": values(self.model)[0], "repeats": 1,
                                       "train_size": values(self.train_size)[0]})

    def for_cell(self, cell: Cell) -> SelectionSetup:
        return self.model_copy(update={**self._cell_update(cell), "eval_tasks": (cell.task,),
                                       "train_size": cell.value("train_size")})

    @model_validator(mode="after")
    def _check_across_fields(self) -> SelectionSetup:
        problems = list(duplicates(self.eval_tasks, "eval_tasks", None, lambda name: name))
        problems += [(("eval_tasks", index), f"{name!r} is not one of the tasks ({', '.join(self.tasks)}); "
                                             "add its [train_csv, test_parquet] pair under tasks")
                     for index, name in enumerate(self.eval_tasks) if name not in self.tasks]
        problems += duplicates(self.strategies, "strategies", None, lambda name: name)
        problems += duplicates(self.submissions, "submissions", None, lambda name: name)
        for index, name in enumerate(self.submissions):
            if name in self.strategies:
                problems.append((("submissions", index), f"{name!r} is also a strategy: the two would write the "
                                                         "same training-set files; rename your method"))
            elif name == SELECTION_DATASET_CSV:
                problems.append((("submissions", index), f"{name!r} is the name under which each task's own "
                                                         "train csv is reported; rename your method"))
        problems += _method_problems(self.methods, {"strategy": set(self.strategies),
                                                    "submission": set(self.submissions),
                                                    "reported name of the tasks' own csv": {SELECTION_DATASET_CSV}})
        if not self.strategies and not self.submissions and not self.methods:
            problems.append((("strategies",), "nothing to evaluate: list at least one strategy, submission or "
                                              "method"))
        if self.dataset == SELECTION_DIGITS:
            if self.test_size is None:
                problems.append((("test_size",), "dataset digits draws a test set of test_size images for each "
                                                 "task: give a number, e.g. 100"))
        elif self.test_size is not None:
            problems.append((("test_size",), f"test_size applies only to dataset digits (the test sets of "
                                             f"{self.dataset!r} are its files); set it to null"))
        problems += _sweep_problems(self)
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def submission_folder(self) -> str:
        """Where a user's own training sets are, relative to the task_setup.yaml."""
        return "submissions/"






def _method_problems(methods: tuple[MethodFile, ...], taken: dict[str, set[str]]) -> list[tuple[Loc, str]]:
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


def _sweep_problems(setup) -> list[tuple[Loc, str]]:
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

# Keys of the DataPerf selection reference's task_setup.yaml that the appliance has no use for.
_SELECTION_REFERENCE_ONLY = {
    "spark_driver_memory": "the appliance reads the files without Spark: delete this key",
    "data_dir": "paths are inside the dataset folder <data root>/datasets/<dataset>: delete this key",
    "docker_data_dir": "paths are inside the dataset folder <data root>/datasets/<dataset>: delete this key",
}
