"""A modal view of one experiment result: verdict, claim, curves and the rows table."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from textnum import special
from widgets import LiveCurve


class ExperimentScreen(ModalScreen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Close", id="experiment.close")]

    def __init__(self, result: dict):
        super().__init__()
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        with Vertical(classes="dialog"):
            yield Label(f"{r.get('title', r.get('name'))} — {r.get('figure', '')} · {r.get('seconds', 0):.0f} s",
                        classes="panel-title")
            yield Static(f"[b]{r.get('verdict', '?')}[/b] — {r.get('claim', '')}\nrule: {r.get('rule', '')}",
                         id="experiment-verdict")
            yield LiveCurve(title=r.get("name", ""), id="experiment-curve")
            yield DataTable(id="experiment-rows", zebra_stripes=True)

    def on_mount(self) -> None:
        r = self.result
        curve = self.query_one(LiveCurve)
        curve.styles.height = 14
        for name, series in (r.get("curves") or {}).items():
            pts = [(x, y) for x, y in zip(series.get("x", []), series.get("y", [])) if x is not None and y is not None]
            if pts:
                curve.set_series(name, [p[0] for p in pts], [p[1] for p in pts])
        rows = r.get("rows") or []
        table = self.query_one(DataTable)
        if rows:
            cols = list(rows[0])
            table.add_columns(*cols)
            for row in rows:
                table.add_row(*[_fmt(row.get(c)) for c in cols])


def _fmt(v) -> str:
    return special(v) or (f"{v:.4g}" if isinstance(v, float) else str(v))
