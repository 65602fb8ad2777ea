"""Tiny dependency-free SVG renderers for reports: line charts and heatmaps.

The output is meant to be inlined into an HTML page, so it carries no ``xmlns`` (and therefore no
URL at all); ``standalone()`` adds the namespace for a separate ``.svg`` file. Every piece of text
goes through ``html.escape``; styling is done with attributes, not classes, so a chart looks the
same inline and on its own. ``sanitize_svg()`` cleans a foreign SVG (a panel screenshot) before a
report embeds it: no scripts, no event handlers, no external references.
"""

from __future__ import annotations

import html
import math
import re
import xml.etree.ElementTree as ET
from typing import Mapping, Sequence

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "font-family=\"Helvetica, Arial, sans-serif\""
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
HLINE_COLORS = ("#444444", "#b2182b", "#2166ac", "#6a3d9a")
_VIRIDIS = ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c",
            "#28ae80", "#5ec962", "#addc30", "#fde725")
_DIVERGING = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
              "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
NAN_FILL = "#bdbdbd"
#: Heatmaps larger than this on a side are block-averaged down (an SVG rect per cell is ~60 bytes).
MAX_CELLS = 128


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _n(v: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0``."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def fmt_tick(v: float, step: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.2g}"
    decimals = max(0, -int(math.floor(math.log10(step))) if step > 0 else 0)
    return f"{v:.{min(decimals, 6)}f}"


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick positions (1, 2, 5 x 10^k) covering [lo, hi]."""
    if not (_finite(lo) and _finite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, v = [], first
    while v <= hi + step * 1e-9 and len(out) < 50:
        out.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return out


def downsample(xs: Sequence[float], ys: Sequence, n_out: int) -> tuple[list, list]:
    """Keep at most about ``n_out`` points: the min and the max of each x-bucket (in x order), so
    spikes survive. Non-finite y values split the series; one ``None`` marks each gap."""
    n = len(xs)
    if n <= n_out or n_out < 4:
        return list(xs), list(ys)
    segments, cur = [], []
    for i in range(n):
        if _finite(ys[i]):
            cur.append(i)
        elif cur:
            segments.append(cur)
            cur = []
    if cur:
        segments.append(cur)
    out_x, out_y = [], []
    for k, seg in enumerate(segments):
        if k:
            out_x.append(xs[seg[0]])
            out_y.append(None)
        m = len(seg)
        buckets = max(1, (n_out * m // n) // 2)
        for b in range(buckets):
            chunk = seg[b * m // buckets:(b + 1) * m // buckets]
            if not chunk:
                continue
            lo = min(chunk, key=lambda i: ys[i])
            hi = max(chunk, key=lambda i: ys[i])
            for i in sorted({lo, hi}):
                out_x.append(xs[i])
                out_y.append(ys[i])
    return out_x, out_y


def _svg_open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{esc(title)}">',
            f"<title>{esc(title)}</title>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']


def _legend(items: list[tuple[str, str, bool]], x0: float, y0: float, width: float) -> tuple[list[str], int]:
    """Legend entries (name, colour, dashed) flowed into rows from (x0, y0); returns (parts, rows)."""
    parts, x, y, rows = [], x0, y0, 1 if items else 0
    for name, color, dashed in items:
        label = name if len(name) <= 40 else name[:39] + "…"
        w = 30 + 6.6 * len(label) + 14
        if x > x0 and x + w > x0 + width:
            x, y, rows = x0, y + 16, rows + 1
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(f'<line x1="{_n(x)}" y1="{_n(y - 4)}" x2="{_n(x + 22)}" y2="{_n(y - 4)}" '
                     f'stroke="{color}" stroke-width="2.5"{dash}/>')
        parts.append(f'<text x="{_n(x + 27)}" y="{_n(y)}" font-size="11" {FONT} fill="#333333">'
                     f"{esc(label)}</text>")
        x += w
    return parts, rows


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str,
               xlabel: str = "", ylabel: str = "", y_range: tuple[float, float] | None = None,
               hlines: Mapping[str, float] | None = None, width: int = 640, height: int = 320,
               markers: bool | None = None) -> str:
    """Polylines with axes, round ticks and a legend below the plot.

    ``series`` maps a name to (xs, ys); ys may hold None/NaN (a gap). Long series are downsampled
    to about ``2 * width`` points. ``hlines`` draws dashed reference lines (e.g. the Bayes
    accuracy). ``markers`` (default: when every series has at most 30 points) draws the points.
    """
    hlines = {k: v for k, v in (hlines or {}).items() if _finite(v)}
    clean: dict[str, tuple[list, list]] = {}
    for name, (xs, ys) in series.items():
        pts = [(float(x), (float(y) if _finite(y) else None)) for x, y in zip(xs, ys) if _finite(x)]
        pts.sort(key=lambda p: p[0])
        dx, dy = downsample([p[0] for p in pts], [p[1] for p in pts], 2 * width)
        clean[str(name)] = (dx, dy)
    if markers is None:
        markers = all(len(xs) <= 30 for xs, _ in clean.values())
    all_x = [x for xs, _ in clean.values() for x in xs]
    all_y = [y for _, ys in clean.values() for y in ys if y is not None] + list(hlines.values())

    legend_items = [(n, PALETTE[i % len(PALETTE)], False) for i, n in enumerate(clean)]
    legend_items += [(f"{n} = {v:.4g}", HLINE_COLORS[i % len(HLINE_COLORS)], True)
                     for i, (n, v) in enumerate(hlines.items())]
    ml, mr, mt = 64, 18, 34
    pw = width - ml - mr
    legend_parts, rows = _legend(legend_items, ml, 0, pw)
    mb = 44 + 16 * rows
    total_h = height + 16 * max(rows - 1, 0)
    ph = total_h - mt - mb
    out = _svg_open(width, total_h, title)
    out.append(f'<text x="{width / 2:.1f}" y="20" text-anchor="middle" font-size="14" font-weight="bold" '
               f'{FONT} fill="#222222">{esc(title)}</text>')
    if not all_x or not all_y:
        out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999999"/>')
        out.append(f'<text x="{ml + pw / 2:.1f}" y="{mt + ph / 2:.1f}" text-anchor="middle" font-size="12" '
                   f'{FONT} fill="#777777">no data</text>')
        out.append("</svg>")
        return "\n".join(out)

    x0, x1 = min(all_x), max(all_x)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y_range is not None:
        y0, y1 = float(y_range[0]), float(y_range[1])
        y0, y1 = min(y0, min(all_y)), max(y1, max(all_y))
    else:
        y0, y1 = min(all_y), max(all_y)
        pad = (y1 - y0) * 0.05 or (abs(y0) * 0.1 or 1.0)
        y0, y1 = y0 - pad, y1 + pad

    def sx(x):
        return ml + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return mt + ph - (y - y0) / (y1 - y0) * ph

    # grid, ticks, axes
    yt = nice_ticks(y0, y1)
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    for v in yt:
        y = sy(v)
        out.append(f'<line x1="{ml}" y1="{_n(y)}" x2="{ml + pw}" y2="{_n(y)}" stroke="#e6e6e6"/>')
        out.append(f'<text x="{ml - 6}" y="{_n(y + 4)}" text-anchor="end" font-size="11" {FONT} '
                   f'fill="#444444">{esc(fmt_tick(v, ystep))}</text>')
    xt = nice_ticks(x0, x1, 6)
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    for v in xt:
        x = sx(v)
        out.append(f'<line x1="{_n(x)}" y1="{mt + ph}" x2="{_n(x)}" y2="{mt + ph + 4}" stroke="#444444"/>')
        out.append(f'<text x="{_n(x)}" y="{mt + ph + 16}" text-anchor="middle" font-size="11" {FONT} '
                   f'fill="#444444">{esc(fmt_tick(v, xstep))}</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888888"/>')
    if xlabel:
        out.append(f'<text x="{ml + pw / 2:.1f}" y="{mt + ph + 32}" text-anchor="middle" font-size="12" '
                   f'{FONT} fill="#222222">{esc(xlabel)}</text>')
    if ylabel:
        cy = mt + ph / 2
        out.append(f'<text x="14" y="{cy:.1f}" text-anchor="middle" font-size="12" {FONT} fill="#222222" '
                   f'transform="rotate(-90 14 {cy:.1f})">{esc(ylabel)}</text>')

    # reference lines, then series
    for i, (name, v) in enumerate(hlines.items()):
        y = sy(v)
        out.append(f'<line x1="{ml}" y1="{_n(y)}" x2="{ml + pw}" y2="{_n(y)}" '
                   f'stroke="{HLINE_COLORS[i % len(HLINE_COLORS)]}" stroke-width="1.5" '
                   f'stroke-dasharray="5 3"><title>{esc(name)} = {v:.4g}</title></line>')
    for i, (name, (xs, ys)) in enumerate(clean.items()):
        color = PALETTE[i % len(PALETTE)]
        seg: list[str] = []
        segments = []
        for x, y in zip(xs, ys):
            if y is None:
                if seg:
                    segments.append(seg)
                seg = []
                continue
            seg.append(f"{_n(sx(x))},{_n(sy(y))}")
        if seg:
            segments.append(seg)
        for s in segments:
            if len(s) == 1:
                cx, cy = s[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
            else:
                out.append(f'<polyline points="{" ".join(s)}" fill="none" stroke="{color}" '
                           f'stroke-width="1.8" stroke-linejoin="round"><title>{esc(name)}</title></polyline>')
            if markers and len(s) > 1:
                for p in s:
                    cx, cy = p.split(",")
                    out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
    legend_parts, _ = _legend(legend_items, ml, mt + ph + 50, pw)
    out.extend(legend_parts)
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------- heatmap
def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def ramp_color(t: float, diverging: bool = False) -> str:
    """Colour for t in [0, 1] on the viridis (or blue-white-red) ramp."""
    anchors = _DIVERGING if diverging else _VIRIDIS
    t = min(1.0, max(0.0, t))
    pos = t * (len(anchors) - 1)
    i = min(int(pos), len(anchors) - 2)
    f = pos - i
    a, b = _hex(anchors[i]), _hex(anchors[i + 1])
    r, g, bl = (round(a[k] + (b[k] - a[k]) * f) for k in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def _block_mean(matrix: list[list[float | None]], rows: int, cols: int) -> list[list[float | None]]:
    n_r, n_c = len(matrix), len(matrix[0])
    out = []
    for r in range(rows):
        r0, r1 = r * n_r // rows, max((r + 1) * n_r // rows, r * n_r // rows + 1)
        line = []
        for c in range(cols):
            c0, c1 = c * n_c // cols, max((c + 1) * n_c // cols, c * n_c // cols + 1)
            vals = [matrix[i][j] for i in range(r0, r1) for j in range(c0, c1) if matrix[i][j] is not None]
            line.append(sum(vals) / len(vals) if vals else None)
        out.append(line)
    return out


def heatmap(matrix: Sequence[Sequence[float]], title: str, vmin: float | None = None,
            vmax: float | None = None, diverging: bool = False, max_px: int = 480) -> str:
    """One rect per cell on a viridis (or, ``diverging``, blue-white-red centred on 0) ramp, with
    a colour bar. Matrices over ``MAX_CELLS`` on a side are block-averaged (noted in the title)."""
    rows = [[(float(v) if _finite(v) else None) for v in row] for row in (matrix or [])]
    rows = [r for r in rows if r] or [[None]]
    n_c = max(len(r) for r in rows)
    rows = [r + [None] * (n_c - len(r)) for r in rows]
    n_r = len(rows)
    shown_title = title
    if n_r > MAX_CELLS or n_c > MAX_CELLS:
        rr, cc = min(n_r, MAX_CELLS), min(n_c, MAX_CELLS)
        rows = _block_mean(rows, rr, cc)
        shown_title = f"{title} (block-averaged from {n_r}×{n_c})"
        n_r, n_c = rr, cc
    vals = [v for r in rows for v in r if v is not None]
    lo = min(vals) if vals else 0.0
    hi = max(vals) if vals else 1.0
    if diverging:
        m = max(abs(lo), abs(hi)) or 1.0
        lo_d, hi_d = -m, m
    else:
        lo_d, hi_d = lo, hi
    vmin = lo_d if vmin is None or not _finite(vmin) else float(vmin)
    vmax = hi_d if vmax is None or not _finite(vmax) else float(vmax)
    if vmax <= vmin:
        vmax = vmin + 1.0

    cell = max(1, min(40, max_px // max(n_r, n_c)))
    ml, mt = 16, 34
    pw, ph = cell * n_c, cell * n_r
    bar_w = 14
    bh = max(ph, 64)
    width = max(ml + pw + 24 + bar_w + 70, 320)
    height = mt + max(ph, bh) + 24
    out = _svg_open(width, height, shown_title)
    out.append(f'<text x="{ml}" y="20" font-size="14" font-weight="bold" {FONT} fill="#222222">'
               f"{esc(shown_title)}</text>")
    out.append('<g shape-rendering="crispEdges">')
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            fill = NAN_FILL if v is None else ramp_color((v - vmin) / (vmax - vmin), diverging)
            out.append(f'<rect x="{ml + j * cell}" y="{mt + i * cell}" width="{cell}" height="{cell}" '
                       f'fill="{fill}"/>')
    out.append("</g>")
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888888"/>')
    # colour bar
    bx, steps = ml + pw + 24, 32
    for k in range(steps):
        t = 1 - (k + 0.5) / steps
        out.append(f'<rect x="{bx}" y="{_n(mt + k * bh / steps)}" width="{bar_w}" '
                   f'height="{_n(bh / steps + 0.5)}" fill="{ramp_color(t, diverging)}"/>')
    out.append(f'<rect x="{bx}" y="{mt}" width="{bar_w}" height="{bh}" fill="none" stroke="#888888"/>')
    for frac, v in ((0.0, vmax), (0.5, (vmin + vmax) / 2), (1.0, vmin)):
        out.append(f'<text x="{bx + bar_w + 5}" y="{_n(mt + frac * bh + 4)}" font-size="11" {FONT} '
                   f'fill="#444444">{esc(f"{v:.3g}")}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------- files
def standalone(svg: str) -> str:
    """The SVG as a file of its own: XML declaration and the SVG namespace (needed outside HTML)."""
    body = svg.lstrip()
    if body.startswith("<?xml"):
        return body
    if not re.match(r"<svg\b[^>]*\bxmlns=", body):
        body = re.sub(r"^<svg\b", f'<svg xmlns="{SVG_NS}"', body, count=1)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + ("\n" if not body.endswith("\n") else "")


_ALLOWED_TAGS = {
    "svg", "g", "defs", "style", "title", "desc", "rect", "circle", "ellipse", "line", "polyline",
    "polygon", "path", "text", "tspan", "clipPath", "linearGradient", "radialGradient", "stop",
    "symbol", "use", "mask", "pattern", "marker",
}
_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)(\s*format\([^)]*\))?""", re.IGNORECASE | re.DOTALL)
MAX_SCREENSHOT_BYTES = 8_000_000


def _clean_css(css: str) -> str:
    css = re.sub(r"@import[^;]*;?", "", css, flags=re.IGNORECASE)

    def repl(m):
        target = m.group(2).strip()
        return m.group(0) if target.startswith("#") else ""

    css = _URL.sub(repl, css)
    css = re.sub(r",\s*(?=[,;}])", "", css)  # dangling commas left by removed url(...) sources
    css = re.sub(r":\s*,\s*", ": ", css)
    css = re.sub(r"expression\s*\(", "(", css, flags=re.IGNORECASE)
    return css


def sanitize_svg(text: str) -> str:
    """A foreign SVG made safe to embed: parsed as XML (DOCTYPE/entities refused), only drawing
    elements kept, no scripts, event handlers or external references (``url(...)``, ``href``);
    namespaces stripped (``standalone()`` puts the SVG one back for a file of its own). Raises
    ValueError if the text is not a usable SVG."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty SVG")
    if len(text) > MAX_SCREENSHOT_BYTES:
        raise ValueError("SVG too large")
    if re.search(r"<!DOCTYPE|<!ENTITY", text, re.IGNORECASE):
        raise ValueError("SVG with a DOCTYPE or entities")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None

    def local(name: str) -> str:
        return name.rsplit("}", 1)[-1]

    if local(root.tag) != "svg":
        raise ValueError("the root element is not <svg>")

    def clean(el: ET.Element) -> None:
        el.tag = local(el.tag)
        attrs = {}
        for k, v in el.attrib.items():
            name = local(k)
            low = name.lower()
            if low.startswith("on") or low in ("xmlns",):
                continue
            if low == "href":
                if not v.strip().startswith("#"):
                    continue
                name = "href"
            if low == "style":
                v = _clean_css(v)
            elif "url(" in v.lower():
                v = _clean_css(v)
            attrs[name] = v
        el.attrib.clear()
        el.attrib.update(attrs)
        if el.tag == "style" and el.text:
            el.text = _clean_css(el.text)
        for child in list(el):
            if local(child.tag) in _ALLOWED_TAGS:
                clean(child)
            else:
                el.remove(child)

    clean(root)
    return ET.tostring(root, encoding="unicode")
