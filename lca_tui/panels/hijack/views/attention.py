"""Attention: the last token's attention over the prompt for one layer and head (or their mean),
and every layer as a heatmap. The panel keeps the layer and head (``att_layer``, ``att_head``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Label

from lca_tui.panels.hijack.views.base import View
from widgets import Heatmap, TokenStrip


class AttentionView(View):
    ID, TITLE, PROBE = "attention", "Attention", "attention"

    def compose(self) -> ComposeResult:
        yield Label("", id="attention-label", classes="hint")
        yield TokenStrip(label="attention of the last token", palette="viridis", id="attention-strip")
        yield Heatmap(id="attention-map")

    def draw_probe(self, res) -> None:
        if res.attention is None:
            return
        panel = self.panel
        att = res.attention  # (layers, heads, tokens)
        n_layers, n_heads, _ = att.shape
        panel.att_layer = panel.att_layer % n_layers
        grid = att.mean(axis=1) if panel.att_head < 0 else att[:, panel.att_head % n_heads]
        head = "mean of heads" if panel.att_head < 0 else f"head {panel.att_head % n_heads + 1}/{n_heads}"
        self.query_one("#attention-label", Label).update(
            f"layer {panel.att_layer + 1}/{n_layers} · {head}   ([ ] layer, {{ }} head)")
        self.query_one("#attention-strip", TokenStrip).set_tokens(list(res.tokens),
                                                                   list(map(float, grid[panel.att_layer])))
        self.query_one("#attention-map", Heatmap).set_matrix(
            grid, row_labels=[str(i + 1) for i in range(n_layers)], title="layers × prompt tokens")
