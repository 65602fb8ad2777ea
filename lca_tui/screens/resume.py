"""The trainer's F5 question when the session holds a resumable run: resume it or start a new one."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class ResumeScreen(ModalScreen):
    """Dismissed with "resume", "new" or None (escape)."""

    BINDINGS = [
        Binding("r", "choose('resume')", "Resume", id="trainer.offer.resume"),
        Binding("n", "choose('new')", "New run", id="trainer.offer.new"),
        Binding("escape", "choose(None)", "Cancel", id="trainer.offer.cancel"),
    ]

    def __init__(self, run_id: str, status: str, step: int, steps: int):
        super().__init__()
        self.run_id, self.status, self.step, self.steps = run_id, status, step, steps

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-small", id="resume-dialog"):
            yield Label(f"Resume the {self.status} run, or start a new one?", classes="panel-title")
            yield Static(f"[b]r[/b]  Resume {escape(self.run_id)} from step {self.step} (of {self.steps})\n"
                         "[b]n[/b]  Start a new run with the form's settings\n"
                         "[b]escape[/b]  Cancel", id="resume-choices")

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
