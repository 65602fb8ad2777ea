"""Inline SVG charts: well-formed, escaped, downsampled, no URLs; foreign SVGs sanitised."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from engine.session.svg import (
    SVG_NS,
    downsample,
    heatmap,
    line_chart,
    nice_ticks,
    ramp_color,
    sanitize_svg,
    standalone,
)

EVIL = '<script>alert("x")</script> & "q"'


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag in ("svg", f"{{{SVG_NS}}}svg")
    return root


def _polylines(root):
    return [el for el in root.iter() if el.tag.endswith("polyline")]


def test_line_chart_is_wellformed_and_escaped():
    svg = line_chart({"train " + EVIL: ([1, 2, 3], [0.5, 0.4, 0.3]), "eval": ([1, 3], [0.6, 0.2])},
                     EVIL, xlabel="step", ylabel="loss", hlines={"Bayes": 0.25})
    root = _parse(svg)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert "http" not in svg  # inline form: no namespace URL, nothing to fetch
    texts = ["".join(t.itertext()) for t in root.iter("text")]
    assert EVIL in texts and "step" in texts and "loss" in texts
    assert any(t.startswith("Bayes = 0.25") for t in texts)
    assert len(_polylines(root)) == 2
    dashed = [el for el in root.iter("line") if el.get("stroke-dasharray")]
    assert len(dashed) == 2  # the reference line and its legend swatch


def test_line_chart_maps_values_to_the_plot_area():
    root = _parse(line_chart({"s": ([0, 10], [0.0, 1.0])}, "t", y_range=(0, 1), width=400, height=300))
    (pl,) = _polylines(root)
    (x0, y0), (x1, y1) = [tuple(map(float, p.split(","))) for p in pl.get("points").split()]
    assert x0 < x1 and y0 > y1  # y grows downwards in SVG
    frame = [r for r in root.iter("rect") if r.get("fill") == "none"][0]
    fx, fy, fw, fh = (float(frame.get(k)) for k in ("x", "y", "width", "height"))
    assert (x0, x1) == pytest.approx((fx, fx + fw), abs=0.11)
    assert (y1, y0) == pytest.approx((fy, fy + fh), abs=0.11)


def test_long_series_are_downsampled_keeping_spikes():
    n = 100_000
    xs = list(range(n))
    ys = [math.sin(i / 500) for i in range(n)]
    ys[54_321] = 10.0
    svg = line_chart({"long": (xs, ys)}, "long", width=640)
    (pl,) = _polylines(_parse(svg))
    pts = [tuple(map(float, p.split(","))) for p in pl.get("points").split()]
    assert 600 <= len(pts) <= 2 * 640
    assert len(svg) < 40_000
    high = [p for p in pts if p[1] < 100]  # sin stays in the lower part; only the spike is up here
    assert len(high) == 1 and high[0][0] == pytest.approx(64 + 54_321 / (n - 1) * (640 - 64 - 18), abs=0.2)
    dx, dy = downsample(xs, ys, 200)
    assert 10.0 in dy and dx == sorted(dx) and len(dx) <= 200


def test_gaps_split_the_line_and_empty_charts_say_so():
    root = _parse(line_chart({"g": ([1, 2, 3, 4, 5], [1, 2, float("nan"), 4, 5])}, "gap"))
    assert len(_polylines(root)) == 2
    empty = line_chart({}, "nothing")
    assert "no data" in empty and not _polylines(_parse(empty))
    single = _parse(line_chart({"one": ([3], [0.5])}, "one point"))
    assert len([c for c in single.iter("circle")]) == 1


def test_nice_ticks():
    assert nice_ticks(0, 1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(0, 30000, 6) == pytest.approx([0, 5000, 10000, 15000, 20000, 25000, 30000])
    assert nice_ticks(2.03, 2.12) == pytest.approx([2.04, 2.06, 2.08, 2.10, 2.12])


def test_heatmap_cells_ramp_and_legend():
    m = [[float(i * 4 + j) for j in range(4)] for i in range(3)]
    m[1][1] = float("nan")
    svg = heatmap(m, "W_E " + EVIL)
    root = _parse(svg)
    assert "&lt;script&gt;" in svg and "<script" not in svg and "http" not in svg
    cells = [r for r in root.iter("rect") if r.get("width") == r.get("height") and r.get("fill") != "none"
             and r.get("x") != "0"]
    assert len(cells) == 12
    fills = {(r.get("x"), r.get("y")): r.get("fill") for r in cells}
    assert ramp_color(0.0) == "#440154" and ramp_color(1.0) == "#fde725"
    assert "#440154" in fills.values() and "#fde725" in fills.values() and "#bdbdbd" in fills.values()
    labels = ["".join(t.itertext()) for t in root.iter("text")]
    assert "0" in labels and "11" in labels and "5.5" in labels


def test_diverging_heatmap_is_centred_on_zero():
    root = _parse(heatmap([[-2.0, 0.0, 1.0]], "d", diverging=True))
    fills = [r.get("fill") for r in root.iter("rect") if r.get("width") == r.get("height")
             and r.get("fill") not in ("none", "#ffffff")]
    assert fills[:3] == ["#2166ac", "#f7f7f7", ramp_color(0.75, True)]


def test_large_heatmaps_are_block_averaged():
    m = [[float((i + j) % 7) for j in range(300)] for i in range(300)]
    svg = heatmap(m, "big")
    assert "block-averaged from 300×300" in svg
    assert len(svg) < 1_200_000
    _parse(svg)


def test_standalone_adds_the_namespace():
    s = standalone(line_chart({"a": ([0, 1], [0, 1])}, "t"))
    assert s.startswith("<?xml") and f'xmlns="{SVG_NS}"' in s
    assert _parse(s).tag == f"{{{SVG_NS}}}svg"
    assert standalone(s) == s


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
