"""Trace: where the hijack of the current prompt happens (``engine.hijack.trace``), recomputed when
the prompt changes. The prompt must end with the record's prompt; what stands before it is the
prepended text, and the clean prompt is the record's prompt alone. The probe keeps priority: a
trace is asked for once the probe of the same text has been answered, the model thread answers
newer probes between the trace's batched forwards, and a stale trace is cancelled.

Live: two jobs are asked for at once, in this order: the attribution-patching estimate
(``jobs.atp_trace``: two forwards and one backward, drawn at once and marked "estimate (attribution
patching)" in the info line and the titles) and the exact trace (``jobs.trace``), which replaces it.
Once both are in, the components where the estimate missed (``atp_agreement.disagrees``: the stated
rule ``DISAGREE_RULE``) are counted in the info line and marked per block in the table's ≠ column.
An answer to a job this view no longer waits for (cancelled, stale, or an estimate arriving after
the exact trace of the same prompt) never replaces what is shown.

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
from engine.hijack.atp_agreement import DISAGREE_RULE, disagreements, n_components
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
CURVE_TITLE = "logit(true) − logit(false) per block · k: heat maps, heads, table"
ESTIMATE = "estimate (attribution patching)"
#: The table's short names of the families (``atp_agreement``) in its ≠ column.
_SHORT = {"restore_resid": "resid", "restore_attn": "attn", "restore_mlp": "mlp", "heads": "heads"}


def pair_args(rec, scheme: str, prompt: str, alone: bool = False) -> tuple[tuple, str | None]:
    """(prompt, prepend, true, false, mention) for the trace of ``prompt`` against the record ``rec``
    under ``scheme``, or () and why not. ``alone``: the record's prompt with nothing prepended is taken
    too (prepend "" or blank)."""
    from engine.hijack.schemes import is_reverse

    if rec is None:
        return (), "choose a record first (r): the trace compares its prompt with and without the prepend"
    if not prompt.endswith(rec.text):
        return (), f"the trace needs the prompt to end with the record's prompt {rec.text!r}"
    prepend = prompt[: len(prompt) - len(rec.text)]
    if not prepend.strip() and not alone:
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
        self.job: int | None = None  # the exact trace asked for
        self.est_job: int | None = None  # its estimate (attribution patching)
        self.asked: tuple | None = None
        self.result = None  # the trace shown: the exact one, or its estimate while that runs
        self.estimated = False  # ``result`` is the estimate
        self.estimate = None  # the estimate of the prompt asked for, kept to mark the exact trace's misses
        self.misses: list[dict] | None = None  # ``atp_agreement.disagreements`` of the shown exact trace
        self.compared = 0  # how many components they compared

    def compose(self) -> ComposeResult:
        yield Static("", id="trace-info", classes="hint")
        with ContentSwitcher(initial="trace-curve", id="trace-switcher"):
            yield LiveCurve(title=CURVE_TITLE, xlabel="block", ylabel="logit diff", id="trace-curve")
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
        self._cancel_jobs()
        if why:
            self.info(why)
            return
        from engine.hijack import jobs

        meta = {"prompt": args[1] + args[0]}
        est = ModelJobWanted(jobs.ModelJob(jobs.atp_trace, args), reply_to=self, meta=meta)
        req = ModelJobWanted(jobs.ModelJob(jobs.trace, args), reply_to=self, meta=meta)
        self.est_job, self.job, self.estimate = est.job_id, req.job_id, None
        self.ask(est)  # queued first: the model thread runs it first
        self.ask(req)
        self.info("tracing… (an estimate first, then the exact restores, knockouts and heads at every block; "
                  "the probe keeps priority)")

    def cancel(self) -> None:
        """Cancel the estimate and the exact trace (the panel's ``c``); a shown estimate says it stays alone."""
        running = self.job is not None
        self._cancel_jobs()
        if running and self.estimated and self.result is not None:
            self.draw(self.result)

    def _cancel_jobs(self) -> None:
        for job in (self.est_job, self.job):
            if job is not None:
                self.ask(CancelModelJob(job))
        self.job = self.est_job = None

    def on_job_finished(self, msg: JobFinished) -> None:
        """The answer to a trace or an estimate this view asked for (it bubbles on to the panel and the
        app); any other answer (stale, cancelled) changes nothing here."""
        if msg.job_id == self.est_job:
            self.est_job = None
            if msg.cancelled or msg.error or msg.result is None:
                return  # the exact trace is still coming (or has failed and said so)
            self.estimate = msg.result
            if self.job is not None:  # the exact trace still runs: show the estimate meanwhile
                self.result, self.estimated, self.misses = msg.result, True, None
                self.draw(msg.result)
                instrument.trace_drawn(msg.result.pair.prepend + msg.result.pair.prompt, estimate=True)
            elif self.result is not None and not self.estimated and self.result.pair.ids == msg.result.pair.ids:
                self._compare(self.result)  # late: it only marks the exact trace's misses
                self.draw(self.result)
            return
        if msg.job_id != self.job:  # a stale trace, cancelled
            return
        self.job = None
        if msg.error:
            self.info(f"[b]trace failed:[/b] {msg.error}")
        elif msg.cancelled or msg.result is None:
            if self.estimated:  # the estimate stays, said to be alone
                self.draw(self.result)
        else:
            self.result, self.estimated = msg.result, False
            self._compare(msg.result)
            self.draw(msg.result)
            instrument.trace_drawn(msg.result.pair.prepend + msg.result.pair.prompt)  # off by default

    def _compare(self, tr) -> None:
        """The exact trace ``tr``'s components that its estimate missed (none without an estimate)."""
        self.misses, self.compared = None, 0
        if self.estimate is not None and self.estimate.pair.ids == tr.pair.ids:
            exact = tr.to_dict()
            self.misses = disagreements(exact, self.estimate.to_dict())
            self.compared = n_components(exact)

    def info(self, text: str) -> None:
        self.query_one("#trace-info", Static).update(text)

    def pin(self) -> bool:
        """Record the shown trace in the session (False when there is none)."""
        if self.result is None:
            return False
        if self.estimated:  # the session keeps exact traces only
            self.notify("the exact trace is still running: pin it once it replaces the estimate",
                        severity="warning")
            return True
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
        self.info(f"{self._method()}{t_true} vs {t_false} · clean: {pct(tr.clean.p_true)} / {pct(tr.clean.p_false)}, "
                  f"logit diff {tr.clean.logit_diff:+.2f} · hijacked: {pct(tr.hijacked.p_true)} / "
                  f"{pct(tr.hijacked.p_false)}, {tr.hijacked.logit_diff:+.2f} · {len(p.ids)} tokens, "
                  f"{sum(p.mentions)} mention tokens · [b]{self.mode}[/b] (k)\n"
                  f"[dim]{escape(self._note(tr))}[/dim]")
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
        c.title = f"{ESTIMATE} · {CURVE_TITLE}" if self.estimated else CURVE_TITLE
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
                          title=self._title_prefix() + "rise of logit diff when one head is zero-ablated at the "
                                                       "last position · blocks × heads")
            return
        # the prompt positions with no agreeing clean token come first, as blank (grey) columns
        gap = [math.nan] * len(tr.pair.unaligned)
        grid = [gap + [m.logit_diff for m in row] for row in tr.restore[self.mode]]
        lo, hi = sorted((tr.hijacked.logit_diff, tr.clean.logit_diff))
        cols = [visible_token(tr.pair.tokens[h]) for h in tr.pair.unaligned]
        cols += [visible_token(tr.pair.tokens[h]) for h, _ in tr.pair.positions]
        blank = " · blank: not restored (another token in the clean prompt)" if gap else ""
        hm.set_matrix(grid, vmin=lo, vmax=hi, row_labels=rows, col_labels=cols,
                      title=f"{self._title_prefix()}logit diff with the clean {_KIND[self.mode]} restored · "
                            f"blocks × prompt tokens "
                            f"(hijacked {tr.hijacked.logit_diff:+.2f} → clean {tr.clean.logit_diff:+.2f}){blank}")

    def _table(self, tr) -> None:
        t = self.query_one("#trace-table", DataTable)
        t.clear(columns=True)
        t.add_columns("block", "restore_last P(t)/P(f)", "ld", "knockout ld", "mentions ld", "rest ld",
                      f"all ±{tr.window // 2} ld", "dla attn", "dla mlp", "top head", "≠")
        missed: dict[int, dict[str, int]] = {}
        for d in self.misses or ():
            fam = _SHORT.get(d["family"], d["family"].removeprefix("knockout_").replace("knockout", "all"))
            missed.setdefault(d["block"], {}).setdefault(fam, 0)
            missed[d["block"]][fam] += 1
        for i in range(tr.n_layers):
            r = tr.restore_last()[i]
            heads = tr.heads[i]
            top = max(range(len(heads)), key=lambda h: heads[h].logit_diff) if heads else None
            head = "—" if top is None else f"{top} {heads[top].logit_diff - tr.hijacked.logit_diff:+.2f}"
            t.add_row(str(i), f"{pct(r.p_true)} / {pct(r.p_false)}", _ld(r.logit_diff),
                      *(_ld(tr.knockout[v][i].logit_diff) for v in ("all", "mentions", "rest", "window")),
                      _ld(tr.dla["attn"][i]), _ld(tr.dla["mlp"][i]), head,
                      " ".join(f"{f} {n}" if n > 1 else f for f, n in missed.get(i, {}).items()))

    def _method(self) -> str:
        """The info line's start: the estimate marked, or the exact trace's misses by its estimate."""
        if self.estimated:
            state = "exact trace running…" if self.job is not None else "the exact trace was cancelled"
            return f"[b reverse] {ESTIMATE} [/b reverse] {state} · "
        if self.misses is None:
            return ""
        return f"estimate missed {len(self.misses)}/{self.compared} (≠ in the table) · "

    def _note(self, tr) -> str:
        """The info line's last line: in the table, the rule behind its ≠ marks; elsewhere, which positions
        the knockouts kept and which were not restored."""
        if self.mode == "table" and self.misses is not None:
            return f"≠: {DISAGREE_RULE}"
        return tr.positions_note(short=True)

    def _title_prefix(self) -> str:
        return f"{ESTIMATE} · " if self.estimated else ""


def _ld(x: float) -> str:
    return number(x, "+.2f")
