"""The stages of one benchmark run, keyed by run id over the data root.

The Airflow DAG (dags/dataperf_benchmark.py) runs each stage as a task, the
CLI's `run_benchmark` runs them in a row; both call these functions. Nothing
here imports Airflow.

    create_run(text)            runs/.<id>.partial/task_setup.yml + manifest (state queued)
    validate_run(id)            schema-checks the stored file          -> state running
    prepare_run(id)             brings the dataset to the data root (S3 first, else generated
                                and uploaded); records inputs          -> [data_id, ...]
    evaluate_run_task(id, u)    one unit of work: a benchmark task (partial/<task>.json and its
                                submissions), or one method as code of it (`work_units`)
    report_run(id)              results.json, reference files, every plot
    publish_run(id)             rename into place, sync to S3         -> state success
    fail_run(id, error)         state failed with the error; the files stay under the hidden name

A run is written under ``runs/.<id>.partial/`` and appears as ``runs/<id>/``
only once complete (runs.py). Every stage records its start, end and outcome
in manifest.json; mapped `evaluate` tasks of one run update it at the same
time, so every manifest update holds an exclusive lock on the run's folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dataperf_appliance.stages import sweeps
from dataperf_appliance.config import TaskSetup
from dataperf_appliance.engine.parallel import ProgressCallback
from dataperf_appliance.engine.runs import (
    MANIFEST,
    PARTIAL,
    RESULTS,
    TASK_SETUP,
    check_run_id,
    new_manifest,
    new_run_id,
    read_json,
    record_inputs,
    staging_dir,
    utc_now,
    write_json,
)
from dataperf_appliance.engine.settings import Settings, load_settings
from dataperf_appliance.engine.methods import environments, runner
from dataperf_appliance.engine.storage import Storage, StorageError
from dataperf_appliance.tracks import load_task_setup, parse_task_setup, track_of

logger = logging.getLogger(__name__)

# Manifest states, in the order a run goes through them.
QUEUED, RUNNING, PUBLISHING, SUCCESS, FAILED = "queued", "running", "publishing", "success", "failed"


class RunError(RuntimeError):
    """A run cannot go on: unknown run, wrong state, or files missing."""


@dataclass(frozen=True)
class RunPaths:
    """Where one run lives.

    final: the published folder; staging: the hidden folder it is written in;
    data_root: the datasets' root; source_dir: where a user's own submission
    files are read (the staging folder for runs created here, the folder of
    the given task_setup.yml for the CLI).
    """

    run_id: str
    final: Path
    staging: Path
    data_root: Path
    source_dir: Path

    @classmethod
    def of(cls, run_id: str, settings: Settings | None = None) -> "RunPaths":
        settings = settings or load_settings()
        final = settings.runs_dir / check_run_id(run_id)
        staging = staging_dir(final)
        return cls(run_id, final, staging, settings.data_dir, staging)

    @property
    def current(self) -> Path:
        """The folder that holds the run now: the published one once it exists, else the staging one."""
        return self.final if self.final.is_dir() else self.staging


# ---- manifest, under a lock -------------------------------------------------------------------

@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder` (flock on the directory itself, so nothing is added to the run)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _manifest(paths: RunPaths) -> Iterator[dict]:
    """Read-modify-write the manifest of the run's current folder under its lock."""
    folder = paths.current
    if not folder.is_dir():
        raise RunError(f"no run {paths.run_id}: neither {paths.final} nor {paths.staging} exists")
    with _locked(folder):
        # The run may have been renamed while we waited for the lock.
        if not folder.is_dir():
            folder = paths.current
        manifest = read_json(folder / MANIFEST) if (folder / MANIFEST).exists() else _bare_manifest(paths, folder)
        yield manifest
        write_json(folder / MANIFEST, manifest)


def _bare_manifest(paths: RunPaths, folder: Path) -> dict:
    """A manifest for a run folder that has none (one placed by hand, or a file that does not parse)."""
    text = (folder / TASK_SETUP).read_text() if (folder / TASK_SETUP).exists() else ""
    manifest = new_manifest(paths.run_id, text, seed=None, track=None)
    manifest["state"] = QUEUED
    return manifest


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


@contextlib.contextmanager
def stage(paths: RunPaths, name: str, part: str | None = None) -> Iterator[None]:
    """Record a stage's start, end, seconds and outcome; `part` records one of several parallel pieces."""
    started = _now()
    with _manifest(paths) as manifest:
        entry = manifest["stages"].setdefault(name, {})
        if part is None:
            entry.update(started_at=_iso(started), finished_at=None, seconds=None, ok=None)
        else:
            entry.setdefault("started_at", _iso(started))
            entry.setdefault("parts", {})[part] = {"started_at": _iso(started), "finished_at": None,
                                                  "seconds": None, "ok": None}
    ok = False
    try:
        yield
        ok = True
    finally:
        finished = _now()
        with _manifest(paths) as manifest:
            entry = manifest["stages"].setdefault(name, {})
            record = entry if part is None else entry.setdefault("parts", {}).setdefault(part, {})
            record.update(finished_at=_iso(finished), seconds=round((finished - started).total_seconds(), 3), ok=ok)
            if part is not None:
                parts = entry["parts"].values()
                ends = [p["finished_at"] for p in parts]
                entry["started_at"] = min(p["started_at"] for p in parts)
                entry["finished_at"] = max(ends) if None not in ends else None
                entry["ok"] = all(p["ok"] for p in parts) if None not in ends else None
                # The stage's wall time, from its first part's start to its last part's end (parts overlap).
                entry["seconds"] = None if None in ends else round(
                    (dt.datetime.fromisoformat(entry["finished_at"])
                     - dt.datetime.fromisoformat(entry["started_at"])).total_seconds(), 3)


def read_manifest(run_id: str, settings: Settings | None = None) -> dict:
    """The manifest of a run, published or not."""
    paths = RunPaths.of(run_id, settings)
    path = paths.current / MANIFEST
    if not path.exists():
        raise RunError(f"run {run_id} has no manifest")
    return read_json(path)


def start_run(paths: RunPaths, task_setup_text: str, setup, *, validated_at: dt.datetime | None = None,
              validate_seconds: float | None = None) -> None:
    """Begin writing a run whose setup is already validated (the CLI's path): a new staging folder
    holding the task_setup.yml and a `running` manifest.

    The staging folder is created exclusively: when it exists, another process
    writes that run now or a crashed one left it, and FileExistsError says so;
    it is never deleted here, as this process did not create it.
    """
    paths.staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        paths.staging.mkdir()
    except FileExistsError:
        raise FileExistsError(f"{paths.staging} exists: another run is writing {paths.final} now, or a crashed "
                              "one left it (remove that folder once no run uses it)") from None
    (paths.staging / TASK_SETUP).write_text(task_setup_text)
    for relative in _method_files(setup):  # the run keeps the code it ran
        target = paths.staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths.source_dir / relative, target)
    manifest = new_manifest(paths.run_id, task_setup_text, seed=setup.seed, track=setup.track)
    if validated_at is not None:
        manifest["stages"]["validate"] = {"started_at": _iso(validated_at), "finished_at": _iso(_now()),
                                          "seconds": round(validate_seconds or 0.0, 3), "ok": True}
    write_json(paths.staging / MANIFEST, manifest)


# ---- the stages -------------------------------------------------------------------------------

def _load_setup(paths: RunPaths, *, check_files: bool = True) -> TaskSetup:
    """The run's validated setup. Without `check_files`, an official dataset folder that is not on disk
    yet is not looked for (on a new instance it may still be in S3: `prepare_run` brings it, then checks)."""
    path = paths.current / TASK_SETUP
    if check_files:
        return load_task_setup(path, data_root=paths.data_root)
    setup = load_task_setup(path, data_root=None)
    if (Path(paths.data_root) / "datasets" / setup.dataset).is_dir():
        setup = load_task_setup(path, data_root=paths.data_root)
    return setup


def safe_run_id(text: str) -> str:
    """A run id (a safe folder name) made from any string, e.g. Airflow's `manual__2026-...+00:00`."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("._-")[:100] or "run"
    if cleaned != text:
        cleaned = f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"
    return check_run_id(cleaned)


def _dataset_name(task_setup_text: str) -> str:
    return parse_task_setup(task_setup_text, data_root=None).dataset


def create_run(task_setup_text: str, run_id: str | None = None, *, files: dict[str, bytes] | None = None,
               check: bool = True, settings: Settings | None = None) -> str:
    """Store a new run's task_setup.yml (and a user's submission files) with a `queued` manifest; its id.

    With `check` (the default) the text is validated first and an invalid one
    raises ConfigError before anything is written. `files` maps paths relative
    to the run folder (e.g. ``submissions/01g317_mine.txt``) to their bytes.
    The same id and the same text again is accepted (a retried trigger); a
    different text under an existing id raises FileExistsError.
    """
    settings = settings or load_settings()
    run_id = check_run_id(run_id or new_run_id())
    paths = RunPaths.of(run_id, settings)
    setup = None
    if check:
        # With S3, an official dataset may be in the bucket only: its files are checked once brought.
        local = not settings.s3_bucket or (settings.datasets_dir / _dataset_name(task_setup_text)).is_dir()
        setup = parse_task_setup(task_setup_text, data_root=settings.data_dir if local else None)
    if paths.final.exists():
        raise FileExistsError(f"run {run_id} is already published")
    if paths.staging.exists():
        existing = paths.staging / TASK_SETUP
        if existing.exists() and existing.read_text() == task_setup_text:
            return run_id
        raise FileExistsError(f"run {run_id} exists already with another task_setup.yml")
    checked = {_run_file_path(relative): content for relative, content in (files or {}).items()}
    paths.staging.parent.mkdir(parents=True, exist_ok=True)
    # A folder of this call's own (created exclusively), renamed into place once complete.
    tmp = Path(tempfile.mkdtemp(prefix=f"{paths.staging.name}.", suffix=".tmp", dir=paths.staging.parent))
    try:
        for relative, content in checked.items():
            target = tmp.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        (tmp / TASK_SETUP).write_text(task_setup_text)
        if setup is not None and setup.methods:  # the methods' files must be among those given
            parse_task_setup(task_setup_text, data_root=None, source_dir=tmp)
        manifest = new_manifest(run_id, task_setup_text, seed=setup.seed if setup else None,
                                track=setup.track if setup else None)
        manifest["state"] = QUEUED
        write_json(tmp / MANIFEST, manifest)
        os.rename(tmp, paths.staging)  # fails if another trigger created it meanwhile
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not paths.staging.exists():
            raise
        return create_run(task_setup_text, run_id, files=files, check=False, settings=settings)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_id


def _run_file_path(relative: str) -> PurePosixPath:
    """`relative` as a path inside a run folder, if it is a plain one a user's file may take; else ValueError."""
    path = PurePosixPath(relative) if isinstance(relative, str) else None
    if (path is None or not path.parts or path.is_absolute() or "\\" in relative or "\0" in relative
            or any(part in {".", ".."} or part.startswith(".") for part in relative.split("/"))
            or relative in (TASK_SETUP, MANIFEST, RESULTS)):
        raise ValueError(f"file {relative!r} cannot be stored in a run")
    return path


def validate_run(run_id: str, *, settings: Settings | None = None) -> list[str]:
    """Schema-check the run's stored task_setup.yml; mark it running; the ids of its benchmark tasks.

    Raises ConfigError (every issue with file:line) for a file that cannot run.
    """
    settings = settings or load_settings()
    paths = RunPaths.of(run_id, settings)
    if paths.final.exists():
        raise RunError(f"run {run_id} is already published")
    if not (paths.staging / TASK_SETUP).exists():
        raise RunError(f"run {run_id} has no {TASK_SETUP} (expected {paths.staging / TASK_SETUP})")
    with stage(paths, "validate"):
        setup = _load_setup(paths, check_files=not settings.s3_bucket)
        ids = setup.task_ids()
    with _manifest(paths) as manifest:
        manifest.update(state=RUNNING, seed=setup.seed, track=setup.track, error=None)
        manifest.setdefault("started_at", utc_now())
    return ids


def prepare_data(paths: RunPaths, setup: TaskSetup, storage: Storage) -> list[str]:
    """Bring the run's dataset to the data root (from S3 when `storage` is on) and record the sha256 of every
    input file; the task ids."""
    downloaded = False
    if storage.enabled:
        downloaded = bool(storage.download_dataset(setup.dataset))
        setup = _load_setup(paths)  # the dataset's files are on disk now: check the tasks against them
    before = _dataset_files(paths.data_root, setup.dataset)
    files = sweeps.prepare_data(setup, paths.data_root)
    inputs = sorted({Path(p) for task_files in files.values() for p in task_files.values()})
    if storage.enabled and (not downloaded or _dataset_files(paths.data_root, setup.dataset) != before):
        storage.upload_dataset(setup.dataset)
    with _manifest(paths) as manifest:
        record_inputs(manifest, inputs, paths.data_root)
        for relative in sorted({*_user_files(paths, setup), *_method_files(setup)}):
            record_inputs(manifest, [paths.current / relative], paths.current)
    return setup.task_ids()


def _dataset_files(data_root: Path, dataset: str) -> set[str]:
    folder = Path(data_root) / "datasets" / dataset
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


def _user_files(paths: RunPaths, setup: TaskSetup) -> list[str]:
    """The user's own submission files stored with the run (inputs too)."""
    folder, names = setup.submission_folder, setup.submissions
    if not names or paths.source_dir != paths.staging:
        return []
    base = paths.current / folder
    return [str(p.relative_to(paths.current)) for p in sorted(base.glob("*")) if p.is_file()] if base.is_dir() else []


def _method_files(setup: TaskSetup) -> list[str]:
    """The files of the setup's methods as code (code and requirements), relative to the run folder."""
    return [relative for method in setup.methods for relative in (method.file, method.requirements) if relative]


def prepare_run(run_id: str, *, settings: Settings | None = None) -> list[str]:
    """Stage `prepare_data` of a run: the dataset on disk (from S3 when there); its units of work (`work_units`)."""
    settings = settings or load_settings()
    paths = RunPaths.of(run_id, settings)
    with stage(paths, "prepare_data"):
        setup = _load_setup(paths, check_files=False)
        prepare_data(paths, setup, Storage.from_settings(settings))
        return work_units(setup)


# ---- units of work: a task, or one method as code of a task ---------------------------------------------------
#
# A method as code runs in a child process, often for minutes (a Shapley estimate): each is a unit of `evaluate`
# of its own, so an executor with several workers runs a task's methods at once. A unit's files are written
# under units/<task>/<method>/ and merged into the run by the report.

#: Between a task and its method in a unit's name.
UNIT_SEPARATOR = "/"
#: The run's folder of the units' own files, until the report merges them.
UNITS_FOLDER = "units"


def work_units(setup: TaskSetup) -> list[str]:
    """The units of `evaluate`: per task, the task itself (its methods that run in this process) when it has
    any, then ``<task>/<method>`` for each method run in a child process."""
    isolated = setup.isolated_methods()
    in_process = [name for name in setup.method_names() if name not in isolated]
    return [unit for task in setup.task_ids()
            for unit in ([task] if in_process else []) + [f"{task}{UNIT_SEPARATOR}{name}" for name in isolated]]


def _unit_work(paths: RunPaths, setup: TaskSetup, unit: str) -> tuple[str, TaskSetup, Path]:
    """(the task, the setup restricted to the unit's methods, the folder the unit writes) of a unit."""
    task, _, method = unit.partition(UNIT_SEPARATOR)
    if task not in setup.task_ids():
        raise RunError(f"no task {task} in run {paths.run_id}")
    if method:
        if method not in setup.isolated_methods():
            raise RunError(f"no method {method} run on its own in run {paths.run_id}")
        return task, setup.with_methods({method}), paths.staging / UNITS_FOLDER / task / method
    return task, setup.with_methods(set(setup.method_names()) - set(setup.isolated_methods())), paths.staging


def merge_units(work_dir: Path, setup: TaskSetup) -> None:
    """Merge every unit's files into the run: its method's entry into ``partial/<task>.json``, its rows into
    ``partial/sweep_<task>.json``, its other files (submissions) in place; then remove the units' folder.
    Idempotent: a report that is retried finds the merge done."""
    units = Path(work_dir) / UNITS_FOLDER
    if not units.is_dir():
        return
    for task in setup.task_ids():
        # In the setup's order, as a run in one process lists its methods.
        for method in setup.isolated_methods():
            folder = units / task / method
            if not folder.is_dir():
                continue
            _merge_json(work_dir / PARTIAL / f"{task}.json", folder / PARTIAL / f"{task}.json",
                        lambda base, part: base["strategies"].update({method: part["strategies"][method]}))
            _merge_json(work_dir / PARTIAL / f"sweep_{task}.json", folder / PARTIAL / f"sweep_{task}.json",
                        lambda base, part: _append_rows(base, part, method))
            for path in sorted(folder.rglob("*")):
                relative = path.relative_to(folder)
                if path.is_file() and relative.parts[0] != PARTIAL:
                    (work_dir / relative).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, work_dir / relative)
    shutil.rmtree(units)


def _merge_json(base_path: Path, part_path: Path, merge) -> None:
    if not part_path.exists():
        return
    part = read_json(part_path)
    if not base_path.exists():  # every method of the task runs on its own: the first unit is the base
        write_json(base_path, part)
        return
    base = read_json(base_path)
    merge(base, part)
    write_json(base_path, base)


def _append_rows(base: dict, part: dict, method: str) -> None:
    # Only the unit's own method: a selection task's own train csv is scored in every unit.
    curves = part.get("curves") or [None] * len(part["rows"])
    kept = [(row, curve) for row, curve in zip(part["rows"], curves) if row["strategy"] == method]
    base["rows"] += [row for row, _ in kept]
    base["curves"] = (base.get("curves") or [None] * (len(base["rows"]) - len(kept))) + [c for _, c in kept]


def evaluate(paths: RunPaths, setup: TaskSetup, data_ids: list[str] | None, *, n_jobs: int = 1,
             progress: ProgressCallback | None = None, work_dir: Path | None = None) -> dict[str, dict]:
    """Evaluate the tasks `data_ids` (None: all) into `work_dir` (the staging folder); {data_id: task result}.

    A sweep evaluates every cell of those tasks (the task result is its primary cell's)."""
    return sweeps.evaluate_tasks(setup, paths.data_root, work_dir or paths.staging, paths.source_dir,
                                 data_ids=data_ids, n_jobs=n_jobs, progress=progress)


def report(paths: RunPaths, setup: TaskSetup) -> dict:
    """results.json, the reference files and every plot of the evaluated run (and of its sweep); its content."""
    return sweeps.report(setup, paths.staging)


@contextlib.contextmanager
def _environment_synced(setup: TaskSetup, unit: str, paths: RunPaths, settings: Settings) -> Iterator[None]:
    """Around a unit of one method with requirements: its environment restored from the bucket before, when
    this machine has none (a new instance or another worker unpacks it rather than building it), and kept
    there after (once per key). A failure of either only costs a build."""
    _, _, method = unit.partition(UNIT_SEPARATOR)
    requirements = runner.requirements_of(setup, method, paths.source_dir) if method else None
    storage = Storage.from_settings(settings) if requirements else None
    if not storage or not storage.enabled:
        yield
        return
    try:
        environments.restore_environment(requirements, paths.data_root, storage.download_environment)
    except (StorageError, environments.EnvironmentBuildError, OSError) as error:
        logger.warning("the environment of %s was not restored (it is built here instead): %s", requirements, error)
    yield
    try:
        # Packing takes seconds and hundreds of MB: only when the bucket does not keep it yet.
        if not storage.has_environment(environments.key_of(requirements)):
            environments.archive_environment(requirements, paths.data_root, storage.upload_environment)
    except (StorageError, OSError) as error:
        logger.warning("the environment of %s was not kept in %s: %s", requirements, storage.location, error)


def evaluate_run_task(run_id: str, unit: str, *, n_jobs: int = 1, settings: Settings | None = None) -> dict:
    """Stage `evaluate` for one unit of work (`work_units`: a benchmark task, or one method as code of it):
    writes partial/<task>.json (and, for a sweep, the rows of all the task's cells), under the unit's folder
    for a method; a short summary: the track's main metric per strategy, and the cell count."""
    settings = settings or load_settings()
    paths = RunPaths.of(run_id, settings)
    with stage(paths, "evaluate", part=unit):
        setup = _load_setup(paths)
        data_id, unit_setup, work_dir = _unit_work(paths, setup, unit)
        with _environment_synced(setup, unit, paths, settings):
            result = evaluate(paths, unit_setup, [data_id], n_jobs=n_jobs, work_dir=work_dir)[data_id]
    metric = track_of(setup).main_metric
    summary = {"data_id": data_id, "unit": unit,
               "strategies": {name: r.get(metric) for name, r in result.get("strategies", {}).items()}}
    if sweeps.is_sweep(setup):
        summary["cells"] = len(sweeps.cells(setup, [data_id]))
    return summary


def report_run(run_id: str, *, settings: Settings | None = None) -> dict:
    """Stage `report`: merge the partial results into results.json and draw every plot; a short summary."""
    paths = RunPaths.of(run_id, settings)
    with stage(paths, "report"):
        setup = _load_setup(paths)
        merge_units(paths.staging, setup)
        results = report(paths, setup)
    return {"run_id": run_id, "tasks": sorted(results.get("tasks", {}))}


def publish(paths: RunPaths, storage: Storage) -> None:
    """Move a complete run into place (one rename) and sync it; safe to call again after any failure.

    Without storage: state success, then the rename. With storage: state
    `publishing`, the rename, the upload (which may fail and be retried: the
    run stays `publishing` meanwhile, so it is never shown as finished), then
    state success and the manifest uploaded once more, last.
    """
    syncing = storage.enabled
    started = _now()
    if not paths.final.exists():
        if not (paths.staging / RESULTS).exists():
            raise RunError(f"run {paths.run_id} has no {RESULTS}: it cannot be published")
        with _manifest(paths) as manifest:
            entry = manifest["stages"].setdefault("publish", {})
            entry.update(started_at=entry.get("started_at") or _iso(started), finished_at=None, ok=None)
            manifest.update(state=PUBLISHING if syncing else SUCCESS, error=None)
            if not syncing:
                _finish(manifest)
        os.replace(paths.staging, paths.final)
    if not syncing:
        return
    manifest = read_json(paths.final / MANIFEST)
    if manifest["state"] != SUCCESS:
        storage.upload_run(paths.run_id)
        with _manifest(paths) as manifest:
            _finish(manifest)
    storage.upload_run(paths.run_id)


def _finish(manifest: dict) -> None:
    finished = _now()
    entry = manifest["stages"].setdefault("publish", {})
    started = dt.datetime.fromisoformat(entry.get("started_at") or _iso(finished))
    entry.update(finished_at=_iso(finished), seconds=round((finished - started).total_seconds(), 3), ok=True)
    manifest.update(state=SUCCESS, finished_at=_iso(finished), error=None, traceback=None)


def publish_run(run_id: str, *, settings: Settings | None = None) -> None:
    """Stage `publish`: rename into place, sync to S3, mark success. Idempotent (retry it freely)."""
    settings = settings or load_settings()
    paths = RunPaths.of(run_id, settings)
    publish(paths, Storage.from_settings(settings))


def fail_run(run_id: str, error: BaseException | str, *, settings: Settings | None = None) -> None:
    """Mark a run failed with `error`, its files kept under the hidden staging name.

    A run already published with success is left alone; a run that failed
    during publication is moved back to its staging name. The first error
    recorded is kept (a later callback of the same failure does not replace it).
    """
    try:
        paths = RunPaths.of(run_id, settings)
    except ValueError:
        return
    fail(paths, error)


def fail(paths: RunPaths, error: BaseException | str) -> None:
    if paths.final.exists():
        try:
            state = read_json(paths.final / MANIFEST).get("state")
        except (OSError, ValueError):
            state = None
        if state == SUCCESS:
            return
        if not paths.staging.exists():
            os.replace(paths.final, paths.staging)
    paths.staging.mkdir(parents=True, exist_ok=True)
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    trace = None
    if isinstance(error, BaseException) and error.__traceback__ is not None:
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=20))
    with _manifest(paths) as manifest:
        if manifest.get("state") == FAILED and manifest.get("error"):
            return
        manifest.update(state=FAILED, finished_at=utc_now(), error=message, traceback=trace)


def run_state(run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Where a run is on disk: {"run_id", "published", "state", "error"} (state None if unknown)."""
    paths = RunPaths.of(run_id, settings)
    folder = paths.current
    manifest = read_json(folder / MANIFEST) if (folder / MANIFEST).exists() else {}
    return {"run_id": run_id, "published": paths.final.is_dir(), "state": manifest.get("state"),
            "error": manifest.get("error")}
