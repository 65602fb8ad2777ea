"""The inspector's hijack mirror view: context hijacking asked of the one-layer model (Sec. 5.5,
App. C.5; issue #19). Choose y, ỹ, r (and the seed): a context drawn for y with round(r·(L-1))
of its tokens drawn for ỹ, each position's exact contribution to the logits of y and ỹ, the
clean / hijacked / knockout numbers, the flip, and the sweep over r.

Every number comes from ``engine.lca.hijack_mirror`` (``trace_mirror``, ``mirror_sweep``), run in a
thread worker on the model the inspector shows; answers come back as ``MirrorTraced`` and stale
ones are dropped. Bad input is shown inline. No torch is imported here.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from lca_tui.panels.editors import Field
from textnum import number
from textnum import percent as _pct
from widgets import LiveCurve, bar_text

HINT = "open a run to ask it the hijack question: a context for y with a fraction r of its tokens drawn for ỹ"
#: Contexts averaged per r in the sweep (cheap: 11 × 256 contexts of eq. 4.1).
SWEEP_N = 256
MEASURE_ROWS = (("clean", "clean (r = 0)"), ("hijacked", "hijacked"), ("knockout", "knockout ỹ tokens"),
                ("knockout_rest", "knockout the rest"))
BAR_WIDTH = 12


class MirrorTraced(Message):
    """The mirror worker's answer: a ``MirrorTrace`` and ``MirrorSweep``, or an error sentence."""

    def __init__(self, seq: int, trace: Any = None, sweep: Any = None, error: str | None = None):
        super().__init__()
        self.seq, self.trace, self.sweep, self.error = seq, trace, sweep, error


def _f(x: float, fmt: str = "+.3f") -> str:
    return number(x, fmt)


def signed_bar(v: float, scale: float, width: int = BAR_WIDTH) -> Text:
    """A bar of |v|/scale · width cells: green towards y (v > 0), red towards ỹ."""
    frac = abs(float(v)) / scale if scale > 0 else 0.0
    return Text(bar_text(frac, width) or "·", style="green" if v > 0 else "red")


class MirrorView(Vertical):
    """Inputs y, ỹ, r, seed; the measures table and flip line; the sweep chart; the per-token table."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seq = 0
        self.busy = False
        self.cfg = None
        self.model = None
        self.label: str | None = None
        self.step: int | None = None
        self.trace = None
        self.sweep = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(HINT, id="mirror-note")
        with Horizontal(id="mirror-inputs"):
            for key, label, value in (("y", "y", ""), ("y-tilde", "ỹ", ""), ("r", "r", "0.5"), ("seed", "seed", "0")):
                yield Static(label, classes="mirror-label")
                yield Field(value, id=f"mirror-{key}", classes="mirror-field")
        yield Static("", id="mirror-error", classes="error-line -empty")
        with Horizontal(id="mirror-top"):
            with Vertical(id="mirror-left"):
                yield DataTable(id="mirror-measures", cursor_type="row", zebra_stripes=True)
                yield Static("", id="mirror-flip")
            yield LiveCurve(title=f"mean over {SWEEP_N} contexts against r", xlabel="r", ylabel="probability",
                            y_range=(0.0, 1.0), id="mirror-sweep")
        yield DataTable(id="mirror-tokens", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#mirror-measures", DataTable).add_columns(
            "context", "P(y)", "P(ỹ)", "logit diff", "prediction")
        self.query_one("#mirror-tokens", DataTable).add_columns(
            "l", "token", "source", "attention a_l", "to y", "to ỹ", "to diff", "")

    # ------------------------------------------------------------------ inputs
    def values(self) -> dict[str, str]:
        return {k: self.query_one(f"#mirror-{k}", Input).value for k in ("y", "y-tilde", "r", "seed")}

    def set_values(self, **values: str) -> None:
        """Set inputs (``y``, ``y_tilde``, ``r``, ``seed``) and recompute."""
        for k, v in values.items():
            box = self.query_one(f"#mirror-{k.replace('_', '-')}", Input)
            with box.prevent(Input.Changed):
                box.value = str(v)
        self.recompute()

    def set_model(self, cfg, model, label: str, step: int | None = None) -> None:
        """The model the inspector shows now (a CPU copy no other thread writes). Empty or
        out-of-range token inputs get y = 0…0 and ỹ = 1…1 (the farthest latent)."""
        self.cfg, self.model, self.label, self.step = cfg, model, label, step
        m = cfg.task.m
        vals = self.values()
        defaults = {"y": "0" * m, "y-tilde": "1" * m}
        for key, default in defaults.items():
            box = self.query_one(f"#mirror-{key}", Input)
            text = vals[key].strip()
            if not text or (len(text) != m and not (text.isdigit() and int(text) < 2 ** m)):
                with box.prevent(Input.Changed):
                    box.value = default
        self.recompute()

    @on(Input.Changed, ".mirror-field")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.recompute()

    @on(Input.Submitted, ".mirror-field")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.recompute()

    # ------------------------------------------------------------------ worker
    def recompute(self) -> None:
        if self.model is None:
            return
        self.seq += 1
        self.busy = True
        self._compute(self.seq, self.cfg, self.model, self.values())

    @work(thread=True, exit_on_error=False, group="inspector-mirror")
    def _compute(self, seq: int, cfg, model, vals: dict) -> None:
        try:
            from engine.errors import UserError
            from engine.lca.hijack_mirror import mirror_sweep, parse_token, trace_mirror

            m = cfg.task.m
            y, y_tilde = parse_token(vals["y"], m, "y"), parse_token(vals["y-tilde"], m, "ỹ")
            try:
                seed = int(vals["seed"].strip())
            except ValueError:
                raise UserError(f"the seed must be a whole number >= 0, got {vals['seed']!r}") from None
            r = vals["r"].strip()
            trace = trace_mirror(cfg, model, y, y_tilde, r, seed=seed)
            sweep = mirror_sweep(cfg, model, y, y_tilde, n=SWEEP_N, seed=seed)
        except Exception as exc:  # noqa: BLE001 - shown inline; the app keeps running
            from engine.errors import describe

            self.post_message(MirrorTraced(seq, error=describe(exc)))
            return
        self.post_message(MirrorTraced(seq, trace, sweep))

    def on_mirror_traced(self, msg: MirrorTraced) -> None:
        msg.stop()
        if msg.seq != self.seq:  # an older request answered late
            return
        self.busy = False
        line = self.query_one("#mirror-error", Static)
        self.error = msg.error
        line.update(msg.error or "")
        line.set_class(not msg.error, "-empty")
        if msg.error:
            return
        self.trace, self.sweep = msg.trace, msg.sweep
        self._draw(msg.trace, msg.sweep)

    # ------------------------------------------------------------------ drawing
    def _draw(self, tr, sw) -> None:
        bits = f"0{tr.m}b"
        yb, ytb = format(tr.y, bits), format(tr.y_tilde, bits)
        self.query_one("#mirror-note", Static).update(
            f"[b]{self.label}[/b] · y = {yb} ({tr.y}), ỹ = {ytb} ({tr.y_tilde}) · {tr.k} of the {tr.L - 1} "
            f"context tokens drawn for ỹ (r = {tr.r:g}), t_L drawn for y · seed {tr.seed}")
        t = self.query_one("#mirror-measures", DataTable)
        t.clear()
        for name, title in MEASURE_ROWS:
            v = getattr(tr, name)
            t.add_row(title, _pct(v["p_true"]), _pct(v["p_false"]), _f(v["logit_diff"]),
                      format(v["prediction"], bits))
        flip = tr.flip
        verdict = ("[b red]hijacked: the prediction flips to ỹ[/b red]" if flip["to_false"] and flip["away_from_true"]
                   else "[b red]the prediction leaves y[/b red]" if flip["away_from_true"]
                   else "[b green]no flip: the prediction stays[/b green]")
        knock = (" · knocking out the ỹ tokens restores y" if flip["restored"] else "")
        src = tr.by_source
        self.query_one("#mirror-flip", Static).update(
            f"{verdict}{knock}\nlogit diff from the y tokens {_f(src['y']['to_diff'])}, the ỹ tokens "
            f"{_f(src['y~']['to_diff'])}, t_L {_f(src['last']['to_diff'])}; attention on ỹ tokens "
            f"{src['y~']['attention']:.3f}")
        c = self.query_one("#mirror-sweep", LiveCurve)
        c.clear()
        for measure, tag in (("hijacked", ""), ("knockout", " knockout")):
            c.set_series(f"P(y){tag}", *sw.curve(measure, "p_true"))
            c.set_series(f"P(ỹ){tag}", *sw.curve(measure, "p_false"))
        c.set_series("predicts ỹ", *sw.curve("hijacked", "to_false"))
        tok = self.query_one("#mirror-tokens", DataTable)
        tok.clear()
        scale = max(abs(x["to_diff"]) for x in tr.tokens) or 1.0
        for x in tr.tokens:
            kind = "t_L (y)" if x["last"] else x["source"].replace("y~", "ỹ")
            tok.add_row(str(x["position"]), x["bits"], kind, f"{x['attention']:.4f}", _f(x["to_true"]),
                        _f(x["to_false"]), _f(x["to_diff"]), signed_bar(x["to_diff"], scale))

    def pin_data(self) -> dict | None:
        """What a pin records: the trace and the sweep (JSON-ready), the run and its step."""
        if self.trace is None:
            return None
        summary = self.cfg.summary() if hasattr(self.cfg, "summary") else None
        return {**self.trace.to_dict(), "run": self.label, "step": self.step, "config": summary,
                "sweep": self.sweep.to_dict() if self.sweep is not None else None}
