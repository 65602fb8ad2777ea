"""The trainer panel (placeholder until its issue lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Label


class TrainerPanel(Widget):
    PANEL_NAME = "trainer"
    BINDINGS = []

    def compose(self) -> ComposeResult:
        yield Label("Trainer — train the one-layer transformer on the LCA task. Headless for now: "
                    "lca-tui train --help", classes="hint")
