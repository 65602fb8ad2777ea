"""A half-block (▀) heatmap drawn with the Line API from a precomputed colour table.

Each terminal cell shows two matrix rows: the upper one as the foreground of "▀",
the lower one as the background. Values are quantised to colour indices once in
``set_matrix``; fitting to the widget (block-averaging down, integer repetition up)
happens once per size change, and ``render_line`` only returns cached strips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from .colors import NAN_COLOR, quantize, ramp

N_COLORS = 256
_LABEL_MAX = 10
_LEGEND_RAMP = 32


_STRETCH_MAX = 12  # widest a stretched column gets, in cells


def _block_mean(a: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Average ``a`` along ``axis`` into ``n_out`` contiguous, near-equal blocks (NaN-aware)."""
    n = a.shape[axis]
    edges = np.linspace(0, n, n_out + 1).round().astype(int)[:-1]
    valid = ~np.isnan(a)
    sums = np.add.reduceat(np.where(valid, a, 0.0), edges, axis=axis)
    counts = np.add.reduceat(valid.astype(float), edges, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _shrink(indices: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Block-average an index grid (-1 = NaN) to ``n_out`` along ``axis``."""
    f = _block_mean(np.where(indices < 0, np.nan, indices.astype(float)), n_out, axis=axis)
    return np.where(np.isnan(f), -1, np.floor(np.nan_to_num(f) + 0.5)).astype(np.int16)


def fit_grid(indices: np.ndarray, max_rows: int, max_cols: int, stretch: bool = False) -> tuple[np.ndarray, int]:
    """Fit a quantised index grid (-1 = NaN) into max_rows x max_cols pixels.

    Keeps the aspect ratio: larger grids are block-averaged down, smaller ones are
    repeated by the largest integer factor that fits. Returns (grid, repeat factor of the rows),
    where the factor is 1 when the grid was shrunk or left alone. ``stretch`` fits rows and
    columns each on their own (a few wide columns, e.g. tokens, under many rows).
    """
    rows, cols = indices.shape
    if rows == 0 or cols == 0 or max_rows <= 0 or max_cols <= 0:
        return np.zeros((0, 0), dtype=np.int16), 1
    if stretch:
        grid, k = indices, 1
        if rows > max_rows:
            grid = _shrink(grid, max_rows, axis=0)
        else:
            k = max(1, max_rows // rows)
            grid = np.repeat(grid, k, axis=0)
        if cols > max_cols:
            return _shrink(grid, max_cols, axis=1), k
        return np.repeat(grid, max(1, min(_STRETCH_MAX, max_cols // cols)), axis=1), k
    if rows <= max_rows and cols <= max_cols:
        k = max(1, min(max_rows // rows, max_cols // cols))
        if k == 1:
            return indices, 1
        return np.repeat(np.repeat(indices, k, axis=0), k, axis=1), k
    shrink = max(rows / max_rows, cols / max_cols)
    out_r = max(1, min(max_rows, math.ceil(rows / shrink)))
    out_c = max(1, min(max_cols, math.ceil(cols / shrink)))
    f = np.where(indices < 0, np.nan, indices.astype(float))
    if out_r < rows:
        f = _block_mean(f, out_r, axis=0)
    if out_c < cols:
        f = _block_mean(f, out_c, axis=1)
    grid = np.where(np.isnan(f), -1, np.floor(np.nan_to_num(f) + 0.5)).astype(np.int16)
    return grid, 1


class Heatmap(Widget):
    """A matrix as a colour heatmap, with optional title, row/column labels and a legend line."""

    DEFAULT_CSS = """
    Heatmap { height: 1fr; width: 1fr; }
    Heatmap > .heatmap--label { color: $text-muted; }
    Heatmap > .heatmap--title { text-style: bold; }
    """
    COMPONENT_CLASSES = {"heatmap--label", "heatmap--title"}

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None, stretch: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.stretch = stretch  # fit rows and columns each on their own (fit_grid)
        self._indices: np.ndarray | None = None  # full-resolution colour indices, -1 = NaN
        self._vmin = 0.0
        self._vmax = 1.0
        self._colors: tuple[Color, ...] = ramp("viridis", N_COLORS)
        self._row_labels: list[str] | None = None
        self._col_labels: list[str] | None = None
        self._title: str | None = None
        self._grid = np.zeros((0, 0), dtype=np.int16)  # fitted grid actually drawn
        self._lines: list[Strip] = []
        self._built_for: tuple | None = None
        self._segments: dict[tuple[int, int], Segment] = {}

    # -- data -------------------------------------------------------------------------------
    def set_matrix(self, values, vmin: float | None = None, vmax: float | None = None,
                   diverging: bool = False, row_labels: Sequence[str] | None = None,
                   col_labels: Sequence[str] | None = None, title: str | None = None) -> None:
        """Show ``values`` (R x C). vmin/vmax default to the finite data range (symmetric
        around 0 when ``diverging``); NaN cells are drawn grey."""
        v = np.asarray(values, dtype=float)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2:
            raise ValueError(f"Heatmap needs a 2-D matrix, got shape {v.shape}")
        finite = v[np.isfinite(v)]
        if diverging:
            m = float(np.max(np.abs(finite))) if finite.size else 1.0
            lo, hi = (-m, m) if m > 0 else (-1.0, 1.0)
        else:
            lo = float(finite.min()) if finite.size else 0.0
            hi = float(finite.max()) if finite.size else 1.0
        self._vmin = lo if vmin is None else float(vmin)
        self._vmax = hi if vmax is None else float(vmax)
        palette = "diverging" if diverging else "viridis"
        colors = ramp(palette, N_COLORS)
        if colors is not self._colors:
            self._colors = colors
            self._segments.clear()
        self._indices = quantize(v, self._vmin, self._vmax, N_COLORS)
        self._row_labels = [str(s) for s in row_labels] if row_labels is not None else None
        self._col_labels = [str(s) for s in col_labels] if col_labels is not None else None
        self._title = title
        self._built_for = None
        self.refresh()

    def clear(self) -> None:
        """Remove the matrix."""
        self._indices = None
        self._built_for = None
        self.refresh()

    @property
    def grid(self) -> np.ndarray:
        """The fitted colour-index grid last drawn (pixel rows x columns; -1 = NaN)."""
        return self._grid

    @property
    def value_range(self) -> tuple[float, float]:
        """(vmin, vmax) of the colour scale."""
        return self._vmin, self._vmax

    # -- drawing ----------------------------------------------------------------------------
    def _color(self, idx: int) -> Color:
        return NAN_COLOR if idx < 0 else self._colors[idx]

    def _segment(self, upper: int, lower: int) -> Segment:
        key = (upper, lower)
        seg = self._segments.get(key)
        if seg is None:
            seg = Segment("▀", Style(color=self._color(upper), bgcolor=self._color(lower)))
            self._segments[key] = seg
        return seg

    def _legend(self, width: int, base: Style, label_style: Style) -> Strip:
        lo, hi = f"{self._vmin:.3g} ", f" {self._vmax:.3g}"
        n = max(0, min(_LEGEND_RAMP, width - len(lo) - len(hi)))
        picks = np.linspace(0, N_COLORS - 1, n).round().astype(int) if n else []
        segs = [Segment(lo, label_style)]
        segs += [Segment(" ", Style(bgcolor=self._colors[i])) for i in picks]
        segs.append(Segment(hi, label_style))
        return Strip(segs).adjust_cell_length(width, base)

    def _build(self) -> None:
        width, height = self.size.width, self.size.height
        base = self.rich_style
        label_style = base + self.get_component_rich_style("heatmap--label")
        lines: list[Strip] = []
        if self._indices is None:
            self._grid = np.zeros((0, 0), dtype=np.int16)
            self._lines = [Strip([Segment("no data", label_style + Style(italic=True))])
                           .adjust_cell_length(width, base)]
            return
        if self._title:
            title_style = base + self.get_component_rich_style("heatmap--title")
            lines.append(Strip([Segment(self._title, title_style)]).adjust_cell_length(width, base))
        gutter = 0
        if self._row_labels:
            gutter = min(_LABEL_MAX, max(len(s) for s in self._row_labels)) + 1
        n_lines = max(0, height - len(lines) - 1 - (1 if self._col_labels else 0))
        grid, k = fit_grid(self._indices, 2 * n_lines, max(0, width - gutter), stretch=self.stretch)
        n_src = self._indices.shape[0]
        self._grid = grid
        rows, cols = grid.shape
        for y in range(math.ceil(rows / 2)):
            upper = grid[2 * y]
            lower = grid[2 * y + 1] if 2 * y + 1 < rows else upper
            segs = []
            if gutter:
                text = ""
                # Label a line only where a new matrix row starts (possible when rows repeat).
                row = min(2 * y + 1, rows - 1) // k
                if k >= 2 and (y == 0 or row != (2 * y - 1) // k):
                    text = self._row_labels[row] if row < len(self._row_labels) else ""
                elif k == 1 and (rows == n_src or self.stretch):  # the first matrix row of the line
                    first = round(2 * y * n_src / rows)  # _block_mean's block edges
                    text = self._row_labels[first] if first < len(self._row_labels) else ""
                segs.append(Segment(f"{text[:gutter - 1]:>{gutter - 1}} ", label_style))
            if 2 * y + 1 < rows:
                seg = self._segment
                segs += [seg(u, lo) for u, lo in zip(upper.tolist(), lower.tolist())]
            else:  # odd number of pixel rows: the last line's lower half is background
                segs += [Segment("▀", base + Style(color=self._color(u))) for u in upper.tolist()]
            lines.append(Strip(segs, gutter + cols).adjust_cell_length(width, base))
        if self._col_labels:
            # One label per source column, truncated to its width; hidden when columns merge.
            cell = cols // self._indices.shape[1] if cols >= self._indices.shape[1] else 0
            text = "".join(f"{s[:cell]:<{cell}}" for s in self._col_labels) if cell else ""
            segs = [Segment(" " * gutter + text[:cols], label_style)]
            lines.append(Strip(segs).adjust_cell_length(width, base))
        lines.append(self._legend(width, base, label_style))
        self._lines = lines

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._built_for = None

    def render_line(self, y: int) -> Strip:
        if self._built_for != self.size:
            self._build()
            self._built_for = self.size
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.rich_style)
