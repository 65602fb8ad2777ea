"""The inspector panel: what a trained eq. 4.1 model learned (Sec. 5–6 of the paper).

Views: embedding geometry (Fig. 3b, eq. 5.2), the Gram matrix of W_E, singular value spectra of
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
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from lca_tui.messages import Inspected, PinMirror
from lca_tui.panels.base import Panel
from lca_tui.panels.inspector_mirror import MirrorView
from textnum import number as _num
from textnum import percent as _pct
from widgets import Heatmap, LiveCurve

#: (pane id, tab title) in the order ``v`` cycles through them.
VIEWS = (
    ("insp-geometry", "Geometry"),
    ("insp-gram", "Gram"),
    ("insp-spectra", "Spectra"),
    ("insp-value", "Value matrix"),
    ("insp-attention", "Attention"),
    ("insp-mirror", "Hijack mirror"),
)
VIEW_IDS = tuple(v for v, _ in VIEWS)
HINT = "no run shown — train a run in the Trainer panel (2) or press o to open a run directory"


def bit_labels(m: int) -> list[str]:
    """Token labels in bit order: token t as its m-bit vector, z_1 first."""
    return [format(t, f"0{m}b") for t in range(2 ** m)]


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
        self._source: tuple | None = None   # how to recompute what is shown (refresh)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(HINT, id="inspector-header")
        yield Static("", id="inspector-error", classes="error-line -empty")
        with TabbedContent(id="inspector-views", initial=VIEW_IDS[0]):
            with TabPane("Geometry", id="insp-geometry"):
                yield Static("", id="insp-geometry-fit")
                yield LiveCurve(title="⟨W_E(t), W_E(t')⟩ vs Hamming distance (Fig. 3b, eq. 5.2)",
                                xlabel="D_H(t, t')", ylabel="inner product", id="insp-geometry-curve")
            with TabPane("Gram", id="insp-gram"):
                yield Heatmap(id="insp-gram-map")
            with TabPane("Spectra", id="insp-spectra"):
                yield Static("", id="insp-spectra-info")
                yield LiveCurve(title="singular values", xlabel="index i", ylabel="σ_i",
                                id="insp-spectra-curve")
            with TabPane("Value matrix", id="insp-value"):
                yield Static("", id="insp-value-note")
                yield DataTable(id="insp-value-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Attention", id="insp-attention"):
                with Horizontal(id="insp-attention-row"):
                    with Vertical(id="insp-attention-left"):
                        yield Static("", id="insp-attention-note")
                        yield DataTable(id="insp-attention-table", cursor_type="row", zebra_stripes=True)
                    yield Heatmap(id="insp-attention-map")
            with TabPane("Hijack mirror", id="insp-mirror"):
                yield MirrorView(id="insp-mirror-view")

    def on_mount(self) -> None:
        self.query_one("#insp-value-table", DataTable).add_columns(
            "value matrix W_V", "accuracy", "smallest angle to trained (°)")
        self.query_one("#insp-attention-table", DataTable).add_columns(
            "key token group", "mean weight", "L·mean", "mass")

    # ------------------------------------------------------------------ public API
    def show_run(self, run_dir: str | os.PathLike) -> None:
        """Inspect the checkpoint of a run directory (loaded and analysed in a thread worker)."""
        path = str(Path(run_dir).expanduser())
        self.last_path = path
        self._source = ("run", path)
        self._start(("run", path))

    def show_snapshot(self, cfg, model_snapshot, label: str, step: int | None = None,
                      source: Callable[[], tuple] | None = None) -> None:
        """Inspect a copy of a live model. ``cfg`` is its RunConfig; ``model_snapshot`` must already
        be a copy (``engine.lca.inspection.snapshot_model``) that no other thread touches.
        ``source()`` -> (cfg, model_snapshot, step) lets r / f5 take a new snapshot."""
        self._source = ("snapshot", cfg, model_snapshot, label, step, source)
        self._start(("snapshot", cfg, model_snapshot, label, step))

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
        self._source = ("live", label, source)
        self._start(self._source)

    def refresh_report(self) -> None:
        """Recompute what is shown: re-read the checkpoint, or take a new snapshot when the caller
        gave a ``source``."""
        src = self._source
        if src is None:
            self.show_error("nothing to recompute yet: press o to open a run directory")
            return
        if src[0] == "snapshot":
            _, cfg, model, label, step, source = src
            if source is not None:
                self._start(("live", label, source))
                return
            src = ("snapshot", cfg, model, label, step)
        self._start(src)

    # ------------------------------------------------------------------ worker
    def _start(self, job: tuple) -> None:
        self.seq += 1
        self.busy = True
        self._set_header(computing=True)
        self._compute(self.seq, job)

    @work(thread=True, exit_on_error=False, group="inspector")
    def _compute(self, seq: int, job: tuple) -> None:
        label = {"run": lambda: Path(job[1]).name or job[1], "live": lambda: job[1]}.get(job[0], lambda: job[3])()
        step, cfg = None, None
        try:
            from engine.errors import UserError
            from engine.lca.inspection import inspect_model, load_model_from_run

            if job[0] == "run":
                cfg, model, step = load_model_from_run(job[1])
            elif job[0] == "live":
                try:
                    cfg, model, step = job[2]()
                except Exception as exc:  # noqa: BLE001 - e.g. the run is gone
                    raise UserError(f"could not take a snapshot: {exc}") from None
            else:
                _, cfg, model, label, step = job
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
        self._draw(msg.report)
        if msg.model is not None:
            self.query_one(MirrorView).set_model(msg.cfg, msg.model, msg.label, msg.step)

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

    def _draw(self, r) -> None:
        self._draw_geometry(r)
        self._draw_gram(r)
        self._draw_spectra(r)
        self._draw_value(r)
        self._draw_attention(r)

    def _draw_geometry(self, r) -> None:
        g = r.geometry
        ks = list(range(r.m + 1))
        means = "  ".join(f"{k}: {_num(v)}" for k, v in zip(ks, g.mean_inner))
        self.query_one("#insp-geometry-fit", Static).update(
            f"eq. 5.2 fit over {len(g.inner)} pairs: a = [b]{_num(g.a)}[/b], b = [b]{_num(g.b)}[/b], "
            f"b₀ = [b]{_num(g.b0)}[/b], R² = [b]{_num(g.r2, '.3f')}[/b]\n"
            f"mean inner product per D_H — {means}")
        c = self.query_one("#insp-geometry-curve", LiveCurve)
        c.clear()
        c.set_series("max over pairs", ks, list(r.pair_max))
        c.set_series("min over pairs", ks, list(r.pair_min))
        c.set_series("mean", ks, list(g.mean_inner))
        c.set_series("fit −a·D_H+b, b₀ at 0", ks, list(g.fitted()))

    def _draw_gram(self, r) -> None:
        labels = bit_labels(r.m)
        self.query_one("#insp-gram-map", Heatmap).set_matrix(
            r.gram, diverging=True, row_labels=labels,
            title=f"Gram W_Eᵀ W_E ({r.V}×{r.V}, tokens in bit order)")

    def _draw_spectra(self, r) -> None:
        m = r.m
        self.query_one("#insp-spectra-info", Static).update(
            f"gap after index m = {m}: σ_m/σ_(m+1) = [b]{_num(r.gap_W_E)}[/b] for W_E, "
            f"[b]{_num(r.gap_W_V)}[/b] for W_V")
        c = self.query_one("#insp-spectra-curve", LiveCurve)
        c.clear()
        c.set_series("σ(W_E)", list(range(1, len(r.sv_W_E) + 1)), list(r.sv_W_E))
        c.set_series("σ(W_V)", list(range(1, len(r.sv_W_V) + 1)), list(r.sv_W_V))
        top = max([float(r.sv_W_E.max()) if r.sv_W_E.size else 0.0,
                   float(r.sv_W_V.max()) if r.sv_W_V.size else 0.0])
        c.set_series(f"gap after m = {m}", [m + 0.5, m + 0.5], [0.0, top])

    def _draw_value(self, r) -> None:
        s, a = r.swap, r.angles
        self.query_one("#insp-value-note", Static).update(
            f"accuracy on {r.n_samples} fresh samples with W_V swapped (Fig. C.2); smallest principal "
            f"angle between rank-{a.get('k', r.m)} approximations (Fig. C.3)")
        t = self.query_one("#insp-value-table", DataTable)
        t.clear()
        t.add_row("trained", _pct(s["trained"]), "—")
        t.add_row("constructed (eq. 5.1)", _pct(s["constructed"]), _num(a["constructed"], ".1f"))
        t.add_row("random-constructed", _pct(s["random_constructed"]), _num(a["random_constructed"], ".1f"))
        t.add_row("Gaussian N(0, 1/d)", "—", _num(a["gaussian"], ".1f"))
        t.add_row("Bayes optimal", _pct(s["bayes"]), "—")

    def _draw_attention(self, r) -> None:
        h = r.attention_hamming
        self.query_one("#insp-attention-note", Static).update(
            f"attention of the last position on {r.n_samples} samples; L·mean = 1 is uniform (1/L = "
            f"{_num(1 / r.L)}); mass = mean total weight on the group")
        t = self.query_one("#insp-attention-table", DataTable)
        t.clear()
        for k, mean, mass in zip(h.labels, h.mean, h.mass):
            name = "D_H = 0 (t_L itself)" if k == 0 else f"D_H = {k}"
            t.add_row(name, _num(mean, ".4f"), _num(r.L * mean, ".2f"), _num(mass, ".3f"))
        for kb, grp in r.attention_cluster.items():
            for lab, mean, mass in zip(grp.labels, grp.mean, grp.mass):
                t.add_row(f"{lab} cluster, first {kb} bit{'s' if kb > 1 else ''}", _num(mean, ".4f"),
                          _num(r.L * mean, ".2f"), _num(mass, ".3f"))
        labels = bit_labels(r.m)
        self.query_one("#insp-attention-map", Heatmap).set_matrix(
            r.attention_matrix, row_labels=labels,
            title=f"average attention, query (rows) × key (cols) — {r.attention_samples} samples")

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
        data = self.query_one(MirrorView).pin_data()
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
