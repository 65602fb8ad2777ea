"""LayerBars: diverging bars (direction, length, colour) on a shared scale, grouping of layers into rows
(the mean of each group, against numpy's plain split), the empty state."""

import math

import numpy as np
import pytest
from textual.app import App, ComposeResult

from widgets import LayerBars, diverging_eighths, grouped_values, layer_groups
from widgets.layer_bars import EMPTY_MESSAGE, format_value

_RIGHT = {"▏": 1, "▎": 2, "▍": 3, "▌": 4, "▋": 5, "▊": 6, "▉": 7, "█": 8}


def bar_eighths(strip) -> int:
    """Signed bar length in eighths from a rendered row: right of the centre line counts up, left of it
    down (its partial cell is a left-aligned block in the background colour: 8 minus its eighths)."""
    text = strip.text
    axis = text.index("│")
    right = sum(_RIGHT.get(ch, 0) for ch in text[axis + 1:])
    left = 0
    for ch in text[:axis]:
        if ch == "█":
            left += 8
        elif ch in _RIGHT:
            left += 8 - _RIGHT[ch]
    assert not (left and right)
    return right - left


class BarsApp(App):
    CSS = "LayerBars { height: 1fr; width: 40; }"

    def compose(self) -> ComposeResult:
        yield LayerBars()


def test_groups_are_consecutive_balanced_and_labelled():
    assert layer_groups(3, 5) == [(0, 1), (1, 2), (2, 3)]
    assert layer_groups(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert layer_groups(0, 4) == [] and layer_groups(4, 0) == []
    v = [1.0, 2.0, 6.0, -1.0, -3.0, 4.0, math.nan]
    # by hand: (1 + 2 + 6) / 3, (−1 − 3) / 2, the NaN left out of the last mean
    assert grouped_values(v, 3) == [("L1–3", 3.0), ("L4–5", -2.0), ("L6–7", 4.0)]
    assert grouped_values(v[:2], 5) == [("L1", 1.0), ("L2", 2.0)]
    assert math.isnan(grouped_values([math.nan, math.nan], 1)[0][1])


@pytest.mark.parametrize("n,rows", [(30, 7), (30, 29), (31, 4), (12, 12), (5, 1), (61, 20)])
def test_grouped_means_match_a_plain_split(n, rows):
    rng = np.random.default_rng(n * 100 + rows)
    v = rng.normal(size=n)
    got = grouped_values(list(v), rows)
    parts = np.array_split(np.arange(n), min(n, rows))  # the first n % rows parts one larger, like ours
    assert [label for label, _ in got] == [f"L{p[0] + 1}" if len(p) == 1 else f"L{p[0] + 1}–{p[-1] + 1}"
                                           for p in parts]
    np.testing.assert_allclose([m for _, m in got], [v[p].mean() for p in parts], rtol=1e-12)


def test_diverging_eighths_and_values():
    assert diverging_eighths(2.0, 2.0, 10) == 80
    assert diverging_eighths(-1.0, 2.0, 10) == -40
    assert diverging_eighths(0.3, 2.0, 10) == 12  # 0.15 · 80
    assert diverging_eighths(5.0, 2.0, 10) == 80  # clipped
    assert diverging_eighths(math.nan, 2.0, 10) == 0 and diverging_eighths(1.0, 0.0, 10) == 0
    assert [format_value(x) for x in (1.26, -0.44, -0.01, math.nan)] == ["+1.3", "−0.4", "0.0", "—"]


async def test_bars_point_to_the_leading_target_on_one_scale():
    app = BarsApp()
    values = [2.0, -1.0, 0.0, -2.0, 0.25, -0.25]
    async with app.run_test(size=(40, 20)) as pilot:
        bars = app.query_one(LayerBars)
        bars.set_values(values, true=" Paris", false=" Chicago")
        await pilot.pause()
        lines = [bars.render_line(y) for y in range(bars.size.height)]
        assert lines[0].text.startswith("logit(␣Paris) − logit(␣Chicago)") or \
            lines[0].text.startswith("logit(true) − logit(false)")
        legend = lines[1].text
        assert legend.index("◀ ␣Chicago") < legend.index("│") < legend.index("␣Paris ▶")
        assert legend.startswith("−2.0") and legend.rstrip().endswith("+2.0")  # the scale: the largest |value|
        rows = lines[2:2 + len(values)]
        assert [r.text.split()[0] for r in rows] == ["L1", "L2", "L3", "L4", "L5", "L6"]
        assert [r.text.split()[-1] for r in rows] == ["+2.0", "−1.0", "0.0", "−2.0", "+0.2", "−0.2"]
        half = rows[0].text.index("│") - len("L1 ")
        got = [bar_eighths(r) for r in rows]
        assert half == 15 and got == [8 * half, -4 * half, 0, -8 * half, 15, -15]  # 0.25 / 2 of 15 cells
        assert all(r.text.index("│") == rows[0].text.index("│") for r in rows)  # one centre line
        true_color = bars.get_component_rich_style("layer-bars--true").color
        false_color = bars.get_component_rich_style("layer-bars--false").color
        assert true_color != false_color
        assert {s.style.color for s in rows[0] if "█" in s.text} == {true_color}
        assert {s.style.color for s in rows[3] if "█" in s.text} == {false_color}
        # a left partial cell: a left-aligned block in the background colour over the bar colour
        partial = [s for s in rows[5] if s.text == "▏"]
        assert len(partial) == 1 and partial[0].style.bgcolor == false_color
        assert partial[0].style.color == bars.rich_style.bgcolor
        assert all(len(line.text) == 40 for line in lines)


async def test_more_layers_than_rows_share_rows_as_means():
    app = BarsApp()
    values = [float(i) - 10 for i in range(30)]
    async with app.run_test(size=(40, 9)) as pilot:  # 9 rows: title, legend, 7 rows of layers
        bars = app.query_one(LayerBars)
        bars.set_values(values, true=" Paris", false=" Chicago")
        await pilot.pause()
        rows = [bars.render_line(y).text for y in range(2, 9)]
        expect = grouped_values(values, 7)
        assert [r.split()[0] for r in rows] == [label for label, _ in expect]
        assert [r.split()[-1] for r in rows] == [format_value(m) for _, m in expect]
        assert rows[0].startswith("  L1–5") and rows[-1].split()[0] == "L27–30"


async def test_empty_state_is_one_dim_line():
    app = BarsApp()
    async with app.run_test(size=(40, 10)) as pilot:
        bars = app.query_one(LayerBars)
        await pilot.pause()
        assert bars.render_line(0).text.strip() == EMPTY_MESSAGE
        bars.set_values([1.0, -1.0], true="a", false="b")
        await pilot.pause()
        assert "│" in bars.render_line(2).text
        bars.set_empty()
        await pilot.pause()
        first = bars.render_line(0)
        assert first.text.strip() == EMPTY_MESSAGE and bars.values == []
        assert all(s.style.italic for s in first if s.text.strip())
        assert all(not bars.render_line(y).text.strip() for y in range(1, bars.size.height))


@pytest.mark.parametrize("height,first,rows", [(2, None, 0), (4, "legend", 3), (6, "title", 4)])
async def test_a_short_widget_drops_the_title_then_the_bars(height, first, rows):
    from widgets.layer_bars import TOO_SHORT

    app = BarsApp()
    async with app.run_test(size=(40, 20)) as pilot:
        bars = app.query_one(LayerBars)
        bars.styles.height = height
        bars.set_values([float(i) for i in range(30)], true=" Paris", false=" Chicago")
        await pilot.pause()
        lines = [bars.render_line(y).text for y in range(height)]
        if first is None:
            assert lines[0].strip() == TOO_SHORT
            return
        assert ("◀" in lines[0]) == (first == "legend") and lines[0].startswith("logit") == (first == "title")
        bar_rows = [line for line in lines if line.split() and line.split()[0].startswith("L")]
        assert len(bar_rows) == rows and bar_rows[-1].split()[0].endswith("30")
