"""Runs one of the paper's experiments for the app: in a worker thread, its progress posted as
``ExperimentProgress``, the result recorded in the session and posted as ``ExperimentDone`` (an
error or "cancelled" inline). The app owns one runner and forwards those messages back to it."""

from __future__ import annotations

import threading

from lca_tui.messages import ExperimentDone, ExperimentProgress


class ExperimentRunner:
    """At most one experiment at a time; ``cancel`` stops it between jobs."""

    def __init__(self, app):
        self.app = app
        self.cancel_event: threading.Event | None = None
        self.last: dict | None = None  # the last finished experiment's result

    @property
    def running(self) -> bool:
        return self.cancel_event is not None

    def start(self, name: str, level: str = "quick") -> None:
        app = self.app
        if self.cancel_event is not None:
            app.notify("an experiment is already running (palette: Experiment: cancel)", severity="warning")
            return
        self.cancel_event = cancel = threading.Event()
        app.status.set_fields(note=f"experiment {name}: starting")
        app.run_worker(lambda: self._run(name, level, cancel), thread=True, exit_on_error=False,
                       group="experiment")

    def _run(self, name: str, level: str, cancel: threading.Event) -> None:
        """The worker thread: it posts messages and touches no UI state."""
        from engine import experiments
        from engine.errors import Cancelled, describe
        from engine.job_context import JobContext

        post = self.app.post_message
        ctx = JobContext(lambda done, total, _partial: post(ExperimentProgress(name, done, total)), cancel)
        try:
            result = experiments.run(name, level, ctx=ctx).to_dict()
            session = self.app.session
            if session is not None:
                session.record_experiment(result)
        except Exception as exc:  # noqa: BLE001 - Cancelled, UserError, anything: shown inline
            msg = "cancelled" if isinstance(exc, Cancelled) else describe(exc)
            post(ExperimentDone(name, error=msg))
            return
        post(ExperimentDone(name, result=result))

    def progress(self, msg: ExperimentProgress) -> None:
        self.app._set_status(note=f"experiment {msg.name}: {msg.done}/{msg.total} jobs")

    def done(self, msg: ExperimentDone) -> None:
        app = self.app
        self.cancel_event = None
        app._set_status(note=None)
        if msg.error is not None:
            app.notify(f"experiment {msg.name}: {msg.error}", severity="warning", timeout=8)
            return
        from lca_tui.screens.experiment import ExperimentScreen

        self.last = msg.result
        app.notify(f"{msg.result['name']}: {msg.result['verdict']}", timeout=6)
        app.push_screen(ExperimentScreen(msg.result))

    def cancel(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()
