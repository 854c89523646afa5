"""The selection track, stage by stage: prepare data, evaluate tasks, report.

Each stage is a plain function over a validated setup and folders, so the CLI
runs them in a row and the Airflow DAG runs them as separate tasks (one
`evaluate_tasks` call per benchmark task there) -- as in the debugging track.

Folders: `data_root` holds the datasets; `work_dir` is the run being written
(the staging folder of runs.py); `source_dir` is where the task_setup.yml
came from (a user's own training sets sit in its ``submissions/`` folder, one
``{task}_{method}.csv`` per task and method).

The setup is a `dataperf_appliance.config.SelectionSetup` with one value per
field (a sweep is cut into such setups by `dataperf_appliance.stages.sweeps`). Fields
read here: ``dataset`` ("digits" or a folder under ``<data root>/datasets``),
``dim``, ``model``, ``seed``, ``train_size`` (the budget), ``test_size``
(digits only), ``emb_file`` and ``tasks`` ({task: (train_csv or None,
test_parquet)}, paths inside the dataset folder, as the reference's
task_setup.yaml gives them; the digits are generated under exactly those
names), ``eval_tasks`` (the tasks evaluated, in order), ``strategies``,
``submissions``, ``results_dir``.

What is evaluated for each task, each as one entry of results.json:

* every strategy of ``setup.strategies`` (kind ``strategy``): it chooses a
  training set of at most ``train_size`` pool points, which is written as a
  DataPerf csv to ``work_dir/submissions/{task}_{strategy}.csv``;
* every method of ``setup.submissions`` (kind ``submission``): the user's csv,
  checked (`files.read_training_set`, at most ``train_size`` rows) and copied
  unchanged beside the strategies' ones;
* the task's own train csv, the one the reference evaluator would score
  (kind ``dataset``, named ``train_csv``), when the dataset has it; it is the
  dataset's file, so the budget does not apply (the reference's random_500.csv
  holds 500 rows whatever the budget).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from dataperf_appliance.engine import stats
from dataperf_appliance.config import SELECTION_DATASET_CSV, catalog
from dataperf_appliance.engine.parallel import ordered_map
from dataperf_appliance.engine.runs import PARTIAL, RESULTS, read_json, write_json
from dataperf_appliance.engine.methods import runner
from dataperf_appliance.engine.selection import data, files, selection_strategies
from dataperf_appliance.engine.selection.selection_evaluation import evaluate_training_set
from dataperf_appliance.engine.parallel import ProgressCallback

#: The reference's result file name; one per evaluated method, in {results_dir}/{method}/.
RESULT_FILE_FORMAT = "result_UTC-%Y-%m-%d-%H-%M-%S.json"


# --- prepare ----------------------------------------------------------------------------------

def _method_names(setup) -> list[str]:
    """Strategies then submissions (the setup model checked that they are distinct safe names)."""
    return [*setup.strategies, *setup.submissions]


def _task_files(setup, data_root: Path, tasks: list[str]) -> dict[str, dict[str, Path]]:
    missing = [t for t in tasks if t not in setup.tasks]
    if missing:
        raise ValueError(f"tasks names no [train_csv, test_parquet] for task(s) {', '.join(missing)}")
    folder = data.dataset_dir(data_root, setup.dataset, seed=setup.seed)
    if setup.dataset == data.DIGITS_DATASET:
        if setup.dim != data.DIGITS_DIM:
            raise ValueError(f"the digits embeddings have {data.DIGITS_DIM} values; the setup's dim is {setup.dim}")
        data.generate_selection_dataset(folder, tasks, seed=setup.seed, test_size=setup.test_size)
    elif not folder.is_dir():
        raise FileNotFoundError(f"dataset {setup.dataset!r} not found: no folder {folder}")
    # The setup's paths name the files, for the generated digits as for an official folder.
    found = {}
    for task in tasks:
        train_csv, test_parquet = setup.tasks[task]
        found[task] = data.folder_task_files(folder, task, emb_file=setup.emb_file, train_csv=train_csv,
                                             test_parquet=test_parquet)
    buying = [s for s in setup.strategies if s in selection_strategies.BUYS_LABELS]
    for task in tasks:
        if buying and "labels" not in found[task]:
            raise FileNotFoundError(
                f"dataset {setup.dataset!r} has no pool labels for task {task} "
                f"({folder / data.labels_file_name(task)}): the selection_strategies {', '.join(buying)} buy the labels of "
                "the points they choose from it. Add that file (ImageID,Confidence for every pool image), or run "
                "only centroid, closest_furthest and your own submissions")
    return found


def prepare_data(setup, data_root: Path) -> dict[str, dict[str, Path]]:
    """Bring every task's files to the data root (generating the digits); {task: {"pool", "test", "examples", ...}}.

    Also "labels" (the pool's true labels) and "train_csv" (the task's own
    training set) when the dataset has them. Raises FileNotFoundError naming
    what is missing, ValueError for a setup that does not fit the dataset.
    """
    return _task_files(setup, Path(data_root), setup.task_ids())


# --- evaluate ---------------------------------------------------------------------------------

@dataclass
class _TaskInputs:
    """Everything a task's jobs read: arrays shared with the workers through fork, never pickled."""

    pool_embeddings: np.ndarray
    pool_labels: np.ndarray | None
    examples: np.ndarray
    test: files.EmbeddedSet
    given: dict[str, tuple[np.ndarray, np.ndarray]]  # method -> (pool rows, labels) of a file's training set


#: The inputs of the tasks being evaluated, set before the workers fork (they inherit it, never pickled).
_SHARED: dict[str, _TaskInputs] = {}


def _examples_embeddings(path: Path, pool: files.EmbeddedSet, row_of: dict[str, int]) -> tuple[np.ndarray, int]:
    """Embeddings (m, d) of the example positives found in the pool, and how many were not found."""
    ids = files.read_examples(path)[files.ID_COLUMN].tolist()
    rows = [row_of[i] for i in ids if i in row_of]
    if not rows:
        raise ValueError(f"{path.name}: none of its {len(ids)} example ImageID(s) is in the pool")
    return pool.embeddings[rows], len(ids) - len(rows)


def _run_job(job: tuple) -> dict:
    """One method on one task (setup, task, method, kind): choose (for a strategy) and evaluate. Runs in a
    worker or in this process."""
    setup, task, name, kind = job
    inputs = _SHARED[task]
    # One BLAS thread: the workers share the cores, and a fit gives the same bits in a worker as in a loop.
    with threadpool_limits(limits=1):
        seconds = bought = None
        if kind == "strategy":
            if inputs.pool_labels is not None:
                oracle = selection_strategies.LabelOracle(inputs.pool_labels, budget=setup.train_size)
            else:  # no labels to buy (prepare_data let only the selection_strategies that buy none through): budget 0
                oracle = selection_strategies.LabelOracle(np.zeros(len(inputs.pool_embeddings), dtype=np.int64), budget=0)
            started = time.perf_counter()
            rows, labels = selection_strategies.choose_training_set(
                name, inputs.pool_embeddings, oracle, inputs.examples, setup.train_size,
                seed=setup.seed, model=setup.model)
            seconds = time.perf_counter() - started
            bought = oracle.revealed
        else:
            rows, labels = inputs.given[name]
        metrics = evaluate_training_set(inputs.pool_embeddings[rows], labels, inputs.test.embeddings,
                                        inputs.test.labels, model=setup.model, seed=setup.seed)
    return {"task": task, "name": name, "kind": kind, "rows": rows, "labels": labels,
            "time_s": seconds, "labels_bought": bought, **metrics}


def _run_jobs(jobs: list[tuple], n_jobs: int, progress: ProgressCallback | None) -> list[dict]:
    out = []
    # Forked workers inherit the pool arrays of _SHARED instead of receiving copies.
    for done, result in enumerate(ordered_map(_run_job, jobs, n_jobs=n_jobs), start=1):
        out.append(result)
        if progress:
            progress(done, len(jobs))
    return out


def _entry(result: dict, pool_labels: np.ndarray | None, train_size: int) -> dict:
    """A method's entry of results.json, but for its "file" (added when the run is written)."""
    labels = np.asarray(result["labels"])
    return {
        "kind": result["kind"],
        # More rows than train_size (the dataset's own csv): shown, but not ranked with the methods it would beat.
        stats.OVER_BUDGET: bool(len(labels) > train_size),
        "accuracy": result["accuracy"],
        "precision": result["precision"],
        "recall": result["recall"],
        "f1": result["f1"],
        "train_size": int(len(labels)),
        "positives": int(labels.sum()),
        "labels_bought": result["labels_bought"],
        # How many of its labels are wrong, when the truth is known: a user's or a guessing strategy's mistakes.
        "wrong_labels": (None if pool_labels is None
                         else int((pool_labels[np.asarray(result["rows"])] != labels).sum())),
        "time_s": None if result["time_s"] is None else round(float(result["time_s"]), 6),
        "fit_s": round(float(result["fit_s"]), 6),
        "predict_s": round(float(result["predict_s"]), 6),
        "converged": result["converged"],
    }


@dataclass
class Pool:
    """A pool read once for all the tasks that share it, with its ImageID -> row lookup."""

    embedded: files.EmbeddedSet
    row_of: dict[str, int]
    ids: set[str]

    @classmethod
    def read(cls, path: Path, dim: int) -> Pool:
        pool = files.read_pool(path, dim)
        ids = pool.image_ids.tolist()
        return cls(pool, {image_id: row for row, image_id in enumerate(ids)}, set(ids))

    def training_set(self, path: Path, train_size: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Pool rows (k,) and labels (k,) of a training-set csv of at most `train_size` rows (None: any), checked
        (`files.read_training_set`)."""
        frame = files.read_training_set(path, self.ids, train_size)
        rows = np.array([self.row_of[i] for i in frame[files.ID_COLUMN]], dtype=np.int64)
        return rows, frame[files.LABEL_COLUMN].to_numpy()


def _load_task(setup, task: str, paths: dict[str, Path], pool: Pool, source_dir: Path) -> tuple[_TaskInputs, dict]:
    """Read and check everything one task needs; the user's csvs first, so a bad one stops the run at once."""
    given = {method: pool.training_set(source_dir / setup.submission_folder / f"{task}_{method}.csv", setup.train_size)
             for method in setup.submissions}
    if "train_csv" in paths:
        given[SELECTION_DATASET_CSV] = pool.training_set(paths["train_csv"], None)
    test = files.read_test_set(paths["test"], setup.dim)
    if setup.dataset == data.DIGITS_DATASET and len(test) != setup.test_size:
        raise ValueError(f"{paths['test'].name} has {len(test)} rows but test_size is {setup.test_size}: "
                         "a run with another test_size regenerated it meanwhile; run again")
    examples, examples_missing = _examples_embeddings(paths["examples"], pool.embedded, pool.row_of)
    labels = files.read_pool_labels(paths["labels"], pool.embedded.image_ids) if "labels" in paths else None
    facts = {"task": task, "pool_size": len(pool.embedded), "test_size": len(test),
             "test_positives": int(test.labels.sum()), "budget": int(setup.train_size),
             "examples": len(examples), "examples_not_in_pool": examples_missing,
             "pool_positives": None if labels is None else int(labels.sum())}
    return _TaskInputs(pool.embedded.embeddings, labels, examples, test, given), facts


def _method_outcomes(setup, inputs: _TaskInputs, data_root: Path, source_dir: Path) -> dict[str, runner.MethodOutcome]:
    """Each of the setup's methods as code run on the task in a child process: the pool, the examples, the
    budget (train_size) and a label oracle over the pool (an empty one when the dataset has no pool labels)."""
    labels = inputs.pool_labels
    child_inputs = {"pool_X": inputs.pool_embeddings, "examples_X": inputs.examples,
                    "pool_labels": labels if labels is not None else np.zeros(len(inputs.pool_embeddings), np.int64)}
    outcomes = {}
    for method in setup.methods:
        outcome = runner.run_method(runner.call_of(method, source_dir), runner.SELECTOR, child_inputs,
                                    budget=setup.train_size if labels is not None else 0, seed=setup.seed,
                                    data_root=data_root)
        if not outcome.failed:
            runner.check_training_set(outcome, len(inputs.pool_embeddings), setup.train_size, labels)
        outcomes[method.name] = outcome
    return outcomes


@dataclass
class TaskRun:
    """One task's training sets chosen and scored in memory, nothing written yet (see `write_task_run`).

    facts: the task's figures of results.json (pool and test sizes, budget, ...);
    entries: method -> its entry of results.json, without "file", in evaluation order;
    chosen: strategy -> (ImageIDs (k,) str, labels (k,) int64) of the training set it chose;
    dataset_csv: the task's own train csv (kind ``dataset``), relative to the dataset folder, or None.
    """

    task: str
    facts: dict
    entries: dict[str, dict]
    chosen: dict[str, tuple[np.ndarray, np.ndarray]]
    dataset_csv: str | None


def run_tasks(setup, data_root: Path, source_dir: Path, *, data_ids: list[str] | None = None, n_jobs: int = -1,
              progress: ProgressCallback | None = None) -> list[TaskRun]:
    """Choose and evaluate the training sets of the tasks `data_ids` (default: all), in order, writing nothing.

    Every user csv is checked before any work starts (TrainingSetError names
    the file and row). `progress(done, total)` is called as (task, method)
    pairs finish.
    """
    data_root, source_dir = Path(data_root), Path(source_dir)
    names = _method_names(setup)
    unknown = set(data_ids or ()) - set(setup.eval_tasks)
    if unknown:
        raise ValueError(f"no task {', '.join(sorted(unknown))} in this setup")
    wanted = [t for t in setup.eval_tasks if data_ids is None or t in data_ids]
    task_files = _task_files(setup, data_root, wanted)
    pools: dict[Path, Pool] = {}
    inputs: dict[str, _TaskInputs] = {}
    facts: dict[str, dict] = {}
    for task in wanted:
        pool_path = task_files[task]["pool"]
        if pool_path not in pools:  # every task of a dataset shares one pool: read it once
            pools[pool_path] = Pool.read(pool_path, setup.dim)
        inputs[task], facts[task] = _load_task(setup, task, task_files[task], pools[pool_path], source_dir)
    outcomes = {task: _method_outcomes(setup, inputs[task], data_root, source_dir) for task in wanted}
    for task in wanted:
        inputs[task].given.update({name: (outcome.answer["rows"], outcome.answer["labels"])
                                   for name, outcome in outcomes[task].items() if not outcome.failed})
    jobs = [(setup, task, name, "strategy" if name in setup.strategies else "submission")
            for task in wanted for name in names]
    jobs += [(setup, task, name, runner.METHOD_KIND) for task in wanted for name, outcome in outcomes[task].items()
             if not outcome.failed]
    jobs += [(setup, task, SELECTION_DATASET_CSV, "dataset") for task in wanted
             if SELECTION_DATASET_CSV in inputs[task].given]
    _SHARED.update(inputs)
    try:
        results = _run_jobs(jobs, n_jobs, progress)
    finally:
        _SHARED.clear()
    folder = data.dataset_dir(data_root, setup.dataset, seed=setup.seed)
    runs = {task: TaskRun(task, facts[task], {}, {}, None) for task in wanted}
    for result in results:
        run = runs[result["task"]]
        run.entries[result["name"]] = _entry(result, inputs[run.task].pool_labels, setup.train_size)
        if result["kind"] == runner.METHOD_KIND:
            outcome = outcomes[run.task][result["name"]]
            run.entries[result["name"]].update(time_s=round(float(outcome.seconds), 6), method=outcome.record(),
                                               labels_bought=int(len(outcome.answer["revealed"])))
        if result["kind"] in ("strategy", runner.METHOD_KIND):
            pool_ids = pools[task_files[run.task]["pool"]].embedded.image_ids
            run.chosen[result["name"]] = (pool_ids[result["rows"]], np.asarray(result["labels"]))
        elif result["kind"] == "dataset":
            run.dataset_csv = str(task_files[run.task]["train_csv"].relative_to(folder))
    for task, run in runs.items():
        run.entries.update({name: runner.failed_entry(outcome, catalog.SELECTION_HEADLINE_METRICS)
                            for name, outcome in outcomes[task].items() if outcome.failed})
    return list(runs.values())


def write_task_run(setup, run: TaskRun, work_dir: Path, source_dir: Path) -> dict:
    """Write a task's training sets to ``work_dir/submissions/`` (a user's csv copied as given) and
    ``work_dir/partial/{task}.json``; return the task's result. (`setup` is not needed here: the
    argument keeps the signature of the debugging track's `write_task_run`.)"""
    work_dir, source_dir = Path(work_dir), Path(source_dir)
    strategies_out = {}
    for name, entry in run.entries.items():
        target = work_dir / setup.submission_folder / f"{run.task}_{name}.csv"
        if entry.get("method", {}).get("error"):
            strategies_out[name] = entry  # a method that failed on the task: no training set
            continue
        if entry["kind"] in ("strategy", runner.METHOD_KIND):
            files.write_training_set(target, *run.chosen[name])
        elif entry["kind"] == "submission":  # the run keeps the user's file exactly as given
            source = source_dir / setup.submission_folder / target.name
            if source.resolve() != target.resolve():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        # A path inside the run, or (the dataset's own csv) inside the dataset folder.
        file = run.dataset_csv if entry["kind"] == "dataset" else str(target.relative_to(work_dir))
        strategies_out[name] = {**entry, "file": file}
    result = {**run.facts, "strategies": strategies_out}
    write_json(work_dir / PARTIAL / f"{run.task}.json", result)
    return result


def evaluate_tasks(setup, data_root: Path, work_dir: Path, source_dir: Path, *,
                   data_ids: list[str] | None = None, n_jobs: int = -1,
                   progress: ProgressCallback | None = None) -> dict[str, dict]:
    """Choose, write and evaluate the training sets of the tasks `data_ids` (default: all tasks).

    Every user csv is checked before any work starts (TrainingSetError names
    the file and row). Writes ``work_dir/submissions/{task}_{method}.csv`` and
    ``work_dir/partial/{task}.json``; returns {task: task result}.
    `progress(done, total)` is called as (task, method) pairs finish.
    """
    runs = run_tasks(setup, data_root, source_dir, data_ids=data_ids, n_jobs=n_jobs, progress=progress)
    return {run.task: write_task_run(setup, run, work_dir, source_dir) for run in runs}


def sweep_rows(run: TaskRun) -> dict[str, dict]:
    """{method: {"kind", metric: value}} of a task run, the metrics of `catalog.SELECTION_SWEEP_METRICS`."""
    return {name: {"kind": entry["kind"], **{metric: entry.get(metric) for metric in catalog.SELECTION_SWEEP_METRICS
                                             if metric != "rows"},
                   "rows": entry.get("train_size")}
            for name, entry in run.entries.items()}


# --- report -----------------------------------------------------------------------------------

def build_results(setup, task_results: dict[str, dict]) -> dict:
    """results.json of a selection run."""
    return {
        "track": setup.track,
        "model": setup.model,
        "seed": setup.seed,
        "dataset": setup.dataset,
        "dim": setup.dim,
        "train_size": setup.train_size,
        "tasks": {task: task_results[task] for task in setup.eval_tasks},
    }


#: The figures of a task in the reference's result file, in its order.
REFERENCE_RESULT_KEYS = ("accuracy", "recall", "precision", "f1")


def reference_results(results: dict) -> dict[str, dict[str, dict]]:
    """{method: the reference's result file content {task: {"accuracy", "recall", "precision", "f1"}}}."""
    out: dict[str, dict[str, dict]] = {}
    for task, task_result in results["tasks"].items():
        for name, entry in task_result["strategies"].items():
            if entry.get("file"):  # a method that failed on the task has no training set to score
                out.setdefault(name, {})[task] = {key: entry[key] for key in REFERENCE_RESULT_KEYS}
    return out


def over_budget_methods(results: dict) -> set[str]:
    """The methods whose training set exceeds the budget in some task: not ranked with the others."""
    return {name for task in results["tasks"].values() for name, entry in task["strategies"].items()
            if entry.get(stats.OVER_BUDGET)}


def report(setup, work_dir: Path, *, now: dt.datetime | None = None, replicates: dict | None = None) -> dict:
    """Merge the partial results into results.json, the reference's result files and the plot; return results.

    The reference writes one ``result_UTC-YYYY-MM-DD-HH-MM-SS.json`` holding
    one figure set per task, so it cannot hold several methods. Each method
    gets its own, under the exact reference name, in a folder named after it:
    ``{results_dir}/{method}/result_UTC-....json`` -- nothing is lost and
    each file is one the reference would have written for that method. A
    report written again replaces the earlier files.
    """
    from dataperf_appliance.engine.selection import selection_plots

    work_dir = Path(work_dir)
    missing = [t for t in setup.eval_tasks if not (work_dir / PARTIAL / f"{t}.json").exists()]
    if missing:
        raise FileNotFoundError(f"no evaluation of task(s) {', '.join(missing)} in {work_dir / PARTIAL}: "
                                "run evaluate_tasks first")
    task_results = {t: read_json(work_dir / PARTIAL / f"{t}.json") for t in setup.eval_tasks}
    results = build_results(setup, task_results)
    over = over_budget_methods(results)
    stats.add_to_results(results, replicates or stats.single_repeat(task_results),
                         catalog.SELECTION_HEADLINE_METRICS,
                         ranked=lambda name: name not in over)
    results_dir = data.inside(work_dir, setup.results_dir, "results_dir")
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime(RESULT_FILE_FORMAT)
    written = {}
    for method, content in reference_results(results).items():
        folder = results_dir / method
        for older in folder.glob("result_UTC-*.json"):
            older.unlink()
        write_json(folder / stamp, content)
        written[method] = str((folder / stamp).relative_to(work_dir))
    results["reference_results"] = written
    drawn = selection_plots.draw_selection_plots(results, work_dir / "plots", run_dir=work_dir)
    results["plots"] = [str(p.relative_to(work_dir)) for p in drawn]
    write_json(work_dir / RESULTS, results)
    return results
