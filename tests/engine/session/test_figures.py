"""Report figures from matplotlib (inline SVG: well-formed, text as text, escaped, no URL, no
script, same bytes for the same data) and the sanitiser that makes foreign SVGs safe to embed."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from engine.session.report.efficacy import es_by_model_chart, flip_histogram, flip_points
from engine.session.report.figures import figure_svg, heatmap, histogram, line_chart
from engine.session.report.sanitize import SVG_NS, sanitize_svg, standalone

EVIL = '<script>alert("x")</script> & "q" $x$'


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag in ("svg", f"{{{SVG_NS}}}svg")
    return root


def _texts(root) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("text")]


def _safe(svg: str):
    assert "<script" not in svg.lower() and "http" not in svg and "xlink" not in svg
    assert not re.search(r"\son\w+=", svg)


def test_line_chart_text_is_text_and_escaped():
    svg = line_chart({"train " + EVIL: ([1, 2, 3], [0.5, 0.4, 0.3]), "eval": ([1, 3], [0.6, 0.2])},
                     EVIL, xlabel="step", ylabel="loss", hlines={"Bayes accuracy": 0.25})
    root = _parse(svg)
    _safe(svg)
    assert "&lt;script&gt;" in svg
    texts = _texts(root)
    assert EVIL in texts and "train " + EVIL in texts  # title and legend, as text ($x$ not mathtext)
    assert "step" in texts and "loss" in texts and "eval" in texts
    assert "Bayes accuracy = 0.25" in texts  # the reference line is labelled in the legend
    assert not [el for el in root.iter() if el.tag in ("image", "script", "foreignObject")]


def test_same_data_same_bytes_and_ids_prefixed():
    args = ({"a": ([0, 1, 2], [0.1, 0.5, 0.2])}, "t")
    assert line_chart(*args) == line_chart(*args)
    pre = line_chart(*args, id_prefix="f7-")
    ids = [el.get("id") for el in _parse(pre).iter() if el.get("id")]
    assert ids and all(i.startswith("f7-") for i in ids)
    refs = re.findall(r'(?:href="#|url\(#)([^")]+)', pre)
    assert refs and all(r.startswith("f7-") and r in ids for r in refs)


def test_fresh_process_gives_the_same_bytes():
    """The hash salt is fixed: another interpreter (another PYTHONHASHSEED) draws the same file."""
    code = ("from engine.session.report.figures import line_chart, heatmap;"
            "import sys; sys.stdout.write(line_chart({'a': ([0, 1, 2], [0.1, 0.5, 0.2])}, 't', hlines={'B': 0.3})"
            " + heatmap([[1, 2], [3, 4]], 'h'))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout for seed in (1, 2)}
    assert len(outs) == 1 and "<svg" in outs.pop()


def test_long_series_stay_small_and_keep_spikes():
    n = 100_000
    xs = list(range(n))
    ys = [math.sin(i / 500) for i in range(n)]
    ys[54_321] = 10.0
    svg = line_chart({"long": (xs, ys)}, "long")
    _parse(svg)
    assert len(svg) < 60_000  # 100k points simplified to a few hundred
    (path,) = [el for el in _parse(svg).iter("path") if el.get("clip-path") and "stroke-width: 1.6" in (el.get("style") or "")]
    pts = [tuple(map(float, m)) for m in re.findall(r"[ML] ([\d.]+) ([\d.]+)", path.get("d"))]
    top = min(y for _, y in pts)  # SVG y grows downwards: the spike is the highest point
    assert sorted(y for _, y in pts)[1] > top + 50  # and it is alone up there


def test_gaps_and_empty_charts():
    root = _parse(line_chart({"g": ([1, 2, 3, 4, 5], [1, 2, float("nan"), 4, 5])}, "gap"))
    (path,) = [el for el in root.iter("path") if el.get("clip-path") and "stroke-width: 1.6" in (el.get("style") or "")]
    assert path.get("d").count("M ") == 2  # the NaN splits the line
    assert "no data" in _texts(_parse(line_chart({}, "nothing")))


def test_heatmap_is_pixels_with_a_colour_bar():
    m = [[float(i * 4 + j) for j in range(4)] for i in range(3)]
    m[1][1] = float("nan")
    svg = heatmap(m, "W_E " + EVIL)
    root = _parse(svg)
    _safe(svg)
    images = [el for el in root.iter("image")]
    assert images and all(el.get("href").startswith("data:image/png;base64,") for el in images)
    assert all("image-rendering: pixelated" in el.get("style") for el in images)  # crisp cells everywhere
    assert "W_E " + EVIL in _texts(root)
    assert {"0", "10"} <= set(_texts(root))  # colour-bar ticks over the data range


def _pixels(svg: str):
    import base64
    import io

    from PIL import Image

    (first, *_) = re.findall(r'href="data:image/png;base64,([^"]+)"', svg)  # the matrix, then the colour bar
    return Image.open(io.BytesIO(base64.b64decode(first))).convert("RGB")


def test_heatmap_pixels_are_the_matrix():
    m = [[float(i * 4 + j) for j in range(4)] for i in range(3)]
    m[1][1] = float("nan")
    im = _pixels(heatmap(m, "m"))
    assert im.size == (4, 3)  # one pixel per cell, stored at the matrix's own resolution
    assert im.getpixel((0, 0)) == pytest.approx((0x44, 0x01, 0x54), abs=1)  # viridis ends
    assert im.getpixel((3, 2)) == pytest.approx((0xfd, 0xe7, 0x25), abs=1)
    assert im.getpixel((1, 1)) == (0xbd, 0xbd, 0xbd)  # NaN: grey
    row = [sum(im.getpixel((x, 0))) for x in range(4)]
    assert row == sorted(row)  # brighter as the value grows
    d = _pixels(heatmap([[-2.0, 0.0, 1.0]], "d", diverging=True))
    (r0, g0, b0), mid, (r2, g2, b2) = (d.getpixel((x, 0)) for x in range(3))
    assert b0 > r0 and r2 > b2 and min(mid) > 235  # blue below 0, white at 0 (centred), red above


def test_histogram_counts_and_never():
    from engine.session.report.document import Histogram

    svg = histogram({"smollm2": [0, 1, 1, 3, None], "gemma": [1, 1, None, None]}, "flips", "n")
    root = _parse(svg)
    _safe(svg)
    bars = [el for el in root.iter("path") if el.get("clip-path") and "fill: #" in (el.get("style") or "")]
    assert len(bars) == 2 * 5  # n = 0, 1, 2, 3 and never, per series
    assert {"0", "1", "2", "3", "never", "smollm2", "gemma"} <= set(_texts(root))
    assert figure_svg(Histogram("flips", {"smollm2": [0, 1, 1, 3, None], "gemma": [1, 1, None, None]}, "n")) == svg


def test_cross_model_builders():
    chart = es_by_model_chart({"smollm2": [(2, 0.5), (0, 0.1), (1, 0.3)], "gemma": [(0, 0.2), (1, 0.6)]})
    assert chart.series == {"smollm2": ([0, 1, 2], [0.1, 0.3, 0.5]), "gemma": ([0, 1], [0.2, 0.6])}
    assert chart.y_range == (0.0, 1.0) and "n" in chart.xlabel
    per_record = [{"record_index": r, "n": n, "p_true": pt, "p_false": pf}
                  for r, rows in enumerate([[(0, .6, .1), (1, .4, .5), (2, .2, .7)],  # flips at 1
                                            [(0, .6, .1), (1, .6, .2), (2, .6, .3)],  # never
                                            [(0, .1, .6), (1, .6, .2), (2, .1, .9)]])  # at 0
                  for n, pt, pf in rows]
    assert flip_points(per_record) == [1, None, 0]
    h = flip_histogram({"m": [1, None, 0]})
    assert h.samples == {"m": [1, None, 0]}


def test_matplotlib_is_not_imported_at_app_start():
    code = ("import sys, lca_tui.app, engine.session.report, engine.session.store;"
            "sys.exit(1 if 'matplotlib' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_sanitize_removes_scripts_handlers_and_urls():
    from rich.console import Console

    console = Console(record=True, width=40, file=open("/dev/null", "w"))
    console.print("hello <script>alert(1)</script>", markup=False, highlight=False)
    shot = console.export_svg(title="panel")
    assert "https://" in shot  # rich links web fonts
    evil = shot.replace(
        "</svg>",
        '<script>alert(2)</script><foreignObject><div>x</div></foreignObject>'
        '<a href="https://evil.example/"><text>link</text></a>'
        '<image href="https://evil.example/p.png"/><rect onload="alert(3)" width="1" height="1" '
        'style="fill:url(https://evil.example/f)"/><use href="#ok"/></svg>')
    clean = sanitize_svg(evil)
    root = ET.fromstring(clean)
    tags = {el.tag for el in root.iter()}
    assert not tags & {"script", "foreignObject", "a", "image"}
    assert "http" not in clean.replace(f'xmlns="{SVG_NS}"', "")
    assert "onload" not in clean and "alert(2)" not in clean and "alert(3)" not in clean
    assert 'href="#ok"' in clean and 'clip-path="url(#terminal-' in clean
    assert "&lt;script&gt;alert(1)" in clean  # the text the panel showed is still there, as text
    assert re.search(r'src:\s*local\("FiraCode-Regular"\);', clean)  # the font rule stays valid CSS
    st = standalone(clean)
    assert _parse(st).tag == f"{{{SVG_NS}}}svg"


@pytest.mark.parametrize("bad", ["", "not xml", "<html><body/></html>",
                                 '<!DOCTYPE svg [<!ENTITY a "b">]><svg>&a;</svg>'])
def test_sanitize_rejects_non_svg(bad):
    with pytest.raises(ValueError):
        sanitize_svg(bad)
