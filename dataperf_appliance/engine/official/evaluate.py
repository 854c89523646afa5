"""`dataperf-appliance evaluate DIR`: the official result files of a folder in an official layout.

Debugging (``task_setup.yml``): for every task, the submissions the official
main.py finds in the submission folder (every ``{data_id}_{method}.txt`` that
is not a ``time_`` file) are evaluated on the fixing curve with the engine's
evaluator, and ``{results_folder}/{data_id}_evaluation.json`` gets the
official fields ``before_acc``, ``submitted_evaluations`` (``submission``,
``accuracy``, ``fixes``) and ``auc_score`` ({method: ``auc``,
``fraction_fixes``}).

Selection (``task_setup.yaml``): every task of ``eval_tasks`` has its training
csv scored on its test set, and ``{data_dir}/{results_dir}/result_UTC-....json``
gets {task: ``accuracy``, ``recall``, ``precision``, ``f1``}.

Nothing but the result files is written, each atomically.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dataperf_appliance.config import catalog
from dataperf_appliance.engine.parallel import ProgressCallback
from dataperf_appliance.engine.runs import write_json
from dataperf_appliance.engine.official.setup import OfficialDebuggingSetup, OfficialDebuggingTask, OfficialSelectionSetup

if TYPE_CHECKING:
    from dataperf_appliance.engine.datasets.dataperf_files import DebuggingTaskData

# Each track's modules are imported by its own function: a selection folder does not wait for the
# debugging strategies' libraries to load, nor the other way round.


@dataclass
class FolderEvaluation:
    """What `evaluate_folder` did.

    results: debugging {data_id: the content of its ``_evaluation.json``}; selection {task: metrics};
    written: the result files, in order; notes: what a user should know (a completed order, a task without
    submissions), one line each.
    """

    model: str
    results: dict[str, dict]
    written: list[Path]
    notes: list[str] = field(default_factory=list)
    #: The official result files' figures as a table, for a terminal.
    table: str = ""


def _selection_table(results: dict[str, dict], model: str) -> str:
    lines = [f"{'task':<16} {'accuracy':>9} {'recall':>9} {'precision':>9} {'f1':>9}   model {model}"]
    lines += [f"{task:<16} {r['accuracy']:>9.4f} {r['recall']:>9.4f} {r['precision']:>9.4f} {r['f1']:>9.4f}"
              for task, r in results.items()]
    return "\n".join(lines)


def _debugging_table(results: dict[str, dict], model: str) -> str:
    lines = [f"{'task':<16} {'submission':<24} {'fraction_fixes':>14} {'before_acc':>10}   model {model}"]
    for data_id, result in results.items():
        for method, score in sorted(result["auc_score"].items(), key=lambda item: item[1]["fraction_fixes"]):
            lines.append(f"{data_id:<16} {method:<24} {score['fraction_fixes']:>14.4f} {result['before_acc']:>10.4f}")
    return "\n".join(lines)


def official_submissions(folder: Path, data_id: str) -> dict[str, Path]:
    """{method: order file} of a task, found as the official main.py finds them, sorted by method: every
    ``.txt`` file whose name up to the first '_' is `data_id` and that does not start with ``time``."""
    found = {}
    for path in sorted(Path(folder).iterdir()):
        name = path.name
        if path.is_file() and name.endswith(".txt") and name.split("_")[0] == data_id and not name.startswith("time"):
            found[name[len(data_id) + 1:-len(".txt")]] = path
    return found


def read_official_task(folder: Path, paths, spec: OfficialDebuggingTask) -> DebuggingTaskData:
    """The data of one task of an official debugging folder, checked against the task's sizes; without a
    validation set (the official main.py reads none)."""
    from dataperf_appliance.engine.datasets import DebuggingTaskSpec, load_debugging_task
    from dataperf_appliance.engine.datasets.dataperf_files import task_file_paths

    files = task_file_paths(folder, paths.embedding_folder, paths.groundtruth_folder, spec.data_id,
                            spec.train_size, spec.noise_level, spec.val_size, spec.test_size)
    del files["val"]
    return load_debugging_task(files, DebuggingTaskSpec(spec.data_id, spec.train_size, spec.noise_level,
                                                        spec.val_size, spec.test_size))


def evaluate_debugging(folder: Path, setup: OfficialDebuggingSetup, *, model: str | None = None, seed: int = 0,
                       n_jobs: int = -1, now: dt.datetime | None = None,
                       progress: ProgressCallback | None = None) -> FolderEvaluation:
    """Every task's submissions on its fixing curve; one ``{data_id}_evaluation.json`` per task (`now` is
    unused: these file names carry no time). `model` defaults to the official evaluator's classifier.

    Every submission of every task is read and checked before any training
    (SubmissionError names the file and line); an order of fewer lines than
    train_size is completed with `submissions.complete_order`.
    """
    from dataperf_appliance.engine.debugging import submissions
    from dataperf_appliance.engine.debugging.debugging_task import reference_evaluation, task_result
    from dataperf_appliance.engine.debugging.debugging_evaluation import evaluate_many

    model = model or catalog.DATAPERF_REFERENCE_MODEL
    paths = setup.paths
    items, notes, found = [], [], {}
    for spec in setup.tasks:
        task = read_official_task(folder, paths, spec)
        orders = {}
        found[spec.data_id] = official_submissions(folder / paths.submission_folder, spec.data_id)
        for method, path in found[spec.data_id].items():
            order = submissions.read_submission(path, task.train_size)
            if len(order) < task.train_size:
                notes.append(f"{path.name}: {len(order)} of {task.train_size} rows listed; the rest were appended "
                             "in file order (the official evaluator would stop fixing after the last line)")
            orders[method] = submissions.complete_order(order, task.train_size)
        if not orders:
            notes.append(f"task {spec.data_id}: no submission {spec.data_id}_<method>.txt in "
                         f"{paths.submission_folder}; its result holds before_acc only")
        items.append((task, orders))
    evaluations = evaluate_many(items, model=model, seed=seed, n_jobs=n_jobs, progress=progress)
    results, written = {}, []
    for (task, orders), evaluation in zip(items, evaluations):
        entry = task_result(task, evaluation, {name: (order, None) for name, order in orders.items()},
                            set(orders))
        results[task.data_id] = reference_evaluation(entry)
        target = folder / paths.results_folder / f"{task.data_id}_evaluation.json"
        write_json(target, results[task.data_id])
        written.append(target)
    return FolderEvaluation(model, results, written, notes, _debugging_table(results, model))


def evaluate_selection(folder: Path, setup: OfficialSelectionSetup, *, model: str | None = None, seed: int = 0,
                       n_jobs: int = -1, now: dt.datetime | None = None,
                       progress: ProgressCallback | None = None) -> FolderEvaluation:
    """Every task of eval_tasks: its training csv scored on its test set; one ``result_UTC-....json`` (one fit
    per task, in this process: `n_jobs` is unused). `model` defaults to the official evaluator's classifier.

    The pool is read once; every training csv is checked row by row against
    it (TrainingSetError names the file and row) before any fit.
    """
    from dataperf_appliance.engine.selection import files as selection_files
    from dataperf_appliance.engine.selection.selection_task import REFERENCE_RESULT_KEYS, RESULT_FILE_FORMAT, Pool
    from dataperf_appliance.engine.selection.selection_evaluation import evaluate_training_set

    model = model or catalog.SELECTION_REFERENCE_MODEL
    data = setup.data_folder(folder)
    pool = Pool.read(data / setup.emb_file, setup.dim)
    inputs = {}
    for task, (train_csv, test_parquet) in setup.pairs.items():
        rows, labels = pool.training_set(data / train_csv, None)
        inputs[task] = (rows, labels, selection_files.read_test_set(data / test_parquet, setup.dim))
    results = {}
    for done, (task, (rows, labels, test)) in enumerate(inputs.items(), start=1):
        metrics = evaluate_training_set(pool.embedded.embeddings[rows], labels, test.embeddings, test.labels,
                                        model=model, seed=seed)
        results[task] = {key: metrics[key] for key in REFERENCE_RESULT_KEYS}
        if progress:
            progress(done, len(inputs))
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime(RESULT_FILE_FORMAT)
    target = data / setup.results_dir / stamp
    write_json(target, results)
    notes = [f"{task}: one class only in {setup.pairs[task][0]}; scored with a classifier that predicts it "
             "(the official evaluator stops with an error)"
             for task, (_, labels, _) in inputs.items() if len(np.unique(labels)) < 2]
    return FolderEvaluation(model, results, [target], notes, _selection_table(results, model))
