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
repeats of results.json's ``tasks`` and ``overall`` (`dataperf_appliance.engine.stats`)
and the bands of the plots. A grid goes to ``sweep.csv``, to results.json
under ``"sweep"`` (with the same statistics per setting) and to two plots;
repeats alone go to ``repeats.csv`` and results.json's ``"replicates"``.

The three stages (prepare_data, evaluate_tasks, report) take any setup:
`dataperf_appliance.stages.pipeline` calls them for every run, and a setup that is
not a sweep goes straight to its track's stages, written exactly as before
sweeps. The Airflow DAG's per-task ``evaluate`` runs the cells of its task.
Cells run in forked worker processes, one BLAS thread each; every number but
the seconds is a function of the setup and the cell alone, so the table does
not depend on the number of workers.

The grid itself (`Cell`, `cells`, `cell_setup`, ...) is `dataperf_appliance.config.grid`:
the config checks a file's grid without this engine. The track of a setup
(`dataperf_appliance.tracks.track_of`, its `Track.stages`) does the work of each cell.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from dataperf_appliance.engine import runs
from dataperf_appliance.config.grid import (  # noqa: F401 - the grid, as the sweeps' callers know it
    Cell,
    cell_parameters,
    cell_setup,
    cells,
    data_of,
    describe_grid,
    grid_size,
    is_grid,
    is_sweep,
    parameter_names,
    primary_setup,
    setting_axes,
    setting_of,
    swept_fields,
    values,
)
from dataperf_appliance.engine.parallel import ProgressCallback, ordered_map
from dataperf_appliance.engine.runs import PARTIAL, RESULTS, read_json, write_json
from dataperf_appliance.tracks import CURVE, track_of

#: The table of a grid, and of a run whose only list is its repeats (run-layout file names, see runs.py).
SWEEP_CSV, REPEATS_CSV = runs.SWEEP_CSV, runs.REPEATS_CSV


# --- the stages -----------------------------------------------------------------------------

def columns(setup) -> list[str]:
    """The columns of the sweep table: the cell's parameters, the strategy, then the track's metrics."""
    return [*parameter_names(setup), "strategy", "kind", *track_of(setup).sweep_metrics]


def prepare_data(setup, data_root: Path) -> dict[str, dict[str, Path]]:
    """Bring the data of every cell to the data root; {"<task>/<values of the data's axes>/<seed>": {name: path}}
    (a setup that is not a sweep: its track's {task: {name: path}})."""
    stages, out = track_of(setup).stages(), {}
    if not is_sweep(setup):
        return stages.prepare_data(setup, data_root)
    for cell in cells(setup):
        key = "/".join(map(str, data_of(cell)))
        if key not in out:  # cells that differ only in an axis that does not change data share it
            out[key] = stages.prepare_data(cell_setup(setup, cell), data_root)[cell.task]
    return out


def _run_cell(job: tuple) -> Any:
    """Evaluate one cell in memory (in a worker, or in this process): the track's TaskRun."""
    from threadpoolctl import threadpool_limits  # only where cells run

    one_cell_setup, data_root, source_dir, task = job
    # One BLAS thread, here as in a worker: the same bits whatever the number of workers.
    with threadpool_limits(limits=1):
        return track_of(one_cell_setup).stages().run_tasks(one_cell_setup, data_root, source_dir, data_ids=[task],
                                                           n_jobs=1)[0]


def evaluate_tasks(setup, data_root: Path, work_dir: Path, source_dir: Path, *,
                   data_ids: list[str] | None = None, n_jobs: int = -1,
                   progress: ProgressCallback | None = None) -> dict[str, dict]:
    """Evaluate every cell of the tasks `data_ids` (default: all) on up to `n_jobs` processes (-1: all cores).

    Writes the primary cell of each task as an ordinary run does (its
    submissions and ``partial/<task>.json``) and the task's table rows to
    ``partial/sweep_<task>.json``; returns {task: primary cell's result}.
    A setup that is not a sweep is its track's run of the tasks, written as
    such. `progress(done, total)` is called as cells (or the track's pieces
    of work) finish.
    """
    from dataperf_appliance.engine import stats

    unknown = set(data_ids or ()) - set(setup.task_ids())
    if unknown:
        raise ValueError(f"no task {', '.join(sorted(unknown))} in this setup")
    stages, work_dir = track_of(setup).stages(), Path(work_dir)
    wanted = [task for task in setup.task_ids() if data_ids is None or task in data_ids]
    if not is_sweep(setup):
        runs = stages.run_tasks(setup, data_root, source_dir, data_ids=data_ids, n_jobs=n_jobs, progress=progress)
        return {task: stages.write_task_run(setup, run, work_dir, source_dir) for task, run in zip(wanted, runs)}
    grid = cells(setup, wanted)
    jobs = [(cell_setup(setup, cell), Path(data_root), Path(source_dir), cell.task) for cell in grid]
    primary, first_cells = primary_setup(setup), {cells(setup, [task])[0] for task in wanted}
    header = columns(setup)
    results: dict[str, dict] = {}
    rows: dict[str, list[dict]] = {task: [] for task in wanted}
    curves: dict[str, list] = {task: [] for task in wanted}  # a row's curve (or None), row by row
    for done, (cell, run) in enumerate(zip(grid, ordered_map(_run_cell, jobs, n_jobs=n_jobs)), start=1):
        if cell in first_cells:
            results[cell.task] = stages.write_task_run(primary, run, work_dir, source_dir)
        parameters = cell_parameters(cell)
        for name, metrics in stages.sweep_rows(run).items():
            row = {**parameters, "strategy": name, **metrics}
            rows[cell.task].append({column: row[column] for column in header})  # in the table's column order
            curves[cell.task].append(row.get(stats.CURVE))
        if progress:
            progress(done, len(jobs))
    for task in wanted:
        write_json(work_dir / PARTIAL / f"sweep_{task}.json", {"rows": rows[task], "curves": curves[task]})
    return results


def replicates(rows: list[dict], curves: list) -> dict[str, dict[str, list[dict]]]:
    """{task: {strategy: [its row of each repeat, in repeat order]}} of the rows of one setting; a debugging
    row also gets the repeat's fixing curve under `stats.CURVE` (`curves`, aligned with `rows`)."""
    from dataperf_appliance.engine.stats import CURVE

    out: dict[str, dict[str, list[dict]]] = {}
    for row, curve in zip(rows, curves):
        entry = dict(row) if curve is None else {**row, CURVE: curve}
        out.setdefault(row["task"], {}).setdefault(row["strategy"], []).append(entry)
    return out


def by_setting(setup, rows: list[dict], curves: list) -> dict[tuple, dict[str, dict[str, list[dict]]]]:
    """{setting (`grid.setting_of`): its `replicates`}, settings in the order of the grid; the first is the
    primary setting."""
    grouped: dict[tuple, tuple[list, list]] = {}
    for row, curve in zip(rows, curves):
        found = grouped.setdefault(setting_of(setup, row), ([], []))
        found[0].append(row)
        found[1].append(curve)
    order = list(dict.fromkeys(setting_of(setup, cell) for cell in cells(setup)))
    return {setting: replicates(*grouped[setting]) for setting in sorted(grouped, key=order.index)}


def settings_statistics(setup, grouped: dict[tuple, dict]) -> list[dict]:
    """Every setting of the grid with its statistics, computed exactly as a plain run's
    (`stats.summarize_setting` on the track's headline metrics): [{"setting": {axis: value}, "tasks",
    "overall", "repeats"}]."""
    from dataperf_appliance.engine import stats

    axes = [axis.name for axis in setting_axes(setup)]
    metrics = track_of(setup).headline_metrics
    return [{"setting": dict(zip(axes, setting)), **stats.summarize_setting(found, metrics)}
            for setting, found in grouped.items()]


def summary_records(settings: list[dict], metric: str) -> list[dict]:
    """The settings' figures of `metric` as flat records {task, <axes>, strategy, metric, mean, sem, ci_low,
    ci_high, n, vs_random} (one per setting, task and strategy), for the sweep plots and tables."""
    from dataperf_appliance.engine import stats

    out = []
    for setting in settings:
        for task, records in setting["tasks"].items():
            for strategy, record in records.items():
                comparison = stats.comparison_of(record, metric)
                out.append({"task": task, **setting["setting"], "strategy": strategy, "metric": metric,
                            **stats.summary_of(record, metric),
                            **({stats.VS_BASELINE: comparison} if comparison else {})})
    return out


def latencies(setup, rows: list[dict], *, per_cell: bool) -> dict[str, dict[str, list[float]]]:
    """{model: {"fit_s": [...], "predict_s": [...]}} of the table's rows; with `per_cell`, one value per cell."""
    out: dict[str, dict[str, list[float]]] = {}
    seen = set()
    for row in rows:
        cell = (row["task"], setting_of(setup, row), row["repeat"])
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
    plots; for repeats alone ``repeats.csv`` and results.json's ``"replicates"``. A setup that is not a sweep
    is its track's report. Returns results.json's content."""
    from dataperf_appliance.engine.debugging import debugging_plots
    from dataperf_appliance.engine.atomic_file import atomic_write_bytes

    work_dir = Path(work_dir)
    track = track_of(setup)
    if not is_sweep(setup):
        return track.stages().report(setup, work_dir)
    missing = [t for t in setup.task_ids() if not (work_dir / PARTIAL / f"sweep_{t}.json").exists()]
    if missing:
        raise FileNotFoundError(f"no sweep evaluation of task(s) {', '.join(missing)} in {work_dir / PARTIAL}: "
                                "run evaluate_tasks first")
    partials = [read_json(work_dir / PARTIAL / f"sweep_{task}.json") for task in setup.task_ids()]
    rows = [row for partial in partials for row in partial["rows"]]
    curves = [curve for partial in partials for curve in partial.get("curves") or [None] * len(partial["rows"])]
    grouped = by_setting(setup, rows, curves)
    results = track.stages().report(primary_setup(setup), work_dir,
                                    replicates=grouped[setting_of(setup, cells(setup)[0])])
    header = columns(setup)
    table = {"table": SWEEP_CSV if is_grid(setup) else REPEATS_CSV, "columns": header, "rows": rows}
    atomic_write_bytes(work_dir / table["table"], table_csv(rows, header))
    if not is_grid(setup):
        results["replicates"] = {"repeats": setup.repeats, "seeds": _parameters(setup)["seeds"], **table}
        write_json(work_dir / RESULTS, results)
        return results
    metric = track.main_metric
    settings = settings_statistics(setup, grouped)
    summary = summary_records(settings, metric)
    # A curve's fits are the cell's, shared by its strategies: count each cell's timing once.
    latency = latencies(setup, rows, per_cell=track.result_kind == CURVE)
    drawn = debugging_plots.draw_sweep_plots(summary, latency, work_dir / "plots", metric=metric,
                                   lower_is_better=track.lower_is_better, axes=setting_axes(setup))
    first = cells(setup)[0]
    results["sweep"] = {
        "cells": grid_size(setup),
        "grid": describe_grid(setup),
        "tasks": setup.task_ids(),
        "axes": [{"name": axis.name, "label": axis.label, "kind": axis.kind, "numeric": axis.numeric}
                 for axis in setting_axes(setup)],
        "settings": settings,
        "parameters": _parameters(setup),
        "primary": {**dict(first.setting), "repeat": 0, "seed": setup.seed},
        **table,
        "summary": summary,
        "plots": [str(p.relative_to(work_dir)) for p in drawn],
    }
    write_json(work_dir / RESULTS, results)
    return results


def _parameters(setup) -> dict:
    """The swept values, as the file gives them (lists per task where the track's sizes are per task)."""
    return {"model": list(values(setup.model)), "repeats": setup.repeats,
            "seeds": [setup.seed + r for r in range(setup.repeats)], **setup.swept_values()}
