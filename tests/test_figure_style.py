"""One look for every figure: a colour per method, the same everywhere, told apart; readable log ticks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from dataperf_appliance.engine import figure_style
from dataperf_appliance.config import catalog  # noqa: E402


def test_every_method_of_the_appliance_has_its_own_fixed_colour():
    methods = set(catalog.DEBUGGING_BASELINES + catalog.SELECTION_STRATEGIES)
    assert methods <= set(figure_style.METHOD_COLORS)
    colors = [figure_style.METHOD_COLORS[m] for m in methods]
    assert len(set(colors)) == len(colors)
    assert not set(colors) & set(figure_style.SPARE_COLORS)
    # The same in any company and any order.
    assert figure_style.method_colors(["loss", "random"])["loss"] == \
        figure_style.method_colors(["knn_shapley", "confident_learning", "loss"])["loss"]


def test_users_methods_get_stable_colours_never_shared_within_a_figure():
    names = ["random", "knn_shapley", "mine", "theirs", "cleanlab_v2", "x1", "x2", "x3"]
    colors = figure_style.method_colors(names)
    assert len(set(colors.values())) == len(names)
    assert figure_style.method_colors(list(reversed(names))) == colors  # order does not matter
    assert figure_style.method_color("mine") in figure_style.SPARE_COLORS


@pytest.mark.parametrize("width", [figure_style.FULL_WIDTH_IN, figure_style.FULL_WIDTH_IN / 2],
                         ids=["page", "half a page"])
@pytest.mark.parametrize("ticks", [None, [10, 30, 100, 300, 1000]])
def test_log_axis_labels_are_plain_numbers_that_do_not_overlap(ticks, width):
    fig, ax = plt.subplots(figsize=(width, figure_style.PANEL_HEIGHT_IN))
    ax.plot([1e-4, 1e-3, 0.05, 2.0, 40.0], [0.1, 0.2, 0.3, 0.4, 0.5]) if ticks is None else \
        ax.plot(ticks, range(len(ticks)))
    figure_style.log_axis(ax, "x", ticks=ticks)
    fig.canvas.draw()
    labels = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
    boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0)
    assert len(boxes) >= 3 and all("10^" not in t.get_text() and "$" not in t.get_text() for t in labels)
    visible = [b for b in boxes if 0 <= b.x0 and b.x1 <= fig.bbox.width]
    assert all(a.x1 < b.x0 for a, b in zip(visible, visible[1:]))  # no two labels overlap
    plt.close(fig)


def test_a_figure_across_the_page_is_saved_as_wide_as_the_page_shows_it():
    margins_px = 2 * figure_style.MARGIN_IN * figure_style.DPI
    assert figure_style.FULL_WIDTH_IN * figure_style.DPI + margins_px == pytest.approx(figure_style.PAGE_WIDTH_PX)
    # The smallest font of the appliance, shown 1:1 there, is readable.
    assert figure_style.SMALL_FONT_SIZE * figure_style.DPI / 72 >= figure_style.MIN_FONT_PX
