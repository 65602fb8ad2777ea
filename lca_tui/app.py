"""The lca-tui application: three panels on keys 1/2/3, a command palette, help, themes, a status bar.

The first frame comes before torch/transformers are imported: the model thread starts after it
and the status bar shows the loading state.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from typing import Callable, Iterable

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer

from lca_tui.messages import JobFinished, JobProgress, ModelLoaded, ModelLoadFailed, ModelLoading, ProbeAnswered
from lca_tui.panels import HijackPanel, InspectorPanel, TrainerPanel
from lca_tui.settings import load_keymap, load_settings, save_settings
from themes import DEFAULT_THEME, STYLESHEET, THEMES
from widgets import StatusBar

PANELS = ("hijack", "trainer", "inspector")


class LcaApp(App):
    TITLE = "lca-tui"
    CSS_PATH = str(STYLESHEET)
    BINDINGS = [
        Binding("1", "panel('hijack')", "Hijack", id="app.panel.hijack"),
        Binding("2", "panel('trainer')", "Trainer", id="app.panel.trainer"),
        Binding("3", "panel('inspector')", "Inspector", id="app.panel.inspector"),
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
        self.model_info: dict | None = None
        self.model_error: str | None = None
        self.results: list[tuple[str, object, dict]] = []
        self.last_report = None
        self.last_experiment = None
        self.experiment_cancel = None
        self.session = None
        self.started = time.perf_counter()
        self.started_wall = time.time()
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

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="hijack", id="panels"):
            yield HijackPanel(id="hijack")
            yield TrainerPanel(id="trainer")
            yield InspectorPanel(id="inspector")
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

    @property
    def status(self) -> StatusBar:
        return self.main("#status", StatusBar)

    # ------------------------------------------------------------------ model thread
    def _host(self):
        if self.model_host is None:
            from lca_tui.model_host import ModelHost

            self.model_host = ModelHost(self.post_message)
        return self.model_host

    def load_model(self, name: str | None) -> None:
        self.status.set_fields(model=f"loading {name or 'smollm2-135m (embedded)'}…")
        self._host().load(name, device=self.device)

    def run_model_job(self, kind: str, fn: Callable, meta: dict | None = None) -> int:
        host = self._host()
        return host.submit(kind, lambda job_id: fn(host, job_id), meta)

    def on_model_loading(self, msg: ModelLoading) -> None:
        self.status.set_fields(model=msg.text)

    def on_model_loaded(self, msg: ModelLoaded) -> None:
        self.model_info, self.model_error = msg.info, None
        i = msg.info
        self.status.set_fields(model=i["name"], device=i["device"], dtype=i["dtype"], note=None)
        self.notify(f"model {i['name']} loaded on {i['device']} ({i['dtype']})", timeout=3)
        self.main(HijackPanel).request_probe()

    def on_model_load_failed(self, msg: ModelLoadFailed) -> None:
        self.model_error = msg.error
        kept = f"; keeping {msg.kept}" if msg.kept else ""
        self.status.set_fields(model=msg.kept or "no model", note=f"load failed{kept}")
        self.notify(f"could not load {msg.name}: {msg.error}{kept}", severity="error", timeout=10)

    def _to_hijack(self, handler: str, msg) -> None:
        """Hand a model-thread message to the hijack panel. The panel lives on the main screen for
        the app's whole life, so NoMatches only means the message landed during shutdown, after
        the widgets were removed: it is dropped."""
        try:
            getattr(self.main(HijackPanel), handler)(msg)
        except NoMatches:
            pass

    def on_probe_answered(self, msg: ProbeAnswered) -> None:
        self._to_hijack("on_probe_answered", msg)

    def on_job_progress(self, msg: JobProgress) -> None:
        self._to_hijack("on_job_progress", msg)

    def on_job_finished(self, msg: JobFinished) -> None:
        if msg.kind != "load":
            self._to_hijack("on_job_finished", msg)
        self._refresh_status()

    def record_result(self, kind: str, result, meta: dict) -> None:
        """Keep what the user produced and write it into the session (hijack/, sweeps/)."""
        self.results.append((kind, result, meta))
        if self.session is None:
            return
        try:
            if kind == "efficacy":
                self.session.record_hijack({**result.to_dict(per_record=True), "dataset": "builtin",
                                            "relation": meta.get("relation")})
            elif kind == "sweep":
                r = meta["record"]
                self.session.record_sweep({"kind": "sweep", "model": result.model, "scheme": result.scheme,
                                           "record": r.to_dict(), "points": [
                                               {"n": p.n, "p_true": p.p_true, "p_false": p.p_false}
                                               for p in result.curve]})
        except Exception as exc:  # noqa: BLE001 - a failed write is shown, never fatal
            self.notify(f"could not save the {kind} result: {exc}", severity="error")

    def inspect_run(self, st) -> None:
        """Show a trainer run in the inspector: a weight snapshot of a live run (r refreshes it from
        the run as it is then), else the run's checkpoint."""
        inspector = self.main(InspectorPanel)
        self.action_panel("inspector")
        if st.run is not None and st.status in ("running", "paused"):
            from engine.lca.inspection import snapshot_model

            tr = st.run.trainer

            def source():
                return tr.cfg, snapshot_model(tr.model), tr.step

            cfg, model, step = source()
            inspector.show_snapshot(cfg, model, f"{st.run_id} (live)", step=step, source=source)
        else:
            inspector.show_run(st.path)

    # ------------------------------------------------------------------ status bar
    def _refresh_status(self) -> None:
        if not self.is_running or not self.screen_stack:
            return
        try:
            self._update_status()
        except NoMatches:  # shutting down: the widgets are already gone
            pass

    def _update_status(self) -> None:
        jobs = 0
        if self.model_host is not None and self.model_host.busy:
            jobs += 1
        if self.experiment_cancel is not None:
            jobs += 1
        trainer = self.main(TrainerPanel)
        jobs += sum(1 for st in trainer.runs.values() if st.run is not None and st.status in ("running", "paused", "starting"))
        self.status.set_fields(memory=memory_in_use(), jobs=str(jobs))

    # ------------------------------------------------------------------ actions
    def action_panel(self, name: str) -> None:
        self.main("#panels", ContentSwitcher).current = name
        panel = self.main(f"#{name}")
        focusables = [w for w in panel.query("*") if w.focusable]
        if focusables:
            focusables[0].focus()

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

    def action_export_report(self, fmt: str = "html") -> None:
        """Write the session report (HTML, self-contained) into the session's reports/ folder."""
        if self.session is None:
            self.notify("no session is open, so there is nothing to report", severity="warning")
            return
        self._write_report(fmt)

    @work(thread=True, exit_on_error=False, group="report")
    def _write_report(self, fmt: str) -> None:
        from engine.session.report import write_report

        out = self.session.path / "reports" / f"report-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        try:
            path = write_report(self.session, fmt, out)
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.call_from_thread(self.notify, f"report failed: {exc}", severity="error", timeout=10)
            return
        self.last_report = path
        self.call_from_thread(self.notify, f"report written: {path}", timeout=10)

    def pin_probe(self) -> None:
        """Record the hijack panel's current probe, with an SVG screenshot of the screen as it is."""
        hp = self.main(HijackPanel)
        res = hp.last_result
        if res is None or self.session is None:
            self.notify("nothing to pin yet" if res is None else "no session is open", severity="warning")
            return
        data = {"kind": "probe", "model": (self.model_info or {}).get("name"), "prompt": res.prompt,
                "top_k": [{"token": t.token, "prob": t.prob} for t in res.top_k],
                "targets": [{"target": t.target, "prob": t.prob, "first_token_prob": t.first_token_prob,
                             "rank": t.rank} for t in res.targets],
                "svg": self.export_screenshot(title="lca-tui hijack panel")}
        try:
            path = self.session.pin_probe(data)
        except Exception as exc:  # noqa: BLE001
            self.notify(f"could not pin: {exc}", severity="error")
            return
        self.notify(f"pinned to the session: {path.name}", timeout=4)

    def run_experiment(self, name: str, level: str = "quick") -> None:
        """Run one of the paper's experiments in a worker thread; progress in the status bar, the
        result recorded in the session and shown in a modal."""
        import threading

        if getattr(self, "experiment_cancel", None) is not None:
            self.notify("an experiment is already running (palette: Experiment: cancel)", severity="warning")
            return
        self.experiment_cancel = threading.Event()
        self.status.set_fields(note=f"experiment {name}: starting")
        self._experiment(name, level, self.experiment_cancel)

    @work(thread=True, exit_on_error=False, group="experiment")
    def _experiment(self, name: str, level: str, cancel) -> None:
        from engine import experiments

        def progress(done, total):
            self.call_from_thread(self._set_note, f"experiment {name}: {done}/{total} jobs")

        try:
            result = experiments.run(name, level, progress=progress, cancel=cancel).to_dict()
            if self.session is not None:
                self.session.record_experiment(result)
        except Exception as exc:  # noqa: BLE001 - Cancelled, UserError, anything: shown inline
            msg = "cancelled" if type(exc).__name__ == "Cancelled" else str(exc)
            self.call_from_thread(self.notify, f"experiment {name}: {msg}", severity="warning", timeout=8)
            result = None
        finally:
            self.experiment_cancel = None
            self.call_from_thread(self._set_note, None)
        if result is not None:
            self.last_experiment = result
            self.call_from_thread(self._show_experiment, result)

    def _set_note(self, text: str | None) -> None:
        try:
            self.status.set_fields(note=text)
        except NoMatches:
            pass

    def _show_experiment(self, result: dict) -> None:
        from lca_tui.screens.experiment import ExperimentScreen

        self.notify(f"{result['name']}: {result['verdict']}", timeout=6)
        self.push_screen(ExperimentScreen(result))

    def cancel_experiment(self) -> None:
        if getattr(self, "experiment_cancel", None) is not None:
            self.experiment_cancel.set()

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
        yield SystemCommand("Hijack: pin probe", "Record the current probe and a screenshot in the session",
                            self.pin_probe)
        from engine.experiments import EXPERIMENTS

        for exp in EXPERIMENTS.values():
            yield SystemCommand(f"Experiment: {exp.name} (quick)", f"{exp.title} — {exp.figure}",
                                partial(self.run_experiment, exp.name, "quick"))
        yield SystemCommand("Experiment: cancel", "Stop the running experiment between jobs",
                            self.cancel_experiment)
        tp = self.main(TrainerPanel)
        for label, help_text, action in [
            ("Trainer: start run", "Start a run with the form's settings (F5)", tp.action_start),
            ("Trainer: pause / resume", "Pause or resume the selected run (F6)", tp.action_pause),
            ("Trainer: stop", "Stop the selected run; the checkpoint is kept (F7)", tp.action_stop),
            ("Trainer: restart", "A new run with the selected run's settings (F8)", tp.action_restart),
            ("Trainer: inspect run", "Open the selected run in the inspector (F9)", tp.action_inspect),
        ]:
            yield SystemCommand(label, help_text, action)
        hp = self.main(HijackPanel)
        for label, help_text, action in [
            ("Hijack: n + 1", "Prepend one more hijack sentence", partial(hp.action_n_step, 1)),
            ("Hijack: n − 1", "Prepend one fewer hijack sentence", partial(hp.action_n_step, -1)),
            ("Hijack: next scheme", "not-think, relation, reverse variants", hp.action_next_scheme),
            ("Hijack: choose record…", "Search CounterFact records", hp.action_pick_record),
            ("Hijack: add target", "Track another target string", hp.action_add_target),
            ("Hijack: sweep n", "P(true), P(false) vs n for this record", hp.action_sweep),
            ("Hijack: evaluate ES", "Efficacy vs n over the built-in records", hp.action_evaluate),
            ("Hijack: cancel job", "Cancel the running evaluation", hp.action_cancel),
            ("Hijack: next view", "Surprise, logit lens, attention, sweep, efficacy", hp.action_next_view),
        ]:
            yield SystemCommand(label, help_text, action)

    async def action_quit(self) -> None:
        """Stop training runs between steps (their checkpoints are written), then quit."""
        for panel in (self.screen_stack[0].query(TrainerPanel) if self.screen_stack else []):
            panel.stop_all()
        await super().action_quit()

    def on_unmount(self) -> None:
        if self.model_host is not None:
            self.model_host.close()


def memory_in_use() -> str:
    """Resident memory of this process, plus GPU memory when torch is loaded and CUDA is in use."""
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak MiB on Linux
        try:
            with open("/proc/self/statm") as fh:
                rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        except OSError:
            pass
    except ImportError:
        rss = 0.0
    text = f"{rss:,.0f} MiB"
    cuda = getattr(sys.modules.get("torch"), "cuda", None)  # only if torch is (fully) imported
    try:
        if cuda is not None and cuda.is_available() and cuda.is_initialized():
            text += f" · GPU {cuda.memory_allocated() / 2 ** 30:.2f} GiB"
    except (AttributeError, RuntimeError):
        pass
    return text


def run_app(args) -> int:
    LcaApp(model=getattr(args, "model", None), session=getattr(args, "session", None)).run()
    return 0
