"""Geometry: the inner products of W_E against the Hamming distance of the tokens (Fig. 3b) and the
eq. 5.2 fit."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from lca_tui.panels.inspector_tabs.base import InspectedRun, InspectorTab, _num
from widgets import LiveCurve


class GeometryTab(InspectorTab):
    ID, TITLE = "insp-geometry", "Geometry"

    def compose(self) -> ComposeResult:
        yield Static("", id="insp-geometry-fit")
        yield LiveCurve(title="⟨W_E(t), W_E(t')⟩ vs Hamming distance (Fig. 3b, eq. 5.2)",
                        xlabel="D_H(t, t')", ylabel="inner product", id="insp-geometry-curve")

    def draw(self, run: InspectedRun) -> None:
        r = run.report
        g = r.geometry
        ks = list(range(r.m + 1))
        means = "  ".join(f"{k}: {_num(v)}" for k, v in zip(ks, g.mean_inner))
        self.query_one("#insp-geometry-fit", Static).update(
            f"eq. 5.2 fit over {len(g.inner)} pairs: a = [b]{_num(g.a)}[/b], b = [b]{_num(g.b)}[/b], "
            f"b₀ = [b]{_num(g.b0)}[/b], R² = [b]{_num(g.r2, '.3f')}[/b]\n"
            f"mean inner product per D_H — {means}")
        c = self.query_one("#insp-geometry-curve", LiveCurve)
        c.clear()
        c.set_series("max over pairs", ks, list(r.pair_max))
        c.set_series("min over pairs", ks, list(r.pair_min))
        c.set_series("mean", ks, list(g.mean_inner))
        c.set_series("fit −a·D_H+b, b₀ at 0", ks, list(g.fitted()))
