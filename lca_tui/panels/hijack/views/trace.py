"""Trace: where the hijack of the current prompt happens (``engine.hijack.trace``), recomputed when
the prompt changes. The prompt must end with the record's prompt; what stands before it is the
prepended text, and the clean prompt is the record's prompt alone. The probe keeps priority: a
trace is asked for once the probe of the same text has been answered, the model thread answers
newer probes between the trace's batched forwards, and a stale trace is cancelled.

``k`` (this view's binding) shows the view and cycles what it draws: the curves per block
(restore_last and the knockouts, with the clean and hijacked levels), the layer × position heat maps
of the restores (residual stream, attention output, MLP output), the layer × head grid of zero
ablations, and the numbers as a table. ``p`` pins the trace shown (``View.pin``)."""

from __future__ import annotations

import math

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import ContentSwitcher, DataTable, Static

from engine.hijack import measures
from lca_tui import instrument
from lca_tui.messages import CancelModelJob, JobFinished, ModelJobWanted, RecordResult
from lca_tui.panels.hijack.views.base import ProbeContext, View
from lca_tui.records import PinnedTrace
from textnum import number
from textnum import probability as pct
from widgets import Heatmap, LiveCurve, visible_token

MODES = ("curves", "resid", "attn", "mlp", "heads", "table")
_KIND = {"resid": "residual stream", "attn": "attention output", "mlp": "MLP output"}
#: The curves (``engine.hijack.measures.CURVES``): logit(true) − logit(false) per block.
CURVES = measures.CURVES


def pair_args(rec, scheme: str, prompt: str) -> tuple[tuple, str | None]:
    """(prompt, prepend, true, false, mention) for the trace of ``prompt`` against the record ``rec``
    under ``scheme``, or () and why not."""
    from engine.hijack.schemes import is_reverse

    if rec is None:
        return (), "choose a record first (r): the trace compares its prompt with and without the prepend"
    if not prompt.endswith(rec.text):
        return (), f"the trace needs the prompt to end with the record's prompt {rec.text!r}"
    prepend = prompt[: len(prompt) - len(rec.text)]
    if not prepend.strip():
        return (), "nothing is prepended (n = 0): press + to prepend a sentence, or type text before the prompt"
    true, false = " " + rec.target_true, " " + rec.target_false
    mention = rec.target_true if is_reverse(scheme) else rec.target_false
    return (rec.text, prepend, true, false, mention), None


class TraceView(View):
    ID, TITLE = "trace", "Trace"
    BINDINGS = [Binding("k", "next_mode", "Trace curves/maps/heads/table", id="hijack.trace_mode", show=False)]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.mode = "curves"
        self.job: int | None = None
        self.asked: tuple | None = None
        self.result = None

    def compose(self) -> ComposeResult:
        yield Static("", id="trace-info", classes="hint")
        with ContentSwitcher(initial="trace-curve", id="trace-switcher"):
            yield LiveCurve(title="logit(true) − logit(false) per block · k: heat maps, heads, table",
                            xlabel="block", ylabel="logit diff", id="trace-curve")
            yield Heatmap(id="trace-map", stretch=True)
            yield DataTable(id="trace-table", zebra_stripes=True)

    # -------------------------------------------------------------- asking
    def draw_probe(self, res, ctx: ProbeContext) -> None:
        """Ask for the trace of the probe's prompt when this view is shown and the prompt is new."""
        if ctx.shown != self.ID:
            return
        args, why = pair_args(ctx.record, ctx.scheme, res.prompt)
        key = (ctx.model, ctx.record, args, why)  # a new model traces again
        if key == self.asked:
            return
        self.asked = key
        self.cancel()
        if why:
            self.info(why)
            return
        from engine.hijack import jobs

        req = ModelJobWanted(jobs.ModelJob(jobs.trace, args), reply_to=self, meta={"prompt": args[1] + args[0]})
        self.job = req.job_id
        self.ask(req)
        self.info("tracing… (restores, knockouts and heads at every block; the probe keeps priority)")

    def cancel(self) -> None:
        if self.job is not None:
            self.ask(CancelModelJob(self.job))
            self.job = None

    def on_job_finished(self, msg: JobFinished) -> None:
        """The answer to a trace this view asked for (it bubbles on to the panel and the app)."""
        if msg.job_id != self.job:  # a stale trace, cancelled
            return
        self.job = None
        if msg.error:
            self.info(f"[b]trace failed:[/b] {msg.error}")
        elif msg.result is not None:
            self.result = msg.result
            self.draw(msg.result)
            instrument.trace_drawn(msg.result.pair.prepend + msg.result.pair.prompt)  # off by default

    def info(self, text: str) -> None:
        self.query_one("#trace-info", Static).update(text)

    def pin(self) -> bool:
        """Record the shown trace in the session (False when there is none)."""
        if self.result is None:
            return False
        self.ask(RecordResult.of(PinnedTrace(self.result)))
        return True

    def action_next_mode(self) -> None:
        self.show()
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        if self.result is not None:
            self.draw(self.result)

    # -------------------------------------------------------------- drawing
    def draw(self, tr) -> None:
        p = tr.pair
        t_true, t_false = visible_token(p.target_true), visible_token(p.target_false)
        self.info(f"{t_true} vs {t_false} · clean: {pct(tr.clean.p_true)} / {pct(tr.clean.p_false)}, "
                  f"logit diff {tr.clean.logit_diff:+.2f} · hijacked: {pct(tr.hijacked.p_true)} / "
                  f"{pct(tr.hijacked.p_false)}, {tr.hijacked.logit_diff:+.2f} · {len(p.ids)} tokens, "
                  f"{sum(p.mentions)} mention tokens · [b]{self.mode}[/b] (k)\n"
                  f"[dim]{escape(tr.positions_note(short=True))}[/dim]")
        sw = self.query_one("#trace-switcher", ContentSwitcher)
        if self.mode == "curves":
            sw.current = "trace-curve"
            self._curves(tr)
        elif self.mode == "table":
            sw.current = "trace-table"
            self._table(tr)
        else:
            sw.current = "trace-map"
            self._map(tr)

    def _curves(self, tr) -> None:
        c = self.query_one("#trace-curve", LiveCurve)
        c.clear()
        blocks = list(range(tr.n_layers))
        for spec in CURVES:
            c.set_series(spec.label, blocks, [m.logit_diff for m in tr.curve(spec)])
        c.set_hline("clean", tr.clean.logit_diff)
        c.set_hline("hijacked", tr.hijacked.logit_diff)

    def _map(self, tr) -> None:
        hm = self.query_one("#trace-map", Heatmap)
        rows = [str(i) for i in range(tr.n_layers)]
        if self.mode == "heads":
            grid = [[m.logit_diff - tr.hijacked.logit_diff for m in row] for row in tr.heads]
            hm.set_matrix(grid, diverging=True, row_labels=rows, col_labels=[str(h) for h in range(len(grid[0]))],
                          title="rise of logit diff when one head is zero-ablated at the last position · "
                                "blocks × heads")
            return
        # the prompt positions with no agreeing clean token come first, as blank (grey) columns
        gap = [math.nan] * len(tr.pair.unaligned)
        grid = [gap + [m.logit_diff for m in row] for row in tr.restore[self.mode]]
        lo, hi = sorted((tr.hijacked.logit_diff, tr.clean.logit_diff))
        cols = [visible_token(tr.pair.tokens[h]) for h in tr.pair.unaligned]
        cols += [visible_token(tr.pair.tokens[h]) for h, _ in tr.pair.positions]
        blank = " · blank: not restored (another token in the clean prompt)" if gap else ""
        hm.set_matrix(grid, vmin=lo, vmax=hi, row_labels=rows, col_labels=cols,
                      title=f"logit diff with the clean {_KIND[self.mode]} restored · blocks × prompt tokens "
                            f"(hijacked {tr.hijacked.logit_diff:+.2f} → clean {tr.clean.logit_diff:+.2f}){blank}")

    def _table(self, tr) -> None:
        t = self.query_one("#trace-table", DataTable)
        t.clear(columns=True)
        t.add_columns("block", "restore_last P(t)/P(f)", "ld", "knockout ld", "mentions ld", "rest ld",
                      f"all ±{tr.window // 2} ld", "dla attn", "dla mlp", "top head")
        for i in range(tr.n_layers):
            r = tr.restore_last()[i]
            heads = tr.heads[i]
            top = max(range(len(heads)), key=lambda h: heads[h].logit_diff) if heads else None
            head = "—" if top is None else f"{top} {heads[top].logit_diff - tr.hijacked.logit_diff:+.2f}"
            t.add_row(str(i), f"{pct(r.p_true)} / {pct(r.p_false)}", _ld(r.logit_diff),
                      *(_ld(tr.knockout[v][i].logit_diff) for v in ("all", "mentions", "rest", "window")),
                      _ld(tr.dla["attn"][i]), _ld(tr.dla["mlp"][i]), head)


def _ld(x: float) -> str:
    return number(x, "+.2f")
