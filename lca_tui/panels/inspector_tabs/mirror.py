"""Hijack mirror: the tab around ``lca_tui.panels.inspector_mirror.MirrorView`` (Sec. 5.5), which
computes in its own worker on the model copy each inspected run brings."""

from __future__ import annotations

from textual.app import ComposeResult

from lca_tui.panels.inspector_mirror import MirrorView
from lca_tui.panels.inspector_tabs.base import InspectedRun, InspectorTab


class MirrorTab(InspectorTab):
    ID, TITLE = "insp-mirror", "Hijack mirror"

    def compose(self) -> ComposeResult:
        yield MirrorView(id="insp-mirror-view")

    def draw(self, run: InspectedRun) -> None:
        if run.model is not None:
            self.query_one(MirrorView).set_model(run.cfg, run.model, run.label, run.step)

    def pin_data(self) -> dict | None:
        """What the panel's ``p`` pins: the mirror's trace and sweep (None: nothing yet)."""
        return self.query_one(MirrorView).pin_data()
