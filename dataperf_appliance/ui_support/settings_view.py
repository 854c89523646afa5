"""A sweep's results at one setting, or at each method's best: the run's results.json seen as a plain run.

A sweep's results.json has the primary setting's figures under ``tasks`` and
``overall`` and every setting's under ``sweep.summary`` (the main metric's mean,
standard error and 95% interval over the repeats, and the paired comparison with
random). `view` turns a chosen setting -- or `BEST`, each method at its own best
setting -- back into the shape of a plain run's results.json, so the headline,
the tables and Compare read it like any run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import stats
from ..tracks import track_of_results

#: The parameters that make a setting, in the order the page names them.
SETTING_KEYS = ("train_size", "noise_level", "model")
#: The choice "each method at its best setting".
BEST = "best setting per method"
#: The normal quantile of a 95% interval over several tasks (their repeats pooled: many degrees of freedom).
Z_95 = 1.96


def summary_records(results: Mapping | None) -> list[Mapping]:
    sweep = (results or {}).get("sweep")
    records = sweep.get("summary") if isinstance(sweep, Mapping) else None
    return [r for r in records or [] if isinstance(r, Mapping)]


def is_sweep(results: Mapping | None) -> bool:
    return bool(summary_records(results))


def setting_of(record: Mapping) -> tuple:
    return tuple(record.get(key) for key in SETTING_KEYS)


def setting_label(setting: tuple) -> str:
    """``train 200 · noise 0.3 · knn`` (the parts a track has)."""
    size, noise, model = setting
    parts = [f"train {size}" if size is not None else None, f"noise {noise:g}" if noise is not None else None,
             str(model) if model is not None else None]
    return " · ".join(p for p in parts if p)


def settings(results: Mapping | None) -> list[tuple]:
    """Every setting of a sweep, in the order of its table."""
    return list(dict.fromkeys(setting_of(r) for r in summary_records(results)))


def _entry(records: list[Mapping], metric: str) -> dict[str, Any]:
    """One method's results.json-like entry from its records (one per task): over several tasks, the mean of
    their means, its standard error sqrt(sum sem^2) / tasks (the tasks' repeats are independent) and a normal
    95% interval; the comparison with random is kept for a single task only."""
    means = [r[stats.MEAN] for r in records]
    mean = sum(means) / len(means)
    sems = [r.get(stats.SEM) for r in records]
    if len(records) == 1:
        summary = {k: records[0].get(k) for k in (stats.MEAN, stats.SEM, stats.CI_LOW, stats.CI_HIGH, stats.N)}
        comparison = records[0].get(stats.VS_BASELINE)
    else:
        sem = None if any(s is None for s in sems) else math.sqrt(sum(s * s for s in sems)) / len(sems)
        summary = {stats.MEAN: mean, stats.SEM: sem, stats.CI_LOW: None if sem is None else mean - Z_95 * sem,
                   stats.CI_HIGH: None if sem is None else mean + Z_95 * sem,
                   stats.N: min(r.get(stats.N) or 1 for r in records)}
        comparison = None
    entry: dict[str, Any] = {metric: mean, stats.OVER_REPEATS: {metric: summary}}
    if comparison:
        entry[stats.VS_BASELINE] = {metric: comparison}
    return entry


def best_settings(results: Mapping | None) -> dict[str, tuple]:
    """{method: the setting where its mean over the tasks of the main metric is best}."""
    track = track_of_results(results)
    by_method: dict[str, dict[tuple, list[float]]] = {}
    for record in summary_records(results):
        by_method.setdefault(record["strategy"], {}).setdefault(setting_of(record), []).append(record[stats.MEAN])
    sign = 1 if track.lower_is_better else -1
    return {method: min(found, key=lambda s: (sign * sum(found[s]) / len(found[s]), settings(results).index(s)))
            for method, found in by_method.items()}


def view(results: Mapping, choice: tuple | str = BEST) -> dict[str, Any]:
    """`results` as a plain run at the setting `choice` (or `BEST`): ``tasks`` and ``overall`` of the main
    metric, each overall entry naming its ``setting``."""
    metric = track_of_results(results).main_metric
    chosen = best_settings(results) if choice == BEST else None
    tasks: dict[str, dict] = {}
    per_method: dict[str, list[Mapping]] = {}
    for record in summary_records(results):
        wanted = chosen.get(record["strategy"]) if chosen is not None else choice
        if setting_of(record) != tuple(wanted):
            continue
        tasks.setdefault(record["task"], {"strategies": {}})["strategies"][record["strategy"]] = \
            _entry([record], metric)
        per_method.setdefault(record["strategy"], []).append(record)
    overall = {name: {**_entry(records, metric), "setting": setting_label(setting_of(records[0]))}
               for name, records in per_method.items()}
    return {**{k: v for k, v in results.items() if k not in ("tasks", "overall")}, "tasks": tasks,
            "overall": overall, "setting": BEST if choice == BEST else setting_label(tuple(choice))}
