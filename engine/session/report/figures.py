"""Report figures drawn by matplotlib's SVG backend (no Agg, no display): line charts (the paper's
look: labelled axes, a legend, dashed reference lines such as the Bayes accuracy of Fig. 3),
heatmaps (the Gram and value matrices of Figs. 4-5), histograms (flip points) and bar charts (the
hijack mirror's per-position contributions).

Text stays text (``svg.fonttype = none``), ids come from a fixed hash salt and the metadata carries
no date, so the same data gives the same bytes. User text is never parsed as mathtext. The SVG then
goes through ``sanitize_svg`` like any foreign SVG (no script, no URL, no namespace; inline PNG pixels
only for heatmaps). matplotlib is imported here only, when a report is written.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

from engine.session.report.document import BarChart, Heatmap, Histogram, LineChart
from engine.session.report.sanitize import sanitize_svg

#: matplotlib settings for every report figure.
RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "lca-tui-report",
    "svg.image_inline": True,
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e6e6e6",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "path.simplify": True,
    "path.simplify_threshold": 0.5,
}
WIDTH_IN, HEIGHT_IN = 8.0, 3.6
#: Colours of dashed reference lines (the Bayes accuracy first).
HLINE_COLORS = ("#444444", "#b2182b", "#2166ac", "#6a3d9a")
NEVER = "never"
#: matplotlib's settings are process-wide: one figure is drawn at a time (the app writes reports
#: from a worker thread).
_DRAWING = threading.Lock()


@contextmanager
def _style(**extra):
    """The report style, one figure at a time."""
    import matplotlib

    with _DRAWING, matplotlib.rc_context({**RC, **extra}):
        yield


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _figure(height_in: float = HEIGHT_IN, width_in: float = WIDTH_IN):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


def _titled_axes(title: str, xlabel: str, ylabel: str):
    """A new figure with one set of axes carrying the title and the axis labels."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def _svg(fig, id_prefix: str = "", png_images: bool = False) -> str:
    """The figure as a sanitised inline SVG (no XML prolog, no namespace)."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the prolog and DOCTYPE (our own, trusted)
    return sanitize_svg(text, png_images=png_images, id_prefix=id_prefix)


def _legend_below(ax, n_entries: int):
    if n_entries:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=min(n_entries, 3), fontsize=8.5)


def line_chart(series: Mapping[str, tuple[Sequence, Sequence]], title: str, xlabel: str = "",
               ylabel: str = "", y_range: tuple | None = None, hlines: Mapping[str, float] | None = None,
               markers: bool | None = None, id_prefix: str = "") -> str:
    """One line per series (name -> (xs, ys); a None/NaN y is a gap), dashed ``hlines`` (name ->
    y, e.g. the Bayes accuracy) labelled with their value, legend below. ``markers`` (default:
    when every series has at most 30 points) marks the points. Long series are simplified by
    matplotlib's path simplification (spikes survive)."""
    hlines = {str(k): float(v) for k, v in (hlines or {}).items() if _finite(v)}
    clean = {}
    for name, (xs, ys) in series.items():
        pts = sorted((float(x), float(y) if _finite(y) else math.nan) for x, y in zip(xs, ys) if _finite(x))
        clean[str(name)] = ([p[0] for p in pts], [p[1] for p in pts])
    if markers is None:
        markers = all(len(xs) <= 30 for xs, _ in clean.values())
    with _style():
        fig, ax = _titled_axes(title, xlabel, ylabel)
        has_data = any(any(_finite(y) for y in ys) for _, ys in clean.values())
        for name, (xs, ys) in clean.items():
            ax.plot(xs, ys, label=name, linewidth=1.6, marker="o" if markers else None, markersize=3.5)
        for i, (name, v) in enumerate(hlines.items()):
            ax.axhline(v, linestyle="--", linewidth=1.3, color=HLINE_COLORS[i % len(HLINE_COLORS)],
                       label=f"{name} = {v:.4g}")
        if y_range is not None and has_data:
            lo, hi = float(y_range[0]), float(y_range[1])
            ys_all = [y for _, ys in clean.values() for y in ys if _finite(y)] + list(hlines.values())
            pad = 0.02 * (hi - lo)
            ax.set_ylim(min([lo - pad] + ys_all), max([hi + pad] + ys_all))
        if all(float(x).is_integer() for xs, _ in clean.values() for x in xs):
            ax.xaxis.get_major_locator().set_params(integer=True)  # n, steps, L: whole numbers
        if not has_data:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#777777")
        _legend_below(ax, len(clean) + len(hlines))
        return _svg(fig, id_prefix)


def heatmap(matrix: Sequence[Sequence[float]], title: str, vmin: float | None = None,
            vmax: float | None = None, diverging: bool = False, id_prefix: str = "", xlabel: str = "",
            ylabel: str = "", xticks: Sequence[str] | None = None, yticks: Sequence[str] | None = None) -> str:
    """The matrix as pixels (viridis; ``diverging``: blue-white-red centred on 0) with a colour
    bar; NaN cells grey. Stored at its own resolution (``interpolation="none"``) as inline PNG.
    With tick labels the pixels stretch to fill the figure (a few token columns under many blocks)."""
    import matplotlib
    import numpy as np

    rows = [[float(v) if _finite(v) else math.nan for v in row] for row in (matrix or [])]
    rows = [r for r in rows if r] or [[math.nan]]
    n_c = max(len(r) for r in rows)
    a = np.array([r + [math.nan] * (n_c - len(r)) for r in rows])
    finite = a[np.isfinite(a)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if diverging:
        m = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -m, m
    vmin = lo if not _finite(vmin) else float(vmin)
    vmax = hi if not _finite(vmax) else float(vmax)
    if vmax <= vmin:
        vmax = vmin + 1.0
    with _style(**{"axes.grid": False}):
        cmap = matplotlib.colormaps["RdBu_r" if diverging else "viridis"].with_extremes(bad="#bdbdbd")
        side = min(4.2, 1.4 + 0.12 * max(a.shape))
        aspect = a.shape[1] / a.shape[0]
        fig = _figure(height_in=side + 0.5, width_in=min(8.0, max(2.5, side * aspect)) + 1.3)
        ax = fig.add_subplot()
        labelled = xticks is not None or yticks is not None
        if labelled:
            fig.set_size_inches(WIDTH_IN, min(6.0, 1.6 + 0.16 * a.shape[0]))
        im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="none",
                       aspect="auto" if labelled else "equal")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if xticks is not None:
            ax.set_xticks(range(len(xticks)), [str(t) for t in xticks], rotation=45 if len(xticks) > 8 else 0,
                          fontsize=8)
        if yticks is not None:
            step = max(1, len(yticks) // 16)
            ax.set_yticks(range(0, len(yticks), step), [str(t) for t in yticks[::step]], fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.85)
        return _svg(fig, id_prefix, png_images=True)


def histogram(samples: Mapping[str, Sequence], title: str, xlabel: str = "", ylabel: str = "records",
              bins: int = 20, id_prefix: str = "") -> str:
    """Counts of values per series (name -> values), bars side by side; a ``None`` value is counted
    in a last ``never`` bar (a record that never flips). Whole-number values get one bar each
    (gaps shown), other values ``bins`` equal bins."""
    import numpy as np

    data = {str(k): list(v) for k, v in samples.items()}
    finite = [float(x) for v in data.values() for x in v if _finite(x)]
    nevers = any(x is None for v in data.values() for x in v)
    integral = all(x == int(x) for x in finite) and (not finite or max(finite) - min(finite) <= 60)
    if finite and integral:
        lo, hi = int(min(finite)), int(max(finite))
        edges = np.arange(lo - 0.5, hi + 1.5)
    elif finite:
        edges = np.histogram_bin_edges(finite, bins=bins)
    else:
        edges = np.array([-0.5, 0.5])
    centres = (edges[:-1] + edges[1:]) / 2
    step = float(edges[1] - edges[0])
    labels = [str(int(c)) for c in centres] if integral else None
    pos = list(centres) + ([float(edges[-1]) + step] if nevers else [])
    with _style():
        fig, ax = _titled_axes(title, xlabel, ylabel)
        k = max(len(data), 1)
        width = 0.85 * step / k
        for i, (name, vals) in enumerate(data.items()):
            counts = list(np.histogram([float(x) for x in vals if _finite(x)], bins=edges)[0])
            if nevers:
                counts.append(sum(1 for x in vals if x is None))
            offset = (i - (k - 1) / 2) * width
            ax.bar([p + offset for p in pos], counts, width=width, label=name)
        if integral or nevers:
            ticks = pos if len(pos) <= 25 else pos[:: math.ceil(len(pos) / 25)] + ([pos[-1]] if nevers else [])
            ax.set_xticks(ticks, [NEVER if nevers and t == pos[-1] else
                                  (str(int(round(t))) if labels else f"{t:.3g}") for t in ticks])
        ax.yaxis.get_major_locator().set_params(integer=True)
        _legend_below(ax, len(data))
        return _svg(fig, id_prefix)


def bar_chart(series: Mapping[str, tuple[Sequence, Sequence]], title: str, xlabel: str = "",
              ylabel: str = "", id_prefix: str = "") -> str:
    """Bars of each series (name -> (xs, ys)) at their own x (series are expected not to share
    an x), one colour a series, a line at y = 0, legend below. Non-finite points are left out."""
    with _style():
        fig, ax = _titled_axes(title, xlabel, ylabel)
        xs_all = [float(x) for xs, _ in series.values() for x in xs if _finite(x)]
        has_data = False
        for name, (xs, ys) in series.items():
            pts = [(float(x), float(y)) for x, y in zip(xs, ys) if _finite(x) and _finite(y)]
            has_data |= bool(pts)
            ax.bar([p[0] for p in pts], [p[1] for p in pts], width=0.8, label=str(name))
        ax.axhline(0.0, color="#444444", linewidth=0.8)
        if xs_all and all(x.is_integer() for x in xs_all):
            ax.xaxis.get_major_locator().set_params(integer=True)
        if not has_data:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#777777")
        _legend_below(ax, len(series))
        return _svg(fig, id_prefix)


def figure_svg(part, id_prefix: str = "") -> str:
    """A report figure (``LineChart``, ``Heatmap``, ``Histogram``, ``BarChart``) as sanitised
    inline SVG."""
    if isinstance(part, LineChart):
        return line_chart(part.series, part.title, part.xlabel, part.ylabel, y_range=part.y_range,
                          hlines=part.hlines, id_prefix=id_prefix)
    if isinstance(part, Heatmap):
        return heatmap(part.matrix, part.title, part.vmin, part.vmax, part.diverging, id_prefix=id_prefix,
                       xlabel=part.xlabel, ylabel=part.ylabel, xticks=part.xticks, yticks=part.yticks)
    if isinstance(part, Histogram):
        return histogram(part.samples, part.title, part.xlabel, part.ylabel, id_prefix=id_prefix)
    if isinstance(part, BarChart):
        return bar_chart(part.series, part.title, part.xlabel, part.ylabel, id_prefix=id_prefix)
    raise TypeError(f"not a figure: {type(part).__name__}")
