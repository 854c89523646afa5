"""Every run, from every place it can be: one row each for the Runs page.

A run is found

* on disk, published (``runs/<id>/``) or still being written / failed
  (``runs/.<id>.partial/``): its manifest gives state and timings, its
  results.json the headline score, its task_setup.yml dataset and model;
* in the S3 bucket only (`Storage.list_runs`): the state of its manifest there
  (a run whose upload is incomplete has none: state ``incomplete``);
* in Airflow (`airflow_gateway.list_recent_runs`): the DAG run's state refines a
  run that is not finished on disk (a DAG run that failed before the run's
  manifest said so shows as failed).

A run's files may come from the bucket, so each is read under its size limit
(`bounded`) and a manifest.json or results.json that cannot be used (too large,
not JSON, too deep, not an object, a state that is not text) makes the run
``unreadable``, with the reason naming the file, instead of breaking the list.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dataperf_appliance.engine.bounded import MAX_MANIFEST_BYTES, MAX_RESULTS_BYTES, Unreadable, read_json_object, read_limited
from dataperf_appliance.config import MAX_FILE_BYTES
from dataperf_appliance.config.names import MAX_RUN_ID_LENGTH, is_safe_name
from dataperf_appliance.engine.runs import MANIFEST, RESULTS, TASK_SETUP, UNREADABLE, staged_run_id
from dataperf_appliance.engine.settings import Settings
from dataperf_appliance.tracks import DEFAULT_TRACK, track_of_results
from dataperf_appliance.interface.ui_support import settings_view

IN_FLIGHT_STATES = ("queued", "running", "publishing")
MAX_SKIPPED_SHOWN = 3  # runs named in the note about runs that could not be restored
#: How long the Runs page brings finished runs from the bucket before it shows the list (it goes on at its
#: next refresh; a run left in the bucket is listed, and downloaded when opened).
PAGE_RESTORE_BUDGET_S = 20.0


@dataclass(frozen=True)
class Headline:
    """A run's headline score: the best ranked method's mean over the tasks (and repeats) of one metric,
    with the half width of its 95% interval over the repeats (None for one repeat)."""

    metric: str
    value: float
    method: str
    lower_is_better: bool
    half_width: float | None = None

    @property
    def label(self) -> str:
        return f"{self.metric} {'↓' if self.lower_is_better else '↑'}"


@dataclass(frozen=True)
class RunRow:
    """One run as the Runs page lists it.

    state: queued | running | publishing | success | failed | incomplete | unreadable.
    """

    run_id: str
    state: str
    where: str  # "disk", "disk + S3", "S3"
    published: bool
    track: str | None = None
    dataset: str | None = None
    model: str | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    headline: Headline | None = None
    error: str | None = None
    airflow_state: str | None = None
    #: A sweep's number of settings (None for a run of one setting).
    sweep_settings: int | None = None

    @property
    def in_flight(self) -> bool:
        return self.state in IN_FLIGHT_STATES

    @property
    def start(self) -> dt.datetime | None:
        return self.started_at or self.created_at

    def duration_s(self, now: dt.datetime | None = None) -> float | None:
        """Seconds from start to finish; for a run in flight, until `now`."""
        if self.start is None:
            return None
        end = self.finished_at or (now or dt.datetime.now(dt.timezone.utc) if self.in_flight else None)
        return None if end is None else max(0.0, (end - self.start).total_seconds())


# ---- reading one run ------------------------------------------------------------------------------

def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class RunFiles:
    """What a run folder says of itself: its manifest ({} when it has none), its results (None when it has
    none, or is not published), its task_setup.yml's text, and why any of them cannot be used (each problem
    names its file; none: the run is readable)."""

    manifest: dict
    results: dict | None
    task_setup_text: str | None
    problems: tuple[str, ...] = ()


def read_run_files(folder: Path, *, published: bool) -> RunFiles:
    """The files of a run folder, each read under its size limit; never raises."""
    problems: list[str] = []
    manifest = _read_json(folder / MANIFEST, MAX_MANIFEST_BYTES, problems) or {}
    results = _read_json(folder / RESULTS, MAX_RESULTS_BYTES, problems) if published else None
    text = None
    try:
        text = read_limited(folder / TASK_SETUP, MAX_FILE_BYTES).decode("utf-8-sig")
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as error:  # ValueError: Unreadable, or not UTF-8
        problems.append(_problem(folder / TASK_SETUP, error))
    if not isinstance(manifest.get("state"), (str, type(None))):
        problems.append(f"{folder / MANIFEST}: its state is not text")
    shape = results_shape_problem(results) if results else None
    if shape:
        problems.append(f"{folder / RESULTS}: {shape}")
    if problems:  # nothing of an unreadable run reaches the pages but the reason
        return RunFiles({}, None, text, tuple(problems))
    return RunFiles(manifest, results, text, ())


def _objects(value: Any) -> bool:
    """Whether `value` is a mapping whose values are all mappings (``{name: {...}}``)."""
    return isinstance(value, Mapping) and all(isinstance(item, Mapping) for item in value.values())


def results_shape_problem(results: Mapping) -> str | None:
    """What of a results.json is not of the shape the pages and Compare walk, or None: its tasks, each task's
    methods, the overall figures and a sweep's settings must be objects of objects where the appliance writes
    them so (a results.json from the bucket may hold anything)."""
    tasks = results.get("tasks", {})
    if not _objects(tasks):
        return "its tasks are not objects"
    if not all(_objects(task.get("strategies", {})) for task in tasks.values()):
        return "a task's strategies are not objects"
    if not _objects(results.get("overall", {})):
        return "its overall figures are not objects"
    sweep = results.get("sweep", {})
    records = sweep.get("settings", []) if isinstance(sweep, Mapping) else None
    if not isinstance(records, list) or not all(
            isinstance(record, Mapping) and _objects(record.get("overall", {}))
            and _objects(record.get("tasks", {})) and all(_objects(t) for t in record.get("tasks", {}).values())
            for record in records):
        return "its sweep's settings are not objects"
    return None


def _read_json(path: Path, max_bytes: int, problems: list[str]) -> dict | None:
    """The JSON object in `path`: None when there is no such file, or when it cannot be used (then the reason is
    added to `problems`)."""
    try:
        return read_json_object(path, max_bytes)
    except FileNotFoundError:
        return None
    except (OSError, Unreadable) as error:
        problems.append(_problem(path, error))
        return None


def _problem(path: Path, error: Exception) -> str:
    """A line on a file that cannot be used, naming it."""
    if isinstance(error, Unreadable):
        return str(error)
    if isinstance(error, OSError):
        return f"{path}: {error.strerror or error}"
    return f"{path}: {error}"


def setup_data(text: str | None) -> dict:
    """The mapping of a task_setup.yml's text (safely loaded), {} when it cannot be read."""
    if not text:
        return {}
    from dataperf_appliance.config import ConfigError, load_yaml

    try:
        data = load_yaml(text, filename=TASK_SETUP).data
    except ConfigError:
        return {}
    return data if isinstance(data, dict) else {}


def _mean(values: Iterable[float | None]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return sum(numbers) / len(numbers) if numbers else None


def main_metric(track: str | None) -> tuple[str, bool]:
    """(the track's main metric, lower is better); an unknown track is the default one's."""
    chosen = track_of_results({"track": track})
    return chosen.main_metric, chosen.lower_is_better


def overall_entries(results: Mapping | None) -> dict[str, Mapping]:
    """Each method's figures over all the tasks: results.json's ``overall`` (means over the tasks, summarized
    over the repeats); for a run written before it existed, the plain means over the tasks."""
    if not results or not isinstance(results.get("tasks"), Mapping):
        return {}
    if isinstance(results.get("overall"), Mapping):
        return dict(results["overall"])
    metric, _ = main_metric(results.get("track"))
    per_method: dict[str, list] = {}
    for task in results["tasks"].values():
        # A results.json from the bucket is untrusted: a part of the wrong shape counts as missing.
        strategies = task.get("strategies") if isinstance(task, Mapping) else None
        for name, entry in (strategies.items() if isinstance(strategies, Mapping) else ()):
            per_method.setdefault(name, []).append(entry.get(metric) if isinstance(entry, Mapping) else None)
    return {name: {metric: m} for name, values in per_method.items() if (m := _mean(values)) is not None}


def method_means(results: Mapping | None) -> dict[str, float]:
    """Each ranked method's mean of the track's main metric over the tasks (and repeats) of results.json."""
    from dataperf_appliance.engine import stats

    metric, _ = main_metric((results or {}).get("track"))
    means = {name: stats.mean_of(entry, metric) for name, entry in overall_entries(results).items()
             if isinstance(entry, Mapping) and entry.get("ranked", True) is not False}
    return {name: value for name, value in means.items() if value is not None}


def headline(results: Mapping | None) -> Headline | None:
    """The best ranked method's mean over the tasks of the track's main metric, with its interval; for a
    sweep, at its first setting (methods are compared at the same conditions only)."""
    from dataperf_appliance.engine import stats

    if settings_view.is_sweep(results):
        results = settings_view.view(results)
    means = method_means(results)
    if not means:
        return None
    metric, lower = main_metric(results.get("track"))
    best = (min if lower else max)(means, key=lambda name: (means[name], name))
    summary = stats.summary_of(overall_entries(results)[best], metric)
    return Headline(metric, means[best], best, lower, stats.half_width(summary))


def read_run_folder(folder: Path, run_id: str, *, published: bool) -> RunRow:
    """The row of a run folder on disk (published or staging); never raises.

    A folder whose files are not what the appliance writes (they may come from the bucket) is listed as
    `unreadable`, saying why, rather than breaking the list.
    """
    files = read_run_files(folder, published=published)
    if files.problems:
        return RunRow(run_id, UNREADABLE, "disk", published=published, error="; ".join(files.problems))
    try:
        return _row_of(files, run_id, published=published)
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError, RecursionError) as error:
        return RunRow(run_id, UNREADABLE, "disk", published=published,
                      error=f"its manifest.json or results.json is not as the appliance writes it "
                            f"({type(error).__name__}: {str(error)[:200]})")


def _row_of(files: RunFiles, run_id: str, *, published: bool) -> RunRow:
    manifest, results, data = files.manifest, files.results, setup_data(files.task_setup_text)
    stages = manifest.get("stages") or {}
    started = parse_time(manifest.get("started_at")) or parse_time((stages.get("validate") or {}).get("started_at"))
    state = manifest.get("state") or ("success" if published and results else "queued")
    sweep = (results or {}).get("sweep") if isinstance((results or {}).get("sweep"), Mapping) else {}
    swept_models = (sweep.get("parameters") or {}).get("model") if isinstance(sweep.get("parameters"), Mapping) \
        else None
    # Text only, whatever the files hold: the Runs page sorts, filters and hashes these.
    return RunRow(
        run_id=run_id, state=state, where="disk", published=published,
        track=_text(manifest.get("track") or data.get("track") or (results or {}).get("track") or
                    (DEFAULT_TRACK if data else None)),
        dataset=_text((results or {}).get("dataset") or data.get("dataset")),
        model=_text(swept_models or (results or {}).get("model") or data.get("model")),
        created_at=parse_time(manifest.get("created_at")), started_at=started,
        finished_at=parse_time(manifest.get("finished_at")), headline=headline(results),
        error=_text(manifest.get("error")), sweep_settings=len(settings_view.settings(results)) or None,
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


# ---- all runs ---------------------------------------------------------------------------------------

def local_runs(settings: Settings) -> dict[str, RunRow]:
    """Every run folder on disk: published ones, and staging ones (in flight or failed) with no published twin."""
    rows: dict[str, RunRow] = {}
    folder = settings.runs_dir
    if not folder.is_dir():
        return rows
    staging = {}
    for child in folder.iterdir():
        if not child.is_dir():
            continue
        staged = staged_run_id(child.name)
        if staged:
            staging[staged] = child
        elif is_safe_name(child.name, max_length=MAX_RUN_ID_LENGTH):
            rows[child.name] = read_run_folder(child, child.name, published=True)
    for run_id, child in staging.items():
        if run_id not in rows:
            rows[run_id] = read_run_folder(child, run_id, published=False)
    return rows


def merge_s3(rows: dict[str, RunRow], listings: Iterable) -> dict[str, RunRow]:
    """Add the bucket's runs (storage.RunListing: run_id, where, state) to the rows from disk."""
    out = dict(rows)
    for listing in listings:
        if listing.where not in ("s3", "both"):
            continue
        row = out.get(listing.run_id)
        if row is not None:
            out[listing.run_id] = replace(row, where="disk + S3")
        else:
            out[listing.run_id] = RunRow(
                listing.run_id, listing.state or "incomplete", "S3", published=True,
                error=f"its {MANIFEST} in S3 is over {MAX_MANIFEST_BYTES:,} bytes or not a JSON object"
                if listing.state == UNREADABLE else None)
    return out


def merge_airflow(rows: dict[str, RunRow], statuses: Iterable) -> dict[str, RunRow]:
    """Refine runs that are not finished on disk with their DAG run's state (airflow_gateway.RunStatus)."""
    out = dict(rows)
    for status in statuses:
        row = out.get(status.run_id)
        if row is None:
            continue
        row = replace(row, airflow_state=status.state)
        if row.in_flight and status.state == "failed":
            row = replace(row, state="failed", finished_at=row.finished_at or status.end_date,
                          error=row.error or "Airflow marked the DAG run failed; open its logs in Airflow")
        elif row.state == "queued" and status.state == "running":
            row = replace(row, state="running", started_at=row.started_at or status.start_date)
        out[status.run_id] = row
    return out


def sort_rows(rows: Iterable[RunRow]) -> list[RunRow]:
    """Newest first (by start, then run id, which starts with its creation time)."""
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(rows, key=lambda r: (r.start or epoch, r.run_id), reverse=True)


@dataclass
class RunCollection:
    rows: list[RunRow]
    notes: list[str]

    @property
    def in_flight(self) -> list[RunRow]:
        return [row for row in self.rows if row.in_flight]


def collect_runs(settings: Settings, *, storage=None, airflow_runs=None) -> RunCollection:
    """Every run: disk, then the bucket (`storage`, when enabled), then Airflow's states (`airflow_runs`).

    `airflow_runs` is a callable returning RunStatus items (default: the
    gateway's list_recent_runs); when Airflow or S3 cannot be reached the runs
    of disk are still listed, and `notes` says what is missing.
    """
    from dataperf_appliance.orchestration import airflow_gateway

    notes: list[str] = []
    rows = local_runs(settings)
    if storage is not None and storage.enabled:
        from dataperf_appliance.engine.storage import StorageError

        try:
            rows = merge_s3(rows, storage.list_runs(with_state=True))
        except StorageError as error:
            notes.append(f"S3 could not be listed: {error}")
    if any(row.in_flight for row in rows.values()):
        try:
            rows = merge_airflow(rows, (airflow_runs or airflow_gateway.list_recent_runs)())
        except airflow_gateway.AirflowUnavailable as error:
            notes.append(f"Airflow cannot be reached, states are from disk: {error}")
    return RunCollection(sort_rows(rows.values()), notes)


def filter_rows(rows: Iterable[RunRow], *, states: Iterable[str] = (), tracks: Iterable[str] = (),
                models: Iterable[str] = (), text: str = "") -> list[RunRow]:
    """The rows matching every filter given (an empty filter matches all); `text` searches id and dataset."""
    states, tracks, models = set(states), set(tracks), set(models)
    needle = text.strip().lower()
    return [row for row in rows
            if (not states or row.state in states) and (not tracks or row.track in tracks)
            and (not models or row.model in models)
            and (not needle or needle in row.run_id.lower() or needle in (row.dataset or "").lower())]


STATE_ICONS = {"queued": "⏳", "running": "🔄", "publishing": "☁️", "success": "✅", "failed": "❌",
               "incomplete": "❔", "unreadable": "⚠️"}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


#: The column of the best method's name in the Runs table.
BEST_COLUMN = "best method"


def score_column(metric: str, lower_is_better: bool) -> str:
    """A track's score column: its metric and its direction (one column per metric, never mixed)."""
    return f"{metric} {'↓' if lower_is_better else '↑'}"


def rows_table(rows: Iterable[RunRow], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The rows as plain records for a table (one dict per run, display-ready): each track's main metric in a
    column of its own, named with its direction."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rows = list(rows)
    metrics = list(dict.fromkeys(score_column(r.headline.metric, r.headline.lower_is_better)
                                 for r in rows if r.headline))
    table = []
    for row in rows:
        score = row.headline
        column = score_column(score.metric, score.lower_is_better) if score else None
        # What a run is and how it scored first; when and where after.
        table.append({
            "run": row.run_id,
            "state": f"{STATE_ICONS.get(row.state, '')} {row.state}".strip(),
            "track": row.track or "",
            "sweep": f"sweep · {row.sweep_settings} settings" if row.sweep_settings else "",
            **{name: (round(score.value, 4) if name == column else None) for name in metrics},
            "± 95%": None if score is None or score.half_width is None else round(score.half_width, 4),
            BEST_COLUMN: "" if score is None else score.method,
            "dataset": row.dataset or "",
            "model": row.model or "",
            "started (UTC)": row.start.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M") if row.start else "",
            "duration": format_duration(row.duration_s(now)),
            "where": row.where,
        })
    return table


def restore_finished(storage, *, time_budget_s: float = PAGE_RESTORE_BUDGET_S,
                     clock: Callable[[], float] = time.monotonic) -> tuple[list[str], list[str]]:
    """Download the successful runs that are only in the bucket (whole, so they open like local ones), newest
    first, for at most `time_budget_s` seconds (checked before each run).

    Only runs whose manifest in the bucket says success: a run in flight or
    being published elsewhere is listed from the bucket but left there. A run
    that cannot be downloaded is skipped; one note says how many were, and why.
    Runs left when the time is up are listed from the bucket, downloaded when
    opened or by a later call; a note says how many.
    Returns (run ids downloaded, notes).
    """
    if storage is None or not storage.enabled:
        return [], []
    from dataperf_appliance.engine.storage import StorageError

    deadline = clock() + time_budget_s
    restored, skipped, left = [], [], 0
    try:
        listings = storage.list_runs(with_state=True)
    except StorageError as error:
        return [], [f"S3 could not be listed: {error}"]
    for listing in sorted(listings, key=lambda item: item.run_id, reverse=True):
        if listing.where != "s3" or listing.state != "success":
            continue
        if clock() >= deadline:
            left += 1
            continue
        try:
            storage.download_run(listing.run_id)
            restored.append(listing.run_id)
        except StorageError as error:
            skipped.append(f"{listing.run_id}: {error}")
    notes = []
    if skipped:
        shown = "; ".join(skipped[:MAX_SKIPPED_SHOWN]) + ("; …" if len(skipped) > MAX_SKIPPED_SHOWN else "")
        notes.append(f"{len(skipped)} run(s) in S3 skipped, they cannot be brought to disk ({shown})")
    if left:
        notes.append(f"{left} finished run(s) are still in S3 only: each is brought to disk when opened, the others "
                     "at the next refresh")
    return restored, notes
