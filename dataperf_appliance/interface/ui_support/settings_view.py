"""A sweep's results at one of its settings: the run's results.json seen as the plain run of that setting.

A sweep's results.json holds every setting's statistics under
``sweep.settings`` -- computed by the same function as a plain run's
(`dataperf_appliance.engine.stats.summarize_setting`) -- and its named axes under
``sweep.axes``. `view` puts one setting's figures where a plain run has
them (``tasks``, ``overall``, ``repeats``), so the headline, the tables,
Compare and the curves read it like any run, with the same numbers a plain
run of that setting would show.

Every axis today is a benchmark *condition* (train size, noise level,
evaluation model): methods are compared at the same conditions only, so
there is no "best setting per method". Such a choice belongs to a method's own
parameters (`grid.METHOD_PARAMETER`), which no method has yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataperf_appliance.engine import stats


def _sweep(results: Mapping | None) -> Mapping:
    sweep = (results or {}).get("sweep")
    return sweep if isinstance(sweep, Mapping) else {}


def setting_records(results: Mapping | None) -> list[Mapping]:
    """The settings of a sweep's results.json, in the order of its grid ([] for a plain run)."""
    found = _sweep(results).get("settings")
    return [s for s in found or [] if isinstance(s, Mapping) and isinstance(s.get("setting"), Mapping)]


def is_sweep(results: Mapping | None) -> bool:
    return bool(setting_records(results))


def axes(results: Mapping | None) -> list[Mapping]:
    """The named axes of a sweep's settings: [{name, label, kind, numeric}]."""
    return [a for a in _sweep(results).get("axes") or [] if isinstance(a, Mapping) and a.get("name")]


def settings(results: Mapping | None) -> list[tuple]:
    """Every setting of a sweep as the tuple of its axes' values, in the order of its grid."""
    names = [axis["name"] for axis in axes(results)]
    return [tuple(record["setting"].get(name) for name in names) for record in setting_records(results)]


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_label(results: Mapping | None, setting: tuple) -> str:
    """``train size 200 · noise level 0.3 · evaluation model knn``: every condition of the setting."""
    return " · ".join(f"{axis.get('label', axis['name'])} {_value(value)}"
                      for axis, value in zip(axes(results), setting) if value is not None)


def _as_entry(record: Mapping) -> dict[str, Any]:
    """A setting's record as a plain run's entry: each metric's mean at the top, beside the statistics."""
    return {**{metric: summary[stats.MEAN] for metric, summary in (record.get(stats.OVER_REPEATS) or {}).items()},
            **record}


def view(results: Mapping, setting: tuple | None = None) -> dict[str, Any]:
    """`results` as the plain run of `setting` (default: the first, the primary one): its ``tasks`` and
    ``overall`` are the setting's statistics, each task keeps what it was (its train size is the setting's);
    ``setting`` names it and ``conditions`` holds its axes' values."""
    records = setting_records(results)
    if not records:
        return dict(results)
    chosen = records[0] if setting is None else records[settings(results).index(tuple(setting))]
    values = tuple(chosen["setting"].get(axis["name"]) for axis in axes(results))
    tasks: dict[str, dict] = {}
    for task, by_method in (chosen.get("tasks") or {}).items():
        task_view: dict[str, Any] = {"strategies": {}}
        if chosen["setting"].get("train_size") is not None:
            task_view["train_size"] = chosen["setting"]["train_size"]
        task_view["strategies"] = {name: _as_entry(record) for name, record in by_method.items()}
        tasks[task] = task_view
    overall = {name: _as_entry(record) for name, record in (chosen.get("overall") or {}).items()}
    return {**{k: v for k, v in results.items() if k not in ("tasks", "overall", "repeats")}, "tasks": tasks,
            "overall": overall, "repeats": chosen.get("repeats", 1), "setting": setting_label(results, values),
            "conditions": dict(chosen["setting"])}
