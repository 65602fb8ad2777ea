"""Attention: the last position's attention by Hamming distance and by cluster, and the V × V
average attention map (Fig. 3c)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from lca_tui.panels.inspector_tabs.base import InspectedRun, InspectorTab, _num, bit_labels
from widgets import Heatmap


class AttentionTab(InspectorTab):
    ID, TITLE = "insp-attention", "Attention"

    def compose(self) -> ComposeResult:
        with Horizontal(id="insp-attention-row"):
            with Vertical(id="insp-attention-left"):
                yield Static("", id="insp-attention-note")
                yield DataTable(id="insp-attention-table", cursor_type="row", zebra_stripes=True)
            yield Heatmap(id="insp-attention-map")

    def on_mount(self) -> None:
        self.query_one("#insp-attention-table", DataTable).add_columns(
            "key token group", "mean weight", "L·mean", "mass")

    def draw(self, run: InspectedRun) -> None:
        r = run.report
        h = r.attention_hamming
        self.query_one("#insp-attention-note", Static).update(
            f"attention of the last position on {r.n_samples} samples; L·mean = 1 is uniform (1/L = "
            f"{_num(1 / r.L)}); mass = mean total weight on the group")
        t = self.query_one("#insp-attention-table", DataTable)
        t.clear()
        for k, mean, mass in zip(h.labels, h.mean, h.mass):
            name = "D_H = 0 (t_L itself)" if k == 0 else f"D_H = {k}"
            t.add_row(name, _num(mean, ".4f"), _num(r.L * mean, ".2f"), _num(mass, ".3f"))
        for kb, grp in r.attention_cluster.items():
            for lab, mean, mass in zip(grp.labels, grp.mean, grp.mass):
                t.add_row(f"{lab} cluster, first {kb} bit{'s' if kb > 1 else ''}", _num(mean, ".4f"),
                          _num(r.L * mean, ".2f"), _num(mass, ".3f"))
        labels = bit_labels(r.m)
        self.query_one("#insp-attention-map", Heatmap).set_matrix(
            r.attention_matrix, row_labels=labels,
            title=f"average attention, query (rows) × key (cols) — {r.attention_samples} samples")
