"""One value per item (e.g. each prompt token's surprise) as vertical columns (Line API, cheap to redraw).

Heights in eighth blocks (▁▂▃▄▅▆▇█), scaled to the largest value, which labels the top of the y axis.
Everything is built once per update and size; ``render_line`` only looks a strip up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from .lines import LinesWidget

_LEVELS = " ▁▂▃▄▅▆▇█"  # 0..8 eighths of a cell, bottom-aligned
_FULL = "█"
_MAX_COLUMN = 3  # cells per item when there is room (the last one a gap)


def bucket_max(values: Sequence[float], columns: int) -> list[tuple[int, int, float]]:
    """Consecutive ``(start, stop, max)`` buckets of ``values``, one per column: each item alone when
    ``len(values) <= columns``, else ``columns`` buckets whose sizes differ by at most one (the first
    ``len % columns`` one larger). The max leaves NaNs out; a bucket of NaNs only is NaN."""
    n = len(values)
    if n == 0 or columns <= 0:
        return []
    count = min(n, columns)
    size, extra = divmod(n, count)
    out, start = [], 0
    for b in range(count):
        stop = start + size + (1 if b < extra else 0)
        part = [float(v) for v in values[start:stop] if not math.isnan(float(v))]
        out.append((start, stop, max(part) if part else math.nan))
        start = stop
    return out


def column_eighths(value: float, top: float, rows: int) -> int:
    """A column's height in eighths of a cell: ``value / top`` of ``rows`` cells (clipped to 0..rows)."""
    if not math.isfinite(value) or top <= 0 or value <= 0:
        return 0
    return int(round(min(1.0, value / top) * rows * 8))


class ColumnChart(LinesWidget):
    """A column per item, bottom-aligned, heights in eighth blocks on a 0..max scale.

    Lines: a title (``title``, then how many items and, when bucketed, that a column is the max of its
    bucket), the plot rows with a y axis labelled with the max at the top and 0 at the bottom, and an
    x caption with the item range. Each item gets up to three cells (two of column, one gap) when the
    width allows; with more items than columns, consecutive items share a column that shows their
    **max** (``bucket_max``: bucket sizes differ by at most one). NaN items (a prompt's first token has
    no surprise) draw nothing. A short widget drops the caption (< 3 rows) and the plot (1 row).
    """

    DEFAULT_CSS = """
    ColumnChart { height: auto; min-height: 1; }
    ColumnChart > .column-chart--bar { color: $primary; }
    ColumnChart > .column-chart--axis { color: $text-muted; }
    ColumnChart > .column-chart--title { color: $text-muted; }
    ColumnChart > .column-chart--dim { color: $text-muted; text-style: italic; }
    """
    COMPONENT_CLASSES = {"column-chart--bar", "column-chart--axis", "column-chart--title", "column-chart--dim"}

    def __init__(self, *, title: str = "", name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self._values: list[float] = []
        self._styles: dict[str, Style] | None = None  # resolved once per style change (rich_style is slow)

    @property
    def values(self) -> list[float]:
        return list(self._values)

    def set_values(self, values: Sequence[float]) -> None:
        """Show one column per value (None counts as NaN)."""
        self._values = [math.nan if v is None else float(v) for v in values]
        self._redraw()  # the lines that changed (widgets/lines.py)

    def get_content_height(self, container, viewport, width: int) -> int:
        return 10

    def _style_table(self) -> dict[str, Style]:
        if self._styles is None:
            base = self.rich_style
            self._styles = {"base": base, **{name: base + self.get_component_rich_style(f"column-chart--{name}")
                                             for name in ("bar", "axis", "title", "dim")}}
        return self._styles

    def _build(self, width: int, height: int) -> list[Strip]:
        styles = self._style_table()
        base = styles["base"]
        finite = [v for v in self._values if math.isfinite(v)]
        if not finite:
            text = (self.title + " · " if self.title else "") + "no values"
            return [Strip([Segment(text[:width], styles["dim"])]).adjust_cell_length(width, base)]
        top = max(max(finite), 0.0)
        top_text = f"{top:.3g}"
        gutter = len(top_text) + 1
        plot_w = max(1, width - gutter)
        n = len(self._values)
        cell = max(1, min(_MAX_COLUMN, plot_w // n))
        buckets = bucket_max(self._values, plot_w if cell == 1 else n)
        bar_w = cell - 1 if cell > 1 else 1
        rows = max(0, height - (2 if height >= 3 else 1))
        what = f"{n} tokens" if len(buckets) == n else f"{n} tokens in {len(buckets)} columns, each the max"
        title = " · ".join(t for t in (self.title, what) if t)
        strips = [Strip([Segment(title[:width], styles["title"])]).adjust_cell_length(width, base)]
        axis, bar = styles["axis"], styles["bar"]
        columns = []  # one string per cell column, top to bottom; transposed into rows by zip (in C)
        gap = " " * rows
        for _, _, v in buckets:
            full, rem = divmod(column_eighths(v, top, rows), 8)
            cells = (_LEVELS[rem] if rem else "") + _FULL * full
            columns += [cells.rjust(rows)] * bar_w + [gap] * (cell - bar_w)
        plot = ["".join(chars) for chars in zip(*columns)] if columns and rows else [""] * rows
        for r, cells in enumerate(plot):
            label = top_text if r == 0 else ("0" if r == rows - 1 else "")
            strips.append(Strip([Segment(f"{label:>{gutter - 1}}┤" if label else " " * (gutter - 1) + "│", axis),
                                 Segment(cells, bar)]).adjust_cell_length(width, base))
        if height >= 3:  # the first item under the first column, the last one under the last column
            used = len(buckets) * cell - (cell - bar_w)
            last = str(n)
            room = used - 1 - len(last)
            middle = "token" if room >= 7 else ""
            caption = "1" + middle.center(room) + last if n > 1 else "1"
            strips.append(Strip([Segment(" " * gutter + caption, axis)]).adjust_cell_length(width, base))
        return strips

    def _blank_style(self) -> Style:
        return self._style_table()["base"]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
