"""The selection track: choose a training set from a pool, scored by the classifier fitted on it.

Its stages are `dataperf_appliance.selection.benchmark`'s; its official
evaluator is CoactiveAI/dataperf-vision-selection. The engine's modules are
imported when a stage runs, so the config, the CLI and the pages load fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ..config import SELECTION_DIGITS, Loc, SelectionSetup, catalog, grid, sweep_loc, values
from ..parallel import ProgressCallback
from .engine import EngineTrack
from .limits import RunEstimate, counted, fits_field, limit_problems

#: Repeats of the default selection run (new digits and random choices each): with 10, uncertainty and
#: balanced_random are told from random over the mean of the tasks on F1 (Holm-adjusted p < 0.05), and the
#: run takes about 6 s of the command on 2 cores (5 repeats leave them all not significant).
DEFAULT_REPEATS = 10


class SelectionTrack(EngineTrack):
    name = "selection"
    setup_model = SelectionSetup
    # The selection reference calls its file task_setup.yaml.
    template = "selection_task_setup.yaml.j2"
    defaults = {
        "track": "selection",
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
    }
    presets: dict = {}
    builtin_datasets = (SELECTION_DIGITS,)
    strategies = catalog.SELECTION_STRATEGIES
    reference_model = catalog.SELECTION_REFERENCE_MODEL
    headline_metrics = catalog.SELECTION_HEADLINE_METRICS
    main_metric = headline_metrics[0]
    lower_is_better = catalog.LOWER_IS_BETTER[main_metric]
    sweep_metrics = catalog.SELECTION_SWEEP_METRICS
    submission_suffix = ".csv"
    fits_shared_by_strategies = False
    result_columns = ("accuracy", "precision", "recall", "f1", "train_size", "positives", "wrong_labels", "time_s",
                      "kind")
    has_curves = False
    has_budget = True

    def data_problems(self, setup: SelectionSetup, data_root: Path | None) -> list[tuple[Loc, str]]:
        return data_problems(setup, data_root)

    def engine(self):
        from ..selection import benchmark

        return benchmark

    def replicate_curves(self, run: Any) -> dict[str, dict]:
        return {}  # a selection method is one point, not a curve

    def export_official(self, setup: SelectionSetup, manifest: dict, results: dict, run_dir: Path,
                        data_root: Path, staging: Path, notes: list[str]) -> list[Path]:
        from ..official import export

        return export.export_selection(setup, manifest, results, run_dir, data_root, staging, notes)

    def evaluate_official(self, folder: Path, setup: Any, *, model: str, seed: int, n_jobs: int,
                          now: dt.datetime | None, progress: ProgressCallback | None) -> Any:
        from ..official import evaluate

        return evaluate.evaluate_selection(folder, setup, model=model, seed=seed, now=now, progress=progress)


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
    from ..datasets import digits
    from ..datasets.dataperf_files import embedding_footprint
    from ..selection import data, files

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
    from ..selection import data  # numpy and the digits: loaded once a file gets this far


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
    from ..selection.files import parquet_rows

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

