"""Logit lens: each target's probability per layer, as a chart or a table (l switches and shows it)."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import ContentSwitcher, DataTable

from lca_tui.panels.hijack.views.base import ProbeContext, View
from textnum import probability as pct
from widgets import LiveCurve, visible_token


class LensView(View):
    ID, TITLE, PROBE = "lens", "Lens", "logit_lens"
    BINDINGS = [Binding("l", "toggle_table", "Lens chart/table", id="hijack.lens_table", show=False)]

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="lens-curve", id="lens-switcher"):
            yield LiveCurve(title="log10 P(target) per layer · l: table",
                            xlabel="layer", ylabel="log10 P", id="lens-curve")
            yield DataTable(id="lens-table", zebra_stripes=True)

    def action_toggle_table(self) -> None:
        """Switch between the chart and the table, and show this view."""
        self.show()
        sw = self.query_one("#lens-switcher", ContentSwitcher)
        sw.current = "lens-table" if sw.current == "lens-curve" else "lens-curve"

    def draw_probe(self, res, ctx: ProbeContext) -> None:
        """Per layer, each target's log10 probability (first token) as a line; the table beside it."""
        lens = res.logit_lens
        if lens is None:
            return
        c = self.query_one("#lens-curve", LiveCurve)
        c.clear()
        layers = list(range(1, lens.probs.shape[0] + 1))
        for j, target in enumerate(lens.targets):
            c.set_series(visible_token(target), layers,
                         [math.log10(max(float(p), 1e-30)) for p in lens.probs[:, j]])
        t = self.query_one("#lens-table", DataTable)
        t.clear(columns=True)
        t.add_columns("layer", *[f"{visible_token(x)} P / rank" for x in lens.targets])
        for layer in range(lens.probs.shape[0]):
            t.add_row(str(layer + 1), *[f"{pct(float(lens.probs[layer, j]))} / {int(lens.ranks[layer, j])}"
                                        for j in range(lens.probs.shape[1])])
