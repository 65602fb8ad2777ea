"""Live line plot (textual-plotext) that downsamples its series and redraws at most 4 Hz.

A change arms one timer (at once after a quiet spell, else a redraw interval after the last
redraw); a plot that does not change keeps no timer, so an idle screen stays idle."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from textual.app import ComposeResult
from textual.widget import Widget
from textual_plotext import PlotextPlot

REDRAW_INTERVAL = 0.25
"""Least seconds between two redraws: data changes only mark the plot dirty and arm the redraw."""


def downsample(xs: Sequence[float], ys: Sequence[float], n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a series to at most ``n_points`` points, keeping its shape.

    The first and last points are kept; the interior is cut into ``(n_points - 2) // 2``
    equal-count buckets and each keeps its minimum and maximum (in x order), so spikes
    survive. Short input (``len <= n_points``) comes back unchanged.
    """
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"xs and ys must be 1-D and the same length, got {x.shape} and {y.shape}")
    n = len(x)
    if n <= max(n_points, 2):
        return x, y
    n_buckets = max(1, (n_points - 2) // 2)
    edges = np.linspace(1, n - 1, n_buckets + 1).round().astype(int)
    keep = [0]
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        chunk = y[lo:hi]
        a, b = lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))
        keep.extend((a, b) if a < b else (b, a) if b < a else (a,))
    keep.append(n - 1)
    idx = np.asarray(keep)
    return x[idx], y[idx]


class LiveCurve(Widget):
    """Named line series plus horizontal reference lines, e.g. accuracy vs step with the
    Bayes-optimal accuracy as a reference. Cheap to feed at any rate."""

    DEFAULT_CSS = """
    LiveCurve { height: 1fr; width: 1fr; }
    LiveCurve > PlotextPlot { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, title: str = "", xlabel: str = "", ylabel: str = "",
                 y_range: tuple[float, float] | None = None, marker: str = "braille",
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self.xlabel = xlabel
        self.ylabel = ylabel
        self.y_range = y_range
        self.marker = marker
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._hlines: dict[str, float] = {}
        self._plotted: dict[str, int] = {}
        self._dirty = True
        self._timer = None  # the armed redraw, if any
        self._drawn_at = -REDRAW_INTERVAL  # time.monotonic() of the last redraw

    def compose(self) -> ComposeResult:
        yield PlotextPlot()

    def on_mount(self) -> None:
        self._touch()

    def _touch(self) -> None:
        """Mark the plot dirty and arm its redraw (throttled to one per ``REDRAW_INTERVAL``)."""
        self._dirty = True
        if self._timer is None and self.is_mounted:
            delay = max(0.001, self._drawn_at + REDRAW_INTERVAL - time.monotonic())  # Timer needs > 0
            self._timer = self.set_timer(delay, self._tick)

    # -- data (all of these only mark the plot dirty) -----------------------------------------
    def set_series(self, name: str, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Replace (or create) series ``name``."""
        if len(xs) != len(ys):
            raise ValueError(f"series {name!r}: {len(xs)} xs but {len(ys)} ys")
        self._series[name] = ([float(v) for v in xs], [float(v) for v in ys])
        self._touch()

    def append(self, name: str, x: float, y: float) -> None:
        """Add one point to series ``name`` (created if new)."""
        xs, ys = self._series.setdefault(name, ([], []))
        xs.append(float(x))
        ys.append(float(y))
        self._touch()

    def set_hline(self, name: str, y: float | None) -> None:
        """Draw a horizontal reference line at ``y`` (``None`` removes it)."""
        if y is None:
            self._hlines.pop(name, None)
        else:
            self._hlines[name] = float(y)
        self._touch()

    def clear(self) -> None:
        """Remove all series and reference lines."""
        self._series.clear()
        self._hlines.clear()
        self._touch()

    @property
    def series_names(self) -> list[str]:
        return list(self._series)

    @property
    def hlines(self) -> dict[str, float]:
        return dict(self._hlines)

    @property
    def plotted_points(self) -> dict[str, int]:
        """How many points of each series the last redraw handed to plotext."""
        return dict(self._plotted)

    # -- drawing ------------------------------------------------------------------------------
    def on_resize(self) -> None:
        self._touch()

    def _tick(self) -> None:
        self._timer = None
        if self._dirty:
            self._dirty = False
            self._drawn_at = time.monotonic()
            self._replot()

    def _replot(self) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        plt.ylabel(self.ylabel)
        if self.y_range is not None:
            plt.ylim(*self.y_range)
        n_points = max(16, 2 * self.size.width)
        self._plotted = {}
        x_lo, x_hi = np.inf, -np.inf
        for name, (xs, ys) in self._series.items():
            x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
            ok = np.isfinite(x) & np.isfinite(y)
            x, y = downsample(x[ok], y[ok], n_points)
            self._plotted[name] = len(x)
            if len(x):
                x_lo, x_hi = min(x_lo, x.min()), max(x_hi, x.max())
                plt.plot(x.tolist(), y.tolist(), label=name, marker=self.marker)
        if not np.isfinite(x_lo):
            x_lo, x_hi = 0.0, 1.0
        for name, level in self._hlines.items():
            # A two-point series rather than plt.horizontal_line, so it gets a legend entry.
            plt.plot([x_lo, x_hi], [level, level], label=name, marker=self.marker, color="gray")
        plot.refresh()
