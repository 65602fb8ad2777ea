"""The lca-tui application shell: a tab strip naming the three panels, the panels, a status bar.

The app owns what panels share — the model thread, the session, the report and experiment
workers — and answers the request messages panels post upward (``lca_tui.messages``). Panels own
their keys and their command-palette entries. Every worker talks to the UI by posting messages.

The first frame comes before torch/transformers are imported: the model thread starts after it
and the status bar shows the loading state.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import partial, singledispatchmethod

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Tab, Tabs

from lca_tui import instrument
from lca_tui.experiment_runner import ExperimentRunner
from lca_tui.frames import FrameHold
from lca_tui.lifecycle import Lifecycle, install_resize_fix
from lca_tui.messages import (
    CancelModelJob,
    ExperimentDone,
    ExperimentProgress,
    InspectRun,
    JobFinished,
    ModelJobWanted,
    ModelLoaded,
    ModelLoadFailed,
    ModelLoading,
    PinMirror,
    PinProbe,
    ProbeWanted,
    RecordResult,
    ReportWritten,
    RunFinished,
    RunStarted,
)
from lca_tui.panels import PANEL_CLASSES, InspectorPanel
from lca_tui.panels.base import Panel, panel_bindings
from lca_tui.records import Evaluation, PinnedRepair, PinnedTrace, Sweep
from lca_tui.settings import load_keymap, load_settings, save_settings
from lca_tui.status import memory_in_use  # tests patch lca_tui.app.memory_in_use
from themes import DEFAULT_THEME, STYLESHEET, THEMES
from widgets import StatusBar

PANELS = tuple(k.PANEL_NAME for k in PANEL_CLASSES)  # hijack, trainer, inspector
install_resize_fix()  # issue 23: a resize during the first layout looped forever (lifecycle.py)


class LcaApp(App):
    TITLE = "lca-tui"
    CSS_PATH = str(STYLESHEET)
    #: Screen classes for small terminals (80 x 24): themes/app.tcss narrows the layout under them.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    #: The panels, in tab order (the help screen lists their keys from here, not from lca_tui.panels).
    panel_classes = PANEL_CLASSES
    BINDINGS = [
        *panel_bindings(PANEL_CLASSES),  # 1 2 3, and alt+1 2 3 from editors (panels/base.py)
        Binding("question_mark,f1", "help", "Help", id="app.help", key_display="?"),
        Binding("m", "pick_model", "Model", id="app.model"),
        Binding("ctrl+t", "cycle_theme", "Theme", id="app.theme", show=False),
        Binding("ctrl+r", "export_report", "Report", id="app.report", priority=True),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, model: str | None = None, device: str = "auto", load_model: bool = True,
                 session: str | None = None):
        super().__init__()
        self.model_name = model
        self.device = device
        self.autoload = load_model
        self.session_arg = session
        self.model_host = None
        self.frames = FrameHold(self)  # one frame per answer (lca_tui/frames.py)
        self._waiting_probe: ProbeWanted | None = None
        self.model_info: dict | None = None
        self.model_error: str | None = None
        self.results: list[tuple[str, object, dict]] = []  # what the user produced (tests read it)
        self.last_report = None
        self.experiments = ExperimentRunner(self)  # the palette's Experiment: commands
        self.session = None
        self.started = time.perf_counter()
        self.first_frame_s: float | None = None
        for theme in THEMES.values():
            self.register_theme(theme)
        settings, problem = load_settings()
        self.startup_problems = [p for p in (problem,) if p]
        self.theme = settings.get("theme") if settings.get("theme") in self.available_themes else DEFAULT_THEME
        keymap, problem = load_keymap()
        if problem:
            self.startup_problems.append(problem)
        if keymap:
            self.set_keymap(keymap)
        self.open_session()
        self.lifecycle = Lifecycle(self)  # signals, a lost browser, the exit deadline (issue 23)

    # ------------------------------------------------------------------ layout
    def get_default_screen(self) -> Screen:
        return instrument.screen_class()(id="_default")

    def _display(self, screen, renderable) -> None:
        super()._display(screen, renderable)
        instrument.frame_out()  # no-op unless LCA_TUI_INSTRUMENT is set

    def compose(self) -> ComposeResult:
        yield Tabs(*[Tab(f"{k.PANEL_KEY} {k.title()}", id=f"tab-{k.PANEL_NAME}") for k in PANEL_CLASSES],
                   id="panel-tabs")
        with ContentSwitcher(initial=PANELS[0], id="panels"):
            for klass in PANEL_CLASSES:
                yield klass(id=klass.PANEL_NAME)
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def open_session(self):
        """Reopen ``--session`` or the last session (a new one if none); problems are shown."""
        from engine.errors import UserError
        from engine.session.store import open_cli_session

        try:
            self.session = open_cli_session(self.session_arg)
        except UserError as exc:
            self.startup_problems.append(f"session: {exc}")
            return None
        for problem in self.session.problems:
            self.startup_problems.append(f"session {self.session.name}: {problem}")
        return self.session

    def on_mount(self) -> None:
        self.lifecycle.on_mount()
        self.main("#panel-tabs", Tabs).can_focus = False  # switched by keys and mouse, never a stop on tab
        self.status.set_fields(model="no model", jobs="0")
        if self.session is not None:
            self.status.set_fields(note=f"session {self.session.name}")
        for problem in self.startup_problems:
            self.notify(problem, severity="warning")
        self.call_after_refresh(self._after_first_frame)
        self.set_interval(1.0, self._refresh_status)
        self.theme_changed_signal.subscribe(self, self._remember_theme)

    def _after_first_frame(self) -> None:
        self.first_frame_s = time.perf_counter() - self.started
        self.main("#prompt").focus()
        if self.autoload:
            self.load_model(self.model_name)

    def main(self, selector, expect_type=None):
        """Query the main screen (not whichever modal is on top): panels and the status bar live
        there, and messages or timers can arrive while a picker, help or result modal is open."""
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        return screen.query_one(selector, expect_type) if expect_type else screen.query_one(selector)

    def panels(self) -> list[Panel]:
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        return [screen.query_one(f"#{name}") for name in PANELS]

    @property
    def status(self) -> StatusBar:
        return self.main("#status", StatusBar)

    # ------------------------------------------------------------------ model thread
    def _host(self):
        if self.model_host is None:
            from lca_tui.model_host import ModelHost

            self.model_host = ModelHost(self.post_message)
            self._share_cores()
            if self._waiting_probe is not None:
                self.model_host.request_probe(self._waiting_probe.request, reply_to=self._waiting_probe.reply_to)
                self._waiting_probe = None
        return self.model_host

    def load_model(self, name: str | None) -> None:
        self.status.set_fields(model=f"loading {name or 'smollm2-135m (embedded)'}…")
        self._host().load(name, device=self.device)

    def on_probe_wanted(self, msg: ProbeWanted) -> None:
        self.want_probe(msg)

    def want_probe(self, msg: ProbeWanted) -> bool:
        """Hand a probe request to the model thread (panels call it directly: a keystroke's probe
        starts without waiting for a message to bubble up through the DOM). True when the model
        thread starts it at once (see ``ModelHost.serves_at_once``)."""
        if self.model_host is None:  # no model asked for yet: the newest request waits for one
            self._waiting_probe = msg
            return False
        at_once = self.model_host.serves_at_once()
        self.model_host.request_probe(msg.request, reply_to=msg.reply_to)
        return at_once

    def on_model_job_wanted(self, msg: ModelJobWanted) -> None:
        host = self._host()
        host.submit(msg.job, msg.meta, job_id=msg.job_id, reply_to=msg.reply_to)
        self._refresh_status()

    def on_cancel_model_job(self, msg: CancelModelJob) -> None:
        if self.model_host is not None:
            self.model_host.cancel(msg.job_id)

    def on_model_loading(self, msg: ModelLoading) -> None:
        self._set_status(model=msg.text)

    def on_model_loaded(self, msg: ModelLoaded) -> None:
        self.model_info, self.model_error = msg.info, None
        i = msg.info
        self._set_status(model=i["name"], device=i["device"], dtype=i["dtype"], note=None)
        self.notify(f"model {i['name']} loaded on {i['device']} ({i['dtype']})", timeout=3)

    def on_model_load_failed(self, msg: ModelLoadFailed) -> None:
        self.model_error = msg.error
        kept = f"; keeping {msg.kept}" if msg.kept else ""
        self._set_status(model=msg.kept or "no model", note=f"load failed{kept}")
        self.notify(f"could not load {msg.name}: {msg.error}{kept}", severity="error", timeout=10)

    def on_job_finished(self, msg: JobFinished) -> None:  # bubbled up from the panel that asked
        self._refresh_status()

    def on_run_started(self, msg: RunStarted) -> None:  # bubbled up from the trainer panel
        self._share_cores()

    def on_run_finished(self, msg: RunFinished) -> None:
        self._share_cores()

    def _share_cores(self) -> None:
        """The model thread's share of the cores: it runs beside every training thread."""
        if self.model_host is not None:
            self.model_host.share = 1 + sum(p.running_jobs() for p in self.panels())

    # ------------------------------------------------------------------ session
    def on_record_result(self, msg: RecordResult) -> None:
        """Keep what the user produced (``results``: kind, engine result, meta) and write it into the
        session by its type (``save_record``: hijack/, sweeps/, traces/, repairs/)."""
        record = msg.record
        if record is None:  # a kind no record type has: kept, not written
            self.results.append((msg.kind, msg.result, msg.meta))
            return
        self.results.append((record.KIND, record.result, msg.meta))
        if self.session is None:
            return
        try:
            self.save_record(record)
        except Exception as exc:  # noqa: BLE001 - a failed write is shown, never fatal
            self.notify(f"could not save the {record.KIND} result: {exc}", severity="error")

    @singledispatchmethod
    def save_record(self, record) -> None:
        """Write a record (``lca_tui.records``) into the session: one handler per type."""
        raise TypeError(f"no session writer for {type(record).__name__}")

    @save_record.register(Evaluation)
    def _save_evaluation(self, record: Evaluation) -> None:
        self.session.record_hijack({**record.result.to_dict(per_record=True), "dataset": "builtin",
                                    "relation": record.relation})

    @save_record.register(Sweep)
    def _save_sweep(self, record: Sweep) -> None:
        self.session.record_sweep(record.result.sweep_dict(record.record))

    @save_record.register(PinnedTrace)
    def _save_trace(self, record: PinnedTrace) -> None:
        path = self.session.record_trace({**record.result.to_dict(), "model": record.result.model})
        self.notify(f"trace pinned to the session: {path.name}", timeout=4)

    @save_record.register(PinnedRepair)
    def _save_repair(self, record: PinnedRepair) -> None:
        from engine.hijack.defenses import HOOKED

        data = record.result.to_dict()
        if record.result.defense.name in HOOKED:  # the app shapes heads, blocks and v on the record at hand
            data["shaped"] = "settings shaped on this record (not held out)"
        path = self.session.record_repair(data)
        self.notify(f"repair pinned to the session: {path.name}", timeout=4)

    def on_pin_probe(self, msg: PinProbe) -> None:
        """Record a probe in the session, with an SVG screenshot of the screen as it is."""
        if self.session is None:
            self.notify("no session is open", severity="warning")
            return
        data = {**msg.data, "model": (self.model_info or {}).get("name"),
                "svg": self.export_screenshot(title="lca-tui hijack panel")}
        try:
            path = self.session.pin_probe(data)
        except Exception as exc:  # noqa: BLE001
            self.notify(f"could not pin: {exc}", severity="error")
            return
        self.notify(f"pinned to the session: {path.name}", timeout=4)

    def on_pin_mirror(self, msg: PinMirror) -> None:
        """Record the inspector's hijack mirror in the session, with an SVG screenshot."""
        if self.session is None:
            self.notify("no session is open", severity="warning")
            return
        data = {**msg.data, "svg": self.export_screenshot(title="lca-tui hijack mirror")}
        try:
            path = self.session.pin_mirror(data)
        except Exception as exc:  # noqa: BLE001 - a failed write is shown, never fatal
            self.notify(f"could not pin: {exc}", severity="error")
            return
        self.notify(f"pinned to the session: {path.name}", timeout=4)

    def on_inspect_run(self, msg: InspectRun) -> None:
        """The trainer asks for a run in the inspector (the one message routed between panels)."""
        self.action_panel("inspector")
        self.main(InspectorPanel).inspect(msg)

    # ------------------------------------------------------------------ status bar
    def _set_status(self, **fields) -> None:
        try:
            self.status.set_fields(**fields)
        except NoMatches:  # shutting down: the widgets are already gone
            pass

    def _refresh_status(self) -> None:
        if not self.is_running or not self.screen_stack:
            return
        if self.model_host is not None and self.model_host.probing:
            return  # no repaint beside a keystroke's probe: the next tick catches up

        try:
            jobs = int(self.model_host is not None and self.model_host.busy)
            jobs += int(self.experiments.running)
            jobs += sum(p.running_jobs() for p in self.panels())
            self.status.set_fields(memory=memory_in_use(), jobs=str(jobs))
        except NoMatches:
            pass

    # ------------------------------------------------------------------ panels
    def action_panel(self, name: str) -> None:
        switcher = self.main("#panels", ContentSwitcher)
        tabs = self.main("#panel-tabs", Tabs)
        if tabs.active != f"tab-{name}":
            tabs.active = f"tab-{name}"
        if switcher.current == name:
            return
        switcher.current = name
        panel = self.main(f"#{name}")
        focusables = [w for w in panel.query("*") if w.focusable]
        if focusables:
            focusables[0].focus()

    @on(Tabs.TabActivated, "#panel-tabs")
    def _tab_clicked(self, event: Tabs.TabActivated) -> None:
        if event.tab is not None and event.tab.id:
            self.action_panel(event.tab.id.removeprefix("tab-"))

    def action_help(self) -> None:
        from lca_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_pick_model(self) -> None:
        from lca_tui.screens.pickers import ModelPicker

        def chosen(name):
            if name:
                self.load_model(name)

        current = self.model_info["name"] if self.model_info else self.model_name
        self.push_screen(ModelPicker(current), chosen)

    # ------------------------------------------------------------------ report
    def action_export_report(self, fmt: str = "html") -> None:
        """Write the session report (HTML, self-contained) into the session's reports/ folder."""
        if self.session is None:
            self.notify("no session is open, so there is nothing to report", severity="warning")
            return
        self.notify("writing the session report…", timeout=2)
        self._write_report(fmt)

    @work(thread=True, exit_on_error=False, group="report")
    def _write_report(self, fmt: str) -> None:
        from engine.session.report import write_report

        out = self.session.path / "reports" / f"report-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        try:
            self.post_message(ReportWritten(path=write_report(self.session, fmt, out)))
        except Exception as exc:  # noqa: BLE001 - shown inline
            from engine.errors import describe

            self.post_message(ReportWritten(error=describe(exc)))

    def on_report_written(self, msg: ReportWritten) -> None:
        if msg.error:
            self.notify(f"report failed: {msg.error}", severity="error", timeout=10)
            return
        self.last_report = msg.path
        self.notify(f"report written: {msg.path}", timeout=10)

    # ------------------------------------------------------------------ experiments
    def run_experiment(self, name: str, level: str = "quick") -> None:
        """Run one of the paper's experiments (``lca_tui.experiment_runner``); progress in the status
        bar, the result recorded in the session and shown in a modal."""
        self.experiments.start(name, level)

    @property
    def last_experiment(self) -> dict | None:
        return self.experiments.last

    def on_experiment_progress(self, msg: ExperimentProgress) -> None:
        self.experiments.progress(msg)

    def on_experiment_done(self, msg: ExperimentDone) -> None:
        self.experiments.done(msg)

    def cancel_experiment(self) -> None:
        self.experiments.cancel()

    # ------------------------------------------------------------------ themes, palette, quit
    def action_cycle_theme(self) -> None:
        names = list(THEMES)
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]

    def _remember_theme(self, theme) -> None:
        settings, _ = load_settings()
        settings["theme"] = theme.name
        save_settings(settings)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in PANELS:
            yield SystemCommand(f"Panel: {name}", f"Switch to the {name} panel", partial(self.action_panel, name))
        yield SystemCommand("Help: keys", "Every binding and its id", self.action_help)
        yield SystemCommand("Model: load…", "Load an alias, HF id or local path", self.action_pick_model)
        yield SystemCommand("Theme: next", "Cycle dark / light / high contrast", self.action_cycle_theme)
        yield SystemCommand("Report: export HTML", "Self-contained HTML report of this session (ctrl+r)",
                            self.action_export_report)
        yield SystemCommand("Report: export Markdown", "Markdown report with SVG images beside it",
                            partial(self.action_export_report, "md"))
        from engine.experiments import EXPERIMENTS

        for exp in EXPERIMENTS.values():
            yield SystemCommand(f"Experiment: {exp.name} (quick)", f"{exp.title} — {exp.figure}",
                                partial(self.run_experiment, exp.name, "quick"))
        yield SystemCommand("Experiment: cancel", "Stop the running experiment between jobs",
                            self.cancel_experiment)
        for panel in self.panels():
            for label, help_text, callback in panel.commands():
                yield SystemCommand(label, help_text, callback)

    async def action_quit(self) -> None:
        """Stop training runs between steps (their checkpoints are written), then quit."""
        for panel in (self.panels() if self.screen_stack else []):
            panel.stop_all()
        await super().action_quit()

    def on_unmount(self) -> None:
        self.lifecycle.on_unmount()
        if self.model_host is not None:
            self.model_host.close()


def run_app(args) -> int:
    app = LcaApp(model=getattr(args, "model", None), session=getattr(args, "session", None))
    app.lifecycle.enforce = True  # this app is the process: signals and the exit deadline (issue 23)
    app.run()
    return 0
