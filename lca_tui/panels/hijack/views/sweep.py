"""Sweep: P(true) and P(false) against n for the chosen record (an engine ``EfficacyResult``)."""

from __future__ import annotations

from textual.app import ComposeResult

from lca_tui.panels.hijack.views.base import View
from widgets import LiveCurve


class SweepView(View):
    ID, TITLE = "sweep", "Sweep"

    def compose(self) -> ComposeResult:
        yield LiveCurve(title="P(true) and P(false) vs n (this record)", xlabel="n",
                        ylabel="probability", id="sweep-curve")

    def draw(self, result) -> None:
        c = self.query_one("#sweep-curve", LiveCurve)
        c.clear()
        xs = [p.n for p in result.curve]
        c.set_series("P(true)", xs, [p.p_true for p in result.curve])
        c.set_series("P(false)", xs, [p.p_false for p in result.curve])
