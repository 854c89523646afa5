"""The debugging track, stage by stage: prepare data, evaluate tasks, report.

Each stage is a plain function over a validated setup and folders, so the CLI
runs them in a row and the Airflow DAG runs them as separate tasks (one
`evaluate_tasks` call per benchmark task there).

Folders: `data_root` holds the datasets; `work_dir` is the run being written
(the staging folder of runs.py); `source_dir` is where the task_setup.yml
came from (a user's own submission files sit in its submission folder).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataperf_appliance.engine import datasets, stats
from dataperf_appliance.config import catalog
from dataperf_appliance.engine.datasets.dataperf_files import DebuggingTaskData
from dataperf_appliance.engine.methods import runner
from dataperf_appliance.engine.runs import PARTIAL, RESULTS, read_json, write_json
from dataperf_appliance.engine.debugging import debugging_strategies, submissions
from dataperf_appliance.engine.debugging.debugging_evaluation import TaskEvaluation, detection_metrics, evaluate_many, fraction_fixes, normalized_auc
from dataperf_appliance.engine.parallel import ProgressCallback

GALLERY_SIZE = 16


def task_spec(task) -> datasets.DebuggingTaskSpec:
    return datasets.DebuggingTaskSpec(task.data_id, task.train_size, task.noise_level, task.val_size, task.test_size)


def prepare_data(setup, data_root: Path) -> dict[str, dict[str, Path]]:
    """Bring every task's DataPerf files to the data root (generating embedded ones); {data_id: files}."""
    return {
        task.data_id: datasets.prepare_debugging_task(
            data_root, setup.dataset, task_spec(task), seed=setup.seed, dim=setup.dim,
            embedding_folder=setup.paths.embedding_folder, groundtruth_folder=setup.paths.groundtruth_folder)
        for task in setup.tasks
    }


def _user_orders(setup, task: DebuggingTaskData, source_dir: Path) -> dict[str, tuple[np.ndarray, float | None]]:
    folder = source_dir / setup.paths.submission_folder
    orders = {}
    for method in setup.submissions:
        path = folder / f"{task.data_id}_{method}.txt"
        order = submissions.read_submission(path, task.train_size)
        seconds = submissions.read_time_file(folder / f"time_{task.data_id}_{method}.txt")
        orders[method] = (submissions.complete_order(order, task.train_size), seconds)
    return orders


def _copy_user_files(source: Path, target: Path, data_id: str, method: str) -> None:
    # The run keeps the user's files exactly as given (not the completed order).
    target.mkdir(parents=True, exist_ok=True)
    for name in (f"{data_id}_{method}.txt", f"time_{data_id}_{method}.txt"):
        if (source / name).exists() and (source / name).resolve() != (target / name).resolve():
            shutil.copyfile(source / name, target / name)


def _method_outcomes(setup, task: DebuggingTaskData, source_dir: Path, data_root: Path) -> dict[str, runner.MethodOutcome]:
    """The libraries' baselines and the methods as code of the setup, each run on the task in a child process,
    in the official shapes (train_X (N, D) float32, labels (N, 1)), with the repeat's seed."""
    inputs = {"train_X": task.X_train.astype(np.float32, copy=False), "train_y": task.y_train.reshape(-1, 1),
              "val_X": task.X_val.astype(np.float32, copy=False), "val_y": task.y_val.reshape(-1, 1)}
    calls = [runner.library_call(b.name, b.params) for b in setup.baselines if b.name in catalog.DEBUGGING_LIBRARY_METHODS]
    calls += [runner.call_of(method, source_dir) for method in setup.methods]
    outcomes = {}
    for call in calls:
        outcome = runner.run_method(call, runner.APPRAISER, inputs, budget=task.train_size, seed=setup.seed,
                                    data_root=data_root)
        if not outcome.failed:
            outcome.answer["order"] = runner.order_of(outcome, task.train_size)
        outcomes[call.name] = outcome
    return outcomes


def _with_methods(result: dict, outcomes: dict[str, runner.MethodOutcome]) -> dict:
    """A task's result with its methods as code marked as such: their run's figures, or their failure."""
    for name, outcome in outcomes.items():
        if outcome.failed:
            result["strategies"][name] = {**runner.failed_entry(outcome, catalog.DEBUGGING_HEADLINE_METRICS),
                                          "curve": None, "first_flagged": []}
        else:
            result["strategies"][name]["method"] = outcome.record()
        if name in catalog.DEBUGGING_LIBRARY_METHODS:  # a library's method is a baseline, run as a method is
            result["strategies"][name]["kind"] = "baseline"
        else:
            result["strategies"][name]["kind"] = runner.METHOD_KIND
    return result


def _strategy_orders(setup, task: DebuggingTaskData) -> dict[str, tuple[np.ndarray, float]]:
    orders = {}
    for baseline in setup.baselines:
        if baseline.name in catalog.DEBUGGING_LIBRARY_METHODS:  # run in a child process (`_method_outcomes`)
            continue
        started = time.perf_counter()
        order = debugging_strategies.rank_training_points(baseline.name, task.X_train, task.y_train, task.X_val, task.y_val,
                                                seed=setup.seed, model=setup.model)
        orders[baseline.name] = (order, time.perf_counter() - started)
    return orders


def _first_flagged(task: DebuggingTaskData, order: np.ndarray) -> list[dict]:
    return [{"row": int(row), "image_id": str(task.train_ids[row]), "given_label": int(task.y_train[row]),
             "true_label": int(task.y_true[row])} for row in order[:GALLERY_SIZE]]


def task_result(task: DebuggingTaskData, evaluation: TaskEvaluation,
                orders: dict[str, tuple[np.ndarray, float | None]], user_methods: set[str]) -> dict:
    """A task's entry of results.json: before/clean accuracy and, per method (order, seconds or None), its
    scores (the fixing curve's and the detection of the flipped labels'), curve and first flagged rows."""
    results = {}
    for name, (order, seconds) in orders.items():
        curve = evaluation.curves[name]
        results[name] = {
            "kind": "submission" if name in user_methods else "baseline",
            "fraction_fixes": fraction_fixes(curve.accuracy),
            "auc": normalized_auc(curve, evaluation.before_acc, task.train_size),
            **detection_metrics(order, task.mislabeled),
            "time_s": None if seconds is None else round(float(seconds), 6),
            "curve": {"fixes": curve.fixes.tolist(), "accuracy": curve.accuracy.tolist()},
            "first_flagged": _first_flagged(task, order),
        }
    return {
        "data_id": task.data_id,
        "train_size": task.train_size,
        "mislabeled": int(task.mislabeled.sum()),
        "before_acc": evaluation.before_acc,
        "clean_acc": evaluation.clean_acc,
        "trainings": evaluation.trainings,
        "strategies": results,
    }


@dataclass
class TaskRun:
    """One task ranked and evaluated in memory, nothing written yet (see `write_task_run`).

    result: the task's entry of results.json (``partial/<data_id>.json``);
    orders: method -> (inspection order (train_size,) of row indices, seconds to produce it or None);
    fit_s, predict_s: mean wall seconds of one fit and of one test prediction over the task's
    `result["trainings"]` distinct training sets.
    """

    data_id: str
    result: dict
    orders: dict[str, tuple[np.ndarray, float | None]]
    fit_s: float
    predict_s: float


def run_tasks(setup, data_root: Path, source_dir: Path, *, data_ids: list[str] | None = None, n_jobs: int = -1,
              progress: ProgressCallback | None = None) -> list[TaskRun]:
    """Rank and evaluate the tasks `data_ids` (default: all), in setup order, writing nothing.

    A user's submission file is checked before any work starts
    (SubmissionError names the file and line).
    """
    wanted = [t for t in setup.tasks if data_ids is None or t.data_id in data_ids]
    unknown = set(data_ids or ()) - {t.data_id for t in setup.tasks}
    if unknown:
        raise ValueError(f"no task {', '.join(sorted(unknown))} in this setup")
    files = prepare_data(setup, data_root)
    items, all_orders, all_outcomes = [], [], []
    for spec in wanted:
        task = datasets.load_debugging_task(files[spec.data_id], task_spec(spec))
        user_orders = _user_orders(setup, task, source_dir)  # a bad file is refused before any work
        outcomes = _method_outcomes(setup, task, source_dir, data_root)
        method_orders = {name: (outcome.answer["order"], outcome.seconds)
                         for name, outcome in outcomes.items() if not outcome.failed}
        orders = {**_strategy_orders(setup, task), **user_orders, **method_orders}
        items.append((task, {name: order for name, (order, _) in orders.items()}))
        all_orders.append(orders)
        all_outcomes.append(outcomes)
    evaluations = evaluate_many(items, model=setup.model, seed=setup.seed, eval_points=setup.eval_points,
                                n_jobs=n_jobs, progress=progress)
    return [TaskRun(task.data_id, _with_methods(task_result(task, evaluation, orders, set(setup.submissions)),
                                                outcomes),
                    orders, evaluation.fit_s / evaluation.trainings, evaluation.predict_s / evaluation.trainings)
            for (task, _), evaluation, orders, outcomes in zip(items, evaluations, all_orders, all_outcomes)]


def write_task_run(setup, run: TaskRun, work_dir: Path, source_dir: Path) -> dict:
    """Write a task's submissions (a user's files copied as given) and ``partial/<data_id>.json``; its result."""
    submission_dir = work_dir / setup.paths.submission_folder
    for name, (order, seconds) in run.orders.items():
        if name in setup.submissions:
            _copy_user_files(source_dir / setup.paths.submission_folder, submission_dir, run.data_id, name)
        else:
            submissions.write_submission(submission_dir, run.data_id, name, order, seconds)
    write_json(work_dir / PARTIAL / f"{run.data_id}.json", run.result)
    return run.result


def evaluate_tasks(setup, data_root: Path, work_dir: Path, source_dir: Path, *,
                   data_ids: list[str] | None = None, n_jobs: int = -1,
                   progress: ProgressCallback | None = None) -> dict[str, dict]:
    """Rank, write the submissions of, and evaluate the tasks `data_ids` (default: all).

    Writes `work_dir/partial/<data_id>.json` and the DataPerf submissions under
    `work_dir/<submission_folder>`; returns {data_id: task result}.
    """
    runs = run_tasks(setup, data_root, source_dir, data_ids=data_ids, n_jobs=n_jobs, progress=progress)
    return {run.data_id: write_task_run(setup, run, work_dir, source_dir) for run in runs}


def sweep_rows(run: TaskRun) -> dict[str, dict]:
    """{method: its sweep row} of a task run: the metrics of `catalog.DEBUGGING_SWEEP_METRICS`, and its fixing
    curve {fixes, accuracy} under `stats.CURVE` (None for a method that failed), for the bands over repeats.

    before_acc, clean_acc, trainings, fit_s and predict_s belong to the task
    (its training sets are shared by the methods), so every method repeats them.
    """
    shared = {"before_acc": run.result["before_acc"], "clean_acc": run.result["clean_acc"],
              "trainings": run.result["trainings"],
              "fit_s": round(run.fit_s, 6), "predict_s": round(run.predict_s, 6)}
    return {name: {"kind": entry["kind"], **{metric: entry[metric] for metric in catalog.DEBUGGING_HEADLINE_METRICS},
                   "time_s": entry["time_s"], **shared, stats.CURVE: entry.get("curve") or None}
            for name, entry in run.result["strategies"].items()}


def reference_evaluation(task_result: dict) -> dict:
    """The reference's `{data_id}_evaluation.json` for one task (a method that failed on it has no curve: it is
    left out)."""
    scored = {name: result for name, result in task_result["strategies"].items() if result.get("curve")}
    submitted = [
        {"submission": name, "accuracy": accuracy, "fixes": fixes}
        for name, result in scored.items()
        for fixes, accuracy in zip(result["curve"]["fixes"], result["curve"]["accuracy"])
    ]
    return {
        "before_acc": task_result["before_acc"],
        "submitted_evaluations": submitted,
        "auc_score": {name: {"auc": r["auc"], "fraction_fixes": r["fraction_fixes"]}
                      for name, r in scored.items()},
    }


def build_results(setup, task_results: dict[str, dict]) -> dict:
    """results.json of a debugging run."""
    return {
        "track": setup.track,
        "model": setup.model,
        "seed": setup.seed,
        "dataset": setup.dataset,
        "eval_points": setup.eval_points,
        "tasks": {t.data_id: task_results[t.data_id] for t in setup.tasks},
    }


def report(setup, work_dir: Path, *, replicates: dict | None = None) -> dict:
    """Merge the partial results into results.json, the reference files and every plot; return results.

    `replicates` ({task: {strategy: [its sweep row of each repeat, with the
    repeat's ``curve``]}}, from `dataperf_appliance.stages.sweeps`) gives the
    statistics over repeats; without it the run is one repeat. The reference
    files and the curves of ``tasks`` are the first repeat's; the mean curve
    and its band over the repeats go to each strategy's ``curve_over_repeats``.
    """
    from dataperf_appliance.engine.debugging import debugging_plots

    task_results = {t.data_id: read_json(work_dir / PARTIAL / f"{t.data_id}.json") for t in setup.tasks}
    for data_id, task_result in task_results.items():
        write_json(work_dir / setup.paths.results_folder / f"{data_id}_evaluation.json",
                   reference_evaluation(task_result))
    results = build_results(setup, task_results)
    stats.add_to_results(results, replicates or stats.single_repeat(task_results),
                         catalog.DEBUGGING_HEADLINE_METRICS)
    debugging_plots.draw_debugging_plots(results, work_dir / "plots", dataset=setup.dataset)
    write_json(work_dir / RESULTS, results)
    return results
