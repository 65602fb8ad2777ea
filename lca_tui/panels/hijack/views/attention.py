"""Attention: the last token's attention over the prompt for one layer and head (or their mean),
and every layer as a heatmap. The view keeps the layer and head (``[ ]`` and ``{ }``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Label

from lca_tui.panels.hijack.views.base import ProbeContext, View
from widgets import Heatmap, TokenStrip


class AttentionView(View):
    ID, TITLE, PROBE = "attention", "Attention", "attention"
    BINDINGS = [
        Binding("left_square_bracket", "layer(-1)", "Layer−", id="hijack.layer_down", show=False),
        Binding("right_square_bracket", "layer(1)", "Layer+", id="hijack.layer_up", show=False),
        Binding("left_curly_bracket", "head(-1)", "Head−", id="hijack.head_down", show=False),
        Binding("right_curly_bracket", "head(1)", "Head+", id="hijack.head_up", show=False),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.att_layer = -1
        self.att_head = -1  # -1 = mean over heads
        self.last = None  # the newest probe answer (redrawn when the layer or head moves)

    def compose(self) -> ComposeResult:
        yield Label("", id="attention-label", classes="hint")
        yield TokenStrip(label="attention of the last token", palette="viridis", id="attention-strip")
        yield Heatmap(id="attention-map")

    def action_layer(self, delta: int) -> None:
        self.att_layer += delta
        self._redraw()

    def action_head(self, delta: int) -> None:
        self.att_head = max(-1, self.att_head + delta)
        self._redraw()

    def _redraw(self) -> None:
        if self.last is not None and self.last.attention is not None:
            self._draw(self.last)

    def draw_probe(self, res, ctx: ProbeContext) -> None:
        self.last = res
        if res.attention is not None:
            self._draw(res)

    def _draw(self, res) -> None:
        att = res.attention  # (layers, heads, tokens)
        n_layers, n_heads, _ = att.shape
        self.att_layer = self.att_layer % n_layers
        grid = att.mean(axis=1) if self.att_head < 0 else att[:, self.att_head % n_heads]
        head = "mean of heads" if self.att_head < 0 else f"head {self.att_head % n_heads + 1}/{n_heads}"
        self.query_one("#attention-label", Label).update(
            f"layer {self.att_layer + 1}/{n_layers} · {head}   ([ ] layer, {{ }} head)")
        self.query_one("#attention-strip", TokenStrip).set_tokens(list(res.tokens),
                                                                   list(map(float, grid[self.att_layer])))
        self.query_one("#attention-map", Heatmap).set_matrix(
            grid, row_labels=[str(i + 1) for i in range(n_layers)], title="layers × prompt tokens")
