"""The debugging track: rank the training points so that fixing the first ones repairs the most mislabels.

Its stages are `dataperf_appliance.debugging.benchmark`'s; its official
evaluator is DS3Lab/dataperf-vision-debugging. The engine's modules are
imported when a stage runs, so the config, the CLI and the pages load fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ..config import METHOD_PARAMS, DebuggingSetup, Loc, catalog, grid, values
from ..parallel import ProgressCallback
from .engine import EngineTrack
from .limits import RunEstimate, counted, fits_field, limit_problems

#: Repeats of the default debugging run (new noise and random order each): with 6, every default method is told
#: from random over the mean of the tasks (paired t-test on fraction_fixes, Holm-adjusted p < 0.05), and
#: knn_shapley on two of the three tasks alone.
DEFAULT_REPEATS = 6


#: The arena: every method of the appliance and of the libraries (DataPerf's four baselines among them) on the
#: default tasks with repeats, for the figure of every method's quality against its cost. The training sets are
#: smaller than the default's so that the Monte Carlo methods (mc_shapley: 100 permutations of XGBoost fits)
#: finish in minutes on 2 cores.
ARENA = {"strategies": list(catalog.DEBUGGING_BASELINES), "repeats": 3, "train_size": 100, "test_size": 100}


class DebuggingTrack(EngineTrack):
    name = "debugging"
    setup_model = DebuggingSetup
    template = "debugging_task_setup.yml.j2"
    defaults = {
        "track": "debugging",
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
    }
    presets = {"arena": ARENA}
    builtin_datasets = ("digits", "synthetic")
    strategies = catalog.DEBUGGING_BASELINES
    reference_model = catalog.DATAPERF_REFERENCE_MODEL
    headline_metrics = catalog.DEBUGGING_HEADLINE_METRICS
    main_metric = headline_metrics[0]
    lower_is_better = catalog.LOWER_IS_BETTER[main_metric]
    sweep_metrics = catalog.DEBUGGING_SWEEP_METRICS
    submission_suffix = ".txt"
    fits_shared_by_strategies = True
    result_columns = (*headline_metrics, "time_s", "kind")
    has_curves = True
    has_budget = False

    def data_problems(self, setup: DebuggingSetup, data_root: Path | None) -> list[tuple[Loc, str]]:
        return data_problems(setup, data_root)

    def engine(self):
        from ..debugging import benchmark

        return benchmark

    def replicate_curves(self, run: Any) -> dict[str, dict]:
        return self.engine().replicate_curves(run)

    def export_official(self, setup: DebuggingSetup, manifest: dict, results: dict, run_dir: Path,
                        data_root: Path, staging: Path, notes: list[str]) -> list[Path]:
        from ..official import export

        return export.export_debugging(setup, manifest, results, run_dir, data_root, staging, notes)

    def evaluate_official(self, folder: Path, setup: Any, *, model: str, seed: int, n_jobs: int,
                          now: dt.datetime | None, progress: ProgressCallback | None) -> Any:
        from ..official import evaluate

        return evaluate.evaluate_debugging(folder, setup, model=model, seed=seed, n_jobs=n_jobs, progress=progress)


def data_problems(setup: DebuggingSetup, data_root: Path | None) -> list[tuple[Loc, str]]:
    """Problems of the tasks against the dataset, as (loc, message) pairs; [] when every task can run.

    An official dataset folder is looked for under `data_root`; with
    `data_root` None only the generated datasets are checked.
    """
    from ..datasets import size_problems  # pandas and pyarrow: loaded once a file gets this far

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
    from ..datasets import GENERATED, dataset_dir, digits, flipped_count, synthetic
    from ..datasets.dataperf_files import (
        DEBUGGING_EMBEDDING_COLUMN,
        DEBUGGING_EMBEDDING_DTYPE,
        embedding_footprint,
        task_file_paths,
    )
    from ..debugging.evaluation import most_trainings

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

