"""The inspector's modal: ask for a run directory to inspect."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class OpenRunScreen(ModalScreen):
    """Ask for a run directory (the folder holding config.json and checkpoint.safetensors)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close", id="inspector.open.close")]

    def __init__(self, initial: str = ""):
        super().__init__()
        self.initial = initial

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-small"):
            yield Label("Open a run directory (config.json + checkpoint.safetensors)", classes="panel-title")
            yield Input(value=self.initial, placeholder="path/to/run — enter opens, escape closes",
                        id="open-run-path")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#open-run-path")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
