"""Every figure a run draws fits the page it is shown on: at most the shown width, every font readable there.

Small inputs built by hand (no benchmark is run): each kind of figure of both tracks and of a sweep, from a
small run and from a large one (every method, many tasks, models, settings), each checked from its PNG.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataperf_appliance.engine import figure_style, stats

from dataperf_appliance.engine.debugging import debugging_plots
from dataperf_appliance.config import catalog, grid
from dataperf_appliance.engine.datasets import digits
from dataperf_appliance.engine.selection import files
from dataperf_appliance.engine.selection import selection_plots as selection_plots
from dataperf_appliance.engine.selection.selection_evaluation import METRICS as SELECTION_METRICS

#: A rounding pixel or two of a tight bounding box.
WIDTH_SLACK_PX = 2
USER_METHOD = "my_own_cleaning_method"
LARGE_TASKS = list(digits.TASK_IDS)  # every digits task: the most panels and bar groups a run can have


def check_fits_the_page(png: Path) -> None:
    with Image.open(png) as image:
        width = image.width
    assert width <= figure_style.PAGE_WIDTH_PX + WIDTH_SLACK_PX, f"{png.name} is {width} px wide"
    # The page stretches the picture to its column's width.
    shown_px = figure_style.smallest_font_px(png) * figure_style.PAGE_WIDTH_PX / width
    assert shown_px >= figure_style.MIN_FONT_PX, f"{png.name}: its smallest font is {shown_px:.1f} px as shown"
    assert figure_style.smallest_font_px(png.read_bytes()) == figure_style.smallest_font_px(png)


def repeats_of(strategies: list[str], repeats: int, metrics, seed: int) -> dict[str, list[dict]]:
    """Each strategy's figures in each repeat, random but the same for a seed."""
    draw = random.Random(seed)
    return {name: [{m: draw.uniform(0.1, 0.9) for m in metrics} for _ in range(repeats)] for name in strategies}


def debugging_results(tasks: list[str], strategies: list[str], repeats: int, flagged: int = 16) -> dict:
    """A debugging run's results.json content, with its figures over repeats."""
    fixes = list(range(0, 201, 20))
    replicates = {}
    out = {}
    for index, task in enumerate(tasks):
        by_name = repeats_of(strategies, repeats, catalog.DEBUGGING_HEADLINE_METRICS, seed=index)
        for entries in by_name.values():
            for entry in entries:
                entry[stats.CURVE] = {"fixes": fixes, "accuracy": list(np.linspace(0.6, 0.9, len(fixes)))}
        replicates[task] = by_name
        out[task] = {"data_id": task, "train_size": 200, "mislabeled": 60, "before_acc": 0.6, "clean_acc": 0.92,
                     "strategies": {name: {
                         "kind": "baseline", **by_name[name][0],
                         "time_s": 0.001 * (1 + position),
                         "first_flagged": [{"row": i, "image_id": f"digits-{i:04d}", "given_label": i % 10,
                                            "true_label": (i % 10) if i % 3 else (i + 1) % 10}
                                           for i in range(flagged)]}
                         for position, name in enumerate(strategies)}}
    results = {"track": "debugging", "dataset": digits.NAME, "tasks": out}
    return stats.add_to_results(results, replicates, catalog.DEBUGGING_HEADLINE_METRICS)


def selection_results(tasks: list[str], strategies: list[str], repeats: int) -> dict:
    replicates = {task: repeats_of(strategies, repeats, SELECTION_METRICS, seed=index)
                  for index, task in enumerate(tasks)}
    out = {task: {"strategies": {name: {"kind": "baseline", "file": f"training_sets/{task}_{name}.csv",
                                        "over_budget": name == USER_METHOD, **replicates[task][name][0]}
                                 for name in strategies}} for task in tasks}
    results = {"track": "selection", "dataset": "digits", "train_size": 100, "model": "logistic_regression",
               "tasks": out}
    return stats.add_to_results(results, replicates, SELECTION_METRICS)


def write_training_sets(results: dict, task: str, run_dir: Path) -> None:
    """The training sets of `task`'s methods (a gallery is drawn of those found)."""
    for position, entry in enumerate(results["tasks"][task]["strategies"].values()):
        path = run_dir / entry["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = [f"digits-{i:04d}" for i in range(position, position + 20)]
        path.write_text(files.TRAINING_SET_HEADER + "\n" + "".join(f"{i},{n % 2}\n" for n, i in enumerate(ids)))


def sweep_summary(tasks: list[str], strategies: list[str], axes: list[grid.Axis]) -> list[dict]:
    """A sweep's summary records over these `axes`' values (the other axes absent)."""
    values = {"train_size": [20, 40, 80], "noise_level": [0.1, 0.3],
              "model": ["logistic_regression", "knn", "hist_gradient_boosting"]}
    draw = random.Random(0)
    settings = [{}]
    for axis in axes:
        settings = [{**setting, axis.name: value} for setting in settings for value in values[axis.name]]
    return [{"task": task, **setting, "strategy": name, "metric": "f1", stats.MEAN: draw.uniform(0.2, 0.9),
             stats.SEM: 0.02, stats.CI_LOW: 0.1, stats.CI_HIGH: 0.9, stats.N: 3}
            for task in tasks for setting in settings for name in strategies]


LATENCY_ALL_MODELS = {model: {"fit_s": [0.01 * (i + 1), 0.02, 0.0], "predict_s": [0.001, 0.002 * (i + 1), 0.003]}
                      for i, model in enumerate(catalog.MODEL_NAMES)}


@pytest.mark.parametrize("size", ["small", "large"])
def test_every_debugging_figure_fits_the_page(tmp_path, size):
    tasks, strategies = (["digit-3"], ["random", "loss"]) if size == "small" else \
        (LARGE_TASKS[:3], [*catalog.DEBUGGING_STRATEGIES, USER_METHOD])
    made = debugging_plots.draw_debugging_plots(debugging_results(tasks, strategies, repeats=3), tmp_path,
                                      dataset=digits.NAME)
    assert {p.name for p in made} >= {"vs_random.png", "fraction_fixes_vs_time.png",
                                      f"{tasks[0]}_fixing_curve.png", f"{tasks[0]}_flagged_gallery.png"}
    for png in made:
        check_fits_the_page(png)


@pytest.mark.parametrize("size", ["small", "large"])
def test_every_selection_figure_fits_the_page(tmp_path, size):
    tasks, strategies = (["digit-3"], ["random", "uncertainty"]) if size == "small" else \
        (LARGE_TASKS, [*catalog.SELECTION_STRATEGIES, USER_METHOD])
    results = selection_results(tasks, strategies, repeats=3)
    write_training_sets(results, tasks[0], tmp_path)
    made = selection_plots.draw_selection_plots(results, tmp_path / "plots", run_dir=tmp_path)
    assert {p.name for p in made} >= {"selection_metrics.png", "vs_random.png", f"{tasks[0]}_chosen_gallery.png"}
    for png in made:
        check_fits_the_page(png)


@pytest.mark.parametrize("axis_names", [("train_size", "noise_level", "model"), ("train_size", "model")],
                         ids=["debugging", "selection"])
def test_every_sweep_figure_fits_the_page_and_names_the_axes(tmp_path, axis_names):
    axes = [grid.AXES[name] for name in axis_names]
    summary = sweep_summary(LARGE_TASKS[:2], [*catalog.DEBUGGING_STRATEGIES, USER_METHOD], axes)
    made = debugging_plots.draw_sweep_plots(summary, LATENCY_ALL_MODELS, tmp_path, metric="f1", axes=axes)
    assert [p.name for p in made] == [*(f"sweep_f1_vs_{name}.png" for name in axis_names), "sweep_latency.png"]
    for png in made:
        check_fits_the_page(png)


def test_the_sweep_plots_default_to_every_axis_of_the_grid(tmp_path):
    summary = sweep_summary(["digit-3"], ["random", "loss"], [grid.AXES["train_size"]])
    made = debugging_plots.draw_sweep_plots(summary, LATENCY_ALL_MODELS, tmp_path, metric="fraction_fixes")
    assert [p.name for p in made] == ["sweep_fraction_fixes_vs_train_size.png", "sweep_latency.png"]


def method_pixels(png: Path, colour: str) -> int:
    """How many pixels of the picture have exactly `colour`."""
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"))
    return int(np.all(pixels == [int(colour[i:i + 2], 16) for i in (1, 3, 5)], axis=-1).sum())


def test_a_method_not_significantly_better_than_random_keeps_its_colour(tmp_path):
    """Hollow, but in its own colour: grey is random's."""
    def compared(difference: float, significant: bool) -> dict:
        return {stats.VS_BASELINE: {"fraction_fixes": {stats.DIFFERENCE: difference, stats.CI_LOW: difference - 0.1,
                                                       stats.CI_HIGH: difference + 0.1,
                                                       stats.SIGNIFICANT: significant}}}
    results = {"repeats": 5, "tasks": {"digit-3": {"strategies": {
        "random": {}, "knn_shapley": compared(-0.3, True), "loss": compared(-0.05, False)}}}}
    png = debugging_plots.comparison_plot(results, tmp_path / "vs_random.png", metric="fraction_fixes",
                                lower_is_better=True)
    for method in ("knn_shapley", "loss"):
        assert method_pixels(png, figure_style.method_color(method)) > 50, method
    check_fits_the_page(png)
