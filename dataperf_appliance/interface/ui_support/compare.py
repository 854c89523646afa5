"""Runs side by side: the parameters that differ, their metrics in one table, their curves together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataperf_appliance.engine import stats
from dataperf_appliance.config.grid import AXES, CONDITION
from dataperf_appliance.interface.ui_support.run_detail import RunDetail, entry_row, metric_columns
from dataperf_appliance.interface.ui_support.run_list import setup_data
from dataperf_appliance.tracks import CURVE, track_of_results

MISSING = "—"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A task_setup mapping as {dotted path: scalar}; list items that have a data_id or name are keyed by it.

    ``tasks: [{data_id: digit-3, train_size: 60}]`` -> ``{"tasks[digit-3].train_size": 60}``, so runs
    whose task lists differ in order or length still line up task by task.
    """
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for index, item in enumerate(value):
            name = item.get("data_id", item.get("name", index)) if isinstance(item, Mapping) else index
            rest = {k: v for k, v in item.items() if k not in ("data_id", "name")}
            if rest:
                out.update(flatten(rest, f"{prefix}[{name}]"))
            else:
                out[f"{prefix}[{name}]"] = "✓"
    elif isinstance(value, list):
        out[prefix] = ", ".join(map(str, value)) if value else "[]"
    else:
        out[prefix] = value
    return out


def default_runs(rows: Sequence, count: int = 2) -> list[str]:
    """The run ids Compare starts with: the `count` newest runs (`rows` newest first, run_list.RunRow) of the
    newest track that has that many, since runs of two tracks share no metric; else the newest runs."""
    for track in dict.fromkeys(row.track for row in rows):
        same = [row.run_id for row in rows if row.track == track]
        if len(same) >= count:
            return same[:count]
    return [row.run_id for row in rows[:count]]


def differing_params(runs: Sequence[RunDetail]) -> list[dict[str, Any]]:
    """Rows {"parameter": path, <run id>: value, ...} for every parameter whose value is not the same in all runs."""
    flat = {run.run_id: flatten(setup_data(run.task_setup_text)) for run in runs}
    keys = list(dict.fromkeys(key for values in flat.values() for key in values))
    rows = []
    for key in keys:
        values = [flat[run.run_id].get(key, MISSING) for run in runs]
        if len({_shown(v) for v in values}) > 1:  # as shown: a sweep's one-value list [100] is 100
            rows.append({"parameter": key, **{run.run_id: _shown(v) for run, v in zip(runs, values)}})
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    return str(value)


def metrics_table(runs: Sequence[RunDetail]) -> list[dict[str, Any]]:
    """Every run's metrics in one table: one row per run, task and method (means over the repeats, the main
    metric's interval and the comparison with random)."""
    rows = []
    for run in runs:
        if not run.results:
            continue
        for task, task_result in (run.results.get("tasks") or {}).items():
            for name, entry in (task_result.get("strategies") or {}).items():
                rows.append({"run": run.run_id, "task": task, "method": name, **entry_row(run.results, entry)})
    return rows


#: The suffix of a run's interval column in the pivot (``<run id> ± 95%``).
INTERVAL_SUFFIX = " ± 95%"


def headline_pivot(runs: Sequence[RunDetail]) -> tuple[str | None, list[dict[str, Any]]]:
    """(metric, rows): the main metric's mean of every (task, method) with one column per run, and beside it
    the half width of its 95% interval over the run's repeats (``<run id> ± 95%``), for a quick look."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    metric = None
    for run in runs:
        if not run.results:
            continue
        run_metric = metric_columns(run.results)[0]
        metric = metric or run_metric
        if run_metric != metric:
            continue  # runs of another track have other metrics: they are in the full table
        for task, task_result in (run.results.get("tasks") or {}).items():
            for name, entry in (task_result.get("strategies") or {}).items():
                row = rows.setdefault((task, name), {"task": task, "method": name})
                row[run.run_id] = stats.mean_of(entry, metric)
                row[run.run_id + INTERVAL_SUFFIX] = stats.half_width(stats.summary_of(entry, metric))
    return metric, [rows[key] for key in sorted(rows)]


def curve_points(runs: Sequence[RunDetail], task: str | None = None) -> list[dict[str, Any]]:
    """The fixing curves of debugging runs as points {run, task, method, series, fixes, fraction, accuracy,
    ci_low, ci_high}: the mean curve over the repeats with its 95% band when the run has several, else the
    one curve (no band).

    `fraction` is fixes / train_size, so runs with different training sizes
    share one x axis. `series` names a line: ``<run> · <method>``.
    """
    points = []
    for run in runs:
        if not run.results or not track_of_results(run.results).result_kind == CURVE:
            continue
        for task_id, task_result in (run.results.get("tasks") or {}).items():
            if task is not None and task_id != task:
                continue
            size = task_result.get("train_size") or 0
            for name, entry in (task_result.get("strategies") or {}).items():
                curve = entry.get("curve") or {}
                band = entry.get("curve_over_repeats") or {}
                accuracy = band.get(stats.MEAN) or curve.get("accuracy", [])
                lows = band.get(stats.CI_LOW) or [None] * len(accuracy)
                highs = band.get(stats.CI_HIGH) or [None] * len(accuracy)
                # A sweep's setting (settings_view.view) has the band only, which names its budgets.
                budgets = band.get("fixes") or curve.get("fixes", [])
                for fixes, value, low, high in zip(budgets, accuracy, lows, highs):
                    points.append({"run": run.run_id, "task": task_id, "method": name,
                                   "series": f"{run.run_id} · {name}", "fixes": fixes,
                                   "fraction": fixes / size if size else None, "accuracy": value,
                                   "ci_low": low, "ci_high": high})
    return points


def curve_runs(runs: Sequence[RunDetail]) -> list[RunDetail]:
    """The runs whose methods are curves (the debugging track's fixing curves)."""
    return [run for run in runs if run.results and track_of_results(run.results).result_kind == CURVE]


def common_tasks(runs: Sequence[RunDetail]) -> list[str]:
    """The tasks of the first run that has results, those shared by every other run first."""
    task_sets = [list((run.results or {}).get("tasks") or {}) for run in runs if run.results]
    if not task_sets:
        return []
    shared = [t for t in task_sets[0] if all(t in other for other in task_sets[1:])]
    others = list(dict.fromkeys(t for tasks in task_sets for t in tasks if t not in shared))
    return shared + others


#: The benchmark conditions a run is at, as its task_setup.yml names them (`grid.AXES`' conditions).
CONDITION_KEYS = tuple(name for name, axis in AXES.items() if axis.kind == CONDITION)


def conditions_of(run: RunDetail) -> dict[str, str]:
    """{condition: value as shown} of a run: a sweep's at the setting it is viewed at
    (`settings_view.view`'s ``conditions``), a plain run's from its task_setup.yml (a per-task value as the
    tasks' values joined)."""
    viewed = (run.results or {}).get("conditions")
    if isinstance(viewed, Mapping):
        return _shown_conditions(viewed)
    data = setup_data(run.task_setup_text)
    out = {}
    for key in CONDITION_KEYS:
        found = [data[key]] if key in data else [t.get(key) for t in data.get("tasks") or []
                                                  if isinstance(t, Mapping) and key in t]
        if found:
            out[key] = ", ".join(dict.fromkeys(_shown(v) for v in found))
    return out


def _shown_conditions(setting: Mapping) -> dict[str, str]:
    """{condition: value as shown} of a sweep's setting ({axis: value})."""
    return {key: _shown(setting[key]) for key in CONDITION_KEYS if key in setting}


def conditions_rows(runs: Sequence[RunDetail]) -> list[dict[str, Any]]:
    """Rows {"condition", <run id>: value, ..., "same"} of every condition any run has."""
    found = {run.run_id: conditions_of(run) for run in runs}
    keys = [key for key in CONDITION_KEYS if any(key in values for values in found.values())]
    rows = []
    for key in keys:
        values = [found[run.run_id].get(key, MISSING) for run in runs]
        rows.append({"condition": key, **{run.run_id: v for run, v in zip(runs, values)},
                     "same": len(set(values)) == 1})
    return rows


def closest_setting(sweep: RunDetail, others: Sequence[RunDetail]) -> int:
    """The index of the sweep's setting at the conditions of the first plain run among `others` (the most
    conditions in common; the first setting on a tie), so that Compare starts lined up."""
    from dataperf_appliance.interface.ui_support.settings_view import setting_records

    plain = [conditions_of(run) for run in others if run.results and "sweep" not in run.results]
    if not plain:
        return 0
    wanted = plain[0]
    shared = [sum(at.get(key) == value for key, value in wanted.items())
              for at in (_shown_conditions(record["setting"]) for record in setting_records(sweep.results))]
    return max(range(len(shared)), key=lambda index: (shared[index], -index))


def metric_bars(runs: Sequence[RunDetail], metric: str | None = None) -> list[dict[str, Any]]:
    """Selection runs: {run, task, method, value, ci_low, ci_high} of one metric (default: the track's main
    one; mean over the repeats and its 95% interval, None for one repeat), for a grouped bar chart with error
    bars."""
    rows = []
    for run in runs:
        if not run.results or track_of_results(run.results).result_kind == CURVE:
            continue
        shown = metric or track_of_results(run.results).main_metric
        for task, task_result in (run.results.get("tasks") or {}).items():
            for name, entry in (task_result.get("strategies") or {}).items():
                value = stats.mean_of(entry, shown)
                if value is not None:
                    summary = stats.summary_of(entry, shown) or {}
                    rows.append({"run": run.run_id, "task": task, "method": name, "value": value,
                                 "ci_low": summary.get(stats.CI_LOW), "ci_high": summary.get(stats.CI_HIGH)})
    return rows
