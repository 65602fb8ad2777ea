"""The hijack panel: edit a prompt, watch next-token probabilities move, step the hijack n.

Every number shown comes from the engine (``engine.hijack``) through the app's model thread; this
module only wires keys, state and requests; each tab is a view (``views/``), a widget the panel
composes and feeds (``draw_probe`` with a ``ProbeContext``; the sweep and ES results), whose own
keys the panel lifts (``view_bindings``, run through ``action_view_key``); asking for sweeps and
ES evaluations and taking their answers is ``model_jobs.py`` (a mixin). A keystroke's probe goes
straight to the app's model thread (``app.want_probe``: no bubbling between the key and the
probe); the rest it (and the views) posts upward (``ModelJobWanted``,
``RecordResult``, ``PinProbe``) and the model thread answers it directly (``ProbeAnswered``,
``JobProgress``, ``JobFinished``). Answers to stale requests are dropped.
"""

from __future__ import annotations

import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static, TabbedContent, TextArea

from lca_tui import instrument
from lca_tui.frames import HOLD_S
from lca_tui.messages import (
    CancelModelJob,
    PinProbe,
    ProbeAnswered,
    ProbeRequest,
    ProbeWanted,
)
from lca_tui.panels.base import Panel
from lca_tui.panels.editors import Editor, Field
from lca_tui.panels.hijack.model_jobs import HijackJobs
from lca_tui.panels.hijack.targets import COLUMNS, target_rows
from lca_tui.panels.hijack.views import VIEWS, ProbeContext, ShowView, view_bindings
from widgets import BarRow, LayerBars, ProbabilityBars, RowTable

VIEW_IDS = tuple(v.ID for v in VIEWS)
DEFAULT_SUBJECT = "The Eiffel Tower"
#: The first screen teaches how to leave the editor and switch panels (digits are text in it).
EDITOR_HINT = "esc: leave editor · alt+1/2/3: panels"


def lines_change(widget: Static, markup: str) -> bool:
    """Whether ``markup`` wraps to another number of lines than ``widget`` (height auto) now shows."""
    from rich.text import Text

    width, height = widget.content_size
    if width <= 0:
        return True
    return len(Text.from_markup(markup).wrap(widget.app.console, width)) != height


class HijackPanel(HijackJobs, Panel):
    PANEL_NAME = "hijack"
    PANEL_KEY = "1"
    DEFAULT_CSS = """
    #flip-info { height: auto; max-height: 35%; overflow-y: auto; padding: 0 1; }
    #template-input { display: none; height: 3; }
    #template-input.-visible { display: block; }
    """
    BINDINGS = [
        Binding("plus,equals_sign", "n_step(1)", "n+1", id="hijack.n_up"),
        Binding("minus", "n_step(-1)", "n−1", id="hijack.n_down"),
        Binding("r", "pick_record", "Record", id="hijack.record"),
        Binding("s", "next_scheme", "Scheme", id="hijack.scheme"),
        Binding("t", "add_target", "Target+", id="hijack.add_target"),
        Binding("u", "custom_template", "Custom scheme", id="hijack.custom", show=False),
        Binding("x", "remove_target", "Remove target", id="hijack.remove_target", show=False),
        Binding("w", "sweep", "Sweep n", id="hijack.sweep"),
        Binding("e", "evaluate", "Evaluate ES", id="hijack.evaluate"),
        Binding("c", "cancel", "Cancel", id="hijack.cancel", show=False),
        Binding("v", "next_view", "View", id="hijack.view"),
        Binding("p", "pin", "Pin", id="hijack.pin"),
        Binding("i", "edit_prompt", "Edit prompt", id="hijack.edit"),
        Binding("escape", "leave_editor", "Leave editor", id="hijack.leave_editor", show=False),
        *view_bindings(VIEWS),  # each view's own keys (l: lens, k: trace, [ ] { }: attention, d < >: repair)
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.records = []
        self.record = None
        self.scheme = "relation"
        self.template: str | None = None  # the custom scheme's template, once one is accepted
        self.n = 0
        self.targets: list[str] = []
        self.roles: dict[str, str] = {}  # target string -> "true" / "false" (the record's two targets)
        self.seq = 0
        self.last_request: ProbeRequest | None = None
        self.last_result = None
        self.shown_seq = -1
        self.probe_s: float | None = None  # the engine time of the newest answer drawn (frame hold)
        self.eval_job: int | None = None
        self.sweep_job: int | None = None
        self.overlay_job: int | None = None  # the defended ES curve (the Repair view's defense)
        self.eval_result = None
        self.eval_results: dict[tuple[str, str], object] = {}  # (model, scheme) -> its latest EfficacyResult
        self.sweep_result = None
        self._setting_text = False
        self._shown: dict[str, str] = {}  # text now in the toolbar / error line (skip same updates)
        self._hijacked: bool | None = None  # the toolbar's mark, from the newest answer
        self.views = {v.ID: v() for v in VIEWS}  # the tabs' widgets, composed below

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Vertical(id="hijack-left"):
            yield Static("", id="hijack-toolbar")
            yield Editor("", id="prompt", soft_wrap=True, show_line_numbers=False)
            yield RowTable(COLUMNS, id="targets")
            yield Field(placeholder="target to track, e.g. ␣Paris (leading space matters) — enter adds",
                        id="target-input")
            yield Field(placeholder="custom scheme: a sentence with {subject} {target_true} {target_false} — "
                                    "enter uses it", id="template-input")
            yield Static("", id="hijack-error", classes="error-line -empty")
            with TabbedContent(id="hijack-views", initial=VIEW_IDS[0]):
                yield from self.views.values()
        with Vertical(id="hijack-right"):
            yield Label("next token", classes="panel-title")
            yield ProbabilityBars(id="topk-bars")
            yield Static("", id="probe-info")
            yield Label("logit lens: true vs false", classes="panel-title", id="lens-pair-title")
            yield LayerBars(id="lens-pair")

    def on_mount(self) -> None:
        prompt = self.query_one("#prompt", TextArea)
        prompt.border_title = "prompt"
        prompt.border_subtitle = EDITOR_HINT
        from engine.hijack.counterfact import load_counterfact

        self.records = load_counterfact("builtin")
        start = next((r for r in self.records if r.subject == DEFAULT_SUBJECT), self.records[0])
        self.use_record(start)

    # ------------------------------------------------------------------ state -> prompt
    def use_record(self, record) -> None:
        self.record = record
        self.targets = [" " + record.target_true, " " + record.target_false]
        self.roles = {self.targets[0]: "true", self.targets[1]: "false"}
        self.rebuild_prompt()

    def rebuild_prompt(self) -> None:
        from engine.hijack.schemes import build_prompt

        if self.record is None:
            return
        try:
            text = build_prompt(self.record, self.scheme, self.n, self.template)
        except Exception as exc:  # noqa: BLE001 - e.g. a custom template without one
            from engine.errors import describe

            self.show_error(describe(exc))
            return
        self._setting_text = True
        self.query_one("#prompt", TextArea).text = text
        self._setting_text = False
        self.request_probe()

    def prompt_text(self) -> str:
        return self.query_one("#prompt", TextArea).text

    def _refresh_toolbar(self, hijacked: bool | None = None, keep: bool = False) -> None:
        """The record line; ``hijacked`` is the newest answer's mark (None: no true/false pair), and
        ``keep`` keeps the last answer's mark while a new request is on its way (no repaint per key)."""
        r = self.record
        rec = f"{r.subject} ({r.relation_id}) {r.target_true}→{r.target_false}" if r else "no record"
        if keep:
            hijacked = self._hijacked
        self._hijacked = hijacked
        mark = ""
        if hijacked is True:
            mark = "  [b]HIJACKED: false target ahead[/b]"
        elif hijacked is False:
            mark = "  true target ahead"
        # "n=0" is one word, so a narrow screen never wraps inside it
        text = f"record [b]{rec}[/b] · scheme [b]{self.scheme}[/b] · [b]n={self.n}[/b]{mark}"
        bar = self.query_one("#hijack-toolbar", Static)
        if text != self._shown.get("toolbar"):  # unchanged on most keystrokes: no repaint at all
            self._shown["toolbar"] = text
            bar.update(text, layout=lines_change(bar, text))  # a relayout only if it wraps anew
        bar.set_class(bool(hijacked), "-hijacked")

    # ------------------------------------------------------------------ probing
    @property
    def view(self) -> str:
        return self.query_one("#hijack-views", TabbedContent).active or "surprise"

    def request_probe(self) -> None:
        self._refresh_toolbar(keep=True)
        prompt = self.prompt_text()
        if not prompt.strip():
            self.show_error("the prompt is empty: type some text to probe")
            return
        self.seq += 1
        wants = self.views[self.view].PROBE if self.view in self.views else None
        # the shown view's read-out, and the target lens that the right column always draws
        analyses = tuple(dict.fromkeys(filter(None, (wants, "target_lens"))))
        req = ProbeRequest(self.seq, prompt, tuple(self.targets), top_k=10, analyses=analyses)
        self.last_request = req
        instrument.emit("request", prompt=prompt)
        at_once = self.app.want_probe(ProbeWanted(req, reply_to=self))  # straight to the model thread
        if at_once and self.probe_s is not None and self.probe_s <= HOLD_S:
            self.app.frames.hold()  # the echo waits for the answer: one frame for both (lca_tui/frames.py)

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self, event: TextArea.Changed) -> None:
        if not self._setting_text:
            self.request_probe()

    @on(TabbedContent.TabActivated, "#hijack-views")
    def _view_changed(self, event) -> None:
        if self.last_request is not None:
            self.request_probe()

    def on_probe_answered(self, msg: ProbeAnswered) -> None:
        """Drawn only if it answers the newest request (stale answers are dropped)."""
        if self.last_request is None or msg.request.seq != self.last_request.seq:
            return
        if msg.error:
            self.show_error(msg.error)
            self.app.frames.release()
            return
        t_answer = time.monotonic()
        self.show_error(None)
        self.last_result, self.shown_seq, self.probe_s = msg.result, msg.request.seq, msg.seconds
        self._draw(msg.result, msg.seconds)
        instrument.probe_drawn(msg, t_answer)  # the latency benchmark's stages (off by default)
        self.app.frames.release()  # the frame that carries the answer (and the held echo)

    def _draw(self, res, seconds: float) -> None:
        tracked = {t.target: i for i, t in enumerate(res.targets)}
        names = ("true", "false")
        rows = [BarRow(tp.token, tp.prob, tp.rank,
                       highlight=names[tracked[tp.token]] if tracked.get(tp.token, 9) < 2 else None)
                for tp in res.top_k]
        self.query_one("#topk-bars", ProbabilityBars).set_rows(rows)
        info = f"{len(res.tokens)} tokens · {1000 * seconds:.0f} ms"
        if res.reused_prefix:
            info += f" · {res.reused_prefix} cached"
        if res.truncated:
            info += f" · [b]{res.truncated} tokens cut from the left to fit the window[/b]"
        self.query_one("#probe-info", Static).update(info, layout=False)  # fixed height (tcss)
        rows, hijacked = target_rows(res.targets, self.roles)
        self.query_one("#targets", RowTable).set_rows(rows)
        self._refresh_toolbar(hijacked)
        self._draw_lens_pair(res)
        ctx = self.probe_context()
        for view in self.views.values():
            view.draw_probe(res, ctx)

    def probe_context(self) -> ProbeContext:
        """What the views are told beside a probe answer (the model's name: a new model traces again)."""
        return ProbeContext(record=self.record, scheme=self.scheme, model=(self.app.model_info or {}).get("name"),
                            shown=self.view, n=self.n)

    def _draw_lens_pair(self, res) -> None:
        """The right column's logit(true) − logit(false) per layer (the probe's ``TargetLens``) for the
        record's true/false pair (``self.roles``)."""
        bars = self.query_one("#lens-pair", LayerBars)
        pair = {role: target for target, role in self.roles.items()}
        lens = res.target_lens
        if lens is None or not all(pair.get(r) in lens.targets for r in ("true", "false")):
            bars.set_empty("no true/false pair (r picks a record)")
            return
        bars.set_values(lens.logit_diff(pair["true"], pair["false"]), true=pair["true"], false=pair["false"])

    def show_error(self, text: str | None) -> None:
        if (text or "") == self._shown.get("error", ""):  # cleared on every answer: usually a no-op
            return
        self._shown["error"] = text or ""
        line = self.query_one("#hijack-error", Static)
        line.update(text or "")
        line.set_class(not text, "-empty")

    # ------------------------------------------------------------------ actions
    def action_n_step(self, delta: int) -> None:
        self.n = max(0, self.n + delta)
        self.rebuild_prompt()

    def action_next_scheme(self) -> None:
        from engine.hijack.schemes import SCHEMES

        names = [s for s in SCHEMES if s != "custom" or self.template]
        self.scheme = names[(names.index(self.scheme) + 1) % len(names)] if self.scheme in names else names[0]
        self.rebuild_prompt()

    def action_pick_record(self) -> None:
        from lca_tui.screens.pickers import RecordPicker

        def chosen(record):
            if record is not None:
                self.use_record(record)

        self.app.push_screen(RecordPicker(self.records, self.record), chosen)

    def action_add_target(self) -> None:
        box = self.query_one("#target-input", Input)
        box.add_class("-visible")
        box.focus()

    @on(Input.Submitted, "#target-input")
    def _target_submitted(self, event: Input.Submitted) -> None:
        value = event.value.replace("␣", " ")
        box = self.query_one("#target-input", Input)
        if not value.strip():
            self.show_error("a target cannot be empty")
            return
        if value not in self.targets:
            self.targets.append(value)
        box.value = ""
        box.remove_class("-visible")
        self.query_one("#targets").focus()
        self.request_probe()

    def action_custom_template(self) -> None:
        """Type a custom scheme's template (the current one to edit, if any)."""
        box = self.query_one("#template-input", Input)
        if self.template and not box.value:
            box.value = self.template
        box.add_class("-visible")
        box.focus()

    @on(Input.Submitted, "#template-input")
    def _template_submitted(self, event: Input.Submitted) -> None:
        """Check the template on the current record; a bad one leaves it in the box with the message."""
        from engine.errors import UserError
        from engine.hijack.schemes import hijack_sentence

        value = event.value
        try:
            if self.record is None:
                raise UserError("choose a record first (r): the template is filled in from it")
            hijack_sentence(self.record, "custom", value)
        except UserError as exc:
            self.show_error(str(exc))
            return
        self.show_error(None)
        self.template, self.scheme = value.strip(), "custom"
        box = self.query_one("#template-input", Input)
        box.remove_class("-visible")
        self.query_one("#targets").focus()
        if self.n == 0:
            self.n = 1  # show the sentence at work
        self.rebuild_prompt()

    def action_remove_target(self) -> None:
        t = self.query_one("#targets", RowTable)
        row = t.cursor_row
        if 0 <= row < len(self.targets):
            self.roles.pop(self.targets.pop(row), None)  # its true/false role and the HIJACKED mark go too
            self.request_probe()

    def action_next_view(self) -> None:
        tc = self.query_one("#hijack-views", TabbedContent)
        tc.active = VIEW_IDS[(VIEW_IDS.index(tc.active) + 1) % len(VIEW_IDS)] if tc.active in VIEW_IDS else VIEW_IDS[0]

    async def action_view_key(self, view_id: str, action: str) -> None:
        """A view's own key (its ``BINDINGS``, lifted into the panel's by ``view_bindings``): run
        ``action`` on that view, wherever the focus is in the panel."""
        await self.views[view_id].run_action(action)

    def on_show_view(self, msg: ShowView) -> None:
        """A view asks to be shown (e.g. its key switched what it draws)."""
        msg.stop()
        self.query_one("#hijack-views", TabbedContent).active = msg.view_id

    def action_pin(self) -> None:
        """Pin what the shown view pins (``View.pin``: the Trace view its trace), else the current
        probe (the app adds the model name and a screenshot)."""
        if self.view in self.views and self.views[self.view].pin():
            return
        res = self.last_result
        if res is None:
            self.app.notify("nothing to pin yet", severity="warning")
            return
        self.post_message(PinProbe({
            "kind": "probe", "prompt": res.prompt,
            "top_k": [{"token": t.token, "prob": t.prob} for t in res.top_k],
            "targets": [{"target": t.target, "prob": t.prob, "first_token_prob": t.first_token_prob,
                         "rank": t.rank} for t in res.targets]}))

    def action_edit_prompt(self) -> None:
        self.query_one("#prompt", TextArea).focus()

    def action_leave_editor(self) -> None:
        self.query_one("#targets", RowTable).focus()

    def action_cancel(self) -> None:
        """Cancel this panel's evaluation or sweep, running or still queued, and the views' own jobs."""
        for job in (self.eval_job, self.sweep_job, self.overlay_job):
            if job is not None:
                self.post_message(CancelModelJob(job))
        for view in self.views.values():
            view.cancel()

    def commands(self) -> list[tuple[str, str, object]]:
        """This panel's command-palette entries: (label, help, callback)."""
        return [
            ("Hijack: n + 1", "Prepend one more hijack sentence", lambda: self.action_n_step(1)),
            ("Hijack: n − 1", "Prepend one fewer hijack sentence", lambda: self.action_n_step(-1)),
            ("Hijack: next scheme", "not-think, relation, reverse variants", self.action_next_scheme),
            ("Hijack: choose record…", "Search CounterFact records", self.action_pick_record),
            ("Hijack: custom scheme…", "Type a template with {subject}, {target_true}, {target_false}",
             self.action_custom_template),
            ("Hijack: add target", "Track another target string", self.action_add_target),
            ("Hijack: sweep n", "P(true), P(false) vs n for this record", self.action_sweep),
            ("Hijack: evaluate ES", "Efficacy vs n over the built-in records", self.action_evaluate),
            ("Hijack: cancel job", "Cancel the running evaluation or sweep", self.action_cancel),
            ("Hijack: next view", "Surprise, lens, attention, trace, sweep, ES, repair", self.action_next_view),
            ("Hijack: logit lens chart / table", "Switch the logit lens view (l)",
             lambda: self.views["lens"].run_action("toggle_table")),
            ("Hijack: trace curves / maps / heads / table", "Where the hijack happens (k)",
             lambda: self.views["trace"].run_action("next_mode")),
            ("Hijack: repair: next defense", "The Repair view's defense (d; < > step its α)",
             lambda: self.views["repair"].run_action("next_defense")),
            ("Hijack: pin probe", "Record the current probe and a screenshot in the session", self.action_pin),
        ]
