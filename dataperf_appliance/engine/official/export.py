"""`dataperf-appliance export RUN --out DIR`: a finished run as folders the official evaluators read unchanged.

Debugging: one folder, the official main.py's working folder::

    task_setup.yml                                   paths and tasks in the official shape, baselines = the methods
    embeddings/{data_id}_{train_N_M,val_V,test_T}.parquet   float32 (main.py fails on float64)
    data/dataset_{data_id}_train.csv                 the ground truth (main.py reads it from data/, whatever the file says)
    submissions/{data_id}_{method}.txt, time_...     the orders the run evaluated, and their seconds
    results/                                         empty: main.py writes here and does not create it

Selection: one folder per method (the official evaluator scores one training
set per task), each the official repository's working folder::

    <method>/task_setup.yaml                         the official keys, data_dir: data
    <method>/data/embeddings/train_emb_{dim}_dataperf.parquet
    <method>/data/train_sets/{task}.csv              that method's training set of the task
    <method>/data/test_sets/alpha_test_set_{task}_{dim}.parquet   Confidence as the text "0"/"1"
    <method>/data/results/                           empty, as above

The pool and test files are the same for every method: written once and
hard-linked where the file system allows. A sweep is exported as its primary
cell (the first value of every list, repeat 0), the part of the run its
results.json tables show. The dataset files come from the data root and must
be the ones the run read (their sha256 in manifest.json). Everything is
written into a hidden folder beside DIR and renamed into place at the end.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ruamel.yaml import YAML

from dataperf_appliance.engine.bounded import MAX_MANIFEST_BYTES, MAX_RESULTS_BYTES, Unreadable, read_json_object
from dataperf_appliance.config import TaskSetup, catalog, grid
from dataperf_appliance.engine.datasets.dataperf_files import (
    atomic_write_bytes,
    noise_token,
    read_embedding_parquet,
    sha256_of,
    write_embedding_parquet,
)
from dataperf_appliance.engine.runs import MANIFEST, RESULTS, TASK_SETUP
from dataperf_appliance.engine.official.setup import DEBUGGING_FILE, SELECTION_FILE, OfficialSelectionSetup

#: The official debugging main.py reads the ground truth from this folder, whatever the task file says.
GROUNDTRUTH_FOLDER = "data/"
OFFICIAL_DEBUGGING_PATHS = {"embedding_folder": "embeddings/", "groundtruth_folder": GROUNDTRUTH_FOLDER,
                            "submission_folder": "submissions/", "results_folder": "results/"}
#: The input width the official debugging classifier hard-codes (nn.Linear(2048, 128) in its classifier.py).
OFFICIAL_DEBUGGING_DIM = 2048
#: The official selection task file's data folder, results folder and (unused here) Spark memory.
SELECTION_DATA_DIR, SELECTION_RESULTS_DIR, SPARK_DRIVER_MEMORY = "data", "results", "6g"


class ExportError(ValueError):
    """A run that cannot be exported (not finished, data changed since, a name the official code cannot use)."""


@dataclass
class Export:
    """What an export wrote: `folders` (one, or one per selection method) under `out`, and notes to show."""

    track: str
    out: Path
    folders: list[Path]
    model: str
    seed: int
    notes: list[str] = field(default_factory=list)

    @property
    def evaluate_command(self) -> str:
        """The command that reproduces the run's numbers from the export (per folder for selection)."""
        return f"dataperf-appliance evaluate DIR --model {self.model} --seed {self.seed}"


def _yaml_text(data: dict, flow_lists: bool = False) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None if flow_lists else False
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 4096  # a task's pair on one line, as the official files write it
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _finished_run(run_dir: Path) -> tuple[dict, dict]:
    """(manifest, results) of a published run; ExportError otherwise."""
    if not (run_dir / TASK_SETUP).is_file():
        raise ExportError(f"{run_dir}: not a run folder (no {TASK_SETUP})")
    try:  # the run may come from the bucket: each file under its limit, and a JSON object
        manifest = read_json_object(run_dir / MANIFEST, MAX_MANIFEST_BYTES) if (run_dir / MANIFEST).is_file() \
            else {}
        state = manifest.get("state")
        if state not in (None, "success") or not (run_dir / RESULTS).is_file():
            raise ExportError(f"{run_dir}: the run is not finished (state {state or 'unknown'}); only a finished "
                              "run can be exported")
        return manifest, read_json_object(run_dir / RESULTS, MAX_RESULTS_BYTES)
    except Unreadable as error:
        raise ExportError(str(error)) from None


def _check_inputs(paths: list[Path], manifest: dict, data_root: Path) -> None:
    """Refuse dataset files that differ from the ones the run read (sha256 in the manifest)."""
    recorded = manifest.get("inputs") or {}
    for path in paths:
        key = str(path.relative_to(data_root)) if path.is_relative_to(data_root) else str(path)
        if key in recorded and sha256_of(path) != recorded[key]:
            raise ExportError(f"{key}: changed since the run read it (sha256 differs from manifest.json); the "
                              "export would not hold the run's data")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


# --- debugging ----------------------------------------------------------------------------------

def export_debugging(run_dir: Path, out: Path, setup, *, data_root: Path) -> Export:
    """The finished debugging run at `run_dir` (its validated `setup`) as the official main.py's folder `out`
    (see `_export`)."""
    return _export(run_dir, out, setup, data_root=data_root, official_model=catalog.DATAPERF_REFERENCE_MODEL,
                      write=_debugging_folder)


def _debugging_folder(setup, manifest: dict, results: dict, run_dir: Path, data_root: Path, staging: Path,
                      notes: list[str]) -> list[Path]:
    from dataperf_appliance.engine.debugging import debugging_task, submissions

    files = debugging_task.prepare_data(setup, data_root)
    _check_inputs([p for task_files in files.values() for p in task_files.values()], manifest, data_root)
    methods: list[str] = []
    tasks = []
    for spec in setup.tasks:
        if "_" in spec.data_id:
            raise ExportError(f"task {spec.data_id!r} holds '_': the official evaluator finds a task's submissions "
                              "by the file name's part before the first '_', so it would find none")
        task_files = files[spec.data_id]
        names = {"train": f"{spec.data_id}_train_{noise_token(spec.noise_level)}_{spec.train_size}.parquet",
                 "val": f"{spec.data_id}_val_{spec.val_size}.parquet",
                 "test": f"{spec.data_id}_test_{spec.test_size}.parquet"}
        for key, name in names.items():
            embeddings, labels, ids = read_embedding_parquet(task_files[key])
            if key == "train" and not np.array_equal(embeddings.astype(np.float32), embeddings):
                notes.append(f"task {spec.data_id}: the embeddings were rounded to float32 (the official main.py "
                             "needs float32), so a float64 model may score them slightly differently")
            if key == "train" and embeddings.shape[1] != OFFICIAL_DEBUGGING_DIM:
                notes.append(f"task {spec.data_id}: its embeddings have {embeddings.shape[1]} values; the official "
                             f"main.py's classifier takes exactly {OFFICIAL_DEBUGGING_DIM} and stops at its first fit "
                             "(`evaluate` takes any length)")
            write_embedding_parquet(staging / "embeddings" / name, embeddings, labels, ids, dtype=np.float32)
        (staging / GROUNDTRUTH_FOLDER).mkdir(exist_ok=True)
        shutil.copyfile(task_files["groundtruth"], staging / GROUNDTRUTH_FOLDER / task_files["groundtruth"].name)
        run_submissions = run_dir / setup.paths.submission_folder
        for method, entry in results["tasks"][spec.data_id]["strategies"].items():
            order_path, time_path = submissions.submission_paths(run_submissions, spec.data_id, method)
            order = submissions.read_submission(order_path, spec.train_size)
            if len(order) < spec.train_size:
                notes.append(f"{order_path.name}: {len(order)} of {spec.train_size} rows; exported as the run "
                             "evaluated it, completed in file order")
            submissions.write_submission(staging / "submissions", spec.data_id, method,
                                         submissions.complete_order(order, spec.train_size),
                                         submissions.read_time_file(time_path))
            if method not in methods:
                methods.append(method)
        tasks.append({"data_id": spec.data_id, "train_size": spec.train_size, "noise_level": float(spec.noise_level),
                      "test_size": spec.test_size, "val_size": spec.val_size})
    (staging / "results").mkdir()
    task_setup = {"paths": OFFICIAL_DEBUGGING_PATHS, "tasks": tasks, "baselines": [{"name": m} for m in methods]}
    atomic_write_bytes(staging / DEBUGGING_FILE, _yaml_text(task_setup).encode())
    if setup.eval_points is not None:
        notes.append(f"the run evaluated {setup.eval_points} budgets per curve (eval_points); the official "
                     "evaluators, and `evaluate`, evaluate every budget 1..train_size, so scores may differ")
    return [staging]


# --- selection ----------------------------------------------------------------------------------

def export_selection(run_dir: Path, out: Path, setup, *, data_root: Path) -> Export:
    """The finished selection run at `run_dir` (its validated `setup`) as one official folder per method under
    `out` (see `_export`)."""
    return _export(run_dir, out, setup, data_root=data_root, official_model=catalog.SELECTION_REFERENCE_MODEL,
                      write=_selection_folders)


def _selection_folders(setup, manifest: dict, results: dict, run_dir: Path, data_root: Path, staging: Path,
                       notes: list[str]) -> list[Path]:
    from dataperf_appliance.engine.selection import selection_task, data
    from dataperf_appliance.engine.selection import files as selection_files

    task_files = selection_task.prepare_data(setup, data_root)
    pool_paths = {paths["pool"] for paths in task_files.values()}
    _check_inputs(sorted(pool_paths | {p["test"] for p in task_files.values()}), manifest, data_root)
    (pool_path,) = pool_paths  # every task of a selection dataset shares its pool
    reserved = set(OfficialSelectionSetup.model_fields)
    clashing = [task for task in setup.eval_tasks if task in reserved]
    if clashing:
        raise ExportError(f"task {clashing[0]!r} is also a key of the official task_setup.yaml; the official file "
                          "cannot hold it")
    pool_ids = set(selection_files.read_pool(pool_path, setup.dim).image_ids.tolist())
    dataset_folder = data.dataset_dir(data_root, setup.dataset, seed=setup.seed)
    emb_file = data.pool_file_name(setup.dim)
    shared: dict[str, Path] = {}  # relative path -> the first copy, hard-linked into the other folders
    methods = list(dict.fromkeys(m for t in setup.eval_tasks for m in results["tasks"][t]["strategies"]))
    folders = []
    for method in methods:
        folder = staging / method
        pairs = {}
        for task in setup.eval_tasks:
            entry = results["tasks"][task]["strategies"].get(method)
            if entry is None:
                raise ExportError(f"method {method!r} has no result for task {task}: the run is incomplete")
            source = (dataset_folder if entry["kind"] == "dataset" else run_dir) / entry["file"]
            frame = selection_files.read_training_set(source, pool_ids, None)
            train_csv = f"train_sets/{task}.csv"
            selection_files.write_training_set(folder / SELECTION_DATA_DIR / train_csv,
                                               frame[selection_files.ID_COLUMN], frame[selection_files.LABEL_COLUMN])
            test_parquet = data.test_file_name(task, setup.dim)
            pairs[task] = [train_csv, test_parquet]
            if test_parquet not in shared:
                test = selection_files.read_test_set(task_files[task]["test"], setup.dim)
                shared[test_parquet] = folder / SELECTION_DATA_DIR / test_parquet
                selection_files.write_test_set(shared[test_parquet], test.image_ids, test.embeddings, test.labels)
            else:
                _link_or_copy(shared[test_parquet], folder / SELECTION_DATA_DIR / test_parquet)
        if emb_file not in shared:
            shared[emb_file] = folder / SELECTION_DATA_DIR / emb_file
            shared[emb_file].parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pool_path, shared[emb_file])
        else:
            _link_or_copy(shared[emb_file], folder / SELECTION_DATA_DIR / emb_file)
        (folder / SELECTION_DATA_DIR / SELECTION_RESULTS_DIR).mkdir(parents=True)
        task_setup = {"spark_driver_memory": SPARK_DRIVER_MEMORY, "data_dir": SELECTION_DATA_DIR,
                      "emb_file": emb_file, **pairs, "results_dir": SELECTION_RESULTS_DIR, "dim": setup.dim,
                      "eval_tasks": list(setup.eval_tasks), "docker_data_dir": SELECTION_DATA_DIR}
        atomic_write_bytes(folder / SELECTION_FILE, _yaml_text(task_setup, flow_lists=True).encode())
        folders.append(folder)
        over = [t for t in setup.eval_tasks if results["tasks"][t]["strategies"][method]["train_size"]
                > setup.train_size]
        if over:
            notes.append(f"{method}: its training set of {', '.join(over)} is larger than the budget "
                         f"{setup.train_size} (the official evaluator does not check a budget)")
    return folders


#: The file beside the exported folders that holds the export's notes.
NOTES_FILE = "NOTES.md"


def notes_text(run_id: str, notes: list[str]) -> str:
    """NOTES.md: what the exported folders are and what to know before running the official evaluators."""
    lines = [f"# Run {run_id} in the official DataPerf layout", "",
             "Each folder here is read unchanged by the official evaluator of its track "
             "(docs/official-evaluators.md in the appliance says how to run it).", ""]
    lines += ["## Notes", "", *(f"- {note}" for note in notes)] if notes else ["No notes: the folders are the run "
                                                                             "as it was evaluated."]
    return "\n".join(lines) + "\n"


def _export(run_dir: Path, out: Path, setup: TaskSetup, *, data_root: Path, official_model: str,
               write: Callable[..., list[Path]]) -> Export:
    """Write the finished run at `run_dir` (its validated `setup`) as official folders under `out` (a new or
    empty folder): `write(setup, manifest, results, run_dir, data_root, staging, notes)` writes the folders of
    the run's track into `staging`, the official evaluator's classifier being `official_model`.

    Raises ExportError for a run that cannot be exported, FileExistsError when
    `out` holds anything. Nothing is left behind on failure.
    """
    run_dir, out, data_root = Path(run_dir), Path(out), Path(data_root)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder: choose a new folder for the export")
    manifest, results = _finished_run(run_dir)
    notes = []
    if setup.repeats > 1:
        notes.append(f"the run has {setup.repeats} repeats: exported the first (seed {setup.seed}), the one whose "
                     "curves and files the run keeps; its intervals come from all of them")
    if grid.is_grid(setup):
        setup = grid.primary_setup(setup)
        notes.append(f"the run is a sweep: exported its primary cell (the first value of every list, repeat 0: "
                     f"model {setup.model}, seed {setup.seed}), the one its results tables show")
    model = setup.model
    if model != official_model:
        notes.append(f"the run's model is {model}; the official evaluator uses its own classifier "
                     f"({official_model}), so its numbers are not the run's")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        folders = write(setup, manifest, results, run_dir, data_root, staging, notes)
        (staging / NOTES_FILE).write_text(notes_text(run_dir.name, notes))
        os.replace(staging, out)  # an empty `out` is replaced by the one rename
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Export(setup.track, out, [out / f.relative_to(staging) for f in folders], model, setup.seed, notes)
