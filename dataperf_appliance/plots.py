"""Every picture a run makes (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from . import figure_style, stats  # noqa: E402
from .datasets import digits  # noqa: E402
from .datasets.dataperf_files import atomic_write_bytes  # noqa: E402

MARKERS = "osD^vP*Xh<>"
DPI = figure_style.DPI
#: One size of a single-panel figure shown across the run page.
WIDE = (figure_style.FULL_WIDTH_IN, figure_style.PANEL_HEIGHT_IN)
plt.rcParams.update(figure_style.matplotlib_style())


def _save(fig, path: Path) -> Path:
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, image.getvalue())
    return path


def _error(summary) -> float:
    """The half width of a summary's 95% interval, 0 when it has none (one repeat)."""
    return stats.half_width(summary) or 0.0


def fixing_curve_plot(data_id: str, task_result: dict, path: Path) -> Path:
    """DataPerf's curve: test accuracy against the number of inspected points, a line per strategy,
    the accuracy before cleaning dashed, each strategy's fraction_fixes in the legend. With repeats, each
    line is the mean curve over them inside its shaded 95% band, and fraction_fixes is its mean ± half width."""
    fig, ax = plt.subplots(figsize=WIDE)
    ranked = sorted(task_result["strategies"].items(), key=lambda item: stats.mean_of(item[1], "fraction_fixes"))
    colors = figure_style.method_colors(name for name, _ in ranked)
    repeats = 1
    banded = any(result.get("curve_over_repeats") for _, result in ranked)
    for name, result in ranked:
        curve, band = result["curve"], result.get("curve_over_repeats")
        score = stats.format_estimate(stats.mean_of(result, "fraction_fixes"),
                                      stats.summary_of(result, "fraction_fixes"))
        first_only = " — first repeat only" if banded and band is None else ""  # a user's file
        line, = ax.plot(curve["fixes"], band[stats.MEAN] if band else curve["accuracy"], linewidth=1.8,
                        color=colors[name], label=f"{name} (fraction_fixes {score}{first_only})")
        if band and band.get(stats.CI_LOW) is not None:
            repeats = band[stats.N]
            # An accuracy is within [0, 1]; the t-interval of a few repeats is not.
            ax.fill_between(curve["fixes"], np.clip(band[stats.CI_LOW], 0, 1), np.clip(band[stats.CI_HIGH], 0, 1),
                            color=line.get_color(), alpha=0.15, linewidth=0)
    ax.axhline(task_result["before_acc"], color="black", linestyle="--", linewidth=1.2,
               label=f"before cleaning ({task_result['before_acc']:.3f}, first repeat)")
    ax.set_xlabel("number of inspected training points")
    ax.set_ylabel("test accuracy" + (f" (mean and 95% band over {repeats} repeats)" if repeats > 1 else ""))
    ax.set_title(f"{data_id}: {task_result['mislabeled']} of {task_result['train_size']} training labels wrong"
                 + (" (first repeat)" if repeats > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def fraction_fixes_vs_time_plot(results: dict, path: Path) -> Path:
    """Aggregated: fraction_fixes (lower is better) against the seconds each method took, a marker shape per
    task; with repeats, the mean with its 95% interval as an error bar."""
    fig, ax = plt.subplots(figsize=WIDE)
    names = sorted({n for t in results["tasks"].values() for n in t["strategies"]})
    colors = figure_style.method_colors(names)
    for i, (data_id, task) in enumerate(results["tasks"].items()):
        for name, result in task["strategies"].items():
            seconds = result["time_s"]
            if seconds is None:
                continue
            ax.errorbar(max(seconds, 1e-4), stats.mean_of(result, "fraction_fixes"),
                        yerr=_error(stats.summary_of(result, "fraction_fixes")), marker=MARKERS[i % len(MARKERS)],
                        color=colors[name], markersize=8, markeredgecolor="black", markeredgewidth=0.5,
                        capsize=3, linestyle="none")
    for name in names:
        ax.scatter([], [], color=colors[name], label=name)
    for i, data_id in enumerate(results["tasks"]):
        ax.scatter([], [], marker=MARKERS[i % len(MARKERS)], facecolor="white", edgecolor="black", label=data_id)
    figure_style.log_axis(ax, "x")
    ax.set_xlabel("time to produce the order (s, log scale; first repeat)")
    repeats = results.get("repeats", 1)
    ax.set_ylabel("fraction_fixes (lower is better)" + (f"\nmean and 95% interval over {repeats} repeats"
                                                        if repeats > 1 else ""))
    ax.set_title("Cleaning strategies: quality against cost")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _save(fig, path)


def comparison_plot(results: dict, path: Path, *, metric: str, lower_is_better: bool) -> Path:
    """Each method minus random in `metric`, paired on the repeats: the mean difference and its 95% interval,
    a panel per task (and one for the mean over the tasks); a filled marker is significant (paired t-test,
    p < 0.05), a hollow one is not."""
    panels = [(task, r["strategies"]) for task, r in results["tasks"].items()]
    if len(panels) > 1 and results.get("overall"):
        panels.append(("all tasks (mean)", results["overall"]))
    names = list(dict.fromkeys(n for _, entries in panels for n, e in entries.items() if stats.VS_BASELINE in e))
    colors = figure_style.method_colors(names)
    fig, axes = _grid_of_axes(len(panels), height=0.5 * max(len(names), 1) + 1.6)
    for ax, (title, entries) in zip(axes, panels):
        for row, name in enumerate(names):
            comparison = stats.comparison_of(entries.get(name), metric)
            if not comparison or comparison.get(stats.DIFFERENCE) is None:
                continue
            significant = bool(comparison.get(stats.SIGNIFICANT))
            color = colors[name] if significant else "grey"
            ax.errorbar(comparison[stats.DIFFERENCE], row, xerr=_error(comparison), fmt="o", color=color,
                        markerfacecolor=color if significant else "white", capsize=3)
        ax.axvline(0, color="black", linewidth=1)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_title(title)
        ax.set_xlabel(f"{metric} − random" + (" (< 0: better)" if lower_is_better else " (> 0: better)"))
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Against random, paired on {results.get('repeats', 1)} repeat(s): mean difference and 95% "
                 "interval; hollow = not significant")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _save(fig, path)


def flagged_gallery_plot(data_id: str, task_result: dict, path: Path) -> Path:
    """For the digits: the first images each strategy flags, with given and true label; real errors framed red.

    One mosaic image per strategy row (not one axes per digit): a gallery of
    4 x 16 images draws in a fraction of a second.
    """
    rows = list(task_result["strategies"].items())
    columns = max(len(r["first_flagged"]) for _, r in rows)
    cell, pad = 8, 2  # pixels of a digit, and of the frame around it
    fig, axes = plt.subplots(len(rows), 1, figsize=(columns * 0.75, len(rows) * 1.05 + 0.5), squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], rows):
        mosaic = np.full((cell + 2 * pad, columns * (cell + 2 * pad)), np.nan)
        for c, item in enumerate(result["first_flagged"]):
            pixels = digits.image(item["image_id"])
            left = c * (cell + 2 * pad) + pad
            mosaic[pad:pad + cell, left:left + cell] = pixels if pixels is not None else 0
            wrong = item["given_label"] != item["true_label"]
            ax.add_patch(plt.Rectangle((left - 1.5, pad - 1.5), cell + 2, cell + 2, fill=False, linewidth=2,
                                       edgecolor="crimson" if wrong else "lightgrey"))
            ax.text(left + cell / 2 - 0.5, -0.5,
                    f"{item['given_label']}→{item['true_label']}" if wrong else str(item["given_label"]),
                    ha="center", va="bottom", fontsize=7, color="crimson" if wrong else "black")
        ax.imshow(np.ma.masked_invalid(mosaic), cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(f"{data_id}: first {columns} points flagged (label given→true; red = a real label error)",
                 fontsize=9)
    return _save(fig, path)


def draw_debugging_plots(results: dict, folder: Path, *, dataset: str) -> list[Path]:
    """Every plot of a debugging run, into `folder`; returns their paths."""
    made = [fixing_curve_plot(data_id, task, folder / f"{data_id}_fixing_curve.png")
            for data_id, task in results["tasks"].items()]
    made.append(fraction_fixes_vs_time_plot(results, folder / "fraction_fixes_vs_time.png"))
    if results.get("repeats", 1) > 1 and any(stats.VS_BASELINE in e for t in results["tasks"].values()
                                             for e in t["strategies"].values()):
        made.append(comparison_plot(results, folder / "vs_random.png", metric="fraction_fixes",
                                    lower_is_better=True))
    if dataset == digits.NAME:
        made += [flagged_gallery_plot(data_id, task, folder / f"{data_id}_flagged_gallery.png")
                 for data_id, task in results["tasks"].items()]
    return made


# --- sweeps -----------------------------------------------------------------------------------

def _grid_of_axes(n_panels: int, *, width: float | None = None, height: float = 4.0):
    """Up to 3 panels a row, as wide as the page together (`width`: of one panel)."""
    columns = min(3, max(n_panels, 1))
    width = width or max(figure_style.FULL_WIDTH_IN / columns, 4.2)
    rows = -(-max(n_panels, 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows + 1.0), squeeze=False)
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    return fig, axes.ravel()


#: The axes a sweep can vary, with what its plots call them; the numeric ones are drawn on a log scale.
SWEEP_AXES = {"train_size": "train size", "noise_level": "noise level", "model": "model"}
NUMERIC_SWEEP_AXES = ("train_size", "noise_level")


def swept_axes(summary: list[dict]) -> list[str]:
    """The axes of `SWEEP_AXES` with more than one value in a sweep's summary."""
    return [axis for axis in SWEEP_AXES if len({s.get(axis) for s in summary}) > 1]


def _sem(record) -> float:
    return record.get(stats.SEM) or 0.0


def sweep_metric_plot(summary: list[dict], path: Path, *, metric: str, lower_is_better: bool = False,
                      axis: str = "train_size") -> Path:
    """`metric` against one swept `axis` (a log scale for a number, a point per model for the model), a panel
    per task and value of the other numeric axis, a line per strategy (the same colour in every plot; a
    line style per model when the models are not the x axis), each point the mean over the repeats with
    its standard error as an error bar.

    `summary` holds records {task, noise_level, model, strategy, train_size, mean, sem, ci_low, ci_high, n}
    (`dataperf_appliance.sweeps.summarize`).
    """
    others = [a for a in NUMERIC_SWEEP_AXES if a != axis]
    panels = list(dict.fromkeys((s["task"], *(s.get(a) for a in others)) for s in summary))
    series_axis = None if axis == "model" else "model"
    lines = list(dict.fromkeys((s["strategy"], s["model"] if series_axis else None) for s in summary))
    strategies = list(dict.fromkeys(strategy for strategy, _ in lines))
    models = list(dict.fromkeys(model for _, model in lines))
    colors = figure_style.method_colors(strategies)
    styles = {name: ("-", "--", ":", "-.")[i % 4] for i, name in enumerate(models)}
    categories = list(dict.fromkeys(s["model"] for s in summary)) if axis == "model" else []
    fig, axes = _grid_of_axes(len(panels))
    for ax, panel in zip(axes, panels):
        inside = [s for s in summary if (s["task"], *(s.get(a) for a in others)) == panel]
        for index, (strategy, model) in enumerate(lines):
            points = [s for s in inside if s["strategy"] == strategy and (model is None or s["model"] == model)]
            if not points:
                continue
            if axis == "model":  # categories side by side, each strategy a little offset
                offset = (index - (len(lines) - 1) / 2) * 0.8 / max(len(lines), 1)
                xs = [categories.index(p["model"]) + offset for p in points]
            else:
                points.sort(key=lambda p: p[axis])
                xs = [p[axis] for p in points]
            ax.errorbar(xs, [p["mean"] for p in points], yerr=[_sem(p) for p in points], color=colors[strategy],
                        linestyle=styles[model] if axis != "model" else "none",
                        marker=MARKERS[models.index(model) % len(MARKERS)], markersize=5, capsize=3,
                        linewidth=1.6, label=strategy if len(models) == 1 else f"{strategy} / {model}")
        if axis == "model":
            ax.set_xticks(range(len(categories)), categories, rotation=20 if len(categories) > 2 else 0)
        else:
            # The swept values themselves as ticks: a log axis's default ticks (6 x 10^1) do not name them.
            figure_style.log_axis(ax, "x", ticks=sorted({p[axis] for p in inside}))
        ax.set_title(", ".join([panel[0], *(f"{SWEEP_AXES[a]} {v:g}" for a, v in zip(others, panel[1:])
                                           if v is not None)]))
        ax.set_xlabel(SWEEP_AXES[axis] + ("" if axis == "model" else " (log scale)"))
        ax.set_ylabel(metric + (" ↓ (lower is better)" if lower_is_better else " ↑ (higher is better)"))
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    legend_rows = -(-len(labels) // 4)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    repeats = max((s[stats.N] for s in summary), default=1)
    fig.suptitle(f"{metric} against {SWEEP_AXES[axis]}: mean ± standard error over {repeats} repeat(s)")
    fig.tight_layout(rect=(0, 0.05 * legend_rows, 1, 0.95))
    return _save(fig, path)


def latency_box_plot(latency: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """Box plots of the fit and the predict seconds (log y axis), a box per model.

    `latency` maps a model to {"fit_s": [...], "predict_s": [...]}, wall seconds.
    """
    models = list(latency)
    fig, axes = plt.subplots(1, 2, figsize=(max(figure_style.FULL_WIDTH_IN, 1.5 * len(models) * 2 + 2), figure_style.PANEL_HEIGHT_IN), squeeze=False)
    for ax, key, title in zip(axes[0], ("fit_s", "predict_s"), ("fit", "predict")):
        # A log axis cannot show 0; a timer tick that short is shown at one microsecond.
        ax.boxplot([[max(v, 1e-6) for v in latency[m][key]] for m in models], tick_labels=models)
        figure_style.log_axis(ax, "y")
        ax.set_title(f"{title} seconds per model")
        ax.set_ylabel("seconds (log scale)")
        ax.tick_params(axis="x", labelrotation=20)
        ax.grid(axis="y", alpha=0.3, which="both")
    fig.tight_layout()
    return _save(fig, path)


def draw_sweep_plots(summary: list[dict], latency: dict[str, dict[str, list[float]]], folder: Path, *,
                     metric: str, lower_is_better: bool = False) -> list[Path]:
    """The plots of a sweep into `folder`: ``sweep_<metric>_vs_<axis>.png`` for each swept axis (train size,
    noise level, model; the train size alone if none is) and ``sweep_latency.png``."""
    folder = Path(folder)
    axes = swept_axes(summary) or ["train_size"]
    return [*(sweep_metric_plot(summary, folder / f"sweep_{metric}_vs_{axis}.png", metric=metric,
                                lower_is_better=lower_is_better, axis=axis) for axis in axes),
            latency_box_plot(latency, folder / "sweep_latency.png")]
