"""Repair: the current prompt with and without a defense (``engine.hijack.defenses``, issue 30), as you
type. The targets' whole probabilities undefended and defended as bars side by side, under them what the
model *says* (its greedy continuation, a few tokens, without and with the defense: the paper's Fig. 1),
and a line naming the defense, its α and its settings.

The settings are shaped on the record at hand (``repair_probe.shape_on_pair``: heads ranked by their
single-head ablation on this pair, every block for attention, v = clean − hijacked of this pair for steer;
not held out, and the info line says so), once per (model, record, scheme, n, defense): the first job
shapes them on the prepended text it sees and its answer's ``Defense`` is kept for the α keys and the ES overlay
(``overlay``). Each probe answer of a new prompt, and each key, asks for one job (``jobs.repair_probe``);
a stale job is cancelled, and an answer to a job this view no longer waits for is never drawn.

At n = 0 (nothing prepended) it shows the defense on the prompt alone, what it costs when nothing
misleads, with the settings shaped last for the record at some n >= 1 (a shaped defense not shaped yet
asks for a sentence first).

Keys: ``d`` the next defense, ``<`` / ``>`` α down / up its grid (``repair.GRIDS`` widened with the
endpoints; attention within [0, 1]); ``p`` pins what is shown (``PinnedRepair``)."""

from __future__ import annotations

import dataclasses

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from engine.hijack.defenses import DEFENSES, settings_text
from engine.hijack.repair import GRIDS
from lca_tui import instrument
from lca_tui.messages import CancelModelJob, JobFinished, ModelJobWanted, RecordResult
from lca_tui.panels.hijack.views.base import ProbeContext, View
from lca_tui.panels.hijack.views.trace import pair_args
from lca_tui.records import PinnedRepair
from widgets import BarRow, ProbabilityBars

NAMES = tuple(DEFENSES)  # none, drop-context, heads, attention, contrastive, steer
#: the α of each defense at which it does nothing, and the far end of its grid
ENDS = {"heads": (0.0, 1.0), "attention": (0.0, 1.0), "contrastive": (0.0, 4.0), "steer": (0.0, 8.0)}
SHAPED = frozenset({"heads", "attention", "steer"})  # settings chosen on the record
K_TOKENS = 8


def grid(name: str) -> tuple[float, ...]:
    """The α values ``<`` and ``>`` step through for ``name``."""
    return tuple(sorted(set(GRIDS.get(name, (1.0,))) | set(ENDS.get(name, ()))))


class RepairView(View):
    ID, TITLE = "repair", "Repair"
    BINDINGS = [
        Binding("d", "next_defense", "Repair defense", id="hijack.repair_defense", show=False),
        Binding("less_than_sign", "alpha(-1)", "Repair α down", id="hijack.repair_alpha_down", show=False),
        Binding("greater_than_sign", "alpha(1)", "Repair α up", id="hijack.repair_alpha_up", show=False),
    ]
    DEFAULT_CSS = """
    RepairView #repair-sides { height: auto; }
    RepairView #repair-sides > Vertical { width: 1fr; height: auto; padding: 0 1 0 0; }
    RepairView #repair-says { height: auto; padding: 1 0 0 0; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.defense_name = "none"
        self.alphas = {n: GRIDS[n][len(GRIDS[n]) // 2] for n in NAMES}  # each defense's α, kept
        self.shaped: dict[tuple, object] = {}  # (model, record, scheme, n, name) -> its shaped Defense
        self.job: int | None = None
        self.asked: tuple | None = None
        self.result = None  # the RepairProbe shown
        self.last: tuple | None = None  # (probe answer, ProbeContext) of the newest probe

    @property
    def alpha(self) -> float:
        return self.alphas[self.defense_name]

    def compose(self) -> ComposeResult:
        yield Static("", id="repair-info", classes="hint")
        with Horizontal(id="repair-sides"):
            with Vertical():
                yield Label("without defense", id="repair-left-title", classes="panel-title")
                yield ProbabilityBars(id="repair-plain")
            with Vertical():
                yield Label("with defense", id="repair-right-title", classes="panel-title")
                yield ProbabilityBars(id="repair-defended")
        yield Static("", id="repair-says")

    # -------------------------------------------------------------- asking
    def draw_probe(self, res, ctx: ProbeContext) -> None:
        self.last = (res, ctx)
        if ctx.shown == self.ID:
            self._ask(res, ctx)

    def _ask(self, res, ctx: ProbeContext) -> None:
        """Ask for the defended probe of ``res``'s prompt unless the same is asked or shown already."""
        # at n = 0 the defense acts on the prompt alone: what it costs when nothing misleads
        args, why = pair_args(ctx.record, ctx.scheme, res.prompt, alone=True)
        clean = not why and not args[1].strip()
        targets = tuple(t.target for t in res.targets)
        key = (ctx.model, ctx.record, args, why, targets, self.defense_name, self.alpha)
        if key == self.asked:
            return
        self.asked = key
        self._cancel_job()
        if why:
            self.result = None
            self._clear(why)
            return
        from engine.hijack import jobs

        question, prepend, true, false, _ = args
        if true not in targets or false not in targets:
            targets = tuple(dict.fromkeys((true, false, *targets)))
        shape_key = (ctx.model, ctx.record, ctx.scheme, ctx.n, self.defense_name)
        defense, shape = self.defense_for(shape_key)
        if defense is None and clean:  # nothing to shape on: the settings of this record at n >= 1
            defense = self.kept_for(ctx.model, ctx.record, ctx.scheme)
            if defense is None:
                self.result = None
                self._clear(f"{self.defense_name} is shaped on the hijacked prompt: press + to prepend a sentence "
                            "(it is shaped there), then − back to n = 0 to see what it does to the prompt alone")
                return
            shape_key = None
        if defense is None:
            defense, shape = {"name": self.defense_name, "params": {"alpha": self.alpha}}, (true, false)
        req = ModelJobWanted(jobs.ModelJob(jobs.repair_probe, (question, prepend, targets, defense, K_TOKENS, shape)),
                             reply_to=self, meta={"shape_key": shape_key if shape is not None else None,
                                                  "clean": clean})
        self.job = req.job_id
        self.ask(req)
        self.info(f"repairing with {self.defense_name} α={self.alpha:g}…" + (" (shaping it on this record first)"
                                                                      if shape is not None else ""))

    def defense_for(self, shape_key):
        """(the Defense to run at the current α, None) when its settings are known, else (None, None)."""
        from engine.hijack.defenses import Defense

        name = self.defense_name
        if name in SHAPED:
            kept = self.shaped.get(shape_key)
            return (kept.with_alpha(self.alpha), None) if kept is not None else (None, None)
        return Defense(name, self.alpha), None

    def kept_for(self, model, record, scheme: str):
        """The settings of this view's defense shaped last for (model, record, scheme) at any n, at the
        current α (None: not shaped yet)."""
        kept = [d for (m, r, s, _n, name), d in self.shaped.items()
                if (m, r, s, name) == (model, record, scheme, self.defense_name)]
        return kept[-1].with_alpha(self.alpha) if kept else None

    def overlay(self, model, record, scheme: str, n: int, prepend: str):
        """(defense, shape) for the ES overlay's job (``jobs.efficacy_defended``) with this view's defense:
        its settings kept for (model, record, scheme, n), else shaped on ``record`` with ``prepend``; None
        while the defense is ``none``."""
        if self.defense_name == "none":
            return None
        d, _ = self.defense_for((model, record, scheme, n, self.defense_name))
        if d is not None:
            return d, None
        return ({"name": self.defense_name, "params": {"alpha": self.alpha}},
                (record.text, prepend, " " + record.target_true, " " + record.target_false))

    def label(self) -> str:
        return f"{self.defense_name} α={self.alpha:g}"

    def cancel(self) -> None:
        self._cancel_job()
        self.asked = None  # the next answer or key asks again

    def _cancel_job(self) -> None:
        if self.job is not None:
            self.ask(CancelModelJob(self.job))
        self.job = None

    def on_job_finished(self, msg: JobFinished) -> None:
        """The answer to the job this view waits for; any other (stale, cancelled) changes nothing."""
        if msg.job_id != self.job:
            return
        self.job = None
        if msg.error:
            self.info(f"[b]repair failed:[/b] {escape(str(msg.error))}")
            return
        if msg.cancelled or msg.result is None:
            self.info("cancelled: d, < or > asks again")
            return
        res = msg.result
        if msg.meta.get("shape_key") is not None:
            self.shaped[msg.meta["shape_key"]] = res.defense
        self.result = res
        self.draw(res, clean=bool(msg.meta.get("clean")))
        instrument.repair_drawn(res.prompt, res.defense.name, res.defense.alpha)  # off by default

    # -------------------------------------------------------------- keys
    def _again(self) -> None:
        self.show()
        if self.last is not None:
            res, ctx = self.last
            self._ask(res, dataclasses.replace(ctx, shown=self.ID))

    def action_next_defense(self) -> None:
        self.defense_name = NAMES[(NAMES.index(self.defense_name) + 1) % len(NAMES)]
        self._again()

    def action_alpha(self, step: int) -> None:
        g = grid(self.defense_name)
        i = min(range(len(g)), key=lambda j: abs(g[j] - self.alpha))
        self.alphas[self.defense_name] = g[max(0, min(len(g) - 1, i + step))]
        self._again()

    def pin(self) -> bool:
        """Record the shown defended probe in the session (False when there is none)."""
        if self.result is None:
            return False
        self.ask(RecordResult.of(PinnedRepair(self.result)))
        return True

    # -------------------------------------------------------------- drawing
    def info(self, text: str) -> None:
        self.query_one("#repair-info", Static).update(text)

    def _clear(self, why: str) -> None:
        self.info(why)
        self.query_one("#repair-plain", ProbabilityBars).set_rows([])
        self.query_one("#repair-defended", ProbabilityBars).set_rows([])
        self.query_one("#repair-says", Static).update("")

    def draw(self, r, clean: bool = False) -> None:
        d = r.defense
        roles = {}
        if self.last is not None and self.last[1].record is not None:
            rec = self.last[1].record
            roles = {" " + rec.target_true: "true", " " + rec.target_false: "false"}
        for side, wid in ((r.undefended, "#repair-plain"), (r.defended, "#repair-defended")):
            self.query_one(wid, ProbabilityBars).set_rows(
                [BarRow(t, p, i + 1, highlight=roles.get(t, "target")) for i, (t, p) in enumerate(side.probs)])
        self.query_one("#repair-right-title", Label).update(f"with {d.name} α={d.alpha:g}")
        says = self.query_one("#repair-says", Static)
        says.update(f"[b]says:[/b] {_said(r.undefended.continuation)}\n"
                    f"[b]with {d.name}:[/b] {_said(r.defended.continuation)}")
        where = "question alone" if d.name == "drop-context" else settings_text(d.params, " · ")
        shaped = " · [i]shaped on this record (not held out)[/i]" if d.name in SHAPED else ""
        alone = " · [b]n = 0: the prompt alone[/b] (what the defense costs when nothing misleads)" if clean else ""
        self.info(f"[b]{d.name}[/b] α={d.alpha:g}" + (f" · {escape(where)}" if where else "") + shaped + alone
                  + " · d: defense, < >: α, p: pin")


def _said(text: str) -> str:
    """A continuation on one line, escaped (model text is not markup)."""
    return "“" + escape(text.replace("\n", "⏎")) + "”"
