"""Every picture a run makes (matplotlib, Agg backend: no display needed).

Each is drawn at most as wide as the run page shows it (`figure_style.PAGE_WIDTH_PX`), several panels
wrapping into rows rather than widening it, and records its smallest font in the PNG
(`figure_style.smallest_font_px`), so a test can tell it is readable where it is shown.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from dataperf_appliance.engine import figure_style, stats
from dataperf_appliance.config import catalog, grid  # noqa: E402
from dataperf_appliance.engine.datasets import digits
from dataperf_appliance.engine.atomic_file import atomic_write_bytes  # noqa: E402

MARKERS = "osD^vP*Xh<>"
DPI = figure_style.DPI
#: One size of a single-panel figure shown across the run page.
WIDE = (figure_style.FULL_WIDTH_IN, figure_style.PANEL_HEIGHT_IN)
plt.rcParams.update(figure_style.matplotlib_style())


def _smallest_font_px(fig, dpi: float) -> float:
    """The smallest font (px at `dpi`) of the texts `fig` shows: visible, not empty, not in a hidden axes."""
    fig.draw_without_rendering()  # an axis makes its tick labels when drawn
    sizes = [text.get_fontsize() for text in fig.findobj(Text)
             if text.get_visible() and text.get_text().strip() and (text.axes is None or text.axes.get_visible())]
    return min(sizes, default=0.0) * dpi / 72


def _png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")  # the first field of the PNG's header chunk


def _save(fig, path: Path) -> Path:
    """Write `fig` as a PNG at most the page's width, its smallest font size (px) in its metadata.

    A figure whose tight box outgrows the page (something drawn beyond its width) is saved again at a lower
    DPI, so the page never shrinks it: its smaller fonts are then what the metadata reports.
    """
    dpi = DPI
    for _ in range(3):
        image = io.BytesIO()
        fig.savefig(image, format="png", dpi=dpi, bbox_inches="tight",
                    metadata={figure_style.SMALLEST_FONT_KEY: f"{_smallest_font_px(fig, dpi):.2f}"})
        width = _png_width(image.getvalue())
        if width <= figure_style.PAGE_WIDTH_PX:
            break
        dpi *= (figure_style.PAGE_WIDTH_PX - 0.5) / width
    plt.close(fig)
    atomic_write_bytes(path, image.getvalue())
    return path


def _title(fig, text: str) -> None:
    """The figure's title, wrapped to its width rather than drawn beyond it."""
    fig.suptitle(text, wrap=True)


def _legend_below(fig, handles, labels) -> None:
    """A legend under the panels, inside the figure, in up to 4 columns (as many as fit its width); the
    figure grows by the legend's height, so the panels keep theirs."""
    if not labels:
        return
    renderer = fig.canvas.get_renderer()
    for columns in range(min(len(labels), 4), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=columns, frameon=False)
        box = legend.get_window_extent(renderer)
        if columns == 1 or box.width <= fig.bbox.width:
            break
        legend.remove()
    fig.set_figheight(fig.get_figheight() + box.height / fig.dpi)


def _category_ticks(ax, positions: Sequence[float], names: Sequence[str]) -> None:
    """Names under the x axis: level when side by side they fit the panel, else slanted (at 30°, or upright
    when even slanted they would touch)."""
    ax.set_xticks(positions, names)
    renderer = ax.figure.canvas.get_renderer()
    labels = ax.get_xticklabels()
    slot = ax.get_window_extent(renderer).width / max(len(names), 1)
    if max((label.get_window_extent(renderer).width for label in labels), default=0) < 0.9 * slot:
        return
    height = max(label.get_window_extent(renderer).height for label in labels)
    # Slanted labels are parallel: they stay apart while slot x sin(angle) exceeds their height.
    angle = 30 if slot * math.sin(math.radians(30)) > 1.2 * height else 90
    ax.set_xticks(positions, names, rotation=angle, ha="right" if angle < 90 else "center",
                  rotation_mode="anchor" if angle < 90 else "default")


def _error(summary) -> float:
    """The half width of a summary's 95% interval, 0 when it has none (one repeat)."""
    return stats.half_width(summary) or 0.0


def _sort_key(value: float | None) -> float:
    return math.inf if value is None else value


def fixing_curve_plot(data_id: str, task_result: dict, path: Path) -> Path:
    """DataPerf's curve: test accuracy against the number of inspected points, a line per strategy,
    the accuracy before cleaning dashed, each strategy's fraction_fixes in the legend. With repeats, each
    line is the mean curve over them inside its shaded 95% band, and fraction_fixes is its mean ± half width."""
    fig, ax = plt.subplots(figsize=WIDE)
    # A method that failed on the first repeat has no curve to draw (its error is on the run page).
    drawn = [(name, result) for name, result in task_result["strategies"].items() if result.get("curve")]
    ranked = sorted(drawn, key=lambda item: _sort_key(stats.mean_of(item[1], "fraction_fixes")))
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
    ax.set_ylabel("test accuracy" + (f"\n(mean and 95% band over {repeats} repeats)" if repeats > 1 else ""))
    _title(fig, f"{data_id}: {task_result['mislabeled']} of {task_result['train_size']} training labels wrong"
           + (" (first repeat)" if repeats > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


#: The figures of a debugging method drawn against its cost: DataPerf's score and the detection of the flipped labels.
QUALITY_METRICS = ("fraction_fixes", "auprc")


def _family_marker(name: str) -> str:
    """A square for DataPerf's official baselines, a triangle for the other libraries' methods, a circle for the
    appliance's and a user's: with a dozen methods, colour alone does not tell them apart."""
    library = catalog.DEBUGGING_LIBRARY_METHODS.get(name)
    return "o" if library is None else "s" if library.official else "^"


def fraction_fixes_vs_time_plot(results: dict, path: Path) -> Path:
    """Quality against cost, a panel per metric of `QUALITY_METRICS`: each method's mean over the tasks against
    the mean seconds it took on a task, both with their 95% interval over the repeats as error bars (a method
    that failed everywhere is left out); the marker tells the method's family (`_family_marker`)."""
    overall = results.get("overall") or {}
    names = [name for name, entry in overall.items() if (entry.get(stats.COST_OVER_REPEATS) or {}).get(stats.MEAN)]
    colors = figure_style.method_colors(names)
    fig, axes = _grid_of_axes(len(QUALITY_METRICS), height=3.6)
    for ax, metric in zip(axes, QUALITY_METRICS):
        for name in names:
            mean = stats.mean_of(overall[name], metric)
            if mean is None:
                continue
            cost = overall[name][stats.COST_OVER_REPEATS]
            seconds, half = max(cost[stats.MEAN], 1e-4), _error(cost)
            # A t-interval of a few repeats may reach below 0 s, which a log axis cannot show: cut it at a tenth.
            ax.errorbar(seconds, mean, xerr=[[min(half, 0.9 * seconds)], [half]],
                        yerr=_error(stats.summary_of(overall[name], metric)), marker=_family_marker(name),
                        color=colors[name],
                        markersize=8, markeredgecolor="black", markeredgewidth=0.5, capsize=3, linestyle="none",
                        label=name)
        figure_style.log_axis(ax, "x")
        ax.set_xlabel("seconds to produce the order, per task (log)")
        ax.set_ylabel(catalog.metric_label(metric))
        ax.set_title(f"{metric} ({catalog.better(metric)} is better)")
        ax.grid(alpha=0.3, which="both")
    repeats = results.get("repeats", 1)
    _title(fig, "Methods: quality against cost, mean over the tasks"
           + (f" and 95% interval over {repeats} repeats" if repeats > 1 else ""))
    _legend_below(fig, *axes[0].get_legend_handles_labels())
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
    # The methods' names once a row, beside its first panel.
    fig, axes = _grid_of_axes(len(panels), height=0.4 * max(len(names), 1) + 1.2, sharey=True)
    for ax, (title, entries) in zip(axes, panels):
        for row, name in enumerate(names):
            comparison = stats.comparison_of(entries.get(name), metric)
            if not comparison or comparison.get(stats.DIFFERENCE) is None:
                continue
            # Hollow but in the method's colour: grey is random's.
            significant = bool(comparison.get(stats.SIGNIFICANT))
            ax.errorbar(comparison[stats.DIFFERENCE], row, xerr=_error(comparison), fmt="o", color=colors[name],
                        markerfacecolor=colors[name] if significant else "white", capsize=3)
        ax.axvline(0, color="black", linewidth=1)
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(len(names) - 0.5, -0.5)  # the first method on top (the panels share this axis)
        ax.set_title(title)
        ax.set_xlabel(f"{metric} − random")
        ax.grid(axis="x", alpha=0.3)
    _title(fig, f"{metric} − random ({'< 0' if lower_is_better else '> 0'}: better), paired on "
                f"{results.get('repeats', 1)} repeat(s): mean difference and 95% interval; hollow = not significant")
    return _save(fig, path)


#: Images a gallery shows per method: as many as fit the page's width with each one's label readable.
GALLERY_COLUMNS = 12
#: A gallery's cell, in digit pixels: an 8x8 digit, a frame and a gap around it, a band above it for its label.
_DIGIT, _PAD, _LABEL_BAND = 8, 2, 5
_CELL_WIDTH, _CELL_HEIGHT = _DIGIT + 2 * _PAD, _LABEL_BAND + _DIGIT + 2 * _PAD
#: Inches a gallery leaves beside its images for the methods' names, and the largest size of a digit pixel.
_NAMES_IN, _MAX_PIXEL_IN = 1.8, 0.06


def gallery_columns(rows: list[tuple[str, list]]) -> int:
    """How many images a gallery of `rows` (method, images) shows per row."""
    return min(GALLERY_COLUMNS, max((len(items) for _, items in rows), default=0))


def digit_gallery_plot(rows: list[tuple[str, list[tuple[str, str, bool]]]], title: str, path: Path) -> Path:
    """The digits' images, a row per method: its first `gallery_columns` images, each with its label above
    and a frame, red when `wrong`. `rows` holds (method, [(image_id, label, wrong), ...]).

    One mosaic image (not an axes per digit), so a gallery draws in a fraction of a second.
    """
    columns = max(gallery_columns(rows), 1)
    pixel_in = min(_MAX_PIXEL_IN, (figure_style.FULL_WIDTH_IN - _NAMES_IN) / (columns * _CELL_WIDTH))
    # Compressed: the title hugs the images, whose aspect is fixed.
    fig, ax = plt.subplots(figsize=(figure_style.FULL_WIDTH_IN, max(len(rows), 1) * _CELL_HEIGHT * pixel_in + 0.6),
                           layout="compressed")
    mosaic = np.full((max(len(rows), 1) * _CELL_HEIGHT, columns * _CELL_WIDTH), np.nan)
    for r, (_, items) in enumerate(rows):
        top = r * _CELL_HEIGHT + _LABEL_BAND + _PAD
        for c, (image_id, label, wrong) in enumerate(items[:columns]):
            left = c * _CELL_WIDTH + _PAD
            pixels = digits.image(image_id)
            mosaic[top:top + _DIGIT, left:left + _DIGIT] = pixels if pixels is not None else 0
            ax.add_patch(plt.Rectangle((left - 1.5, top - 1.5), _DIGIT + 2, _DIGIT + 2, fill=False,
                                       linewidth=2 if wrong else 0.8, edgecolor="crimson" if wrong else "lightgrey"))
            ax.text(left + _DIGIT / 2 - 0.5, top - 2, label, ha="center", va="bottom",
                    fontsize=figure_style.SMALL_FONT_SIZE, color="crimson" if wrong else "black")
    ax.imshow(np.ma.masked_invalid(mosaic), cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([r * _CELL_HEIGHT + _LABEL_BAND + _PAD + _DIGIT / 2 for r in range(len(rows))],
                  [name for name, _ in rows])
    ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    _title(fig, title)
    return _save(fig, path)


def flagged_gallery_plot(data_id: str, task_result: dict, path: Path) -> Path:
    """For the digits: the first images each strategy flags, with given and true label; real errors framed red."""
    rows = []
    for name, result in task_result["strategies"].items():
        items = []
        for item in result["first_flagged"]:
            wrong = item["given_label"] != item["true_label"]
            label = f"{item['given_label']}→{item['true_label']}" if wrong else str(item["given_label"])
            items.append((item["image_id"], label, wrong))
        rows.append((name, items))
    return digit_gallery_plot(rows, f"{data_id}: first {gallery_columns(rows)} points flagged (label given→true; "
                                    "red = a real label error)", path)


def draw_debugging_plots(results: dict, folder: Path, *, dataset: str) -> list[Path]:
    """Every plot of a debugging run, into `folder`; returns their paths."""
    made = [fixing_curve_plot(data_id, task, folder / f"{data_id}_fixing_curve.png")
            for data_id, task in results["tasks"].items()]
    made.append(fraction_fixes_vs_time_plot(results, folder / "fraction_fixes_vs_time.png"))
    if results.get("repeats", 1) > 1 and any(stats.VS_BASELINE in e for t in results["tasks"].values()
                                             for e in t["strategies"].values()):
        main = catalog.DEBUGGING_HEADLINE_METRICS[0]
        made.append(comparison_plot(results, folder / "vs_random.png", metric=main,
                                    lower_is_better=catalog.LOWER_IS_BETTER[main]))
    if dataset == digits.NAME:
        made += [flagged_gallery_plot(data_id, task, folder / f"{data_id}_flagged_gallery.png")
                 for data_id, task in results["tasks"].items()]
    return made


# --- sweeps -----------------------------------------------------------------------------------

#: Narrowest panel (inches) of a figure of several: two a row across the page.
MIN_PANEL_WIDTH_IN = 3.6


def _grid_of_axes(n_panels: int, *, min_width: float = MIN_PANEL_WIDTH_IN, height: float = 3.2,
                  sharey: bool = False):
    """Panels across the page's width, as many a row as fit at least `min_width` inches wide (3 at most),
    more rows below (`height`: of one row), the rows as even as can be (4 panels: 2 x 2, not 3 + 1)."""
    fitting = max(1, min(max(n_panels, 1), 3, int(figure_style.FULL_WIDTH_IN // min_width)))
    rows = -(-max(n_panels, 1) // fitting)
    columns = -(-max(n_panels, 1) // rows)
    fig, axes = plt.subplots(rows, columns, figsize=(figure_style.FULL_WIDTH_IN, height * rows + 0.6),
                             sharey=sharey, squeeze=False)
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    return fig, axes.ravel()


#: The axes of a sweep the plots know when the caller names none: every axis of the grid.
GRID_AXES: tuple[grid.Axis, ...] = tuple(grid.AXES.values())


def swept_axes(summary: list[dict], axes: Sequence[grid.Axis] = GRID_AXES) -> list[grid.Axis]:
    """The `axes` with more than one value in a sweep's summary."""
    return [axis for axis in axes if len({s.get(axis.name) for s in summary}) > 1]


def _sem(record) -> float:
    return record.get(stats.SEM) or 0.0


def _format_value(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def sweep_metric_plot(summary: list[dict], path: Path, *, metric: str, lower_is_better: bool = False,
                      axis: str = "train_size", axes: Sequence[grid.Axis] = GRID_AXES) -> Path:
    """`metric` against the swept axis named `axis` (a log scale for a numeric axis, a point per value for
    the others), a panel per task and value of the other numeric axes, a line per strategy (the same colour
    in every plot) and value of the other non-numeric axes (a line style each), each point the mean over
    the repeats with its standard error as an error bar.

    `summary` holds records {task, <axis name>: value for each of `axes` it has, strategy, metric, mean,
    sem, ci_low, ci_high, n} (`dataperf_appliance.stages.sweeps.summary_records`); `axes` are the sweep's
    (`grid.Axis`: name, label, numeric).
    """
    shown = {a.name: a for a in axes}[axis]
    panel_axes = [a for a in axes if a.numeric and a != shown]
    series_axes = [a for a in axes if not a.numeric and a != shown]

    def panel_of(record):
        return (record["task"], *(record.get(a.name) for a in panel_axes))

    def series_of(record):
        return tuple(record.get(a.name) for a in series_axes)

    panels = list(dict.fromkeys(panel_of(s) for s in summary))
    lines = list(dict.fromkeys((s["strategy"], series_of(s)) for s in summary))
    strategies = list(dict.fromkeys(strategy for strategy, _ in lines))
    series = list(dict.fromkeys(values for _, values in lines))
    colors = figure_style.method_colors(strategies)
    styles = {values: ("-", "--", ":", "-.")[i % 4] for i, values in enumerate(series)}
    categories = [] if shown.numeric else list(dict.fromkeys(s.get(axis) for s in summary))
    fig, panel_grid = _grid_of_axes(len(panels))
    for ax, panel in zip(panel_grid, panels):
        inside = [s for s in summary if panel_of(s) == panel]
        for index, (strategy, values) in enumerate(lines):
            points = [s for s in inside if s["strategy"] == strategy and series_of(s) == values]
            if not points:
                continue
            if shown.numeric:
                points = sorted((p for p in points if p.get(axis) is not None), key=lambda p: p[axis])
                xs = [p[axis] for p in points]
            else:  # categories side by side, each line a little offset
                offset = (index - (len(lines) - 1) / 2) * 0.8 / max(len(lines), 1)
                xs = [categories.index(p.get(axis)) + offset for p in points]
            ax.errorbar(xs, [p["mean"] for p in points], yerr=[_sem(p) for p in points], color=colors[strategy],
                        linestyle=styles[values] if shown.numeric else "none",
                        marker=MARKERS[series.index(values) % len(MARKERS)], markersize=5, capsize=3,
                        linewidth=1.6)
        if shown.numeric:
            # The swept values themselves as ticks: a log axis's default ticks (6 x 10^1) do not name them.
            figure_style.log_axis(ax, "x", ticks=sorted({p[axis] for p in inside if p.get(axis) is not None}))
        else:
            _category_ticks(ax, range(len(categories)), [_format_value(c) for c in categories])
        ax.set_title(", ".join([panel[0], *(f"{a.label} {_format_value(v)}" for a, v in zip(panel_axes, panel[1:])
                                           if v is not None)]))
        ax.set_xlabel(shown.label + (" (log scale)" if shown.numeric else ""))
        ax.set_ylabel(metric + (" ↓ (lower is better)" if lower_is_better else " ↑ (higher is better)"))
        ax.grid(alpha=0.3, which="both")
    # A colour per strategy, and a line style and marker per value of the other axes: one entry each.
    keys = [Line2D([], [], color=colors[strategy], marker="o", linewidth=1.6,
                   linestyle="-" if shown.numeric else "none") for strategy in strategies]
    if len(series) > 1:
        keys += [Line2D([], [], color="black", linestyle=styles[values] if shown.numeric else "none",
                        marker=MARKERS[i % len(MARKERS)], linewidth=1.6) for i, values in enumerate(series)]
    names = strategies + ([" / ".join(map(_format_value, values)) for values in series] if len(series) > 1 else [])
    _legend_below(fig, keys, names)
    repeats = max((s[stats.N] for s in summary), default=1)
    _title(fig, f"{metric} against {shown.label}: mean ± standard error over {repeats} repeat(s)")
    return _save(fig, path)


def latency_box_plot(latency: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """Box plots of the fit and the predict seconds (log x axis), a box per model, its name beside it.

    `latency` maps a model to {"fit_s": [...], "predict_s": [...]}, wall seconds.
    """
    models = list(latency)
    # Boxes lie along the rows, so the models' names read level however many there are.
    fig, axes = plt.subplots(1, 2, figsize=(figure_style.FULL_WIDTH_IN, 0.45 * len(models) + 1.6), sharey=True,
                             squeeze=False)
    for ax, key, title in zip(axes[0], ("fit_s", "predict_s"), ("fit", "predict")):
        # A log axis cannot show 0; a timer tick that short is shown at one microsecond.
        ax.boxplot([[max(v, 1e-6) for v in latency[m][key]] for m in models], tick_labels=models,
                   orientation="horizontal")
        figure_style.log_axis(ax, "x")
        ax.set_title(f"{title} seconds per model")
        ax.set_xlabel("seconds (log scale)")
        ax.grid(axis="x", alpha=0.3, which="both")
    axes[0][0].invert_yaxis()  # the first model on top
    return _save(fig, path)


def draw_sweep_plots(summary: list[dict], latency: dict[str, dict[str, list[float]]], folder: Path, *,
                     metric: str, lower_is_better: bool = False,
                     axes: Sequence[grid.Axis] = GRID_AXES) -> list[Path]:
    """The plots of a sweep into `folder`: ``sweep_<metric>_vs_<axis>.png`` for each of its `axes` with more
    than one value (the first axis if none has) and ``sweep_latency.png``."""
    folder = Path(folder)
    shown = swept_axes(summary, axes) or list(axes[:1])
    return [*(sweep_metric_plot(summary, folder / f"sweep_{metric}_vs_{axis.name}.png", metric=metric,
                                lower_is_better=lower_is_better, axis=axis.name, axes=axes) for axis in shown),
            latency_box_plot(latency, folder / "sweep_latency.png")]
