"""The help screen: every binding of the app and its panels, with the keys now in force."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


def binding_rows(app) -> list[tuple[str, str, str, str]]:
    """(where, keys, description, id) for every Binding of the app and its panels (``app.panel_classes``:
    the screen asks the app, so screens never import the panels, which open screens), keymap applied."""
    keymap = getattr(app, "_keymap", {}) or {}
    rows = []
    panels = getattr(app, "panel_classes", ())
    for where, klass in [("app", type(app)), *[(k.PANEL_NAME, k) for k in panels]]:
        for b in klass.BINDINGS:
            if not isinstance(b, Binding):
                continue
            keys = keymap.get(b.id, b.key) if b.id else b.key
            shown = b.key_display or " ".join(app.get_key_display(Binding(k.strip(), b.action))
                                              for k in keys.split(","))
            rows.append((where, shown, b.description, b.id or ""))
    return rows


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close help", id="help.close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("lca-tui keys — escape closes · ctrl+p opens the command palette · "
                        "rebind with keymap.json (binding id → key)", classes="panel-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("where", "keys", "action", "binding id")
        for row in binding_rows(self.app):
            t.add_row(*row)
        t.focus()
