"""Gram: the Gram matrix W_Eᵀ W_E, tokens in bit order."""

from __future__ import annotations

from textual.app import ComposeResult

from lca_tui.panels.inspector_tabs.base import InspectedRun, InspectorTab, bit_labels
from widgets import Heatmap


class GramTab(InspectorTab):
    ID, TITLE = "insp-gram", "Gram"

    def compose(self) -> ComposeResult:
        yield Heatmap(id="insp-gram-map")

    def draw(self, run: InspectedRun) -> None:
        r = run.report
        labels = bit_labels(r.m)
        self.query_one("#insp-gram-map", Heatmap).set_matrix(
            r.gram, diverging=True, row_labels=labels,
            title=f"Gram W_Eᵀ W_E ({r.V}×{r.V}, tokens in bit order)")
