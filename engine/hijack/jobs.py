"""The hijack panel's model-thread jobs: a sweep of n for one record, an ES evaluation, a causal trace
and its attribution-patching estimate.

Each is a module-level function ``fn(lm, ctx, *args)``. The app asks for one by name, as a
``ModelJob(fn, args, kwargs)`` (``lca_tui.messages.ModelJobWanted``), and its model thread runs it with
the loaded model and the job's ``JobContext`` (``engine.job_context``): ``ctx.pause()`` between forwards
answers a waiting probe, so typing keeps getting answers; ``ctx.progress(done, total, partial)``
reaches whoever asked; a cancel raises ``Cancelled`` (its ``partial`` the result so far where there is
one). Nothing here needs the app: ``ModelJob(...).run(lm, ctx)`` runs a job anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.job_context import NO_JOB, JobContext


@dataclass(frozen=True)
class ModelJob:
    """A model-thread job by name: ``fn(lm, ctx, *args, **kwargs)``; its ``kind`` is ``fn``'s name."""

    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.fn.__name__

    def run(self, lm, ctx: JobContext | None = None) -> Any:
        return self.fn(lm, ctx or NO_JOB, *self.args, **self.kwargs)


#: Rows per forward of the app's ES evaluation and sweep on a CPU: a probe typed meanwhile waits for
#: at most one forward (bench/bench_probe_priority.py, BENCHMARKS.md); elsewhere the library's 8.
APP_ES_BATCH_CPU = 4


def app_batch_size(lm) -> int:
    """Rows per forward for the app's efficacy jobs on ``lm``'s device (see ``APP_ES_BATCH_CPU``)."""
    return APP_ES_BATCH_CPU if str(lm.device) == "cpu" else 8


def sweep(lm, ctx: JobContext, record, scheme, top, template=None):
    """P(true), P(false) for n = 0..top sentences of ``scheme`` before ``record`` (no progress reports)."""
    from engine.hijack.efficacy import efficacy_curve

    return efficacy_curve(lm, [record], scheme, top, template, batch_size=app_batch_size(lm), ctx=ctx.quiet())


def efficacy(lm, ctx: JobContext, records, scheme, top, template=None):
    """ES(n), n = 0..top, over ``records``; ``ctx.progress(records done, records, merged result)``
    every 8 records."""
    from engine.hijack.progressive import efficacy_progressive

    return efficacy_progressive(lm, records, scheme, top, chunk=8, ctx=ctx, template=template,
                                batch_size=app_batch_size(lm))


#: Rows per batched forward of the app's trace: the longest a waiting probe waits is one such
#: forward (measured in bench/bench_trace.py: BENCHMARKS.md, causal trace).
APP_TRACE_CHUNK = 16


def trace(lm, ctx: JobContext, prompt, prepend, target_true, target_false, mention=None, window=None):
    """The causal trace of ``prepend + prompt`` against ``prompt`` (``engine.hijack.trace``); between
    its batched forwards (``APP_TRACE_CHUNK`` rows each) it pauses (no trace hook is installed then:
    the app answers a waiting probe) and a cancel raises ``Cancelled`` (no partial trace)."""
    from engine.hijack.trace import prepare
    from engine.hijack.trace import trace as run

    pair = prepare(lm, prompt, prepend, target_true, target_false, mention)
    return run(lm, pair, window=window, ctx=ctx, chunk=APP_TRACE_CHUNK)


def atp_trace(lm, ctx: JobContext, prompt, prepend, target_true, target_false, mention=None, window=None):
    """The attribution-patching estimate of ``trace``'s result (``engine.hijack.atp``: a ``Trace`` of the
    same shape), for the Trace view to draw at once while the exact trace runs. Two forwards and one
    backward with no break between them; it pauses (a waiting probe is answered) before it starts and
    a cancel raises ``Cancelled`` there and after it."""
    from engine.hijack.atp import atp
    from engine.hijack.trace import prepare

    pair = prepare(lm, prompt, prepend, target_true, target_false, mention)
    ctx.pause()
    ctx.check()
    est = atp(lm, pair, window=window)
    ctx.check()
    return est.trace


def repair_probe(lm, ctx: JobContext, question, prepend, targets, defense, k_tokens=8, shape=None):
    """The defended probe of ``prepend + question`` (``engine.hijack.repair_probe.defended_probe``):
    ``defense`` a ``Defense`` or its dict ``{name, params}``; ``shape`` = (true, false) shapes its heads /
    blocks / v on this pair first (``shape_on_pair``, at the dict's α). The result's ``defense`` is the one
    used (the asker keeps it, v included). Between its forwards it pauses (no hook installed then)."""
    from engine.hijack.defenses import Defense
    from engine.hijack.repair_probe import defended_probe, shape_on_pair

    if shape is not None:
        ctx.pause()
        ctx.check()
        name, alpha = _name_alpha(defense)
        d = shape_on_pair(lm, question, prepend, shape[0], shape[1], name, alpha)
    else:
        d = defense if isinstance(defense, Defense) else Defense.from_dict(defense)
    return defended_probe(lm, question, prepend, targets, d, k_tokens=k_tokens, ctx=ctx)


def efficacy_defended(lm, ctx: JobContext, records, scheme, top, defense, template=None, shape=None):
    """ES(n), n = 0..top, over ``records`` under ``defense`` (``efficacy_defended.defended_curve``; the
    panel's ES overlay); ``shape`` = (question, prepend, true, false) shapes it on that record first
    (``shape_on_pair``). No progress reports; the result's notes name the defense."""
    from engine.hijack.defenses import Defense
    from engine.hijack.efficacy_defended import defended_curve
    from engine.hijack.repair_probe import shape_on_pair

    if shape is not None:
        d = shape_on_pair(lm, *shape, *_name_alpha(defense))
    else:
        d = defense if isinstance(defense, Defense) else Defense.from_dict(defense)
    return defended_curve(lm, records, scheme, top, d, template, batch_size=app_batch_size(lm), ctx=ctx.quiet())


def _name_alpha(defense) -> tuple[str, float]:
    """A defense's name and α, from a ``Defense`` or its dict (settings not needed: they are shaped)."""
    if isinstance(defense, dict):
        return str(defense.get("name")), float((defense.get("params") or {}).get("alpha", 1.0))
    return defense.name, float(defense.alpha)
