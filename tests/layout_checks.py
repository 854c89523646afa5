"""What the browser test measures on a page, so that "no page clips text at 1280 px" fails when it is not so.

Each function takes a Playwright page and returns what is wrong on it (empty when all is well):

* `clipped_texts`: visible text cut off by its box (an ellipsis or a hidden overflow: a label, a chip, a
  tab, a selectbox's value, a metric) -- a scrolling box is not clipping;
* `overflowing_tab_bars`: tab bars wider than the page, whose last tabs are hidden;
* `unpinned_wide_tables`: data tables wider than their frame whose key (first) column leaves the view when
  the table is scrolled to its right end (a pinned column stays);
* `narrow_errors`: tall error boxes narrower than `MIN_ERROR_PX`, the 140 px red strips of issue 22;
* `small_figure_text`: figures whose smallest text, as shown, is under `MIN_FIGURE_TEXT_PX`.
"""

from __future__ import annotations

from pathlib import Path

#: An error box narrower than this and taller than `MAX_NARROW_ERROR_PX` reads as a strip of words.
MIN_ERROR_PX, MAX_NARROW_ERROR_PX = 400, 90
#: The smallest text of a figure, in CSS pixels as shown.
MIN_FIGURE_TEXT_PX = 10

_CLIPPED = """
() => {
  const roots = [...document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebar]')];
  const out = [];
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 &&
                          getComputedStyle(el).visibility !== 'hidden'; };
  const hides = s => ['hidden', 'clip'].includes(s.overflowX) || s.textOverflow === 'ellipsis';
  for (const root of roots) {
    for (const el of root.querySelectorAll('*')) {
      const text = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
      if (!text || !visible(el)) continue;
      // Cut by its own box, or by one of its three nearest ancestors that hides what overflows it.
      let cut = el.scrollWidth > el.clientWidth + 1 && hides(getComputedStyle(el));
      let box = el.parentElement;
      for (let depth = 0; !cut && box && depth < 3; depth++, box = box.parentElement) {
        const style = getComputedStyle(box);
        if (hides(style) && el.getBoundingClientRect().right > box.getBoundingClientRect().right + 1) cut = true;
      }
      if (cut) out.push(text.slice(0, 60));
    }
    // A selectbox shows its value in an input, which clips it silently.
    for (const input of root.querySelectorAll('input[role=combobox]')) {
      if (input.value && visible(input) && input.scrollWidth > input.clientWidth + 1) out.push(input.value.slice(0, 60));
    }
  }
  return out;
}
"""

_TAB_BARS = """
() => [...document.querySelectorAll('[data-testid=stTabs] [role=tablist]')]
  .filter(bar => bar.getBoundingClientRect().width > 0 && bar.scrollWidth > bar.clientWidth + 1)
  .map(bar => bar.innerText.replace(/\\s+/g, ' ').slice(0, 80))
"""

_TABLE_HEADERS = """
(index) => { const frame = [...document.querySelectorAll('[data-testid=stDataFrame]')][index];
             const scroller = frame.querySelector('.dvn-scroller');
             return {wide: !!scroller && scroller.scrollWidth > scroller.clientWidth + 1,
                     headers: [...frame.querySelectorAll('[role=columnheader]')].map(h => h.innerText.trim())}; }
"""

_SCROLL_TABLE = """
([index, left]) => { const scroller = [...document.querySelectorAll('[data-testid=stDataFrame]')][index]
                       .querySelector('.dvn-scroller');
                     scroller.scrollLeft = left ? 0 : scroller.scrollWidth; }
"""

_ERRORS = """
([least, tallest]) => [...document.querySelectorAll('[data-testid=stAlertContentError]')]
  .filter(box => { const r = box.getBoundingClientRect(); return r.width > 0 && r.width < least &&
                                                                 r.height > tallest; })
  .map(box => box.innerText.slice(0, 60))
"""

_IMAGES = """
() => [...document.querySelectorAll('[data-testid=stImage] img')]
  .filter(img => img.complete && img.getBoundingClientRect().width > 0)
  .map(img => ({src: img.currentSrc || img.src, shown: img.getBoundingClientRect().width,
                natural: img.naturalWidth}))
"""


def clipped_texts(page) -> list[str]:
    return page.evaluate(_CLIPPED)


def overflowing_tab_bars(page) -> list[str]:
    return page.evaluate(_TAB_BARS)


def unpinned_wide_tables(page) -> list[str]:
    """The key column of every visible table that is wider than its frame and loses that column from view
    when scrolled to its right end (the grid lists only the columns in view)."""
    found = []
    count = page.locator("[data-testid=stDataFrame]").count()
    for index in range(count):
        if not page.locator("[data-testid=stDataFrame]").nth(index).is_visible():
            continue
        before = page.evaluate(_TABLE_HEADERS, index)
        if not before["wide"] or not before["headers"]:
            continue
        page.evaluate(_SCROLL_TABLE, [index, False])
        page.wait_for_timeout(400)
        after = page.evaluate(_TABLE_HEADERS, index)["headers"]
        page.evaluate(_SCROLL_TABLE, [index, True])
        if before["headers"][0] not in after:
            found.append(before["headers"][0])
    return found


def narrow_errors(page) -> list[str]:
    return page.evaluate(_ERRORS, [MIN_ERROR_PX, MAX_NARROW_ERROR_PX])


def shown_images(page) -> list[dict]:
    """Every image shown: {src, shown (CSS px wide), natural (px of the PNG)}."""
    return page.evaluate(_IMAGES)


def small_figure_text(page, plots: list[Path], smallest_font_px) -> list[str]:
    """The figures among `plots` whose smallest text, as the page shows them, is under MIN_FIGURE_TEXT_PX:
    each image shown is matched to the PNGs of its natural width, and `smallest_font_px(path)` of each is
    scaled by the image's shown width over its natural width."""
    from matplotlib import image as mpimg

    by_width: dict[int, list[Path]] = {}
    for path in plots:
        by_width.setdefault(mpimg.imread(path).shape[1], []).append(path)
    found = []
    for image in shown_images(page):
        for path in by_width.get(image["natural"], []):
            shown = smallest_font_px(path) * image["shown"] / image["natural"]
            if shown < MIN_FIGURE_TEXT_PX:
                found.append(f"{path.name}: {shown:.1f} px")
    return sorted(set(found))


def problems(page) -> dict[str, list]:
    """Everything wrong with the page's layout, by kind (empty lists when all is well)."""
    return {"clipped": clipped_texts(page), "tab bars": overflowing_tab_bars(page),
            "narrow errors": narrow_errors(page), "unpinned wide tables": unpinned_wide_tables(page)}
