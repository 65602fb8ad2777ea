"""ColumnChart: column heights in eighths on a 0..max scale, the max labelled, bucketing by max (against
numpy's plain split), NaN items, the empty state."""

import math

import numpy as np
import pytest
from textual.app import App, ComposeResult

from widgets import ColumnChart, bucket_max, column_eighths

_LEVEL = {"▁": 1, "▂": 2, "▃": 3, "▄": 4, "▅": 5, "▆": 6, "▇": 7, "█": 8}


def column_heights(chart, gutter: int) -> list[int]:
    """Eighths per cell column of the plot rows (title above, caption below)."""
    rows = [chart.render_line(y).text[gutter:] for y in range(1, chart.size.height - 1)]
    return [sum(_LEVEL.get(r[x], 0) for r in rows) for x in range(len(rows[0]))]


class ChartApp(App):
    CSS = "ColumnChart { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield ColumnChart(title="surprise")


def test_bucket_max_by_hand():
    assert bucket_max([1.0, 5.0, 2.0], 5) == [(0, 1, 1.0), (1, 2, 5.0), (2, 3, 2.0)]
    assert bucket_max([1.0, 5.0, 2.0, 7.0, 3.0], 2) == [(0, 3, 5.0), (3, 5, 7.0)]
    nan = bucket_max([math.nan, math.nan, 4.0], 2)
    assert nan[0][:2] == (0, 2) and math.isnan(nan[0][2]) and nan[1] == (2, 3, 4.0)
    assert bucket_max([], 3) == [] and bucket_max([1.0], 0) == []


@pytest.mark.parametrize("n,columns", [(78, 75), (78, 20), (100, 7), (10, 10), (9, 40)])
def test_bucket_max_matches_a_plain_split(n, columns):
    v = np.random.default_rng(n + columns).exponential(size=n)
    v[0] = np.nan  # a prompt's first token
    got = bucket_max(list(v), columns)
    parts = np.array_split(np.arange(n), min(n, columns))
    assert [(a, b) for a, b, _ in got] == [(int(p[0]), int(p[-1]) + 1) for p in parts]
    np.testing.assert_allclose([m for *_, m in got], [np.nanmax(v[p]) if np.isfinite(v[p]).any() else np.nan
                                                      for p in parts], equal_nan=True)


def test_column_eighths():
    assert column_eighths(4.0, 4.0, 4) == 32
    assert column_eighths(1.0, 4.0, 4) == 8
    assert column_eighths(0.5, 4.0, 3) == 3  # 0.125 · 24
    assert column_eighths(math.nan, 4.0, 4) == 0 and column_eighths(-1.0, 4.0, 4) == 0
    assert column_eighths(9.0, 4.0, 4) == 32  # clipped


async def test_columns_scale_to_the_labelled_max():
    app = ChartApp()
    async with app.run_test(size=(40, 6)) as pilot:  # title, 4 plot rows, caption
        chart = app.query_one(ColumnChart)
        chart.set_values([None, 1.0, 2.0, 4.0, 0.5])
        await pilot.pause()
        lines = [chart.render_line(y).text for y in range(6)]
        assert lines[0].startswith("surprise · 5 tokens")
        assert lines[1].startswith("4┤") and lines[4].startswith("0┤")  # the max at the top, 0 at the bottom
        heights = column_heights(chart, 2)
        # 5 items in 38 cells: 3 cells each (2 of column, 1 gap)
        assert heights[:15] == [0, 0, 0, 8, 8, 0, 16, 16, 0, 32, 32, 0, 4, 4, 0]
        assert not any(heights[15:])
        assert lines[5].split()[0] == "1" and lines[5].rstrip().endswith("5")


async def test_more_items_than_columns_show_each_buckets_max():
    app = ChartApp()
    values = [math.nan] + [float(i % 10) for i in range(1, 200)]
    async with app.run_test(size=(60, 8)) as pilot:
        chart = app.query_one(ColumnChart)
        chart.set_values(values)
        await pilot.pause()
        gutter = len("9") + 1
        buckets = bucket_max(values, 60 - gutter)
        assert len(buckets) == 58
        assert chart.render_line(0).text.rstrip() == "surprise · 200 tokens in 58 columns, each the max"
        assert column_heights(chart, gutter) == [column_eighths(m, 9.0, 6) for *_, m in buckets]


async def test_no_values_is_one_dim_line():
    app = ChartApp()
    async with app.run_test(size=(40, 6)) as pilot:
        chart = app.query_one(ColumnChart)
        await pilot.pause()
        assert chart.render_line(0).text.strip() == "surprise · no values"
        chart.set_values([math.nan])
        await pilot.pause()
        assert chart.render_line(0).text.strip() == "surprise · no values"
        assert all(s.style.italic for s in chart.render_line(0) if s.text.strip())
