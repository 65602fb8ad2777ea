"""Repainting only the changed lines (widgets/lines.py): the runs of changed lines, and for every
Line-API widget an answer redraws (bars, token strip, layer lens, column chart) a new datum repaints
just the lines that differ, and what it then shows equals a widget that drew the same datum from
scratch (the plain full repaint)."""

import math

import pytest
from textual.app import App, ComposeResult
from textual.strip import Strip

from widgets import BarRow, ColumnChart, LayerBars, ProbabilityBars, TokenStrip
from widgets.lines import changed_runs


def test_changed_runs_merge_consecutive_lines():
    a, b, c = Strip.blank(3), Strip.blank(4), Strip.blank(5)
    assert changed_runs([a, a, a], [a, a, a]) == []
    assert changed_runs([a, a, a, a], [b, a, b, b]) == [(0, 1), (2, 2)]
    assert changed_runs([a, a], [a, a, c]) == [(2, 1)]  # a new line at the end
    assert changed_runs([a, a, c], [a]) == [(1, 2)]  # lines that went blank


def _bars(shift):
    probs = [0.4, 0.2, 0.1, 0.05, 0.02]
    probs[3] += shift  # one row's number changes
    return [BarRow(f" t{i}", p, i + 1) for i, p in enumerate(probs)]


def _layers(shift):
    values = [math.sin(i / 3) * 3 for i in range(24)]
    values[5] += shift
    return values


def _tokens(shift):
    tokens = [f" w{i}" for i in range(40)]
    return tokens + ([" end"] if shift else []), [float(i % 7) for i in range(40)] + ([1.0] if shift else [])


CASES = {
    "bars": (ProbabilityBars, lambda w, s: w.set_rows(_bars(s))),
    "layers": (LayerBars, lambda w, s: w.set_values(_layers(s), true=" Paris", false=" Chicago")),
    "chart": (ColumnChart, lambda w, s: w.set_values([float(i % 5) for i in range(30)] + [2.0 + s])),
    "strip": (TokenStrip, lambda w, s: w.set_tokens(*_tokens(s))),
}


class PairApp(App):
    CSS = "#a, #b { width: 40; height: 16; }"

    def __init__(self, klass):
        super().__init__()
        self.klass = klass

    def compose(self) -> ComposeResult:
        yield self.klass(id="a")
        yield self.klass(id="b")


def _lines(w):
    return [w.render_line(y) for y in range(w.size.height)]


def _on_screen(app, w):
    """What the screen shows in ``w``'s region, cell by cell (character, style), through the
    compositor and the widget's line cache: a line the partial repaint missed would show stale here."""
    from textual.strip import Strip

    update = app.screen._compositor.render_full_update()
    r = w.region
    rows = []
    for y in range(r.y, r.y + r.height):
        strip = Strip.join(update.strips[y]).crop(r.x, r.x + r.width)
        rows.append([(ch, seg.style) for seg in strip for ch in seg.text])
    return rows


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_new_datum_repaints_only_the_changed_lines_and_shows_what_a_full_repaint_shows(case):
    klass, feed = CASES[case]
    app = PairApp(klass)
    async with app.run_test(size=(100, 40)) as pilot:
        a, b = app.query_one("#a"), app.query_one("#b")
        feed(a, 0.0)
        await pilot.pause()
        before = _lines(a)
        dirty = []
        real = a.refresh
        a.refresh = lambda *regions, **kw: (dirty.append((regions, kw)), real(*regions, **kw))[1]
        feed(a, 0.3)  # the partial repaint
        feed(b, 0.3)  # b never showed the first datum: drawn from scratch
        await pilot.pause()
        after, plain = _lines(a), _lines(b)
        assert after == plain
        assert _on_screen(app, a) == _on_screen(app, b)
        changed = [y for y in range(len(after)) if after[y] != before[y]]
        assert changed, "the datum should change some lines"
        assert len(dirty) == 1 and dirty[0][0], f"a full repaint: {dirty}"
        marked = sorted(y for region in dirty[0][0] for y in range(region.y, region.y + region.height))
        assert marked == changed
        assert len(changed) < len(after)  # not every line
