"""A small table of text rows with a row cursor (Line API, cheap to update on every keystroke).

Textual's DataTable renders each cell through a Rich ``Padding`` and drops its caches on any cell
update: about 3 ms for a 2 × 5 table at 120 × 40, a third of the hijack panel's whole answer frame.
This draws a header and the rows straight into strips, built once per update and width.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.strip import Strip

from .lines import LinesWidget


def column_widths(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column's width: its widest cell or header (one space of padding either side is added when drawn)."""
    return [max([len(c)] + [len(r[j]) for r in rows if j < len(r)]) for j, c in enumerate(columns)]


class RowTable(LinesWidget, can_focus=True):
    """A header line, then one line per row (even rows striped, as DataTable does); ``up``, ``down``,
    ``home``, ``end`` or a click move the row cursor.

    ``set_rows`` repaints; it asks for a layout only when the number of rows changes. When the widget is
    shorter than its rows, the lines scroll so that the cursor row stays in view under the header.
    """

    DEFAULT_CSS = """
    RowTable {
        height: auto; background: $surface; color: $foreground;
        &:focus { background-tint: $foreground 5%; }
        & > .row-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .row-table--even { background: $surface-lighten-1 50%; }
        &:dark > .row-table--even { background: $surface-darken-1 40%; }
        & > .row-table--cursor { background: $block-cursor-blurred-background;
                                 color: $block-cursor-blurred-foreground;
                                 text-style: $block-cursor-blurred-text-style; }
        &:focus > .row-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground;
                                       text-style: $block-cursor-text-style; }
    }
    """
    COMPONENT_CLASSES = {"row-table--header", "row-table--even", "row-table--cursor"}
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
    ]

    def __init__(self, columns: Sequence[str], *, zebra_stripes: bool = True, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self.zebra_stripes = zebra_stripes
        self._rows: list[tuple[str, ...]] = []
        self.cursor_row = 0

    # -- data -----------------------------------------------------------------------------------
    @property
    def rows(self) -> list[tuple[str, ...]]:
        return list(self._rows)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def get_row_at(self, index: int) -> list[str]:
        return list(self._rows[index])

    def set_rows(self, rows: Sequence[Sequence[str]]) -> None:
        """Show ``rows`` (one string per column); a layout only when the row count changes."""
        rows = [tuple(str(v) for v in r) for r in rows]
        if rows == self._rows:
            return
        relayout = len(rows) != len(self._rows)
        self._rows = rows
        self.cursor_row = max(0, min(self.cursor_row, len(rows) - 1))
        self._repaint(layout=relayout)

    def move_cursor(self, *, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self._rows) - 1))
        self._repaint()

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(row=self.cursor_row + delta)

    def action_cursor_to(self, row: int) -> None:
        self.move_cursor(row=row if row >= 0 else len(self._rows) - 1)

    def _on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(row=self._top() + event.y - 1)

    def _repaint(self, layout: bool = False) -> None:
        self._cache.clear()
        self.refresh(layout=layout)

    # -- drawing --------------------------------------------------------------------------------
    def get_content_height(self, container, viewport, width: int) -> int:
        return 1 + len(self._rows)

    def _top(self) -> int:
        """The first row shown: the cursor row stays visible under the header."""
        shown = max(1, self.size.height - 1)
        return max(0, min(self.cursor_row - shown + 1, len(self._rows) - shown))

    def _on_focus(self, event: events.Focus) -> None:
        self._repaint()

    def _on_blur(self, event: events.Blur) -> None:
        self._repaint()

    def _line(self, cells: Sequence[str], widths: list[int], style: Style, width: int) -> Strip:
        text = "".join(f" {cells[j] if j < len(cells) else '':<{w}} " for j, w in enumerate(widths))
        return Strip([Segment(text, style)]).adjust_cell_length(width, style)

    def _build(self, width: int, height: int = 0) -> list[Strip]:
        base = self.rich_style
        widths = column_widths(self.columns, self._rows)
        header = base + self.get_component_rich_style("row-table--header")
        even = base + self.get_component_rich_style("row-table--even")
        cursor = base + self.get_component_rich_style("row-table--cursor")
        strips = [self._line(self.columns, widths, header, width)]
        for i, row in enumerate(self._rows):
            style = cursor if i == self.cursor_row else (even if self.zebra_stripes and i % 2 == 0 else base)
            strips.append(self._line(row, widths, style, width))
        return strips

    def render_line(self, y: int) -> Strip:
        """The header, then the rows from ``_top()`` on (a scrolled table: not ``LinesWidget``'s line per strip)."""
        width = self.size.width
        strips = self._strips()
        if y == 0:
            return strips[0]
        index = self._top() + y
        if 0 < index < len(strips):
            return strips[index]
        return Strip.blank(width, self.rich_style)
