"""Spectra: the singular values of W_E and W_V, with the gap after index m."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from lca_tui.panels.inspector_tabs.base import InspectedRun, InspectorTab, _num
from widgets import LiveCurve


class SpectraTab(InspectorTab):
    ID, TITLE = "insp-spectra", "Spectra"

    def compose(self) -> ComposeResult:
        yield Static("", id="insp-spectra-info")
        yield LiveCurve(title="singular values", xlabel="index i", ylabel="σ_i", id="insp-spectra-curve")

    def draw(self, run: InspectedRun) -> None:
        r = run.report
        m = r.m
        self.query_one("#insp-spectra-info", Static).update(
            f"gap after index m = {m}: σ_m/σ_(m+1) = [b]{_num(r.gap_W_E)}[/b] for W_E, "
            f"[b]{_num(r.gap_W_V)}[/b] for W_V")
        c = self.query_one("#insp-spectra-curve", LiveCurve)
        c.clear()
        c.set_series("σ(W_E)", list(range(1, len(r.sv_W_E) + 1)), list(r.sv_W_E))
        c.set_series("σ(W_V)", list(range(1, len(r.sv_W_V) + 1)), list(r.sv_W_V))
        top = max([float(r.sv_W_E.max()) if r.sv_W_E.size else 0.0,
                   float(r.sv_W_V.max()) if r.sv_W_V.size else 0.0])
        c.set_series(f"gap after m = {m}", [m + 0.5, m + 0.5], [0.0, top])
