"""Value matrix: W_V against the constructed value matrix (eq. 5.1): accuracy with W_V swapped
(Fig. C.2) and the smallest principal angle to the trained one (Fig. C.3)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from lca_tui.panels.inspector_tabs.base import InspectedRun, InspectorTab, _num, _pct


class ValueTab(InspectorTab):
    ID, TITLE = "insp-value", "Value matrix"

    def compose(self) -> ComposeResult:
        yield Static("", id="insp-value-note")
        yield DataTable(id="insp-value-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#insp-value-table", DataTable).add_columns(
            "value matrix W_V", "accuracy", "smallest angle to trained (°)")

    def draw(self, run: InspectedRun) -> None:
        r = run.report
        s, a = r.swap, r.angles
        self.query_one("#insp-value-note", Static).update(
            f"accuracy on {r.n_samples} fresh samples with W_V swapped (Fig. C.2); smallest principal "
            f"angle between rank-{a.get('k', r.m)} approximations (Fig. C.3)")
        t = self.query_one("#insp-value-table", DataTable)
        t.clear()
        t.add_row("trained", _pct(s["trained"]), "—")
        t.add_row("constructed (eq. 5.1)", _pct(s["constructed"]), _num(a["constructed"], ".1f"))
        t.add_row("random-constructed", _pct(s["random_constructed"]), _num(a["random_constructed"], ".1f"))
        t.add_row("Gaussian N(0, 1/d)", "—", _num(a["gaussian"], ".1f"))
        t.add_row("Bayes optimal", _pct(s["bayes"]), "—")
