"""Surprise: −log p of every prompt token, as a coloured strip and, below it, a column per token (the
repeated hijack sentences' surprise collapsing as n grows)."""

from __future__ import annotations

from textual.app import ComposeResult

from lca_tui.panels.hijack.views.base import ProbeContext, View
from widgets import ColumnChart, TokenStrip


class SurpriseView(View):
    ID, TITLE, PROBE = "surprise", "Surprise", "surprise"

    def compose(self) -> ComposeResult:
        yield TokenStrip(label="surprise −log p (nats)", id="surprise-strip")
        yield ColumnChart(title="surprise −log p (nats) per token", id="surprise-chart")

    def draw_probe(self, res, ctx: ProbeContext) -> None:
        if res.surprise is not None:
            vals = [float("nan") if s is None else s for s in res.surprise]
            self.query_one("#surprise-strip", TokenStrip).set_tokens(list(res.tokens), vals)
            self.query_one("#surprise-chart", ColumnChart).set_values(vals)
