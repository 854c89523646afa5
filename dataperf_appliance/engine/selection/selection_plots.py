"""The pictures of a selection run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dataperf_appliance.engine import figure_style, stats
from dataperf_appliance.config import catalog
from dataperf_appliance.engine.debugging.debugging_plots import (
    GALLERY_COLUMNS,
    MIN_PANEL_WIDTH_IN,
    _category_ticks,
    _error,
    _grid_of_axes,
    _legend_below,
    _save,
    _title,
    comparison_plot,
    digit_gallery_plot,
    gallery_columns,
)
from dataperf_appliance.engine.selection import data, files
from dataperf_appliance.engine.selection.selection_evaluation import METRICS

#: The narrowest a bar is drawn (px): a panel with more bars than fit two a row takes the page's width.
MIN_BAR_PX = 6
#: The share of a task's slot its group of bars fills.
GROUP_WIDTH = 0.8


def metrics_bar_plot(results: dict, path: Path) -> Path:
    """Accuracy, precision, recall and f1 (one panel each): a group of bars per task, a bar per method; with
    repeats, each bar is the mean over them with its 95% interval as an error bar. A method over the budget
    is hatched (not ranked)."""
    tasks = list(results["tasks"])
    methods = list(dict.fromkeys(name for task in results["tasks"].values() for name in task["strategies"]))
    colors = figure_style.method_colors(methods)
    width = GROUP_WIDTH / max(len(methods), 1)
    # An inch for the axis's labels, then the bars.
    bars_in = len(tasks) * max(len(methods), 2) * MIN_BAR_PX / GROUP_WIDTH / figure_style.DPI
    fig, axes = _grid_of_axes(len(METRICS), min_width=max(MIN_PANEL_WIDTH_IN, bars_in + 1.0), height=3.4,
                              sharey=True)
    x = np.arange(len(tasks))
    for ax, metric in zip(axes, METRICS):
        for j, name in enumerate(methods):
            entries = [results["tasks"][t]["strategies"].get(name) for t in tasks]
            means = [None if e is None else stats.mean_of(e, metric) for e in entries]
            values = [np.nan if mean is None else mean for mean in means]  # a method that failed: no bar
            errors = [0.0 if e is None else _error(stats.summary_of(e, metric)) for e in entries]
            over = any(e is not None and e.get(stats.OVER_BUDGET) for e in entries)
            ax.bar(x - GROUP_WIDTH / 2 + width * (j + 0.5), values, width, yerr=errors, capsize=2, color=colors[name],
                   label=f"{name} (over the budget)" if over else name, hatch="//" if over else None,
                   edgecolor="black", linewidth=0.4)
        ax.set_title(metric)
        _category_ticks(ax, x, tasks)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("score on the test set")
    _legend_below(fig, *axes[0].get_legend_handles_labels())
    repeats = results.get("repeats", 1)
    _title(fig, f"Training sets of at most {results.get('train_size')} images, scored by {results.get('model')}"
           + (f": mean and 95% interval over {repeats} repeats" if repeats > 1 else ""))
    return _save(fig, path)


def chosen_gallery_plot(task: str, task_result: dict, run_dir: Path, path: Path) -> Path:
    """For the digits: the first images each method chose with the label it gave; a wrong label framed red."""
    rows = []
    for name, entry in task_result["strategies"].items():
        if entry["kind"] == "dataset" or not entry.get("file") or not (Path(run_dir) / entry["file"]).exists():
            continue
        # The run's csv files were checked when they were written or copied: read them plainly.
        frame = pd.read_csv(Path(run_dir) / entry["file"], dtype={files.ID_COLUMN: str}).head(GALLERY_COLUMNS)
        ids, given = frame[files.ID_COLUMN].tolist(), frame[files.LABEL_COLUMN].astype(int).tolist()
        truth = data.pool_labels(task, ids)
        rows.append((name, [(image_id, str(label), label != true) for image_id, label, true in zip(ids, given, truth)]))
    return digit_gallery_plot(rows, f"{task}: the first {gallery_columns(rows)} images each method chose, with the "
                                    "label it gave (red = a wrong label)", path)


def draw_selection_plots(results: dict, folder: Path, *, run_dir: Path | None = None) -> list[Path]:
    """Every plot of a selection run, into `folder`; returns their paths.

    The bars of every metric always; for the digits (given `run_dir`, where
    the training-set csvs are), a gallery of the chosen images per task.
    """
    folder = Path(folder)
    made = [metrics_bar_plot(results, folder / "selection_metrics.png")]
    if results.get("repeats", 1) > 1 and any(stats.VS_BASELINE in e for t in results["tasks"].values()
                                             for e in t["strategies"].values()):
        main = catalog.SELECTION_HEADLINE_METRICS[0]
        made.append(comparison_plot(results, folder / "vs_random.png", metric=main,
                                    lower_is_better=catalog.LOWER_IS_BETTER[main]))
    if run_dir is not None and results.get("dataset") == data.DIGITS_DATASET:
        made += [chosen_gallery_plot(task, task_result, run_dir, folder / f"{task}_chosen_gallery.png")
                 for task, task_result in results["tasks"].items()]
    return made
