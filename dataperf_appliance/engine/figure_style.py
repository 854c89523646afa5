"""One look for every figure of the appliance: a colour per method, readable log ticks, sizes for the page.

A method has the same colour in every plot of every run and in the app's
charts: the methods of the appliance have fixed colours, a user's own method
gets one from its name (a stable hash), moved to the next free colour when two
methods of one figure would share it. The colours are the Okabe-Ito palette,
made for colour-blind readers, then Paul Tol's muted one; the random baseline is
grey.

Free of heavy imports (matplotlib is imported only by `log_axis`, Pillow by
`smallest_font_px`), so the pages' Altair charts use the same colours without
loading matplotlib.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Iterable
from pathlib import Path

#: The baseline every method is compared with, drawn neutral.
BASELINE_COLOR = "#666666"
#: The appliance's methods (both tracks; tests/test_figure_style.py checks the catalog's all have one): Okabe-Ito first, then Tol's muted colours.
METHOD_COLORS: dict[str, str] = {
    "random": BASELINE_COLOR,
    "knn_shapley": "#0072B2",  # blue
    "confident_learning": "#D55E00",  # vermillion
    "loss": "#009E73",  # bluish green
    "balanced_random": "#56B4E9",  # sky blue
    "uncertainty": "#E69F00",  # orange
    "diversity": "#CC79A7",  # reddish purple
    "centroid": "#882255",  # wine
    "closest_furthest": "#999933",  # olive
    # The libraries' methods (catalog.DEBUGGING_LIBRARY_METHODS): Tol's light colours and his muted purple, near
    # the appliance's method that does the same where there is one (the KNN-Shapleys blue).
    "neighbor_shapley_datascope": "#77AADD",  # light blue
    "knn_shapley_pydvl": "#99DDFF",  # pale cyan
    "mc_shapley": "#AA4499",  # purple
    "influence_function": "#EE8866",  # light orange
    "data_oob": "#BBCC33",  # pear
    "data_banzhaf": "#44BB99",  # mint
    "beta_shapley": "#EEDD88",  # light yellow
    "tmc_shapley": "#FFAABB",  # pink
    "leave_one_out": "#AAAA00",  # olive
}
#: The colours a user's method may get: none of the above, all told apart by colour-blind readers.
SPARE_COLORS: tuple[str, ...] = ("#332288", "#117733", "#DDCC77", "#88CCEE", "#CC6677", "#44AA99", "#000000")

#: The width (px) a figure is shown at on a 1280 px wide page, where it must be readable: the run page's
#: st.image(width="stretch") fills the main column of Streamlit's wide layout, 1280 - ~300 (the sidebar)
#: - 2 x 80 (the column's padding) = ~820 px, as measured in chromium (issue 22). Every figure is drawn at
#: most this wide, so it is shown 1:1 there and enlarged, never shrunk, on a wider page.
PAGE_WIDTH_PX = 820
#: Pixels per inch of the PNGs; the margin a PNG keeps around what it shows (inches); the width of a figure
#: shown across the page (inches: with its margins, the page's width), and its height for one panel.
DPI = 110
MARGIN_IN = 0.05
FULL_WIDTH_IN = PAGE_WIDTH_PX / DPI - 2 * MARGIN_IN
PANEL_HEIGHT_IN = 4.8
#: Font sizes (points) that stay readable when the PNG is shown at the page's width (9.5 pt = 14.5 px).
FONT_SIZE, SMALL_FONT_SIZE = 11, 9.5
#: The smallest text (px as shown) that is still readable.
MIN_FONT_PX = 10
#: The key of a PNG's text metadata holding its smallest font size in px at its natural size (`smallest_font_px`).
SMALLEST_FONT_KEY = "Smallest font px"

def _spare_color(name: str, taken: set[str]) -> str:
    """A user's method: its hashed spare colour, else the next one not taken (cycling when all are)."""
    start = zlib.crc32(name.encode()) % len(SPARE_COLORS)
    for step in range(len(SPARE_COLORS)):
        color = SPARE_COLORS[(start + step) % len(SPARE_COLORS)]
        if color not in taken:
            return color
    return SPARE_COLORS[start]


def method_colors(names: Iterable[str]) -> dict[str, str]:
    """{method: colour} for the methods of one figure, each its own colour (for up to
    ``len(METHOD_COLORS) + len(SPARE_COLORS)`` methods); the appliance's methods always the same."""
    names = list(dict.fromkeys(names))
    colors = {name: METHOD_COLORS[name] for name in names if name in METHOD_COLORS}
    for name in sorted(n for n in names if n not in METHOD_COLORS):
        colors[name] = _spare_color(name, set(colors.values()))
    return {name: colors[name] for name in names}


def method_color(name: str) -> str:
    """The colour of one method (a user's method alone in its figure)."""
    return method_colors([name])[name]


def matplotlib_style() -> dict:
    """rcParams of every figure (``plt.rc_context(matplotlib_style())``). Constrained layout keeps titles,
    labels and figure legends inside the figure's width, so a tight bounding box does not widen it."""
    return {"font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1, "axes.labelsize": FONT_SIZE,
            "xtick.labelsize": SMALL_FONT_SIZE, "ytick.labelsize": SMALL_FONT_SIZE,
            "legend.fontsize": SMALL_FONT_SIZE, "figure.titlesize": FONT_SIZE + 1, "savefig.dpi": DPI,
            "figure.dpi": DPI, "savefig.pad_inches": MARGIN_IN, "figure.constrained_layout.use": True}


def smallest_font_px(png: bytes | str | Path) -> float:
    """The smallest font size (px at the PNG's natural size) of a figure of the appliance, from its metadata
    (written by `dataperf_appliance.engine.debugging.debugging_plots`). As shown, it is this times shown width / natural width."""
    from PIL import Image

    with Image.open(io.BytesIO(png) if isinstance(png, bytes) else png) as image:
        return float(image.text[SMALLEST_FONT_KEY])


#: Room (px) a log axis gives each of its labels when it chooses them: a number's width across, its height up.
LOG_LABEL_SPACING_PX = {"x": 70, "y": 35}


def log_axis(ax, axis: str = "x", ticks: Iterable[float] | None = None) -> None:
    """A log scale whose labels do not overlap: the given `ticks` (e.g. the swept sizes), else one label per
    decade (or per few decades, as many as the axis has room for), written as plain numbers (0.01, 1, 100)
    rather than powers, and unlabelled minor ticks."""
    from matplotlib import ticker

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    if ticks is not None:
        target.set_major_locator(ticker.FixedLocator(sorted(ticks)))
        target.set_minor_locator(ticker.NullLocator())
    else:
        # Over a short range a label per decade would leave one or none: label 1-2-5 (or 1-3) steps then.
        low, high = sorted(target.get_view_interval())
        decades = math.log10(high / low) if low > 0 and high > 0 else 10.0
        subs = (1.0, 2.0, 5.0) if decades < 2 else (1.0, 3.0) if decades < 4 else (1.0,)
        box = ax.get_window_extent()
        room = int((box.width if axis == "x" else box.height) / LOG_LABEL_SPACING_PX[axis])
        target.set_major_locator(ticker.LogLocator(base=10, subs=subs, numticks=max(room, 3)))
        target.set_minor_locator(ticker.LogLocator(base=10, subs=tuple(range(2, 10)), numticks=12))
    target.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(ticker.NullFormatter())
