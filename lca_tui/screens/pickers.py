"""Small modal pickers: a CounterFact record (search by subject or relation) and a model name."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option


class RecordPicker(ModalScreen):
    """Type to filter records by subject, relation id or target; enter picks, escape closes."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close", id="picker.close")]
    MAX_SHOWN = 200

    def __init__(self, records, current=None):
        super().__init__()
        self.records = list(records)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Choose a CounterFact record — type to search subject, relation (P190) or target",
                        classes="panel-title")
            yield Input(placeholder="search…", id="record-search")
            yield OptionList(id="record-list")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, text: str) -> None:
        words = text.lower().split()
        shown = []
        for i, r in enumerate(self.records):
            hay = f"{r.subject} {r.relation_id} {r.target_true} {r.target_false} {r.text}".lower()
            if all(w in hay for w in words):
                shown.append(Option(f"{r.relation_id:>6}  {r.text}  → {r.target_true} / {r.target_false}", id=str(i)))
            if len(shown) >= self.MAX_SHOWN:
                break
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options(shown)
        if shown:
            ol.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None and ol.option_count:
            self.dismiss(self.records[int(ol.get_option_at_index(ol.highlighted).id)])

    def on_key(self, event) -> None:
        if event.key in ("down", "up") and self.query_one(Input).has_focus:
            ol = self.query_one(OptionList)
            if ol.option_count:
                cur = ol.highlighted or 0
                ol.highlighted = max(0, min(ol.option_count - 1, cur + (1 if event.key == "down" else -1)))
            event.stop()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.records[int(event.option.id)])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ModelPicker(ModalScreen):
    """Enter an alias (smollm2-135m), a Hugging Face id or a local folder."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close", id="picker.close")]

    def __init__(self, current: str | None):
        super().__init__()
        self.current = current or ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-small"):
            yield Label("Load a language model: alias (smollm2-135m), Hugging Face id or local path",
                        classes="panel-title")
            yield Input(value=self.current, placeholder="e.g. openai-community/gpt2 or /models/llama",
                        id="model-name")
            yield Label("enter loads · escape cancels · a failed load keeps the current model", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
