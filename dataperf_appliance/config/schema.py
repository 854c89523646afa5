"""What a valid ``task_setup.yml`` is, and checking a file against it.

One model per track, chosen by the file's ``track`` key (none: debugging):

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

They are frozen and refuse unknown keys; numbers and text are strict (the text
``"200"`` is not a size, ``true`` is not a number).

Sweeps: ``train_size``, ``noise_level`` (debugging) and ``model`` take a list
of distinct values instead of one, and ``repeats: R`` runs every combination
with the seeds seed..seed+R-1; the grid (`dataperf_appliance.sweeps`) has at
most `MAX_GRID_CELLS` cells. A field with one value stays that value, so a
file without lists or repeats is exactly what it was before sweeps.

Checking happens in three layers, each collecting every problem it finds:

1. `loader.load_yaml`: YAML syntax and safety (tags, aliases, size, depth);
2. the pydantic models: keys, types, ranges, names, cross-field rules;
3. the dataset: `dataperf_appliance.datasets.size_problems` says whether each
   task can be drawn from (or found in) its dataset.

Every problem becomes a `ConfigIssue` at the line and column of the key or
list item concerned (pydantic's error ``loc`` is looked up in the positions the
loader recorded). Checking is read-only: a rejected file changes nothing.

Adding a track: write its setup model (with ``track: Literal["<track>"]``, a
``dataset_problems(data_root)`` method, a ``submission_folder`` property and
``to_yaml_dict``), register it in `SETUP_MODELS`, and add it to `TaskSetup`.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .. import sweeps
from ..catalog import DEBUGGING_STRATEGIES as STRATEGY_NAMES
from ..catalog import DEBUGGING_STRATEGY_ALIASES, SELECTION_BUYS_LABELS, SELECTION_STRATEGIES
from ..catalog import DEFAULT_DEBUGGING_MODEL, DEFAULT_MODEL, MODEL_NAMES
from .loader import ConfigError, ConfigIssue, Loc, YamlDocument, format_loc, load_yaml, read_config_text

#: The track of a file that does not say (the DataPerf reference files do not).
DEFAULT_TRACK = "debugging"
#: Largest training set of a task (the evaluation retrains once per budget).
MAX_TRAIN_SIZE = 100_000
#: Largest validation or test set of a task.
MAX_SPLIT_SIZE = 1_000_000
#: Largest fraction of flipped training labels: above it the labels carry almost no signal.
MAX_NOISE_LEVEL = 0.9
#: Most tasks in one file.
MAX_TASKS = 100
#: Largest seed (numpy's seeds are 32-bit).
MAX_SEED = 2**32 - 1
#: Embedding length bounds of the synthetic dataset.
MIN_DIM, MAX_DIM = 2, 2048
#: Largest embedding length of a selection dataset (the official files have 256).
MAX_SELECTION_DIM = 8192
#: Most values of one swept field, and most repeats (the grid bound applies on top).
MAX_SWEEP_VALUES, MAX_REPEATS = 100, 100
#: Most cells of a sweep grid (see dataperf_appliance.sweeps.grid_size).
MAX_GRID_CELLS = sweeps.MAX_CELLS
#: Longest name (data_id, dataset, method) and longest folder path.
MAX_NAME_LENGTH, MAX_PATH_LENGTH = 100, 200

# Names become parts of file names under the data root
# ({data_id}_train_..., {data_id}_{method}.txt, datasets/<dataset>/), so they
# are restricted to characters that cannot leave a folder or surprise a shell.
# The first character must be a letter or digit: that rules out ".", "..",
# hidden files and names that look like command-line options.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(value: str) -> str:
    """`value` if it is a safe name (``digit-0``, ``my_method.v2``); ValueError otherwise."""
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME.fullmatch(value):
        raise ValueError(f"{_shorten(value)!r} is not a safe name: use letters, digits, '.', '_' and '-', "
                         "starting with a letter or digit (it becomes part of a file name)")
    return value


def check_folder(value: str) -> str:
    """`value` if it is a relative folder inside the data root (``embeddings/``, ``a/b``); ValueError otherwise."""
    if len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"is longer than {MAX_PATH_LENGTH} characters")
    parts = value[:-1].split("/") if value.endswith("/") else value.split("/")
    if not all(_NAME.fullmatch(part) for part in parts):
        raise ValueError(f"{_shorten(value)!r} is not a safe relative folder: write names of letters, digits, "
                         "'.', '_' and '-' separated by '/', like 'embeddings/' (no '..', no leading '/', "
                         "no '\\' or drive letter)")
    return value


def check_data_file(value: str) -> str:
    """`value` if it is a relative file path inside the dataset folder (``test_sets/x.parquet``); else ValueError."""
    if len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"is longer than {MAX_PATH_LENGTH} characters")
    if not all(_NAME.fullmatch(part) for part in value.split("/")):
        raise ValueError(f"{_shorten(value)!r} is not a safe relative file path: write names of letters, digits, "
                         "'.', '_' and '-' separated by '/', like 'test_sets/alpha_test_set_Hawk_256.parquet' "
                         "(no '..', no leading '/', no '\\' or drive letter)")
    return value


def check_model_name(value: str) -> str:
    if value not in MODEL_NAMES:
        raise ValueError(f"unknown model {_shorten(value)!r}; choose one of: {', '.join(MODEL_NAMES)}")
    return value


def check_strategy_name(value: str) -> str:
    if value not in STRATEGY_NAMES and value not in DEBUGGING_STRATEGY_ALIASES:
        raise ValueError(f"unknown baseline {_shorten(value)!r}; choose one of: {', '.join(STRATEGY_NAMES)} "
                         "(your own methods go under submissions)")
    return value


def check_selection_strategy_name(value: str) -> str:
    if value not in SELECTION_STRATEGIES:
        raise ValueError(f"unknown strategy {_shorten(value)!r}; choose one of: {', '.join(SELECTION_STRATEGIES)} "
                         "(your own training sets go under submissions)")
    return value


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _task_pair(value: Any) -> Any:
    # Checked before the items, so that one path or three read as what they are, not as a missing item.
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"must be a pair [train_csv, test_parquet] of paths inside the dataset folder "
                         f"(train_csv may be null), got {_shown(value)}"
                         + (f" of {len(value)} item(s)" if isinstance(value, (list, tuple)) else ""))
    return value


SafeName = Annotated[str, Strict(), AfterValidator(check_name)]
Folder = Annotated[str, Strict(), AfterValidator(check_folder)]
DataFile = Annotated[str, Strict(), AfterValidator(check_data_file)]
ModelName = Annotated[str, Strict(), AfterValidator(check_model_name)]
StrategyName = Annotated[str, Strict(), AfterValidator(check_strategy_name)]
SelectionStrategyName = Annotated[str, Strict(), AfterValidator(check_selection_strategy_name)]
Seed = Annotated[int, Strict(), Field(ge=0, le=MAX_SEED)]
Repeats = Annotated[int, Strict(), Field(ge=1, le=MAX_REPEATS)]
TrainSize = Annotated[int, Strict(), Field(gt=0, le=MAX_TRAIN_SIZE)]
NoiseLevel = Annotated[float, Strict(), Field(ge=0, le=MAX_NOISE_LEVEL, allow_inf_nan=False)]
TaskPair = Annotated[tuple[DataFile | None, DataFile], BeforeValidator(_task_pair)]

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)


class FieldProblems(ValueError):
    """Raised by a model validator for problems of several fields at once.

    `problems` holds (loc relative to the model, message) pairs, so each can be
    reported at its own line; str() lists them for a caller of the model itself.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{format_loc(loc)}: {message}" for loc, message in problems))


def sweepable(item: Any) -> Any:
    """The type "one `item`, or a list of distinct `item`s to sweep over" (a list becomes a tuple).

    Each value is checked as `item` is; every problem is reported at its own
    list item (its line), with the same words as for a single value.
    """
    adapter = TypeAdapter(item)

    def problems_of(value: Any, where: Loc) -> list[tuple[Loc, str]]:
        try:
            adapter.validate_python(value)
        except ValidationError as error:
            return [(where, _message(e, None)) for e in error.errors()]
        return []

    def validate(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            problems = problems_of(value, ())
            if problems:
                raise FieldProblems(problems)
            return adapter.validate_python(value)
        if not value:
            raise FieldProblems([((), "must not be empty: give one value, or a list of the values to sweep")])
        if len(value) > MAX_SWEEP_VALUES:
            raise FieldProblems([((), f"a sweep takes at most {MAX_SWEEP_VALUES} values; this list has {len(value)}")])
        problems = [p for index, item_value in enumerate(value) for p in problems_of(item_value, (index,))]
        if not problems:
            problems += _duplicates(value, "", None, lambda v: v, what="item")
        if problems:
            raise FieldProblems(problems)
        return tuple(adapter.validate_python(item_value) for item_value in value)

    # Written back as the file gives it: one value, or a list.
    serialize = PlainSerializer(lambda value: list(value) if isinstance(value, tuple) else value)
    return Annotated[item | tuple[item, ...], PlainValidator(validate), serialize]


class Paths(BaseModel):
    """The DataPerf folders, relative to the dataset folder (inputs) or the run folder (outputs)."""

    model_config = _MODEL_CONFIG

    embedding_folder: Folder = Field("embeddings/", description="the train, val and test parquet files")
    groundtruth_folder: Folder = Field("data/", description="the dataset_{data_id}_train.csv ground truth files")
    submission_folder: Folder = Field("submissions/", description="the inspection orders, {data_id}_{method}.txt")
    results_folder: Folder = Field("results/", description="the {data_id}_evaluation.json files")


class DebuggingTask(BaseModel):
    """One binary task of the debugging track (DataPerf's keys, in DataPerf's order)."""

    model_config = _MODEL_CONFIG

    data_id: SafeName = Field(description="the task's name; its files are named after it")
    train_size: sweepable(TrainSize) = Field(
        description="training rows (every budget 1..train_size is evaluated); a list sweeps")
    noise_level: sweepable(NoiseLevel) = Field(description="fraction of the training labels flipped; a list sweeps")
    test_size: Annotated[int, Strict(), Field(gt=0, le=MAX_SPLIT_SIZE)] = Field(
        description="test rows: the accuracy of each curve point")
    val_size: Annotated[int, Strict(), Field(gt=0, le=MAX_SPLIT_SIZE)] = Field(
        description="validation rows with clean labels, given to the strategies")


class Baseline(BaseModel):
    """A cleaning strategy of the appliance to run on every task."""

    model_config = _MODEL_CONFIG

    name: StrategyName


class DebuggingSetup(BaseModel):
    """A valid ``task_setup.yml`` of the debugging track."""

    model_config = _MODEL_CONFIG

    track: Literal["debugging"] = "debugging"
    dataset: SafeName = Field("digits", description="digits, synthetic, or a folder under <data root>/datasets")
    model: sweepable(ModelName) = Field(DEFAULT_DEBUGGING_MODEL, description="the classifier retrained at every budget")
    seed: Seed = 0
    repeats: Repeats = Field(1, description="R: every sweep cell runs with the seeds seed..seed+R-1")
    eval_points: Annotated[int, Strict(), Field(ge=2)] | None = Field(
        None, description="null: every budget 1..train_size; N: N evenly spaced budgets")
    dim: Annotated[int, Strict(), Field(ge=MIN_DIM, le=MAX_DIM)] | None = Field(
        None, description="embedding length of the synthetic dataset (null: 256)")
    paths: Paths = Paths()
    tasks: Annotated[tuple[DebuggingTask, ...], Field(min_length=1, max_length=MAX_TASKS)]
    baselines: tuple[Baseline, ...] = ()
    submissions: tuple[SafeName, ...] = Field(
        (), description="your own methods: {submission_folder}/{data_id}_{method}.txt for every task")

    @model_validator(mode="after")
    def _check_across_fields(self) -> DebuggingSetup:
        problems = list(_duplicates(self.tasks, "tasks", "data_id", lambda t: t.data_id))
        problems += _duplicates(self.baselines, "baselines", "name", lambda b: b.name)
        problems += _duplicates(self.submissions, "submissions", None, lambda name: name)
        baseline_names = {b.name for b in self.baselines}
        problems += [(("submissions", index), f"{name!r} is also a baseline: the two would write the same "
                                              "submission files; rename your method")
                     for index, name in enumerate(self.submissions) if name in baseline_names]
        if not self.baselines and not self.submissions:
            problems.append((("baselines",), "nothing to evaluate: list at least one baseline or submission"))
        if self.eval_points is not None:
            size, data_id = min((min(sweeps.values(t.train_size)), t.data_id) for t in self.tasks)
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

    def dataset_problems(self, data_root: Path | None) -> list[tuple[Loc, str]]:
        """Problems of the tasks against the dataset, as (loc, message) pairs; [] when every task can run.

        An official dataset folder is looked for under `data_root`; with
        `data_root` None only the generated datasets are checked.
        """
        from ..datasets import size_problems  # pandas and pyarrow: loaded once a file gets this far
        problems: list[tuple[Loc, str]] = []
        for index, task in enumerate(self.tasks):
            # Every train size of a sweep with every noise level: each is a set of files.
            for size_index, train_size in enumerate(sweeps.values(task.train_size)):
                for noise_level in sweeps.values(task.noise_level):
                    sizes = {"train_size": train_size, "val_size": task.val_size, "test_size": task.test_size}
                    for field_name, message in size_problems(
                            self.dataset, task.data_id, sizes, data_root,
                            embedding_folder=self.paths.embedding_folder,
                            groundtruth_folder=self.paths.groundtruth_folder, noise_level=noise_level):
                        loc: Loc = ("tasks", index, field_name)
                        if field_name == "train_size" and isinstance(task.train_size, tuple):
                            loc += (size_index,)
                        if (loc, message) not in problems:
                            problems.append((loc, message))
        return problems

    @property
    def submission_folder(self) -> str:
        """Where a user's own submission files are, relative to the task_setup.yml."""
        return self.paths.submission_folder

    def to_yaml_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, str, numbers, None) in the file's key order; loads back to an equal setup.

        ``repeats`` is left out when it is 1, so a file written before sweeps
        existed (the debugging template still writes none) maps to the same keys.
        """
        return self.model_dump(mode="json", exclude={"repeats"} if self.repeats == 1 else None)


class SelectionSetup(BaseModel):
    """A valid ``task_setup.yaml`` of the selection track (the reference's keys, then the appliance's)."""

    model_config = _MODEL_CONFIG

    track: Literal["selection"] = "selection"
    dataset: SafeName = Field("digits", description="digits, or a folder under <data root>/datasets")
    model: sweepable(ModelName) = Field(DEFAULT_MODEL, description="the classifier fitted on each training set")
    seed: Seed = 0
    repeats: Repeats = Field(1, description="R: every sweep cell runs with the seeds seed..seed+R-1")
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
        (), description="your own methods: submissions/{task}_{method}.csv for every task")
    results_dir: Folder = Field("results", description="the reference's result files, inside the run folder")

    @model_validator(mode="after")
    def _check_across_fields(self) -> SelectionSetup:
        problems = list(_duplicates(self.eval_tasks, "eval_tasks", None, lambda name: name))
        problems += [(("eval_tasks", index), f"{name!r} is not one of the tasks ({', '.join(self.tasks)}); "
                                             "add its [train_csv, test_parquet] pair under tasks")
                     for index, name in enumerate(self.eval_tasks) if name not in self.tasks]
        problems += _duplicates(self.strategies, "strategies", None, lambda name: name)
        problems += _duplicates(self.submissions, "submissions", None, lambda name: name)
        for index, name in enumerate(self.submissions):
            if name in self.strategies:
                problems.append((("submissions", index), f"{name!r} is also a strategy: the two would write the "
                                                         "same training-set files; rename your method"))
            elif name == SELECTION_DATASET_CSV:
                problems.append((("submissions", index), f"{name!r} is the name under which each task's own "
                                                         "train csv is reported; rename your method"))
        if not self.strategies and not self.submissions:
            problems.append((("strategies",), "nothing to evaluate: list at least one strategy or submission"))
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

    def dataset_problems(self, data_root: Path | None) -> list[tuple[Loc, str]]:
        """Problems of the setup against its dataset, as (loc, message) pairs; [] when it can run.

        The digits are checked always (names, files, sizes); an official folder
        only with a `data_root`: its files must exist and the pool must hold
        every train_size. The embeddings' length is checked when they are read.
        """
        from ..selection import data  # numpy and the digits: loaded once a file gets this far

        if self.dataset == SELECTION_DIGITS:
            return self._digits_problems(data)
        if data_root is None:
            return []
        folder = data.dataset_dir(data_root, self.dataset)
        if not folder.is_dir():
            return [(("dataset",), f"dataset {self.dataset!r} not found: no folder {folder}")]
        problems: list[tuple[Loc, str]] = []
        pool = folder / self.emb_file
        if not pool.is_file():
            problems.append((("emb_file",), f"dataset {self.dataset!r} has no file {self.emb_file}"))
        else:
            problems += self._pool_size_problems(pool)
        buying = [name for name in self.strategies if name in SELECTION_BUYS_LABELS]
        for index, task in enumerate(self.eval_tasks):
            train_csv, test_parquet = self.tasks[task]
            for position, relative in ((0, train_csv), (1, test_parquet)):
                if relative is not None and not (folder / relative).is_file():
                    problems.append((("tasks", task, position), f"dataset {self.dataset!r} has no file {relative}"))
            for needed, why in ((data.examples_file_name(task), "its example positives"),
                                *([(data.labels_file_name(task), f"the pool labels the strategies "
                                                                 f"{', '.join(buying)} buy")] if buying else [])):
                if not (folder / needed).is_file():
                    problems.append((("eval_tasks", index), f"dataset {self.dataset!r} has no file {needed} "
                                                            f"({why}) for task {task}"))
        return problems

    def _pool_size_problems(self, pool: Path) -> list[tuple[Loc, str]]:
        from ..selection.files import parquet_rows

        try:
            rows = parquet_rows(pool)
        except Exception as error:  # noqa: BLE001 - any unreadable file is the user's to fix
            return [(("emb_file",), f"{self.emb_file} is not a readable parquet file ({error})")]
        return [(_sweep_loc(self.train_size, "train_size", index), f"{size} is more than the {rows} images of "
                                                                   f"the pool {self.emb_file}")
                for index, size in enumerate(sweeps.values(self.train_size)) if size > rows]

    def _digits_problems(self, data) -> list[tuple[Loc, str]]:
        problems: list[tuple[Loc, str]] = []
        if self.dim != data.DIGITS_DIM:
            return [(("dim",), f"the digits embeddings have {data.DIGITS_DIM} values; set dim to {data.DIGITS_DIM}")]
        if self.emb_file != data.pool_file_name(data.DIGITS_DIM):
            problems.append((("emb_file",), f"the digits pool is {data.pool_file_name(data.DIGITS_DIM)}"))
        for task, (train_csv, test_parquet) in self.tasks.items():
            if task not in data.TASK_IDS:
                problems.append((("tasks", task), f"unknown digits task {task!r}; choose one of "
                                                  f"{', '.join(data.TASK_IDS)}"))
                continue
            for position, given, generated in ((0, train_csv, data.random_train_file_name(task)),
                                               (1, test_parquet, data.test_file_name(task, data.DIGITS_DIM))):
                if given is not None and given != generated:
                    problems.append((("tasks", task, position), f"the digits file is {generated}"))
        for task in self.eval_tasks:
            if task not in data.TASK_IDS:
                continue
            largest = max(sweeps.values(self.train_size))
            for field_name, message in data.size_problems(task, train_size=largest, test_size=self.test_size,
                                                          seed=self.seed):
                loc = ("tasks", task) if field_name in ("tasks", "examples") else (field_name,)
                if field_name == "train_size":
                    loc = _sweep_loc(self.train_size, "train_size",
                                     list(sweeps.values(self.train_size)).index(largest))
                if (loc, message) not in problems:
                    problems.append((loc, message))
        return problems

    @property
    def submission_folder(self) -> str:
        """Where a user's own training sets are, relative to the task_setup.yaml."""
        return "submissions/"

    def to_yaml_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, str, numbers, None) in the file's key order; loads back to an equal setup."""
        return self.model_dump(mode="json")


#: The generated dataset of the selection track, and the name its tasks' own train csv is reported under.
SELECTION_DIGITS, SELECTION_DATASET_CSV = "digits", "train_csv"


def _sweep_loc(value: Any, field_name: str, index: int) -> Loc:
    """The loc of the `index`-th value of a sweepable field: the item of a list, else the field."""
    return (field_name, index) if isinstance(value, tuple) else (field_name,)


def _sweep_problems(setup) -> list[tuple[Loc, str]]:
    """The rules of sweeps common to both tracks: the grid bound, seeds in range, no user files."""
    if not sweeps.is_sweep(setup):
        return []
    problems: list[tuple[Loc, str]] = []
    written = sweeps.swept_fields(setup)  # the locs of the values that make it a sweep, in file order
    cells = sweeps.grid_size(setup)
    if cells > MAX_GRID_CELLS:
        problems.append((written[0], f"the sweep has {cells:,} cells ({sweeps.describe_grid(setup)}); at most "
                                     f"{MAX_GRID_CELLS} are run: give fewer values or repeats"))
    if setup.seed + setup.repeats - 1 > MAX_SEED:
        problems.append((("repeats",), f"seed + repeats - 1 = {setup.seed + setup.repeats - 1} is more than "
                                       f"{MAX_SEED}; lower the seed"))
    if setup.submissions:
        problems.append((("submissions",), "your own files cannot be part of a sweep (a file fits one train size "
                                           "and seed): evaluate them in a run without lists or repeats"))
    return problems


def _duplicates(items, key: str, field_name: str | None, name_of, what: str = "") -> Iterator[tuple[Loc, str]]:
    """(loc, message) of every item whose name an earlier item has; `key` "" for a list of the field itself."""
    first_index: dict[Any, int] = {}
    for index, item in enumerate(items):
        name = name_of(item)
        if name in first_index:
            loc = tuple(part for part in (key, index, field_name) if part not in ("", None))
            first = f"{key}[{first_index[name]}]" if key else f"{what} {first_index[name]}"
            yield loc, f"{name!r} is listed twice (first as {first})"
        else:
            first_index[name] = index


#: The setup model of each track, by the value of its `track` key.
SETUP_MODELS: dict[str, type[BaseModel]] = {"debugging": DebuggingSetup, "selection": SelectionSetup}
#: A validated setup of any track.
TaskSetup = Annotated[DebuggingSetup | SelectionSetup, Field(discriminator="track")]


# --- from pydantic errors to ConfigIssues ---------------------------------------------------

_TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "model_type": "must be a mapping (key: value lines)",
    "dict_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "finite_number": "must be a finite number",
}


def _shown(value: Any) -> str:
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {_shorten(value, 40)!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _unwrap(annotation: Any) -> Any:
    """The model type inside Annotated[...], X | None, tuple[X, ...] and list[X], if any."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is None:
            return annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
        if origin is Annotated or origin in (tuple, list, typing.Union, types.UnionType):
            if not args:
                return None
            annotation = args[0]
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class of the mapping at `loc` under `model`, or None if it is not a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # the item type was reached when its list field was unwrapped
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = _unwrap(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


# Keys of the DataPerf selection reference's task_setup.yaml that the appliance has no use for.
_SELECTION_REFERENCE_ONLY = {
    "spark_driver_memory": "the appliance reads the files without Spark: delete this key",
    "data_dir": "paths are inside the dataset folder <data root>/datasets/<dataset>: delete this key",
    "docker_data_dir": "paths are inside the dataset folder <data root>/datasets/<dataset>: delete this key",
}


def _unknown_key_message(model: type[BaseModel], loc: Loc, value: Any = None) -> str:
    key = str(loc[-1])
    owner = _model_at(model, loc[:-1])
    if owner is None:
        return f"unknown key {key!r}"
    allowed = list(owner.model_fields)
    message = f"unknown key {_shorten(key)!r}; allowed here: {', '.join(allowed)}"
    if owner is SelectionSetup and key in _SELECTION_REFERENCE_ONLY:
        return f"{message} ({_SELECTION_REFERENCE_ONLY[key]})"
    if owner is SelectionSetup and isinstance(value, list) and len(value) == 2:
        # The reference writes each task's pair at the top level; here they are grouped under `tasks`.
        return f"{message} (a task's [train_csv, test_parquet] pair goes under tasks:, as tasks: {{{key}: [...]}})"
    close = difflib.get_close_matches(key, allowed, n=1)
    return message + (f" (did you mean {close[0]!r}?)" if close else "")


def _message(error: dict, model: type[BaseModel] | None) -> str:
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden" and model is not None:
        return _unknown_key_message(model, loc, error.get("input"))
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, got {_shown(error.get('input'))}"
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    return (error["msg"].replace("Input should be", "must be").replace("List should have", "must have")
            .replace("Tuple should have", "must have").replace(" after validation", ""))


def validation_issues(error: ValidationError, document: YamlDocument, model: type[BaseModel]) -> list[ConfigIssue]:
    """Every pydantic error of validating `document` with `model`, as ConfigIssues at their lines."""
    errors = error.errors()
    # A list whose items failed is also "too short after validation" (the
    # failed items do not count): that says nothing new, so it is dropped.
    failed_inside = {tuple(e["loc"][:end]) for e in errors for end in range(len(e["loc"]))}
    issues = []
    for item in errors:
        # pydantic marks a mapping key that failed with a "[key]" part; the key itself is the place.
        loc = tuple(part for part in item["loc"] if part != "[key]")
        if item["type"] == "too_short" and loc in failed_inside:
            continue
        context_error = item.get("ctx", {}).get("error")
        if isinstance(context_error, FieldProblems):
            issues += [document.issue(loc + sub_loc, message) for sub_loc, message in context_error.problems]
        else:
            issues.append(document.issue(loc, _message(item, model)))
    return issues


def parse_task_setup(text: str, *, filename: str = "task_setup.yml", data_root: Path | None = None) -> TaskSetup:
    """Validate the text of a ``task_setup.yml`` and return the setup it describes.

    `filename` names the file in messages. `data_root` is where official
    dataset folders are looked for (``<data_root>/datasets/<dataset>``); with
    None, only the generated datasets (digits, synthetic) are checked against
    their tasks. A missing ``track`` means the debugging track.

    Raises ConfigError listing every problem found, each with its line,
    column and field. Read-only: nothing is written anywhere.
    """
    document = load_yaml(text, filename=filename)
    issues = list(document.issues)
    selection_keys = [key for key in ("emb_file", "eval_tasks") if key in document.data]
    if "track" not in document.data and selection_keys:
        # Without `track` a file is the debugging track's (the reference's debugging files have none); a
        # selection file that forgot it would otherwise get a dozen unknown-key errors instead of the one fix.
        line, column = document.position((selection_keys[0],))
        raise ConfigError(issues + [ConfigIssue(document.filename, line, column, "track", (
            f"no track: a file without one is the debugging track's, but this one has the selection track's "
            f"{' and '.join(selection_keys)}; add the line 'track: selection'"))])
    track = document.data.get("track", DEFAULT_TRACK)
    model = SETUP_MODELS.get(track) if isinstance(track, str) else None
    if model is None:
        raise ConfigError(issues + [document.issue(("track",), f"unknown track {track!r}; choose one of: "
                                                               f"{', '.join(SETUP_MODELS)}")])
    try:
        setup = model.model_validate(document.data)
    except ValidationError as error:
        raise ConfigError(issues + validation_issues(error, document, model)) from None
    issues += [document.issue(loc, message) for loc, message in setup.dataset_problems(data_root)]
    if issues:
        raise ConfigError(issues)
    return setup


def load_task_setup(path: str | os.PathLike, *, data_root: Path | None = None) -> TaskSetup:
    """Read and validate the ``task_setup.yml`` at `path` (see `parse_task_setup`).

    A file over `loader.MAX_FILE_BYTES` is refused before it is read. Raises
    ConfigError for an invalid file, OSError when it cannot be read.
    Read-only: a rejected file changes nothing on disk.
    """
    text = read_config_text(path)
    return parse_task_setup(text, filename=str(path), data_root=data_root)
