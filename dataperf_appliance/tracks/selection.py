"""The selection track: choose a training set from a pool, scored by the classifier fitted on it.

Its setup model, its checks (of a setup against its dataset, of a dataset
folder) and its record in the registry (`TRACK`). Its stages are
`dataperf_appliance.engine.selection.selection_task`'s; its official evaluator is
CoactiveAI/dataperf-vision-selection. The engine's modules are imported when
a stage runs, so the config, the CLI and the pages load fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, Strict, model_validator

from dataperf_appliance.config import (
    SELECTION_DATASET_CSV,
    SELECTION_DIGITS,
    Loc,
    MethodFile,
    TaskSetup,
    catalog,
    grid,
    sweep_loc,
    values,
)
from dataperf_appliance.config.catalog import DEFAULT_SELECTION_MODEL
from dataperf_appliance.config.grid import Cell
from dataperf_appliance.config.issues import FieldProblems
from dataperf_appliance.config.setups import method_name_problems, sweep_problems
from dataperf_appliance.config.types import (
    MAX_SELECTION_DIM,
    MAX_SPLIT_SIZE,
    MAX_TASKS,
    DataFile,
    Folder,
    ModelName,
    Repeats,
    SafeName,
    Seed,
    SelectionStrategyName,
    TaskPair,
    TrainSize,
    duplicates,
    sweepable,
)
from dataperf_appliance.tracks.limits import RunEstimate, counted, fits_field, limit_problems
from dataperf_appliance.tracks.protocol import POINT, DatasetFolder, OfficialEvaluator, Track

NAME = "selection"

#: Repeats of the default selection run (new digits and random choices each): with 10, uncertainty and
#: balanced_random are told from random over the mean of the tasks on F1 (Holm-adjusted p < 0.05), and the
#: run takes about 6 s of the command on 2 cores (5 repeats leave them all not significant).
DEFAULT_REPEATS = 10

# Keys of the DataPerf selection reference's task_setup.yaml that the appliance has no use for.
_SELECTION_REFERENCE_ONLY = {
    "spark_driver_memory": "the appliance reads the files without Spark: delete this key",
    "data_dir": "paths are inside the dataset folder <data root>/datasets/<dataset>: delete this key",
    "docker_data_dir": "paths are inside the dataset folder <data root>/datasets/<dataset>: delete this key",
}


class SelectionSetup(TaskSetup):
    """A valid ``task_setup.yaml`` of the selection track (the reference's keys, then the appliance's)."""

    track: Literal["selection"] = NAME
    dataset: SafeName = Field("digits", description="digits, or a folder under <data root>/datasets")
    model: sweepable(ModelName) = Field(DEFAULT_SELECTION_MODEL,
                                        description="the classifier fitted on each training set")
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
        problems += method_name_problems(self.methods, {"strategy": set(self.strategies),
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
        problems += sweep_problems(self)
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def submission_folder(self) -> str:
        """Where a user's own training sets are, relative to the task_setup.yaml."""
        return "submissions/"


def data_problems(setup: SelectionSetup, data_root: Path | None) -> list[tuple[Loc, str]]:
    """Problems of the setup against its dataset, as (loc, message) pairs; [] when it can run.

    The digits are checked always (names, files, sizes); an official folder
    only with a `data_root`: its files must exist and the pool must hold
    every train_size. The embeddings' length is checked when they are read.
    Then the run's size against the appliance's limits (`limits`).
    """
    return _dataset_problems(setup, data_root) + limit_problems(run_estimate(setup, data_root))


def run_estimate(setup: SelectionSetup, data_root: Path | None) -> RunEstimate:
    """What the setup needs (see `limits`).

    Memory: the pool and every evaluated task's test set, as they are read
    (a file's float precision kept), all at once: the tasks of a run share
    one pool in one process. An official folder's sizes are read from its
    files' footers (unknown without a data root or its files).
    Fits: one of the classifier per cell and method, and per cell of a task
    with its own train csv (scored too); a strategy's own fits are not counted.
    """
    from dataperf_appliance.engine.datasets import digits
    from dataperf_appliance.engine.datasets.dataperf_files import embedding_footprint
    from dataperf_appliance.engine.selection import data, files

    tests = counted(len(setup.eval_tasks), "test set")
    memory: int | None = None
    pool_bytes = test_bytes = 0
    memory_terms = f"the pool and {tests}"
    if setup.dataset == SELECTION_DIGITS:
        dtype = digits.embeddings().dtype
        pool_rows, test_rows = len(data.split_pool(setup.seed)[0]), len(setup.eval_tasks) * (setup.test_size or 0)
        pool_bytes, test_bytes = (rows * setup.dim * dtype.itemsize for rows in (pool_rows, test_rows))
        memory = pool_bytes + test_bytes
        memory_terms = (f"a pool of {counted(pool_rows, 'row')} and {tests} of {test_rows:,} rows in all, x "
                        f"{counted(setup.dim, 'value')}, {dtype.name}")
    elif data_root is not None:
        folder = data.dataset_dir(data_root, setup.dataset)
        try:
            pool_rows, pool_values, dtype = embedding_footprint(folder / setup.emb_file, files.EMBEDDING_COLUMN)
            found = [embedding_footprint(folder / setup.tasks[task][1], files.EMBEDDING_COLUMN)
                     for task in setup.eval_tasks]
        except ValueError:  # a missing or unreadable file: the checks above name it, or reading it will
            found = None
        if found is not None:
            pool_bytes = pool_values * dtype.itemsize
            test_bytes = sum(test_values * test_dtype.itemsize for _, test_values, test_dtype in found)
            memory = pool_bytes + test_bytes
            memory_terms = (f"a pool of {counted(pool_rows, 'row')} ({pool_values:,} values, {dtype.name}) and "
                            f"{tests} of {sum(rows for rows, _, _ in found):,} rows in all")
    # The pool is usually most of it; many or large test sets are the tasks' fault.
    memory_loc: Loc = ("tasks",) if test_bytes > pool_bytes else ("emb_file",)
    methods = len(setup.method_names())
    own_csv = {task for task in setup.eval_tasks if setup.tasks[task][0] is not None}
    per_cell = [methods + (cell.task in own_csv) for cell in grid.cells(setup)]
    fits_terms = (f"{counted(len(per_cell), 'cell')}: {grid.describe_grid(setup)}; in each, one per method "
                  f"({methods})" + (", and one for the task's own train csv" if own_csv else ""))
    return RunEstimate(memory, memory_terms, memory_loc, sum(per_cell), fits_terms, fits_field(setup))


def _dataset_problems(setup: SelectionSetup, data_root: Path | None) -> list[tuple[Loc, str]]:
    from dataperf_appliance.engine.selection import data


    if setup.dataset == SELECTION_DIGITS:
        return _digits_problems(setup, data)
    if data_root is None:
        return []
    folder = data.dataset_dir(data_root, setup.dataset)
    if not folder.is_dir():
        return [(("dataset",), f"dataset {setup.dataset!r} not found: no folder {folder}")]
    problems: list[tuple[Loc, str]] = []
    pool = folder / setup.emb_file
    if not pool.is_file():
        problems.append((("emb_file",), f"dataset {setup.dataset!r} has no file {setup.emb_file}"))
    else:
        problems += _pool_size_problems(setup, pool)
    buying = [name for name in setup.strategies if name in catalog.SELECTION_BUYS_LABELS]
    for index, task in enumerate(setup.eval_tasks):
        train_csv, test_parquet = setup.tasks[task]
        for position, relative in ((0, train_csv), (1, test_parquet)):
            if relative is not None and not (folder / relative).is_file():
                problems.append((("tasks", task, position), f"dataset {setup.dataset!r} has no file {relative}"))
        for needed, why in ((data.examples_file_name(task), "its example positives"),
                            *([(data.labels_file_name(task), f"the pool labels the strategies "
                                                             f"{', '.join(buying)} buy")] if buying else [])):
            if not (folder / needed).is_file():
                problems.append((("eval_tasks", index), f"dataset {setup.dataset!r} has no file {needed} "
                                                        f"({why}) for task {task}"))
    return problems

def _pool_size_problems(setup: SelectionSetup, pool: Path) -> list[tuple[Loc, str]]:
    from dataperf_appliance.engine.selection.files import parquet_rows

    try:
        rows = parquet_rows(pool)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's to fix
        return [(("emb_file",), f"{setup.emb_file} is not a readable parquet file ({error})")]
    return [(sweep_loc(setup.train_size, "train_size", index), f"{size} is more than the {rows} images of "
                                                               f"the pool {setup.emb_file}")
            for index, size in enumerate(values(setup.train_size)) if size > rows]

def _digits_problems(setup: SelectionSetup, data) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    if setup.dim != data.DIGITS_DIM:
        return [(("dim",), f"the digits embeddings have {data.DIGITS_DIM} values; set dim to {data.DIGITS_DIM}")]
    if setup.emb_file != data.pool_file_name(data.DIGITS_DIM):
        problems.append((("emb_file",), f"the digits pool is {data.pool_file_name(data.DIGITS_DIM)}"))
    for task, (train_csv, test_parquet) in setup.tasks.items():
        if task not in data.TASK_IDS:
            problems.append((("tasks", task), f"unknown digits task {task!r}; choose one of "
                                              f"{', '.join(data.TASK_IDS)}"))
            continue
        for position, given, generated in ((0, train_csv, data.random_train_file_name(task)),
                                           (1, test_parquet, data.test_file_name(task, data.DIGITS_DIM))):
            if given is not None and given != generated:
                problems.append((("tasks", task, position), f"the digits file is {generated}"))
    for task in setup.eval_tasks:
        if task not in data.TASK_IDS:
            continue
        largest = max(values(setup.train_size))
        for field_name, message in data.size_problems(task, train_size=largest, test_size=setup.test_size,
                                                      seed=setup.seed):
            loc = ("tasks", task) if field_name in ("tasks", "examples") else (field_name,)
            if field_name == "train_size":
                loc = sweep_loc(setup.train_size, "train_size",
                                 list(values(setup.train_size)).index(largest))
            if (loc, message) not in problems:
                problems.append((loc, message))
    return problems



# ---- a dataset folder ----------------------------------------------------------------------------

def dataset_folder(folder: Path) -> DatasetFolder | None:
    """The tasks and problems of a dataset folder in the DataPerf selection layout (dataperf-formats.md): a
    candidate pool parquet (ImageID, embedding), a test-set parquet per task (ImageID, embedding, Confidence),
    ``examples/alpha_example_set_{task}.csv`` per task, and optionally training-set csvs (ImageID,Confidence)
    whose ImageIDs must be in the pool; None without a parquet file."""
    import pyarrow.parquet as pq

    from dataperf_appliance.engine.selection import files

    parquets = sorted(folder.rglob("*.parquet"))
    if not parquets:
        return None
    problems: list[str] = []
    pools, tests = [], []
    for path in parquets:
        try:
            columns = set(pq.read_schema(path).names)
        except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a bad file
            problems.append(f"{path.relative_to(folder)}: not a readable parquet file ({error})")
            continue
        (tests if files.LABEL_COLUMN in columns else pools).append(path)
    pool_ids: set[str] | None = None
    dims = set()
    for path in pools:
        try:
            pool = files.read_pool(path)
            dims.add(pool.embeddings.shape[1])
            pool_ids = set(pool.image_ids.tolist()) if pool_ids is None else pool_ids | set(pool.image_ids.tolist())
        except (ValueError, OSError) as error:
            problems.append(f"{path.relative_to(folder)}: {error}")
    for path in tests:
        try:
            dims.add(files.read_test_set(path).embeddings.shape[1])
        except (ValueError, OSError) as error:
            problems.append(f"{path.relative_to(folder)}: {error}")
    if not pools:
        problems.append("no candidate pool: a parquet file with the columns ImageID and embedding")
    if not tests:
        problems.append("no test set: a parquet file with the columns ImageID, embedding and Confidence")
    if len(dims) > 1:
        problems.append(f"the embeddings have different lengths: {sorted(dims)}")
    tasks = []
    for path in sorted((folder / "examples").glob("*.csv")):
        match = _EXAMPLES.match(path.name)
        if not match:
            continue
        tasks.append(match["task"])
        try:
            examples = files.read_examples(path)
            unknown = sorted(set(examples[files.ID_COLUMN]) - (pool_ids or set()))
            if pool_ids is not None and unknown:
                problems.append(f"{path.relative_to(folder)}: {len(unknown)} example ImageID(s) are not in "
                                f"the pool, e.g. {unknown[0]}")
        except (ValueError, OSError) as error:
            problems.append(f"{path.relative_to(folder)}: {error}")
    if not tasks:
        problems.append("no task: each task needs examples/alpha_example_set_<task>.csv")
    for path in sorted(folder.rglob("*.csv")):
        if path.parent.name == "examples" or pool_ids is None:
            continue
        header = path.read_bytes()[:200].decode("utf-8-sig", errors="replace").splitlines()[:1]
        if header and header[0].strip().replace(" ", "") == files.TRAINING_SET_HEADER:
            try:
                files.read_training_set(path, pool_ids)
            except files.TrainingSetError as error:  # one problem a line, each naming the file and row
                where = path.parent.relative_to(folder).as_posix()
                problems += [problem if where == "." else f"{where}/{problem}" for problem in error.problems]
            except (ValueError, OSError) as error:
                problems.append(f"{path.relative_to(folder)}: {error}")
    return DatasetFolder(tasks, problems)


_EXAMPLES = re.compile(r"^alpha_example_set_(?P<task>.+)\.csv$")


# ---- the registry's record -----------------------------------------------------------------------

def _stages():
    from dataperf_appliance.engine.selection import selection_task

    return selection_task


def _official() -> OfficialEvaluator:
    from dataperf_appliance.engine.official import evaluate, export, setup

    return OfficialEvaluator(setup.SELECTION_FILE, setup.OfficialSelectionSetup, evaluate.evaluate_selection,
                             export.export_selection)


TRACK = Track(
    name=NAME,
    setup_model=SelectionSetup,
    # The selection reference calls its file task_setup.yaml.
    template="selection_task_setup.yaml.j2",
    defaults={
        "track": NAME,
        "dataset": "digits",
        "model": catalog.DEFAULT_SELECTION_MODEL,
        "seed": 0,
        "repeats": DEFAULT_REPEATS,
        "dim": 128,
        "emb_file": "embeddings/train_emb_{dim}_dataperf.parquet",
        "train_size": 100,
        "test_size": 100,
        # A common digit, a rarer-looking one and a balanced task: balancing matters on the first two.
        "tasks": ["digit-0", "digit-3", "even-odd"],
        "train_csv": "train_sets/random_500_{task}.csv",
        "test_parquet": "test_sets/alpha_test_set_{task}_{dim}.parquet",
        "strategies": ["random", "balanced_random", "uncertainty", "diversity"],
        "submissions": [],
        "methods": [],
        "results_dir": "results",
    },
    data_problems=data_problems,
    stages=_stages,
    headline_metrics=catalog.SELECTION_HEADLINE_METRICS,
    sweep_metrics=catalog.SELECTION_SWEEP_METRICS,
    result_columns=("accuracy", "precision", "recall", "f1", "train_size", "positives", "wrong_labels", "time_s",
                    "kind"),
    result_kind=POINT,
    submission_suffix=".csv",
    builtin_datasets=(SELECTION_DIGITS,),
    strategies=catalog.SELECTION_STRATEGIES,
    dataset_folder=dataset_folder,
    official=_official,
)
