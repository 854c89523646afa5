"""The pictures of a selection run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import figure_style, stats
from ..datasets import digits
from ..plots import _error, _save, comparison_plot, plt
from . import data, files
from .evaluation import METRICS

GALLERY_SIZE = 12


def metrics_bar_plot(results: dict, path: Path) -> Path:
    """Accuracy, precision, recall and f1 (one panel each): a group of bars per task, a bar per method; with
    repeats, each bar is the mean over them with its 95% interval as an error bar. A method over the budget
    is hatched (not ranked)."""
    tasks = list(results["tasks"])
    methods = list(dict.fromkeys(name for task in results["tasks"].values() for name in task["strategies"]))
    colors = figure_style.method_colors(methods)
    width = 0.8 / max(len(methods), 1)
    fig, axes = plt.subplots(2, 2, figsize=(max(figure_style.FULL_WIDTH_IN, 0.6 * len(tasks) * max(len(methods), 2) + 3), 8.0),
                             sharey=True, squeeze=False)
    x = np.arange(len(tasks))
    for ax, metric in zip(axes.ravel(), METRICS):
        for j, name in enumerate(methods):
            entries = [results["tasks"][t]["strategies"].get(name) for t in tasks]
            values = [np.nan if e is None else stats.mean_of(e, metric) for e in entries]
            errors = [0.0 if e is None else _error(stats.summary_of(e, metric)) for e in entries]
            over = any(e is not None and e.get("over_budget") for e in entries)
            ax.bar(x - 0.4 + width * (j + 0.5), values, width, yerr=errors, capsize=2, color=colors[name],
                   label=f"{name} (over the budget)" if over else name, hatch="//" if over else None,
                   edgecolor="black", linewidth=0.4)
        ax.set_title(metric)
        ax.set_xticks(x, tasks, rotation=30 if len(tasks) > 4 else 0)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("score on the test set")
    axes[1][0].set_ylabel("score on the test set")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(methods), 4), frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.03 * ((len(methods) - 1) // 4)))
    repeats = results.get("repeats", 1)
    fig.suptitle(f"Training sets of at most {results.get('train_size')} images, scored by {results.get('model')}"
                 + (f": mean and 95% interval over {repeats} repeats" if repeats > 1 else ""))
    fig.tight_layout(rect=(0, 0.05 + 0.03 * ((len(methods) - 1) // 4), 1, 0.97))
    return _save(fig, path)


def chosen_gallery_plot(task: str, task_result: dict, run_dir: Path, path: Path) -> Path:
    """For the digits: the first images each method chose with the label it gave; a wrong label framed red.

    One mosaic image (a row per method) rather than an axes per digit, so it draws in a fraction of a second.
    """
    rows = []
    for name, entry in task_result["strategies"].items():
        csv_path = Path(run_dir) / entry["file"]
        if entry["kind"] == "dataset" or not csv_path.exists():
            continue
        # The run's csv files were checked when they were written or copied: read them plainly.
        frame = pd.read_csv(csv_path, dtype={files.ID_COLUMN: str}).head(GALLERY_SIZE)
        rows.append((name, frame[files.ID_COLUMN].tolist(), frame[files.LABEL_COLUMN].astype(int).tolist()))
    columns = max((len(ids) for _, ids, _ in rows), default=1)
    cell = 10  # an 8x8 digit and a margin of one pixel on each side
    mosaic = np.full((max(len(rows), 1) * cell, columns * cell), np.nan)
    fig, ax = plt.subplots(figsize=(columns * 0.75 + 1.6, max(len(rows), 1) * 0.85 + 0.5))
    for r, (name, ids, given) in enumerate(rows):
        truth = data.pool_labels(task, ids)
        for c, (image_id, label) in enumerate(zip(ids, given)):
            pixels = digits.image(image_id)
            mosaic[r * cell + 1:r * cell + 9, c * cell + 1:c * cell + 9] = pixels if pixels is not None else 0
            wrong = label != truth[c]
            ax.add_patch(plt.Rectangle((c * cell + 0.5, r * cell + 0.5), 8, 8, fill=False,
                                       edgecolor="crimson" if wrong else "lightgrey", linewidth=2.2 if wrong else 0.6))
            ax.text(c * cell + 9.3, r * cell + 1.5, str(label), fontsize=6, color="crimson" if wrong else "black")
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([r * cell + cell / 2 for r in range(len(rows))], [name for name, _, _ in rows], fontsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"{task}: the first {columns} images each method chose, with the label it gave "
                 "(red = a wrong label)", fontsize=9)
    return _save(fig, path)


def draw_selection_plots(results: dict, folder: Path, *, run_dir: Path | None = None) -> list[Path]:
    """Every plot of a selection run, into `folder`; returns their paths.

    The bars of every metric always; for the digits (given `run_dir`, where
    the training-set csvs are), a gallery of the chosen images per task.
    """
    folder = Path(folder)
    made = [metrics_bar_plot(results, folder / "selection_metrics.png")]
    if results.get("repeats", 1) > 1 and any(stats.VS_BASELINE in e for t in results["tasks"].values()
                                             for e in t["strategies"].values()):
        made.append(comparison_plot(results, folder / "vs_random.png", metric="accuracy", lower_is_better=False))
    if run_dir is not None and results.get("dataset") == data.DIGITS_DATASET:
        made += [chosen_gallery_plot(task, task_result, run_dir, folder / f"{task}_chosen_gallery.png")
                 for task, task_result in results["tasks"].items()]
    return made
