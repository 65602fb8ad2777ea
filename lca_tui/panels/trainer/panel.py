"""The trainer panel: a validated form for every LCA/trainer setting, live curves, the session's runs.

The tuning fields (``TUNING``: d, d_a, lr, schedule, warm-up, steps, batch, weight decay, β2, eval
every) follow the default recipe (``engine.lca.config.recipe_config``) for the form's m and L until
the user edits one; an edited field keeps the user's value (its label says "edited", the others
"recipe") and F4 puts every tuning field back on the recipe. The untouched form therefore starts
exactly ``recipe_config({m, L, ...})``, the config ``lca-tui train`` would use.

Training runs in thread workers (``engine.lca.runner.TrainingRun``). A worker touches nothing of the
UI: it posts ``RunStarted`` (the run's handle), then ``TrainSnapshot`` messages carrying the events
since the previous one (at most ``SNAPSHOT_HZ`` a second, merged if the UI falls behind), then
``RunFinished``. The panel folds them into its ``RunState``s on the UI thread and redraws on a 4 Hz
timer when something changed — never per step. Pause/stop are events the trainer checks between steps.

The session's earlier runs are listed with the step and best accuracy their metrics reached; a
resumable one says where a resume starts, and F5 offers to resume it (``action_start``).
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, Static

from engine.session.store import LIVE_STATUSES
from lca_tui.messages import InspectRun, RunFinished, RunStarted, TrainSnapshot
from lca_tui.panels.base import Panel
from lca_tui.panels.editors import Field
from lca_tui.panels.trainer import form, worker
from lca_tui.panels.trainer.form import FORM_FIELDS, TUNING
from lca_tui.panels.trainer.runs import RunState, newest_resumable, refresh_table, table_columns
from widgets import LiveCurve

REDRAW_S = 0.25


class TrainerPanel(Panel):
    PANEL_NAME = "trainer"
    PANEL_KEY = "2"
    BINDINGS = [
        Binding("f4", "recipe", "Recipe", id="trainer.recipe"),
        Binding("f5", "start", "Start", id="trainer.start"),
        Binding("f6", "pause", "Pause/resume", id="trainer.pause"),
        Binding("f7", "stop", "Stop", id="trainer.stop"),
        Binding("f8", "restart", "Restart", id="trainer.restart"),
        Binding("f9", "inspect", "Inspect", id="trainer.inspect"),
        Binding("space", "toggle_overlay", "Overlay", id="trainer.overlay", show=False),
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.runs: dict[str, RunState] = {}
        self.selected: str | None = None
        self.config = None
        self.errors: dict[str, str] = {}
        #: Tuning fields the user edited: they keep the user's value when m or L changes.
        self.edited: set[str] = set()
        self._shown: dict[str, str] = {}  # what the panel itself last put into each field
        self._dirty = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        from engine.lca.config import recipe_config

        defaults = recipe_config().flat()
        with VerticalScroll(id="trainer-form"):
            yield Label("settings · F5 starts", classes="panel-title")
            yield Static(self._recipe_note(defaults["m"], defaults["L"]), id="form-recipe", classes="field-label")
            for name, label in FORM_FIELDS:
                yield Label(self._label(name, label), classes="field-label", id=f"l-{name}")
                value = defaults[name]
                self._shown[name] = form.shown(value)
                yield Field(self._shown[name], id=f"f-{name}")
                yield Static("", id=f"e-{name}", classes="field-error")
            yield Static("", id="form-error", classes="field-error")
            with Horizontal(id="trainer-buttons"):
                yield Button("Start F5", id="start-button", variant="primary")
        with Vertical(id="trainer-main"):
            yield Static("no run yet — fill the form and press F5", id="trainer-stats")
            with Horizontal(id="trainer-curves"):
                yield LiveCurve(title="loss", xlabel="step", ylabel="cross-entropy", id="loss-curve")
                yield LiveCurve(title="eval accuracy vs Bayes", xlabel="step", ylabel="accuracy",
                                y_range=(0.0, 1.0), id="acc-curve")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.validate()
        self.set_interval(REDRAW_S, self._redraw_if_dirty)
        self.load_session_runs()

    # ------------------------------------------------------------------ form
    def form_values(self) -> dict[str, str]:
        return {name: self.query_one(f"#f-{name}", Input).value for name, _ in FORM_FIELDS}

    def set_field(self, name: str, value) -> None:
        """Set a field as if the user typed it (a tuning field counts as edited)."""
        self.query_one(f"#f-{name}", Input).value = str(value)

    def _label(self, name: str, label: str) -> str:
        if name not in TUNING:
            return label
        return f"{label} · [b]edited[/b]" if name in self.edited else f"{label} · recipe"

    def _recipe_note(self, m, L) -> str:
        edited = [n for n, _ in FORM_FIELDS if n in self.edited]
        if not edited:
            return f"tuning: the recipe for m={m}, L={L} (F4)"
        return f"tuning: the recipe for m={m}, L={L} except {', '.join(edited)} (F4 resets)"

    def _show_recipe_marks(self, m, L) -> None:
        for name, label in FORM_FIELDS:
            if name in TUNING:
                self.query_one(f"#l-{name}", Label).update(self._label(name, label))
        self.query_one("#form-recipe", Static).update(self._recipe_note(m, L))

    def recipe_values(self) -> dict | None:
        """The recipe's values for the tuning fields the user has not edited, given the form's m, L
        and the edited fields that the recipe depends on (d sets d_a; steps sets warm-up and eval
        every): exactly what ``recipe_config`` of the form fills in. None while m or L is invalid."""
        return form.recipe_values(self.form_values(), self.edited)

    def apply_recipe(self) -> None:
        """Put the recipe's values into every tuning field the user has not edited."""
        values = self.recipe_values()
        if values is None:
            return
        for name, value in values.items():
            box = self.query_one(f"#f-{name}", Input)
            self._shown[name] = str(value)
            if box.value != str(value):
                with box.prevent(Input.Changed):  # not a user edit
                    box.value = str(value)
        texts = self.form_values()
        self._show_recipe_marks(texts["m"].strip(), texts["L"].strip())

    def action_recipe(self) -> None:
        """Every tuning field back on the recipe for the form's m and L (F4)."""
        self.edited.clear()
        self.apply_recipe()
        self.validate()

    def validate(self):
        from engine.lca.config import parse_flat

        self.config, self.errors = parse_flat(self.form_values())
        for name, _ in FORM_FIELDS:
            bad = name in self.errors
            self.query_one(f"#f-{name}", Input).set_class(bad, "-invalid")
            self.query_one(f"#e-{name}", Static).update(self.errors.get(name, ""))
        self.query_one("#form-error", Static).update(self.errors.get("", ""))
        self.query_one("#start-button", Button).disabled = self.config is None
        return self.config

    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("f-"):
            # Edited = a tuning field whose text is not what the panel itself put there (the form's
            # first values arrive as Changed too). Every field is checked, not just this event's:
            # several fields set at once all count before the recipe moves the others.
            for name in TUNING:
                if self.query_one(f"#f-{name}", Input).value != self._shown.get(name):
                    self.edited.add(name)
            self.apply_recipe()
            self.validate()

    @on(Input.Submitted)
    def _field_submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("f-"):
            self.action_start()

    @on(Button.Pressed, "#start-button")
    def _start_pressed(self) -> None:
        self.action_start()

    # ------------------------------------------------------------------ runs
    def load_session_runs(self) -> None:
        """Show the session's earlier runs (interrupted ones can be resumed with F5)."""
        session = getattr(self.app, "session", None)
        if session is None:
            return
        for info in session.runs():
            if info.id in self.runs:
                continue
            st = RunState(info.id, info.path, info.summary, info.steps or 0, status=info.status,
                          step=info.step, best=info.best_accuracy, bayes=info.bayes_accuracy,
                          resume_from=info.checkpoint_step if info.resumable else None, updated=info.updated)
            for ev in session.metrics(info.id):
                if ev.get("event") == "train":
                    st.train.append(ev)
                elif ev.get("event") == "eval":
                    st.evals.append(ev)
            self.runs[info.id] = st
        self._refresh_table()

    def action_start(self) -> None:
        """F5: resume the selected run when the runs table has focus and it is resumable; else, while
        the session holds a resumable run, ask (``ResumeScreen``) whether to resume the newest one
        or start a new run; else start a new run with the form's settings."""
        sel = self._current()
        if self.query_one("#runs-table").has_focus and sel is not None and sel.resumable:
            self._launch(sel, resume=True)
            return
        offer = newest_resumable(self.runs.values())
        if offer is None:
            self._start_new()
            return
        from lca_tui.screens.resume import ResumeScreen

        def chosen(choice: str | None) -> None:
            if choice == "resume" and offer.resumable:
                self.selected = offer.run_id
                self._launch(offer, resume=True)
            elif choice == "new":
                self._start_new()

        self.app.push_screen(ResumeScreen(offer.run_id, offer.status, offer.resume_from, offer.steps), chosen)

    def _start_new(self) -> None:
        """A new run with the form's settings."""
        cfg = self.validate()
        if cfg is None:
            self.app.notify("fix the marked settings first", severity="warning")
            return
        session = getattr(self.app, "session", None)
        if session is not None:
            path = session.new_run_dir(cfg)
        else:
            import tempfile

            from engine.lca.rundir import new_run_id

            path = Path(tempfile.mkdtemp(prefix="lca-run-")) / new_run_id(cfg)
        st = RunState(path.name, path, cfg.summary(), cfg.train.steps)
        st._batch = cfg.train.batch_size
        self.runs[st.run_id] = st
        self.selected = st.run_id
        self._launch(st, resume=False, cfg=cfg)

    def _launch(self, st: RunState, resume: bool, cfg=None) -> None:
        st.status, st.error = "starting", None
        self._train(st.run_id, st.path, resume, cfg, self._torch_workers)
        self._refresh_table()

    @work(thread=True, exit_on_error=False, group="train")
    def _train(self, run_id: str, path: Path, resume: bool, cfg, share=1) -> None:
        """The training thread (``worker.train``): it posts messages and touches no UI state."""
        worker.train(self.post_message, run_id, path, resume, cfg, share)

    def on_run_started(self, msg: RunStarted) -> None:
        st = self.runs.get(msg.run_id)
        if st is None:
            return
        st.started_run(msg.run, msg.bayes, msg.batch_size, msg.step, msg.resumed)
        self._dirty = True

    def on_train_snapshot(self, msg: TrainSnapshot) -> None:
        st = self.runs.get(msg.run_id)
        if st is None:
            return
        st.fold(msg.events, msg.status)
        self._dirty = True

    def on_run_finished(self, msg: RunFinished) -> None:
        st = self.runs.get(msg.run_id)
        if st is None:
            return
        st.status, st.error = ("error", msg.error) if msg.error else (msg.status, None)
        self._redraw()
        if st.error:
            self.app.notify(f"run {st.run_id}: {st.error}", severity="error", timeout=8)
        elif st.status == "diverged":
            self.app.notify(f"run {st.run_id} diverged (loss became NaN/inf); checkpoint kept",
                            severity="error", timeout=8)
        else:
            self.app.notify(f"run {st.run_id} {st.status} at step {st.step}", timeout=4)

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self._redraw()

    def _torch_workers(self) -> int:
        """Threads of this process running torch now (read by each run's Governor between steps):
        the training runs (this one included) and the model thread while it has a job."""
        host = getattr(self.app, "model_host", None)
        runs = list(self.runs.values())  # one C-level copy: safe beside the UI thread's inserts
        training = sum(1 for st in runs if st.run is not None and st.status in LIVE_STATUSES)
        return max(1, training) + bool(host is not None and host.busy)

    def running_jobs(self) -> int:
        return sum(1 for st in self.runs.values() if st.run is not None and st.status in LIVE_STATUSES)

    def _redraw(self) -> None:
        self._dirty = False
        self._refresh_table()
        st = self.runs.get(self.selected) if self.selected else None
        stats = self.query_one("#trainer-stats", Static)
        loss, acc = self.query_one("#loss-curve", LiveCurve), self.query_one("#acc-curve", LiveCurve)
        loss.clear()
        acc.clear()
        if st is None:
            stats.update("no run yet — fill the form and press F5")
            return
        rate = f"{st.rate:,.0f} samples/s" if st.rate else "—"
        err = f" · [b]{st.error}[/b]" if st.error else ""
        live = f"{rate} · ETA {st.eta()} · " if st.status in ("running", "paused", "starting") else ""
        resume = f" · resumable from step {st.resume_from}" if st.resumable else ""
        stats.update(f"[b]{st.run_id}[/b] {st.status} · step {st.step}/{st.steps}{resume}{err}\n{live}{st.summary}")
        if st.train:
            loss.set_series("train loss", [e["step"] for e in st.train], [e["loss"] for e in st.train])
        if st.evals:
            loss.set_series("eval loss", [e["step"] for e in st.evals], [e["loss"] for e in st.evals])
            acc.set_series(f"{st.run_id[-4:]} acc", [e["step"] for e in st.evals], [e["accuracy"] for e in st.evals])
        for other in self.runs.values():
            if other.overlay and other is not st and other.evals:
                acc.set_series(f"{other.run_id[-4:]} {other.summary[:18]}", [e["step"] for e in other.evals],
                               [e["accuracy"] for e in other.evals])
        if st.bayes is not None:
            acc.set_hline("Bayes-optimal", st.bayes)

    def _columns(self) -> tuple[str, ...]:
        """The runs table's columns for its width (``runs.table_columns``)."""
        return table_columns(self.query_one("#runs-table", DataTable).size.width)

    def _refresh_table(self) -> None:
        """Update the runs table in place (rebuilt only when runs or its columns change)."""
        refresh_table(self.query_one("#runs-table", DataTable), self.runs, self.selected)

    def on_resize(self) -> None:
        if [c.value for c in self.query_one("#runs-table", DataTable).columns] != list(self._columns()):
            self._refresh_table()

    @on(DataTable.RowHighlighted, "#runs-table")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value != self.selected:
            self.selected = event.row_key.value
            self._redraw()

    # ------------------------------------------------------------------ actions
    def _current(self) -> RunState | None:
        return self.runs.get(self.selected) if self.selected else None

    def action_pause(self) -> None:
        st = self._current()
        if st is None or st.run is None or st.status not in LIVE_STATUSES:
            return
        tr = st.run.trainer
        if tr.pause_event.is_set():
            tr.pause_event.clear()
        else:
            tr.pause_event.set()

    def action_stop(self) -> None:
        st = self._current()
        if st is not None and st.run is not None:
            st.run.trainer.stop()

    def action_restart(self) -> None:
        """A new run with the selected run's settings (fresh weights, same seed)."""
        st = self._current()
        if st is None:
            return
        from engine.lca.rundir import RunDir

        try:
            cfg = RunDir(st.path).config()
        except Exception as exc:  # noqa: BLE001 - a damaged run folder: one line, the app keeps running
            from engine.errors import describe

            self.app.notify(describe(exc), severity="error")
            return
        self.load_values(cfg.flat())
        self._start_new()

    def load_values(self, flat: dict) -> None:
        """Fill the form with a run's settings. A tuning field counts as edited when the recipe
        (for this m, L and the other edited fields) would give it another value."""
        edited = form.edited_fields(flat)
        self.edited = edited
        for name, _ in FORM_FIELDS:
            if name in flat:
                value = flat[name]
                box = self.query_one(f"#f-{name}", Input)
                self._shown[name] = form.shown(value)
                with box.prevent(Input.Changed):
                    box.value = self._shown[name]
        self._show_recipe_marks(flat.get("m"), flat.get("L"))
        self.validate()

    def action_toggle_overlay(self) -> None:
        st = self._current()
        if st is not None:
            st.overlay = not st.overlay
            self._redraw()

    def action_inspect(self) -> None:
        st = self._current()
        if st is None:
            self.app.notify("no run to inspect yet", severity="warning")
            return
        live = st.run is not None and st.status in LIVE_STATUSES
        self.post_message(InspectRun(st.run_id, st.path, st.run.trainer if live else None))

    def commands(self) -> list[tuple[str, str, object]]:
        """This panel's command-palette entries: (label, help, callback)."""
        return [
            ("Trainer: start run", "Start a run with the form's settings, or resume an interrupted one (F5)",
             self.action_start),
            ("Trainer: recipe", "Every tuning field back on the default recipe for m and L (F4)",
             self.action_recipe),
            ("Trainer: pause / resume", "Pause or resume the selected run (F6)", self.action_pause),
            ("Trainer: stop", "Stop the selected run; the checkpoint is kept (F7)", self.action_stop),
            ("Trainer: restart", "A new run with the selected run's settings (F8)", self.action_restart),
            ("Trainer: inspect run", "Open the selected run in the inspector (F9)", self.action_inspect),
        ]

    def stop_all(self) -> None:
        for st in self.runs.values():
            if st.run is not None:
                st.run.trainer.stop()
