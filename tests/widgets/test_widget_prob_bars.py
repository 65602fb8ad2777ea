"""ProbabilityBars: order, visible whitespace, percent strings, monotone bar lengths."""

from textual.app import App, ComposeResult

from widgets import BarRow, ProbabilityBars, bar_text, format_percent

_BLOCKS = "█▉▊▋▌▍▎▏"


def bar_cells(text: str) -> float:
    """Bar length in cells (eighths resolved) from a rendered line."""
    eighths = {"█": 8, "▉": 7, "▊": 6, "▋": 5, "▌": 4, "▍": 3, "▎": 2, "▏": 1}
    return sum(eighths.get(ch, 0) for ch in text) / 8


class BarsApp(App):
    def compose(self) -> ComposeResult:
        yield ProbabilityBars()


ROWS = [
    BarRow(" Paris", 0.52, 1, highlight="true"),
    BarRow(" Chicago", 0.2, 2, highlight="false"),
    BarRow("\n", 0.0312, 3),
    BarRow("\tx", 0.00005, 4),
]


def test_format_percent():
    assert format_percent(0.52) == "52.0%"
    assert format_percent(1.0) == "100.0%"
    assert format_percent(0.0312) == "3.12%"
    assert format_percent(0.00005) == "<0.01%"
    assert format_percent(0.0) == "0.00%"


def test_bar_text_eighths():
    assert bar_text(1.0, 10) == "█" * 10
    assert bar_text(0.0, 10) == ""
    assert bar_text(0.5, 3) == "█▌"  # 1.5 cells
    assert bar_text(0.0125, 10) == "▏"  # one eighth of a cell


async def test_bars_rows_in_order_with_percent_and_monotone_bars():
    app = BarsApp()
    async with app.run_test(size=(100, 30)) as pilot:
        bars = app.query_one(ProbabilityBars)
        bars.set_rows(ROWS)
        await pilot.pause()
        assert bars.size.height == 4
        lines = [bars.render_line(y).text for y in range(4)]
        expected = [("1", "␣Paris", "52.0%"), ("2", "␣Chicago", "20.0%"),
                    ("3", "↵", "3.12%"), ("4", "→x", "<0.01%")]
        for line, (rank, tok, pct) in zip(lines, expected):
            assert line.split()[:3] == [rank, tok, pct]
            assert len(line) == 100
        lengths = [bar_cells(line) for line in lines]
        assert lengths == sorted(lengths, reverse=True)
        assert lengths[0] > 2 * lengths[1] > 0
        # 52% of the bar column, to within one eighth of a cell.
        bar_col = 100 - (1 + 1 + len("␣Chicago") + 1 + 6 + 1)
        assert abs(lengths[0] - 0.52 * bar_col) <= 1 / 8
        assert "Paris" in app.export_screenshot()


async def test_bars_highlight_styles_and_empty_state():
    app = BarsApp()
    async with app.run_test(size=(100, 30)) as pilot:
        bars = app.query_one(ProbabilityBars)
        await pilot.pause()
        assert bars.render_line(0).text.strip() == "no data"
        bars.set_rows(ROWS)
        await pilot.pause()
        true_seg = [s for s in bars.render_line(0) if "Paris" in s.text][0]
        false_seg = [s for s in bars.render_line(1) if "Chicago" in s.text][0]
        plain_seg = [s for s in bars.render_line(2) if "↵" in s.text][0]
        assert true_seg.style.color != false_seg.style.color
        assert true_seg.style.bold and false_seg.style.bold and not plain_seg.style.bold
        bars.set_rows([])
        await pilot.pause()
        assert bars.size.height == 1
        assert "no data" in bars.render_line(0).text


async def test_bars_update_many_times():
    app = BarsApp()
    async with app.run_test(size=(100, 30)) as pilot:
        bars = app.query_one(ProbabilityBars)
        for i in range(200):
            bars.set_rows([BarRow(f" t{i}", 0.5, 1), BarRow(" u", 0.25, 2)])
        await pilot.pause()
        assert bars.render_line(0).text.split()[1] == "␣t199"
        assert bars.rows[1].prob == 0.25


async def test_bars_follow_theme_changes():
    app = BarsApp()
    async with app.run_test(size=(100, 30)) as pilot:
        bars = app.query_one(ProbabilityBars)
        bars.set_rows([BarRow(" a", 0.5, 1)])
        app.theme = "textual-dark"
        await pilot.pause()
        dark = [s.style.color for s in bars.render_line(0) if s.text.startswith("█")][0]
        app.theme = "textual-light"
        await pilot.pause()
        light = [s.style.color for s in bars.render_line(0) if s.text.startswith("█")][0]
        assert dark != light


def test_format_percent_reads_missing_and_infinite_values_one_way():
    assert [format_percent(x) for x in (None, float("nan"), float("inf"), -0.0)] == ["—", "—", "∞", "0.00%"]
