"""Sweeps (ablations): one benchmark over a grid of train sizes, noise levels, models and seeds.

A setup runs more than one cell (`is_sweep`) when ``model``, ``train_size``
(per task in the debugging track) or ``noise_level`` (debugging) is a list, or
``repeats`` is more than 1. Repeats are replicates of one setting, not
settings: a setup whose only list is ``repeats`` (`is_grid` false) is reported
as its one setting, every headline metric summarized over the repeats. Its grid
has one *cell* per

    task x train_size x noise_level (debugging only) x model x repeat

enumerated in that order (`cells`). A cell is exactly the run of one task with
one value of each field and the seed ``seed + repeat`` (`cell_setup`): the
track's engine evaluates it with every strategy of the setup, so the table has
one row per (cell, strategy). At most `MAX_CELLS` cells, checked when the file
is validated.

The *primary* cell of a task -- the first value of every list, repeat 0 -- is
written exactly as the run of that one-valued setup (`primary_setup`) would
be: its submissions, ``partial/<task>.json``, and at the report its
results.json ``tasks``, reference files and plots. The *primary setting* --
the first value of every list, every repeat -- gives the statistics over
repeats of results.json's ``tasks`` and ``overall`` (`dataperf_appliance.stats`)
and the bands of the plots. A grid goes to ``sweep.csv``, to results.json
under ``"sweep"`` (with the same statistics per setting) and to two plots;
repeats alone go to ``repeats.csv`` and results.json's ``"replicates"``.

The stages have the signatures of a track's (prepare_data, evaluate_tasks,
report), so `dataperf_appliance.pipeline` runs a sweep as it runs a track, and
the Airflow DAG's per-task ``evaluate`` runs the cells of its task. Cells run
in forked worker processes, one BLAS thread each; every number but the
seconds is a function of the setup and the cell alone, so the table does not
depend on the number of workers.

This module imports nothing heavy at load time: the config schema uses
`grid_size`, `is_sweep` and `swept_fields` to check a file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Most cells of a sweep grid.
MAX_CELLS = 500
SWEEP_CSV = "sweep.csv"
#: The table of a run whose only list is its repeats.
REPEATS_CSV = "repeats.csv"
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Cell:
    """One point of the grid: a task with one value of every swept field, and its seed (seed + repeat)."""

    task: str
    train_size: int
    noise_level: float | None  # None in the selection track
    model: str
    repeat: int
    seed: int


# --- the grid (light: used by the config schema) ---------------------------------------------

def values(value: Any) -> tuple:
    """The values of a sweepable field: its items if it is a list (a tuple once validated), else (value,)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _task_axes(setup) -> list[tuple[str, tuple, tuple]]:
    """(task, train sizes, noise levels) of every task evaluated, in order; noise (None,) for selection."""
    if setup.track == "debugging":
        return [(t.data_id, values(t.train_size), values(t.noise_level)) for t in setup.tasks]
    return [(task, values(setup.train_size), (None,)) for task in setup.eval_tasks]


def swept_fields(setup) -> list[tuple]:
    """The locations (as in a ConfigIssue) of the fields that make `setup` a sweep, in file order."""
    found: list[tuple] = [("model",)] if isinstance(setup.model, tuple) else []
    if setup.repeats > 1:
        found.append(("repeats",))
    if setup.track == "debugging":
        for index, task in enumerate(setup.tasks):
            found += [("tasks", index, name) for name in ("train_size", "noise_level")
                      if isinstance(getattr(task, name), tuple)]
    elif isinstance(setup.train_size, tuple):
        found.append(("train_size",))
    return found


def is_sweep(setup) -> bool:
    """Whether `setup` has a list in a sweepable field or more than one repeat."""
    return bool(swept_fields(setup))


def is_grid(setup) -> bool:
    """Whether `setup` has more than one setting (a list in a sweepable field), repeats aside."""
    return any(location != ("repeats",) for location in swept_fields(setup))


def grid_size(setup) -> int:
    """Number of cells: sum over tasks of (train sizes x noise levels), times models, times repeats."""
    per_task = sum(len(sizes) * len(noises) for _, sizes, noises in _task_axes(setup))
    return per_task * len(values(setup.model)) * setup.repeats


def describe_grid(setup) -> str:
    """The factors of `grid_size`, in words (for messages)."""
    axes = _task_axes(setup)
    if setup.track == "debugging":
        combos = sum(len(sizes) * len(noises) for _, sizes, noises in axes)
        first = f"{combos} (task, train_size, noise_level) combination(s)"
    else:
        first = f"{len(axes)} task(s) x {len(axes[0][1])} train size(s)"
    return f"{first} x {len(values(setup.model))} model(s) x {setup.repeats} repeat(s)"


def cells(setup, tasks: list[str] | None = None) -> list[Cell]:
    """Every cell of the grid (of `tasks` only, if given), task-major, then train size, noise, model, repeat."""
    return [Cell(task, size, noise, model, repeat, setup.seed + repeat)
            for task, sizes, noises in _task_axes(setup) if tasks is None or task in tasks
            for size in sizes for noise in noises for model in values(setup.model)
            for repeat in range(setup.repeats)]


def primary_setup(setup):
    """`setup` with the first value of every list and one repeat: what the run writes as an ordinary run."""
    update: dict[str, Any] = {"model": values(setup.model)[0], "repeats": 1}
    if setup.track == "debugging":
        update["tasks"] = tuple(t.model_copy(update={"train_size": values(t.train_size)[0],
                                                     "noise_level": values(t.noise_level)[0]})
                                for t in setup.tasks)
    else:
        update["train_size"] = values(setup.train_size)[0]
    return setup.model_copy(update=update)


def cell_setup(setup, cell: Cell):
    """The one-valued setup of one cell: its task only, its values, its seed, one repeat. A user's own
    files (allowed with repeats alone) belong to the first repeat: they fit that seed's data only."""
    update: dict[str, Any] = {"model": cell.model, "seed": cell.seed, "repeats": 1}
    if cell.repeat > 0:
        update["submissions"] = ()
    if setup.track == "debugging":
        task = next(t for t in setup.tasks if t.data_id == cell.task)
        update["tasks"] = (task.model_copy(update={"train_size": cell.train_size, "noise_level": cell.noise_level}),)
    else:
        update.update(eval_tasks=(cell.task,), train_size=cell.train_size)
    return setup.model_copy(update=update)


# --- the stages -----------------------------------------------------------------------------

def _track(setup):
    from .benchmark import track_module

    return track_module(setup.track)


def columns(setup) -> list[str]:
    """The columns of the sweep table: the cell's parameters, the strategy, then the track's metrics."""
    return [*_parameter_names(setup), "strategy", "kind", *_track(setup).SWEEP_METRICS]


def _parameter_names(setup) -> list[str]:
    return [name for name in Cell.__dataclass_fields__ if setup.track == "debugging" or name != "noise_level"]


def prepare_data(setup, data_root: Path) -> dict[str, dict[str, Path]]:
    """Bring the data of every cell to the data root; {"<task>/<train_size>/<noise>/<seed>": {name: path}}."""
    track, out = _track(setup), {}
    for cell in cells(setup):
        key = f"{cell.task}/{cell.train_size}/{cell.noise_level}/{cell.seed}"
        if key not in out:  # the model does not change the data
            out[key] = track.prepare_data(cell_setup(setup, cell), data_root)[cell.task]
    return out


def _run_cell(job: tuple) -> Any:
    """Evaluate one cell in memory (in a worker, or in this process): the track's TaskRun."""
    from threadpoolctl import threadpool_limits

    from .benchmark import track_module

    track_name, one_cell_setup, data_root, source_dir, task = job
    # One BLAS thread, here as in a worker: the same bits whatever the number of workers.
    with threadpool_limits(limits=1):
        return track_module(track_name).run_tasks(one_cell_setup, data_root, source_dir, data_ids=[task],
                                                  n_jobs=1)[0]


def _task_names(setup) -> list[str]:
    return [task for task, _, _ in _task_axes(setup)]


def evaluate_tasks(setup, data_root: Path, work_dir: Path, source_dir: Path, *,
                   data_ids: list[str] | None = None, n_jobs: int = -1,
                   progress: ProgressCallback | None = None) -> dict[str, dict]:
    """Evaluate every cell of the tasks `data_ids` (default: all) on up to `n_jobs` processes (-1: all cores).

    Writes the primary cell of each task as an ordinary run does (its
    submissions and ``partial/<task>.json``) and the task's table rows to
    ``partial/sweep_<task>.json``; returns {task: primary cell's result}.
    `progress(done, total)` is called as cells finish.
    """
    from .parallel import ordered_map
    from .runs import write_json

    unknown = set(data_ids or ()) - set(_task_names(setup))
    if unknown:
        raise ValueError(f"no task {', '.join(sorted(unknown))} in this setup")
    track, work_dir = _track(setup), Path(work_dir)
    wanted = [task for task in _task_names(setup) if data_ids is None or task in data_ids]
    grid = cells(setup, wanted)
    jobs = [(setup.track, cell_setup(setup, cell), Path(data_root), Path(source_dir), cell.task) for cell in grid]
    primary, first_cells = primary_setup(setup), {cells(setup, [task])[0] for task in wanted}
    header = columns(setup)
    results: dict[str, dict] = {}
    rows: dict[str, list[dict]] = {task: [] for task in wanted}
    curves: dict[str, dict[str, list]] = {task: {} for task in wanted}  # the primary setting's, per repeat
    for done, (cell, run) in enumerate(zip(grid, ordered_map(_run_cell, jobs, n_jobs=n_jobs)), start=1):
        if cell in first_cells:
            results[cell.task] = track.write_task_run(primary, run, work_dir, source_dir)
        if _in_primary_setting(setup, cell) and hasattr(track, "replicate_curves"):
            for name, curve in track.replicate_curves(run).items():
                curves[cell.task].setdefault(name, []).append(curve)
        parameters = {name: getattr(cell, name) for name in _parameter_names(setup)}
        for name, metrics in track.sweep_metrics(run).items():
            row = {**parameters, "strategy": name, **metrics}
            rows[cell.task].append({column: row[column] for column in header})  # in the table's column order
        if progress:
            progress(done, len(jobs))
    for task in wanted:
        write_json(work_dir / "partial" / f"sweep_{task}.json", {"rows": rows[task], "curves": curves[task]})
    return results


def _in_primary_setting(setup, cell_or_row) -> bool:
    """Whether a cell (or a table row) has the first value of every list: a repeat of the primary setting."""
    get = (cell_or_row.get if isinstance(cell_or_row, dict) else lambda name: getattr(cell_or_row, name))
    sizes, noises = next((sizes, noises) for task, sizes, noises in _task_axes(setup) if task == get("task"))
    return (get("train_size"), get("model")) == (sizes[0], values(setup.model)[0]) and \
        (setup.track != "debugging" or get("noise_level") == noises[0])


def replicates(setup, rows: list[dict], curves: dict[str, dict[str, list]]) -> dict[str, dict[str, list[dict]]]:
    """{task: {strategy: [its row of each repeat of the primary setting, in repeat order]}}; a debugging
    row also gets the repeat's fixing-curve accuracies under ``"curve"`` (from `curves`)."""
    out: dict[str, dict[str, list[dict]]] = {}
    for row in rows:
        if _in_primary_setting(setup, row):
            out.setdefault(row["task"], {}).setdefault(row["strategy"], []).append(dict(row))
    for task, by_name in out.items():
        for name, entries in by_name.items():
            for entry, curve in zip(entries, (curves.get(task) or {}).get(name) or []):
                entry["curve"] = curve
    return out


def summarize(rows: list[dict], metric: str) -> list[dict]:
    """`metric` over the repeats of each setting and strategy: one record per task, noise level, model,
    strategy and train size, in the order first seen, holding `stats.describe`'s fields (mean, sem, 95%
    interval, n) and, for a strategy other than random when the setup has random, `stats.VS_BASELINE`: the
    paired comparison with random over the same repeats."""
    from . import stats

    groups: dict[tuple, list[float]] = {}
    for row in rows:
        key = (row["task"], row.get("noise_level"), row["model"], row["strategy"], row["train_size"])
        groups.setdefault(key, []).append(row[metric])
    out = []
    for (task, noise_level, model, strategy, train_size), found in groups.items():
        record = {"task": task, "noise_level": noise_level, "model": model, "strategy": strategy,
                  "train_size": train_size, "metric": metric, **stats.describe(found)}
        baseline = groups.get((task, noise_level, model, stats.BASELINE, train_size))
        if baseline is not None and strategy != stats.BASELINE:
            record[stats.VS_BASELINE] = stats.paired_comparison(found, baseline)
        out.append(record)
    return out


def latencies(rows: list[dict], *, per_cell: bool) -> dict[str, dict[str, list[float]]]:
    """{model: {"fit_s": [...], "predict_s": [...]}} of the table's rows; with `per_cell`, one value per cell."""
    out: dict[str, dict[str, list[float]]] = {}
    seen = set()
    for row in rows:
        cell = (row["task"], row["train_size"], row.get("noise_level"), row["model"], row["repeat"])
        if per_cell and cell in seen:
            continue
        seen.add(cell)
        entry = out.setdefault(row["model"], {"fit_s": [], "predict_s": []})
        entry["fit_s"].append(row["fit_s"])
        entry["predict_s"].append(row["predict_s"])
    return out


def table_csv(rows: list[dict], header: list[str]) -> bytes:
    """The bytes of ``sweep.csv``: `header`, then one line per row (empty cells for None)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    writer.writerows({key: ("" if row.get(key) is None else row[key]) for key in header} for row in rows)
    return out.getvalue().encode()


def report(setup, work_dir: Path) -> dict:
    """The primary setting's report (the track's results.json with its statistics over repeats, reference
    files, plots), then the table: for a grid ``sweep.csv``, results.json's ``"sweep"`` and the sweep
    plots; for repeats alone ``repeats.csv`` and results.json's ``"replicates"``. Returns results.json's
    content."""
    from . import plots
    from .datasets.dataperf_files import atomic_write_bytes
    from .runs import read_json, write_json

    work_dir = Path(work_dir)
    track = _track(setup)
    missing = [t for t in _task_names(setup) if not (work_dir / "partial" / f"sweep_{t}.json").exists()]
    if missing:
        raise FileNotFoundError(f"no sweep evaluation of task(s) {', '.join(missing)} in {work_dir / 'partial'}: "
                                "run evaluate_tasks first")
    partials = [read_json(work_dir / "partial" / f"sweep_{task}.json") for task in _task_names(setup)]
    rows = [row for partial in partials for row in partial["rows"]]
    curves = {task: partial.get("curves") or {} for task, partial in zip(_task_names(setup), partials)}
    results = track.report(primary_setup(setup), work_dir, replicates=replicates(setup, rows, curves))
    header = columns(setup)
    table = {"table": SWEEP_CSV if is_grid(setup) else REPEATS_CSV, "columns": header, "rows": rows}
    atomic_write_bytes(work_dir / table["table"], table_csv(rows, header))
    if not is_grid(setup):
        results["replicates"] = {"repeats": setup.repeats, "seeds": _parameters(setup)["seeds"], **table}
        write_json(work_dir / "results.json", results)
        return results
    metric = track.MAIN_METRIC
    summary = summarize(rows, metric)
    # The debugging track's fits are shared by the strategies of a cell: count each cell's timing once.
    latency = latencies(rows, per_cell=setup.track == "debugging")
    drawn = plots.draw_sweep_plots(summary, latency, work_dir / "plots", metric=metric,
                                   lower_is_better=setup.track == "debugging")
    first = cells(setup)[0]
    results["sweep"] = {
        "cells": grid_size(setup),
        "grid": describe_grid(setup),
        "parameters": _parameters(setup),
        "primary": {"train_size": first.train_size, "noise_level": first.noise_level, "model": first.model,
                    "repeat": 0, "seed": setup.seed},
        **table,
        "summary": summary,
        "plots": [str(p.relative_to(work_dir)) for p in drawn],
    }
    write_json(work_dir / "results.json", results)
    return results


def _parameters(setup) -> dict:
    """The swept values, as the file gives them: lists per task in the debugging track."""
    out: dict[str, Any] = {"model": list(values(setup.model)), "repeats": setup.repeats,
                           "seeds": [setup.seed + r for r in range(setup.repeats)]}
    if setup.track == "debugging":
        out["train_size"] = {t.data_id: list(values(t.train_size)) for t in setup.tasks}
        out["noise_level"] = {t.data_id: list(values(t.noise_level)) for t in setup.tasks}
    else:
        out["train_size"] = list(values(setup.train_size))
    return out
