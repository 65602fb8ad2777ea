"""The inspector panel (placeholder until its issue lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Label


class InspectorPanel(Widget):
    PANEL_NAME = "inspector"
    BINDINGS = []

    def compose(self) -> ComposeResult:
        yield Label("Inspector — trained matrices as terminal charts (coming with the trainer panel).",
                    classes="hint")
