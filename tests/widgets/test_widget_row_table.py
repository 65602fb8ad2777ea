"""RowTable: header and rows as text, the row cursor (keys and clicks), scrolling under a short height,
and a layout only when the number of rows changes."""

from textual.app import App, ComposeResult

from widgets import RowTable, column_widths

COLUMNS = ("target", "P(target)", "rank", "")


class TableApp(App):
    CSS = "RowTable { width: 50; }  #short { height: 3; }"

    def compose(self) -> ComposeResult:
        yield RowTable(COLUMNS, id="tall")
        yield RowTable(COLUMNS, id="short")


def test_column_widths_are_the_widest_cell_or_header():
    assert column_widths(COLUMNS, [("␣Paris", "31.00%", "1", "true"), ("␣Chicago", "2.00%", "12", "")]) == [8, 9, 4, 4]
    assert column_widths(COLUMNS, []) == [6, 9, 4, 0]


async def test_rows_are_drawn_under_the_header_and_the_cursor_moves():
    app = TableApp()
    async with app.run_test(size=(80, 20)) as pilot:
        t = app.query_one("#tall", RowTable)
        rows = [("␣Paris", "31.00%", "1", "true"), ("␣Chicago", "22.00%", "2", "▲ hijacked"), ("␣Rome", "1.00%", "7", "")]
        t.set_rows(rows)
        await pilot.pause()
        assert t.size.height == 4 and t.row_count == 3 and t.get_row_at(1) == list(rows[1])
        lines = [t.render_line(y).text for y in range(4)]
        assert lines[0].split() == ["target", "P(target)", "rank"]
        assert lines[2].split() == ["␣Chicago", "22.00%", "2", "▲", "hijacked"]
        assert all(len(line) == 50 for line in lines)
        assert lines[1].index("31.00%") == lines[0].index("P(target)")  # columns line up with the header
        cursor_style = t.get_component_rich_style("row-table--cursor")
        t.focus()
        await pilot.pause()
        assert t.cursor_row == 0
        await pilot.press("down", "down", "down")
        assert t.cursor_row == 2
        await pilot.press("home")
        assert t.cursor_row == 0
        await pilot.press("end", "up")
        assert t.cursor_row == 1
        await pilot.pause()
        focused = t.rich_style + t.get_component_rich_style("row-table--cursor")
        assert next(iter(t.render_line(2))).style.bgcolor == focused.bgcolor  # the cursor row
        assert next(iter(t.render_line(1))).style.bgcolor != focused.bgcolor
        assert cursor_style is not None
        await pilot.click("#tall", offset=(3, 3))
        assert t.cursor_row == 2
        t.set_rows(rows[:1])  # fewer rows: the cursor stays on a row
        assert t.cursor_row == 0


async def test_a_short_table_keeps_the_cursor_row_in_view():
    app = TableApp()
    async with app.run_test(size=(80, 20)) as pilot:
        t = app.query_one("#short", RowTable)
        t.set_rows([(f"t{i}", "", "", "") for i in range(5)])
        await pilot.pause()
        assert t.size.height == 3
        assert [t.render_line(y).text.split()[0] for y in range(3)] == ["target", "t0", "t1"]
        t.move_cursor(row=4)
        await pilot.pause()
        assert [t.render_line(y).text.split()[0] for y in range(3)] == ["target", "t3", "t4"]


async def test_new_numbers_repaint_and_a_new_row_count_relayouts():
    app = TableApp()
    async with app.run_test(size=(80, 20)) as pilot:
        t = app.query_one("#tall", RowTable)
        t.set_rows([("a", "1%", "1", "")])
        await pilot.pause()
        calls = []
        real = t.refresh
        t.refresh = lambda *a, **kw: (calls.append(kw.get("layout", False)), real(*a, **kw))[1]
        t.set_rows([("a", "2%", "1", "")])
        t.set_rows([("a", "2%", "1", "")])  # unchanged: nothing to do
        assert calls == [False]
        t.set_rows([("a", "2%", "1", ""), ("b", "1%", "2", "")])
        assert calls == [False, True]
        await pilot.pause()
        assert t.render_line(1).text.split() == ["a", "2%", "1"]
