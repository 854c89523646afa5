"""The debugging track: rank the training points so that fixing the first ones repairs the most mislabels.

Its setup model, its checks (of a setup against its dataset, of a dataset
folder, of a user's order file) and its record in the registry (`TRACK`).
Its stages are `dataperf_appliance.engine.debugging.debugging_task`'s; its official
evaluator is DS3Lab/dataperf-vision-debugging. The engine's modules are
imported when a stage runs, so the config, the CLI and the pages load fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, Strict, model_validator

from dataperf_appliance.config import METHOD_PARAMS, Baseline, DebuggingTask, Loc, MethodFile, Paths, TaskSetup, catalog, grid, values
from dataperf_appliance.config.grid import Cell
from dataperf_appliance.config.issues import FieldProblems
from dataperf_appliance.config.setups import method_name_problems, sweep_problems
from dataperf_appliance.config.catalog import DEBUGGING_LIBRARY_METHODS, DEFAULT_DEBUGGING_MODEL
from dataperf_appliance.config.types import MAX_DIM, MAX_TASKS, MIN_DIM, ModelName, Repeats, SafeName, Seed, duplicates, sweepable
from dataperf_appliance.tracks.limits import RunEstimate, counted, fits_field, limit_problems
from dataperf_appliance.tracks.protocol import CURVE, DatasetFolder, OfficialEvaluator, Track

NAME = "debugging"

#: Repeats of the default debugging run (new noise and random order each): with 6, every default method is told
#: from random over the mean of the tasks (paired t-test on fraction_fixes, Holm-adjusted p < 0.05), and
#: knn_shapley on two of the three tasks alone.
DEFAULT_REPEATS = 6


#: The arena: every method of the appliance and of the libraries (DataPerf's four baselines among them) on the
#: default tasks with repeats, for the figure of every method's quality against its cost. The training sets are
#: smaller than the default's so that the Monte Carlo methods (mc_shapley: 100 permutations of XGBoost fits)
#: finish in minutes on 2 cores.
ARENA = {"strategies": list(catalog.DEBUGGING_BASELINES), "repeats": 3, "train_size": 100, "test_size": 100}


class DebuggingSetup(TaskSetup):
    """A valid ``task_setup.yml`` of the debugging track."""

    track: Literal["debugging"] = NAME
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
        problems += method_name_problems(self.methods, {"baseline": baseline_names,
                                                        "submission": set(self.submissions)})
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
        problems += sweep_problems(self)
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def submission_folder(self) -> str:
        """Where a user's own submission files are, relative to the task_setup.yml."""
        return self.paths.submission_folder


def data_problems(setup: DebuggingSetup, data_root: Path | None) -> list[tuple[Loc, str]]:
    """Problems of the tasks against the dataset, as (loc, message) pairs; [] when every task can run.

    An official dataset folder is looked for under `data_root`; with
    `data_root` None only the generated datasets are checked.
    """
    from dataperf_appliance.engine.datasets import size_problems  # pandas and pyarrow: loaded once a file gets this far

    problems: list[tuple[Loc, str]] = []
    for index, task in enumerate(setup.tasks):
        # Every train size of a sweep with every noise level: each is a set of files.
        for size_index, train_size in enumerate(values(task.train_size)):
            for noise_level in values(task.noise_level):
                sizes = {"train_size": train_size, "val_size": task.val_size, "test_size": task.test_size}
                for field_name, message in size_problems(
                        setup.dataset, task.data_id, sizes, data_root,
                        embedding_folder=setup.paths.embedding_folder,
                        groundtruth_folder=setup.paths.groundtruth_folder, noise_level=noise_level):
                    loc: Loc = ("tasks", index, field_name)
                    if field_name == "train_size" and isinstance(task.train_size, tuple):
                        loc += (size_index,)
                    if (loc, message) not in problems:
                        problems.append((loc, message))
    return problems + limit_problems(run_estimate(setup, data_root))


def run_estimate(setup: DebuggingSetup, data_root: Path | None) -> RunEstimate:
    """What the setup needs (see `limits`).

    Memory: every task's train, val and test embeddings at its largest train
    size, as the engine holds them (`DEBUGGING_EMBEDDING_DTYPE`), all at once:
    the CLI evaluates a run's tasks in one process, and the DAG's evaluate
    instances hold theirs side by side. An official folder's sizes are read
    from its files' footers (unknown without a data root or its files).
    Fits: per cell of the grid, `evaluation.most_trainings` with every method.
    """
    from dataperf_appliance.engine.datasets import GENERATED, dataset_dir, digits, flipped_count, synthetic
    from dataperf_appliance.engine.datasets.dataperf_files import (
        DEBUGGING_EMBEDDING_COLUMN,
        DEBUGGING_EMBEDDING_DTYPE,
        embedding_footprint,
        task_file_paths,
    )
    from dataperf_appliance.engine.debugging.debugging_evaluation import most_trainings

    dtype = DEBUGGING_EMBEDDING_DTYPE
    tasks = counted(len(setup.tasks), "task")
    memory: int | None = None
    if setup.dataset in GENERATED:
        dim = digits.EMBEDDING_DIM if setup.dataset == digits.NAME else setup.dim or synthetic.DEFAULT_DIM
        rows = [max(values(task.train_size)) + task.val_size + task.test_size for task in setup.tasks]
        memory = sum(rows) * dim * dtype.itemsize
        held = counted(rows[0], "row") if len(set(rows)) == 1 else f"{sum(rows):,} rows in all"
        memory_terms = f"{tasks} x {held} x {counted(dim, 'value')}, {dtype.name}"
    else:
        memory_terms = f"the train, val and test files of {tasks}, {dtype.name}"
        if data_root is not None:
            folder = dataset_dir(data_root, setup.dataset)
            try:
                memory = sum(max(sum(embedding_footprint(path, DEBUGGING_EMBEDDING_COLUMN)[1]
                                     for name, path in task_file_paths(
                                         folder, setup.paths.embedding_folder, setup.paths.groundtruth_folder,
                                         task.data_id, train_size, noise_level, task.val_size,
                                         task.test_size).items() if name != "groundtruth")
                                 for train_size in values(task.train_size)
                                 for noise_level in values(task.noise_level))
                             for task in setup.tasks) * dtype.itemsize
            except ValueError:  # a missing or unreadable file: the size checks name it, or reading it will
                memory = None
    methods = len(setup.method_names())
    per_cell = [most_trainings(cell.value("train_size"),
                               flipped_count(cell.value("noise_level"), cell.value("train_size")),
                               setup.eval_points, methods) for cell in grid.cells(setup)]
    fits_terms = (f"{counted(len(per_cell), 'cell')}: {grid.describe_grid(setup)}; in each, up to "
                  f"{max(per_cell):,} distinct training sets of the fixing curves of {counted(methods, 'method')}")
    return RunEstimate(memory, memory_terms, ("tasks",), sum(per_cell), fits_terms, fits_field(setup),
                       fits_advice="give fewer repeats, tasks, settings or methods, or set eval_points (null "
                                   "evaluates every budget)")



# ---- a user's files ----------------------------------------------------------------------------

def submission_problems(path: Path, train_size: int) -> list[str]:
    """The problems of a user's order file for a task of `train_size` rows, each naming its line."""
    from dataperf_appliance.engine.debugging.submissions import SubmissionError, read_submission

    try:
        read_submission(path, train_size)
    except SubmissionError as error:
        return error.problems
    return []


_TRAIN = re.compile(r"^(?P<data_id>.+)_train_(?P<noise>[0-9.]+)_(?P<size>[0-9]+)\.parquet$")
_SPLIT = re.compile(r"^(?P<data_id>.+)_(?P<split>val|test)_(?P<size>[0-9]+)\.parquet$")


def dataset_folder(folder: Path) -> DatasetFolder | None:
    """The tasks and problems of a dataset folder in the DataPerf debugging layout (dataperf-formats.md):
    ``embeddings/{data_id}_train_{noise_level}_{train_size}.parquet``, ``embeddings/{data_id}_val_{n}.parquet``,
    ``embeddings/{data_id}_test_{n}.parquet`` (columns encoding, label, filename) and
    ``data/dataset_{data_id}_train.csv`` (ImageID, hv_label) for each task; None without a train file."""
    from dataperf_appliance.engine.datasets.dataperf_files import read_debugging_task, read_embedding_parquet

    trains: dict[str, list[Path]] = {}
    splits: dict[tuple[str, str], list[Path]] = {}
    for path in sorted((folder / "embeddings").glob("*.parquet")):
        if match := _TRAIN.match(path.name):
            trains.setdefault(match["data_id"], []).append(path)
        elif match := _SPLIT.match(path.name):
            splits.setdefault((match["data_id"], match["split"]), []).append(path)
    if not trains:
        return None
    problems: list[str] = []
    for data_id, train_files in sorted(trains.items()):
        groundtruth = folder / "data" / f"dataset_{data_id}_train.csv"
        missing = [f"embeddings/{data_id}_{split}_<size>.parquet" for split in ("val", "test")
                   if not splits.get((data_id, split))]
        if not groundtruth.exists():
            missing.append(f"data/dataset_{data_id}_train.csv")
        if missing:
            problems.append(f"task {data_id}: missing {', '.join(missing)}")
            continue
        for train in train_files:
            files = {"train": train, "val": splits[(data_id, "val")][0], "test": splits[(data_id, "test")][0],
                     "groundtruth": groundtruth}
            try:
                read_debugging_task(files, data_id)
            except (ValueError, OSError, KeyError) as error:
                problems.append(f"task {data_id} ({train.name}): {error}")
        for extra in splits[(data_id, "val")][1:] + splits[(data_id, "test")][1:]:
            try:
                read_embedding_parquet(extra)
            except (ValueError, OSError) as error:
                problems.append(f"{extra.name}: {error}")
    return DatasetFolder(sorted(trains), problems)


# ---- the registry's record -----------------------------------------------------------------------

def _stages():
    from dataperf_appliance.engine.debugging import debugging_task

    return debugging_task


def _official() -> OfficialEvaluator:
    from dataperf_appliance.engine.official import evaluate, export, setup

    return OfficialEvaluator(setup.DEBUGGING_FILE, setup.OfficialDebuggingSetup, evaluate.evaluate_debugging,
                             export.export_debugging)


TRACK = Track(
    name=NAME,
    setup_model=DebuggingSetup,
    template="debugging_task_setup.yml.j2",
    defaults={
        "track": NAME,
        "dataset": "digits",
        "model": catalog.DEFAULT_DEBUGGING_MODEL,
        "seed": 0,
        "repeats": DEFAULT_REPEATS,
        "eval_points": None,
        "dim": None,
        # Digits the noise really hurts: on digit-0 even 30% flipped labels keep the
        # accuracy within DataPerf's 95% target, so every strategy would score 0.
        "tasks": ["digit-3", "digit-8", "digit-9"],
        "train_size": 200,
        "val_size": 40,
        "test_size": 100,
        "noise_level": 0.3,
        "strategies": ["random", "knn_shapley", "confident_learning", "loss"],
        "submissions": [],
        "methods": [],
        # Written under each library method chosen in strategies: its constructor's defaults, unless changed.
        METHOD_PARAMS: catalog.library_method_defaults(),
    },
    data_problems=data_problems,
    stages=_stages,
    headline_metrics=catalog.DEBUGGING_HEADLINE_METRICS,
    sweep_metrics=catalog.DEBUGGING_SWEEP_METRICS,
    result_columns=(*catalog.DEBUGGING_HEADLINE_METRICS, "time_s", "kind"),
    result_kind=CURVE,
    submission_suffix=".txt",
    presets={"arena": ARENA},
    builtin_datasets=("digits", "synthetic"),
    strategies=catalog.DEBUGGING_BASELINES,
    task_columns=("train_size", "mislabeled", "before_acc", "clean_acc", "trainings"),
    submission_problems=submission_problems,
    dataset_folder=dataset_folder,
    official=_official,
)
