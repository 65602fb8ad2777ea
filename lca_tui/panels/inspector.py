"""The inspector panel: what a trained eq. 4.1 model learned (Sec. 5–6 of the paper).

Tabs (``lca_tui.panels.inspector_tabs``: one widget per tab, fed ``draw(InspectedRun)``; this module
composes them, runs the worker and owns the keys): embedding geometry (Fig. 3b, eq. 5.2), the Gram
matrix of W_E, singular value spectra of
W_E and W_V with the gap after index m, W_V against the constructed value matrix (eq. 5.1, Fig.
C.2/C.3), attention by Hamming distance / cluster with the V x V average attention map (Fig. 3c)
and the hijack mirror (Sec. 5.5; ``lca_tui.panels.inspector_mirror``: y, ỹ, r in, per-token
contributions, knockout and flip out; p pins it into the session).

Every number comes from ``engine.lca.inspection.inspect_model`` (which calls ``engine.lca.analysis``),
computed in a thread worker; the result is posted back as an ``Inspected`` message (``lca_tui.messages``)
and drawn on the UI thread. This module imports no torch: the engine is imported inside the worker.

Public API:

- ``inspect(InspectRun)``: what the trainer asks for — a live run through snapshots its training
  thread takes between steps (``Trainer.request_snapshot``), a finished run through its checkpoint;
- ``show_run(run_dir)``: load ``checkpoint.safetensors`` of a run directory and inspect it;
- ``show_live(label, source)``: ``source()`` -> ``(cfg, model_snapshot, step)``, called in the worker,
  again on r / f5;
- ``show_snapshot(cfg, model_snapshot, label, step=None, source=None)``: inspect a model copy that no
  other thread touches; ``source``, when given, is how r / f5 take a fresh one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TabbedContent

from lca_tui.messages import Inspected, PinMirror
from lca_tui.panels.base import Panel
from lca_tui.panels.inspector_sources import LiveSource, RunSource, SnapshotSource, Source
from lca_tui.panels.inspector_tabs import TABS, InspectedRun

#: (pane id, tab title) in the order ``v`` cycles through them.
VIEWS = tuple((t.ID, t.TITLE) for t in TABS)
VIEW_IDS = tuple(v for v, _ in VIEWS)
HINT = "no run shown — train a run in the Trainer panel (2) or press o to open a run directory"


class InspectorPanel(Panel):
    PANEL_NAME = "inspector"
    PANEL_KEY = "3"
    BINDINGS = [
        Binding("v", "next_view", "View", id="inspector.view"),
        Binding("r,f5", "refresh", "Recompute", id="inspector.refresh"),
        Binding("o", "open_run", "Open run", id="inspector.open"),
        Binding("p", "pin_mirror", "Pin mirror", id="inspector.pin"),
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seq = 0
        self.busy = False
        self.report = None          # the InspectionReport drawn now
        self.shown_label: str | None = None
        self.shown_step: int | None = None
        self.shown_cfg = None
        self.error: str | None = None
        self.last_path: str = ""
        self._source: Source | None = None   # how to recompute what is shown (refresh)
        self.tabs = {t.ID: t() for t in TABS}  # the tabs' widgets, composed below

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(HINT, id="inspector-header")
        yield Static("", id="inspector-error", classes="error-line -empty")
        with TabbedContent(id="inspector-views", initial=VIEW_IDS[0]):
            yield from self.tabs.values()

    # ------------------------------------------------------------------ public API
    def show_run(self, run_dir: str | os.PathLike) -> None:
        """Inspect the checkpoint of a run directory (loaded and analysed in a thread worker)."""
        path = str(Path(run_dir).expanduser())
        self.last_path = path
        self._source = RunSource(path)
        self._start(self._source)

    def show_snapshot(self, cfg, model_snapshot, label: str, step: int | None = None,
                      source: Callable[[], tuple] | None = None) -> None:
        """Inspect a copy of a live model. ``cfg`` is its RunConfig; ``model_snapshot`` must already
        be a copy (``engine.lca.inspection.snapshot_model``) that no other thread touches.
        ``source()`` -> (cfg, model_snapshot, step) lets r / f5 take a new snapshot."""
        self._source = SnapshotSource(cfg, model_snapshot, label, step, source)
        self._start(self._source)

    def inspect(self, msg) -> None:
        """Show a trainer run (``InspectRun``): a live run through consistent snapshots taken on
        its training thread between steps (r takes a new one), else its checkpoint."""
        if msg.trainer is None:
            self.show_run(msg.path)
            return
        trainer = msg.trainer
        self.show_live(f"{msg.run_id} (live)", lambda: live_snapshot(trainer))

    def show_live(self, label: str, source: Callable[[], tuple]) -> None:
        """Inspect what ``source()`` -> (cfg, model_snapshot, step) returns, called in the worker
        (it may wait for the training thread); r / f5 call it again."""
        self._source = LiveSource(label, source)
        self._start(self._source)

    def refresh_report(self) -> None:
        """Recompute what is shown: re-read the checkpoint, or take a new snapshot when the caller
        gave a ``source``."""
        src = self._source
        if src is None:
            self.show_error("nothing to recompute yet: press o to open a run directory")
            return
        self._start(src.again())

    # ------------------------------------------------------------------ worker
    def _start(self, src: Source) -> None:
        self.seq += 1
        self.busy = True
        self._set_header(computing=True)
        self._compute(self.seq, src)

    @work(thread=True, exit_on_error=False, group="inspector")
    def _compute(self, seq: int, src: Source) -> None:
        label = src.label
        step, cfg = None, None
        try:
            from engine.lca.inspection import inspect_model

            cfg, model, step = src.load()  # a checkpoint read, a snapshot taken, or the copy given
            report = inspect_model(cfg, model)
        except Exception as exc:  # noqa: BLE001 - shown inline; the app keeps running
            from engine.errors import describe

            self.post_message(Inspected(seq, label, step, cfg, error=describe(exc)))
            return
        self.post_message(Inspected(seq, label, step, cfg, report=report, model=model))

    def on_inspected(self, msg: Inspected) -> None:
        if msg.seq != self.seq:  # an older request answered late: drop it
            msg.stop()
            return
        self.busy = False
        if msg.error:
            self.error = msg.error
            self.show_error(f"{msg.label}: {msg.error}")
            self._set_header()
            return
        self.error = None
        self.show_error(None)
        self.report, self.shown_label, self.shown_step, self.shown_cfg = msg.report, msg.label, msg.step, msg.cfg
        self._set_header()
        run = InspectedRun(msg.label, msg.step, msg.cfg, msg.report, msg.model)
        for tab in self.tabs.values():
            tab.draw(run)

    # ------------------------------------------------------------------ drawing
    def _set_header(self, computing: bool = False) -> None:
        if self.report is None:
            text = HINT
        else:
            r = self.report
            step = f" · step {self.shown_step}" if self.shown_step is not None else ""
            cfg = self.shown_cfg
            summary = cfg.summary() if hasattr(cfg, "summary") else f"m={r.m} L={r.L} d={r.d}"
            text = f"[b]{self.shown_label}[/b]{step} · {summary} · {r.n_samples} fresh samples"
        if computing:
            text += " · [i]computing…[/i]"
        self.query_one("#inspector-header", Static).update(text)

    def show_error(self, text: str | None) -> None:
        line = self.query_one("#inspector-error", Static)
        line.update(text or "")
        line.set_class(not text, "-empty")

    # ------------------------------------------------------------------ actions
    @property
    def view(self) -> str:
        return self.query_one("#inspector-views", TabbedContent).active or VIEW_IDS[0]

    def action_next_view(self) -> None:
        tc = self.query_one("#inspector-views", TabbedContent)
        cur = tc.active
        tc.active = VIEW_IDS[(VIEW_IDS.index(cur) + 1) % len(VIEW_IDS)] if cur in VIEW_IDS else VIEW_IDS[0]

    def action_refresh(self) -> None:
        self.refresh_report()

    def commands(self) -> list[tuple[str, str, object]]:
        """This panel's command-palette entries: (label, help, callback)."""
        return [
            ("Inspector: next view", "Geometry, Gram, spectra, value matrix, attention (v)", self.action_next_view),
            ("Inspector: recompute", "Re-read the checkpoint or take a new live snapshot (r)", self.action_refresh),
            ("Inspector: open run…", "Inspect a run directory's checkpoint (o)", self.action_open_run),
            ("Inspector: pin hijack mirror", "Record the mirror's trace and sweep in the session (p)",
             self.action_pin_mirror),
        ]

    def action_pin_mirror(self) -> None:
        """Pin the hijack mirror shown now into the session (the app adds a screenshot)."""
        data = self.tabs["insp-mirror"].pin_data()
        if data is None:
            self.app.notify("nothing to pin yet: open a run and show the hijack mirror", severity="warning")
            return
        self.post_message(PinMirror(data))

    def action_open_run(self) -> None:
        def chosen(path):
            if path:
                self.show_run(path)

        from lca_tui.screens.open_run import OpenRunScreen

        self.app.push_screen(OpenRunScreen(self.last_path), chosen)


SNAPSHOT_TIMEOUT_S = 60.0


def live_snapshot(trainer) -> tuple:
    """(cfg, model, step) of a training run, consistent: ``Trainer.request_snapshot`` is answered
    by the training thread between two steps (never mid AdamW update). Called in a worker."""
    from engine.lca.inspection import load_live_model

    return load_live_model(trainer, SNAPSHOT_TIMEOUT_S)
