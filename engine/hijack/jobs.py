"""The hijack panel's model-thread jobs: a sweep of n for one record, an ES evaluation, a causal trace.

Each runs on the thread that owns the model and takes that thread's ``host``: ``host.lm`` (the
language model), ``host.cancel_event`` (this job's cancel), ``host.serve_probe()`` (answer a
waiting probe between batches, so typing keeps getting answers) and ``host.progress(job_id, kind,
done, total, partial)`` (a partial result for whoever asked).
"""

from __future__ import annotations

#: Rows per forward of the app's ES evaluation and sweep on a CPU: a probe typed meanwhile waits for
#: at most one forward (bench/bench_probe_priority.py, BENCHMARKS.md); elsewhere the library's 8.
APP_ES_BATCH_CPU = 4


def app_batch_size(lm) -> int:
    """Rows per forward for the app's efficacy jobs on ``lm``'s device (see ``APP_ES_BATCH_CPU``)."""
    return APP_ES_BATCH_CPU if str(lm.device) == "cpu" else 8


def sweep(host, job_id, record, scheme, top, template=None):
    """P(true), P(false) for n = 0..top sentences of ``scheme`` before ``record``."""
    from engine.hijack.efficacy import efficacy_curve

    return efficacy_curve(host.lm, [record], scheme, top, template, cancel=host.cancel_event,
                          batch_size=app_batch_size(host.lm), progress=lambda d, t: host.serve_probe())


def evaluate(host, job_id, records, scheme, top, template=None):
    """ES(n), n = 0..top, over ``records``; a partial result every 8 records."""
    from engine.hijack.progressive import efficacy_progressive

    def partial(result, done, total):
        host.progress(job_id, "efficacy", done, total, result)
        host.serve_probe()

    return efficacy_progressive(host.lm, records, scheme, top, chunk=8, on_partial=partial, template=template,
                                batch_size=app_batch_size(host.lm), cancel=host.cancel_event,
                                progress=lambda d, t: host.serve_probe())


#: Rows per batched forward of the app's trace: the longest a waiting probe waits is one such
#: forward (measured in bench/bench_trace.py: BENCHMARKS.md, causal trace).
APP_TRACE_CHUNK = 16


def trace(host, job_id, prompt, prepend, target_true, target_false, mention=None, window=None):
    """The causal trace of ``prepend + prompt`` against ``prompt`` (``engine.hijack.trace``); between
    its batched forwards (``APP_TRACE_CHUNK`` rows each) it answers a waiting probe (no trace hook is
    installed then) and stops at a cancel (the result is then None)."""
    from engine.hijack.trace import Cancelled, prepare
    from engine.hijack.trace import trace as run

    pair = prepare(host.lm, prompt, prepend, target_true, target_false, mention)

    def cancel() -> bool:
        if host.cancel_event.is_set():
            return True
        host.serve_probe()
        return host.cancel_event.is_set()

    try:
        return run(host.lm, pair, window=window, cancel=cancel, chunk=APP_TRACE_CHUNK)
    except Cancelled:
        return None
