"""One run for the Run page: its files, metrics as tables, progress from Airflow, a zip of it, and a zip of
it in the official DataPerf evaluators' layout.

Every file is read under its size limit (`bounded`): the run's JSON when it is loaded, a picture or a table
when the page shows or serves it, and a zip is written to a temporary file, never built in memory.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from dataperf_appliance.engine import stats
from dataperf_appliance.engine.bounded import MAX_PLOT_BYTES, MAX_SERVED_BYTES, Unreadable, read_limited
from dataperf_appliance.config import ConfigError, catalog
from dataperf_appliance.stages.pipeline import RunPaths
from dataperf_appliance.engine.runs import PARTIAL, UNREADABLE
from dataperf_appliance.engine.settings import Settings
from dataperf_appliance.tracks import POINT, parse_task_setup, track_of_results
from dataperf_appliance.interface.ui_support.run_list import IN_FLIGHT_STATES, read_run_files

#: The DAG's tasks in order, with what the page calls them.
STEP_LABELS = {"validate": "Validate task_setup.yml", "prepare_data": "Prepare the data",
               "evaluate": "Evaluate", "report": "Report: results and plots", "publish": "Publish (and sync to S3)"}
DONE_STATES = ("success", "skipped")
FAILED_STATES = ("failed", "upstream_failed")


class RunNotFound(LookupError):
    """No run with this id on disk or in the bucket."""


@dataclass
class RunDetail:
    """A run as found on disk: `folder` is the published folder, or the staging one while it is written."""

    run_id: str
    folder: Path
    published: bool
    manifest: dict = field(default_factory=dict)
    results: dict | None = None
    task_setup_text: str | None = None
    #: Why the run's files cannot be used, each problem naming its file (None: they can).
    unreadable: str | None = None

    @property
    def state(self) -> str:
        if self.unreadable:
            return UNREADABLE
        return self.manifest.get("state") or ("success" if self.results else "queued")

    @property
    def in_flight(self) -> bool:
        return self.state in IN_FLIGHT_STATES

    @property
    def error(self) -> str | None:
        return self.manifest.get("error")

    @property
    def traceback(self) -> str | None:
        return self.manifest.get("traceback")

    @property
    def plots(self) -> list[Path]:
        """Every picture of the run (``plots/*.png``), curves first, galleries last."""
        folder = self.folder / "plots"
        if not folder.is_dir():
            return []
        found = [p for p in folder.glob("*.png") if not p.name.startswith(".")]
        return sorted(found, key=lambda p: ("gallery" in p.name, p.name))

    @property
    def charts(self) -> list[Path]:
        return [p for p in self.plots if "gallery" not in p.name]

    @property
    def gallery(self) -> list[Path]:
        return [p for p in self.plots if "gallery" in p.name]

    def file_bytes(self, name: object, max_bytes: int) -> bytes | None:
        """The content of the run's file `name`, or None when there is none or it is over `max_bytes`.

        `name` may come from the run's own results.json, which is data: only a
        plain, visible file name that resolves (links followed) inside the run
        folder is read, never a path.
        """
        if not isinstance(name, str) or name != PurePosixPath(name).name or name.startswith(".") or "\\" in name:
            return None
        try:
            path = (self.folder / name).resolve()
            return read_limited(path, max_bytes) if path.is_relative_to(self.folder.resolve()) else None
        except (OSError, ValueError):  # ValueError: Unreadable, or a NUL in the name
            return None

    def task_ids(self) -> list[str]:
        """The benchmark tasks of the run, in the order of the DAG's mapped `evaluate` instances."""
        if self.results and isinstance(self.results.get("tasks"), Mapping):
            return list(self.results["tasks"])
        if not self.task_setup_text:
            return []
        try:
            return parse_task_setup(self.task_setup_text, data_root=None).task_ids()
        except (ConfigError, ValueError):
            return []


def load_run(settings: Settings, run_id: str, *, storage=None) -> RunDetail:
    """The run `run_id` from disk; from the bucket (downloaded once) when it is only there.

    Raises RunNotFound (also for an id that is not a run id) with a message for the user.
    """
    try:
        paths = RunPaths.of(run_id, settings)
    except ValueError as error:
        raise RunNotFound(str(error)) from None
    final, folder = paths.final, paths.current
    if not folder.is_dir() and storage is not None and storage.enabled:
        from dataperf_appliance.engine.storage import StorageError

        try:
            folder = storage.download_run(run_id)
        except StorageError as error:
            raise RunNotFound(str(error)) from None
    if not folder.is_dir():
        raise RunNotFound(f"no run {run_id} on disk ({settings.runs_dir})")
    published = folder == final
    files = read_run_files(folder, published=published)
    return RunDetail(run_id, folder, published, files.manifest, files.results, files.task_setup_text,
                     "; ".join(files.problems) or None)


def plot_bytes(path: Path) -> bytes | None:
    """A picture of the run, read when the page shows it; None when it cannot be read or is over
    MAX_PLOT_BYTES."""
    try:
        return read_limited(path, MAX_PLOT_BYTES)
    except (OSError, Unreadable):
        return None


# ---- metrics ----------------------------------------------------------------------------------------------------

#: The columns beside the main metric's mean: its 95% interval and the paired comparison with random.
INTERVAL_COLUMN, VERSUS_COLUMN = "± 95%", f"vs {stats.BASELINE} (paired)"
#: The column that marks a method over the budget, train_size (not ranked).
OVER_BUDGET_COLUMN = "over budget"


def metric_columns(results: Mapping) -> tuple[str, ...]:
    """The metrics shown for a run, its track's main metric first."""
    track = track_of_results(results)
    return (track.main_metric, *[c for c in track.result_columns if c != track.main_metric])


def has_budget(results: Mapping) -> bool:
    """Whether the run's methods may exceed a budget, train_size (shown, but not ranked, when they do): each
    gives one training set (`tracks.POINT`)."""
    return track_of_results(results).result_kind == POINT


def entry_row(results: Mapping, entry: Mapping) -> dict[str, Any]:
    """One method's figures for a table: every metric (means over the repeats), the main metric's interval
    half width, the paired comparison with random in words, and whether it is over the budget."""
    columns = metric_columns(results)
    main = columns[0]
    row: dict[str, Any] = {c: (stats.mean_of(entry, c) if stats.summary_of(entry, c) else entry.get(c))
                           for c in columns}
    row[INTERVAL_COLUMN] = stats.half_width(stats.summary_of(entry, main))
    row[VERSUS_COLUMN] = stats.format_comparison(stats.comparison_of(entry, main))
    if has_budget(results):
        row[OVER_BUDGET_COLUMN] = not stats.is_ranked(entry)
    return row


def ranking_key(results: Mapping, name: str, entry: Mapping) -> tuple:
    """Ranked methods first, best mean of the main metric first, then by name."""
    from dataperf_appliance.interface.ui_support.run_list import main_metric

    metric, lower = main_metric(results.get("track"))
    mean = stats.mean_of(entry, metric)
    return (not stats.is_ranked(entry), mean is None, (mean or 0.0) * (1 if lower else -1), name)


def metrics_rows(results: Mapping | None, *, drop_empty: bool = False) -> list[dict[str, Any]]:
    """One row per task and method: the task, the method and the track's metrics (best first per task);
    a method over the budget last. With `drop_empty`, a column with no value in any row is left out (a
    sweep's setting has its main metric only)."""
    if not results or not isinstance(results.get("tasks"), Mapping):
        return []
    rows = []
    for task, task_result in results["tasks"].items():
        entries = sorted((task_result.get("strategies") or {}).items(),
                         key=lambda item: ranking_key(results, *item))
        for name, entry in entries:
            rows.append({"task": task, "method": name, **entry_row(results, entry)})
    if drop_empty:
        kept = [key for key in dict.fromkeys(k for row in rows for k in row)
                if any(row.get(key) not in (None, "", False) for row in rows)]
        rows = [{key: row.get(key) for key in kept} for row in rows]
    return rows


def _method_records(results: Mapping | None):
    if not results or not isinstance(results.get("tasks"), Mapping):
        return
    for task, task_result in results["tasks"].items():
        for name, entry in (task_result.get("strategies") or {}).items():
            record = entry.get("method") if isinstance(entry, Mapping) else None
            if isinstance(record, Mapping):
                yield task, name, record


def method_cost_rows(results: Mapping | None) -> list[dict[str, Any]]:
    """What each method run in a process of its own cost on each task (the first repeat): its own seconds and
    CPU seconds (fit and propose, or select), the whole process's seconds, its peak memory, where it stopped."""
    return [{"task": task, "method": name, "seconds": record.get("seconds"), "cpu_seconds": record.get("cpu_seconds"),
             "process_seconds": record.get("wall_seconds"), "peak_mib": record.get("peak_rss_mib"),
             "stopped_at": None if record.get("stopped_at") is None else str(record["stopped_at"])}
            for task, name, record in _method_records(results) if not record.get("error")]


def method_failures(results: Mapping | None) -> list[dict[str, Any]]:
    """Each method that failed on a task (the first repeat): its one-line error and its traceback."""
    return [{"task": task, "method": name, "error": record["error"], "traceback": record.get("traceback") or ""}
            for task, name, record in _method_records(results) if record.get("error")]


def task_rows(results: Mapping | None) -> list[dict[str, Any]]:
    """One row per task: what the task was, in its track's `Track.task_columns` (debugging: accuracy before
    and after cleaning, wrong labels)."""
    if not results or not isinstance(results.get("tasks"), Mapping):
        return []
    columns = track_of_results(results).task_columns
    rows = []
    for task, task_result in results["tasks"].items():
        row = {"task": task}
        for key in columns:
            if key in task_result:
                row[key] = task_result[key]
        rows.append(row)
    return rows


def method_means(results: Mapping | None) -> list[dict[str, Any]]:
    """Each method's mean over the tasks of the track's main metric, with its 95% interval over the repeats
    and the paired comparison with random; ranked methods best first, then those over the budget."""
    from dataperf_appliance.interface.ui_support.run_list import main_metric
    from dataperf_appliance.interface.ui_support.run_list import overall_entries

    overall = overall_entries(results)
    if not overall:
        return []
    metric, lower = main_metric(results.get("track"))
    rows = []
    for name, entry in sorted(overall.items(), key=lambda item: ranking_key(results, *item)):
        summary = stats.summary_of(entry, metric)
        rows.append({"method": name, "metric": metric, "mean": stats.mean_of(entry, metric),
                     "half_width": stats.half_width(summary), "repeats": (summary or {}).get(stats.N, 1),
                     "comparison": stats.comparison_of(entry, metric), "ranked": stats.is_ranked(entry),
                     "lower_is_better": lower})
    return [row for row in rows if row["mean"] is not None]


def _count(number: int, thing: str) -> str:
    """``1 task``, ``3 tasks``."""
    return f"{number} {thing}{'' if number == 1 else 's'}"


def over_what(results: Mapping) -> str:
    """What a headline figure is a mean over: ``mean over 3 tasks and 5 repeats``."""
    tasks, repeats = len(results.get("tasks") or {}), results.get("repeats", 1)
    return f"mean over {_count(tasks, 'task')} and {_count(repeats, 'repeat')}"


def headline_delta(comparison: Mapping | None) -> str | None:
    """A headline tile's comparison with random, short enough for a third of the page:
    ``+0.033 vs random, p=0.012`` (p adjusted by Holm), ``…, n.s.`` when that p is 0.05 or more,
    ``+0.033 vs random, no test: 1 repeat`` without a test."""
    if not comparison or comparison.get(stats.DIFFERENCE) is None:
        return None
    text = f"{comparison[stats.DIFFERENCE]:+.3f} vs random"
    if comparison.get(stats.P_VALUE) is None:
        return f"{text}, {stats.no_test_reason(comparison)}"
    text += f", p={stats.adjusted_p(comparison):.2g}"
    return text if comparison.get(stats.SIGNIFICANT) else text + ", n.s."


def sweep_size(results: Mapping) -> str:
    """``2 settings × 3 tasks × 6 repeats = 36 cells``."""
    from dataperf_appliance.interface.ui_support import settings_view

    sweep = results.get("sweep") or {}
    settings = len(settings_view.settings(results))
    tasks = len(sweep.get("tasks") or results.get("tasks") or {})
    repeats = max((s.get("repeats", 1) for s in settings_view.setting_records(results)), default=1)
    return (f"{_count(settings, 'setting')} × {_count(tasks, 'task')} × {_count(repeats, 'repeat')} = "
            f"{sweep.get('cells', settings * tasks * repeats)} cells")


def comparison_rows(results: Mapping | None) -> list[dict[str, Any]]:
    """Every method against random, per task and over all tasks: the paired difference of each headline
    metric, which way is better (``lower``: a negative difference is the method's gain), its 95% interval, p,
    the Holm-adjusted p and whether it is significant (adjusted p < 0.05)."""
    if not results or not isinstance(results.get("tasks"), Mapping):
        return []
    places = [(task, r.get("strategies") or {}) for task, r in results["tasks"].items()]
    if len(places) > 1 and results.get("overall"):
        places.append(("all tasks (mean)", results["overall"]))
    rows = []
    for task, entries in places:
        for name, entry in entries.items():
            for metric, comparison in (entry.get(stats.VS_BASELINE) or {}).items():
                rows.append({"task": task, "method": name, "metric": metric, "better": catalog.better(metric),
                             "difference": comparison.get(stats.DIFFERENCE), "ci_low": comparison.get(stats.CI_LOW),
                             "ci_high": comparison.get(stats.CI_HIGH), "p": comparison.get(stats.P_VALUE),
                             "p (Holm)": stats.adjusted_p(comparison),
                             "significant": comparison.get(stats.SIGNIFICANT), "repeats": comparison.get(stats.N)})
    return rows


def sweep_summary(results: Mapping | None) -> list[dict[str, Any]]:
    """A sweep's main metric per setting, task and strategy, narrow enough for the page: the axes that change
    across the sweep, the mean and half its 95% interval over the repeats, and the paired difference with
    random with its Holm-adjusted p-value."""
    from dataperf_appliance.interface.ui_support import settings_view

    sweep = (results or {}).get("sweep") or {}
    records = sweep.get("summary") or []
    changing = [axis["name"] for axis in settings_view.axes(results)
                if len({record.get(axis["name"]) for record in records}) > 1]
    rows = []
    for record in records:
        comparison = record.get(stats.VS_BASELINE) or {}
        rows.append({"task": record.get("task"), **{name: record.get(name) for name in changing},
                     "strategy": record.get("strategy"), "mean": record.get(stats.MEAN),
                     INTERVAL_COLUMN: stats.half_width(record), "n": record.get(stats.N),
                     "vs random": comparison.get(stats.DIFFERENCE), "p (Holm)": stats.adjusted_p(comparison)
                     if comparison else None, "significant": comparison.get(stats.SIGNIFICANT)})
    return rows


#: The pictures of a run that share a tab, by the end of their file name (the rest get a tab each, by task).
PLOT_GROUPS = (("_fixing_curve", "Fixing curves"), ("vs_random", "vs random"), ("_vs_time", "Cost"),
               ("selection_metrics", "Metrics"), ("sweep_", "Sweep"))


def plot_groups(paths: list[Path]) -> dict[str, list[Path]]:
    """{tab label: its pictures}: a sweep's or a task's several pictures of one kind in one tab, so the tab
    bar stays within the page; a gallery (one per task) under its task's name."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        label = next((group for marker, group in PLOT_GROUPS if marker in path.stem), None)
        if label is None:
            label = path.stem.rsplit("_", 2)[0] if path.stem.endswith("_gallery") else path.stem.replace("_", " ")
        groups.setdefault(label, []).append(path)
    return groups


@dataclass(frozen=True)
class FileGroup:
    """Files of a run that belong together, for the Files tab; `internal` ones are shown folded."""

    label: str
    about: str
    files: list[Path]
    internal: bool = False


#: The top folders of a run and what their files are, in the order the Files tab lists them (the rest, at
#: the top level, are the run's own record: results, manifest, task_setup.yml, tables).
FOLDER_GROUPS = (
    ("plots", "Plots", "every picture of the Plots and Gallery tabs", False),
    ("results", "Official result files", "the evaluator's result files, in DataPerf's layout", False),
    ("submissions", "Submissions", "each method's order or training set in DataPerf's format; a debugging "
                                   "time_<task>_<method>.txt holds that method's seconds", False),
    (PARTIAL, "Internal: the stages' hand-over",
     "what each evaluate task hands to report (partial/<task>.json, sweep_<task>.json); kept so that the report "
     "can be drawn again", True),
)


def file_groups(folder: Path) -> list[FileGroup]:
    """The run's visible files, grouped as `FOLDER_GROUPS` says (the run's own record first)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    top = {name: (label, about, internal) for name, label, about, internal in FOLDER_GROUPS}
    groups: dict[str, FileGroup] = {"": FileGroup("The run", "results, manifest, task_setup.yml and tables", [])}
    for path in files:
        parts = path.relative_to(folder).parts
        key = parts[0] if len(parts) > 1 and parts[0] in top else ""
        if key and top[key][0] not in groups:
            label, about, internal = top[key]
            groups[label] = FileGroup(label, about, [], internal)
        groups[top[key][0] if key else ""].files.append(path)
    return [group for group in groups.values() if group.files]


def format_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``2.0 MiB``: small files in bytes, so a short file never reads as empty."""
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


def stage_rows(manifest: Mapping) -> list[dict[str, Any]]:
    """The stages of the manifest: start, seconds, outcome; the parts of `evaluate` one by one."""
    rows = []
    for name, entry in (manifest.get("stages") or {}).items():
        rows.append({"stage": name, "started": entry.get("started_at"), "seconds": entry.get("seconds"),
                     "ok": entry.get("ok")})
        for part, sub in (entry.get("parts") or {}).items():
            rows.append({"stage": f"{name} · {part}", "started": sub.get("started_at"),
                         "seconds": sub.get("seconds"), "ok": sub.get("ok")})
    return rows


# ---- progress ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    label: str
    state: str | None  # Airflow's task instance state (None: not scheduled yet)

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES


def progress_steps(status, task_ids: list[str]) -> list[Step]:
    """The DAG's task instances as steps, `evaluate` once per benchmark task (named by its task id).

    `status` is an airflow_gateway.RunStatus. Benchmark tasks that are not
    mapped yet (before prepare_data finished) appear as not started.
    """
    by_task: dict[str, dict[int, str | None]] = {}
    for ti in getattr(status, "task_instances", []):
        by_task.setdefault(ti.task_id, {})[ti.map_index] = ti.state
    steps = []
    for task_id, label in STEP_LABELS.items():
        states = by_task.get(task_id, {})
        if task_id == "evaluate":
            count = max(len(task_ids), len([i for i in states if i >= 0]))
            for index in range(count):
                name = task_ids[index] if index < len(task_ids) else f"task {index + 1}"
                steps.append(Step(f"{label} {name}", states.get(index)))
            if count == 0:
                steps.append(Step(label, states.get(-1)))
        else:
            steps.append(Step(label, states.get(-1)))
    return steps


def progress_fraction(steps: list[Step]) -> float:
    return sum(step.done for step in steps) / len(steps) if steps else 0.0


def step_icon(step: Step) -> str:
    if step.done:
        return "✅"
    if step.failed:
        return "❌"
    return {"running": "🔄", "queued": "⏳", "scheduled": "⏳", "up_for_retry": "🔁", "deferred": "⏸️",
            "restarting": "🔁"}.get(step.state or "", "▫️")


# ---- downloads ----------------------------------------------------------------------------------------

#: The chunk a file is copied into a zip by: the most of it in memory at once.
_ZIP_CHUNK = 1024 * 1024


def _visible(folder: Path) -> list[Path]:
    """Every file and folder under `folder`, sorted, hidden ones (and what is under them) left out."""
    return [path for path in sorted(folder.rglob("*"))
            if not any(part.startswith(".") for part in path.relative_to(folder).parts)]


def folder_bytes(folder: Path) -> int:
    """The size of the visible files under `folder`: what its zip holds before compression."""
    return sum(path.stat().st_size for path in _visible(Path(folder)) if path.is_file())


def build_zip(folder: Path, root_name: str | None = None, *, scratch: Path | None = None,
              max_bytes: int = MAX_SERVED_BYTES) -> BinaryIO:
    """A zip of every file under `folder` (hidden ones left out), paths under `root_name`/ (default: its name),
    as a file open for reading at its start (close it when done).

    The zip is written to a temporary file in `scratch` (default: the system's; the Run page gives the data root),
    which has no name on disk: nothing is left behind, whatever happens. Each file is copied in chunks of
    `_ZIP_CHUNK`, so the memory used is a few chunks, whatever the run's size. Refused (Unreadable, naming the
    folder) when the files add up to more than `max_bytes`: whoever serves the zip may hold it in memory
    (Streamlit does).

    An empty folder gets an entry of its own (the official evaluators need their empty results folder).
    Entries are sorted and dated the same, so the same run gives the same bytes.
    """
    folder = Path(folder)
    root = root_name or folder.name
    paths = _visible(folder)
    total = sum(path.stat().st_size for path in paths if path.is_file())
    if total > max_bytes:
        raise Unreadable(f"{folder} holds {total:,} bytes of files, over the {max_bytes:,} a zip of it may be")
    if scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
    copied = 0
    with tempfile.TemporaryFile(dir=scratch) as out:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in paths:
                relative = path.relative_to(folder)
                if path.is_dir() and not any(path.iterdir()):
                    info = zipfile.ZipInfo(f"{root}/{relative.as_posix()}/", date_time=(2000, 1, 1, 0, 0, 0))
                    info.external_attr = (0o40755 << 16) | 0x10  # a directory, for unzip and Python alike
                    archive.writestr(info, b"")
                    continue
                if not path.is_file():
                    continue
                info = zipfile.ZipInfo(f"{root}/{relative.as_posix()}", date_time=(2000, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with path.open("rb") as source, \
                        archive.open(info, "w", force_zip64=max_bytes > zipfile.ZIP64_LIMIT) as entry:
                    while chunk := source.read(_ZIP_CHUNK):
                        copied += len(chunk)
                        if copied > max_bytes:  # a file grew since it was counted
                            raise Unreadable(f"{path} grew while {folder} was zipped: over the {max_bytes:,} "
                                             "bytes a zip of it may be")
                        entry.write(chunk)
        out.flush()
        # A plain reader of the same nameless file, at its start: what Streamlit's download button takes (it
        # reads the bytes once, when the user asks for them). Closing `out` leaves the file to the reader.
        reader = open(os.dup(out.fileno()), "rb")  # noqa: SIM115 - the caller closes it
    reader.seek(0)
    return reader


def official_export_zip(detail: RunDetail, data_root: Path) -> tuple[BinaryIO, list[str]]:
    """The run as the official evaluators' folders (`dataperf_appliance.engine.official.export`), zipped under
    ``<run_id>-official/`` (a file open for reading, see `build_zip`), and the export's notes. Raises
    ExportError (a ValueError) when it cannot be."""
    from dataperf_appliance.tracks import export_run

    with tempfile.TemporaryDirectory(prefix="official-export-") as scratch:
        out = Path(scratch) / "official"
        export = export_run(detail.folder, out, data_root=data_root)
        return build_zip(out, f"{detail.run_id}-official", scratch=Path(scratch)), export.notes
