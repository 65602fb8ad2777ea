"""The causal trace over records: each CounterFact-style record's hijacked prompt (``n`` sentences of a
scheme prepended, ``engine.hijack.schemes``) traced against its clean prompt (n = 0), one record at
a time (memory flat in the number of records), with progress and cancellation (``engine.job_context``).

The mentions a knockout restricts to are those of the target the scheme repeats: the false target
for ``not-think`` / ``relation`` (and a custom template), the true one for the reverse schemes.
A record the trace cannot take (its two targets share a first token, its prompt overflows the
window) is yielded with the reason instead of a trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from engine.errors import UserError
from engine.hijack.blocks import check_attention, locate
from engine.hijack.trace import Pair, Trace, knock_window, prepare, trace
from engine.job_context import NO_JOB, JobContext


@dataclass(frozen=True)
class RecordTrace:
    index: int  # position of the record in the input
    case_id: int
    trace: Trace | None
    skipped: str | None = None


def record_pair(lm, record, scheme: str, n: int, template: str | None = None) -> Pair:
    """The clean/hijacked pair of one record (module doc)."""
    from engine.hijack.schemes import check_scheme, hijack_prefix, is_reverse

    name = check_scheme(scheme)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"the trace needs at least one prepended sentence: --n must be >= 1, not {n!r}")
    mention = record.target_true if is_reverse(name) else record.target_false
    return prepare(lm, record.text, hijack_prefix(record, name, n, template), record.target_true,
                   record.target_false, mention=mention)


def trace_records(lm, records: Sequence, scheme: str, n: int, template: str | None = None,
                  window: int | None = None, heads: bool = True, every_position: bool = False,
                  ctx: JobContext | None = None, knock_sink: bool = False) -> Iterator[RecordTrace]:
    """Yield one ``RecordTrace`` per record, in order; ``ctx.progress(records done, records)`` after
    each, and a cancel stops between (and inside) records by raising ``Cancelled``. What no record can
    pass (the attention implementation) fails before the first; a record whose own trace fails (e.g.
    activations that overflow) is yielded skipped with the reason."""
    check_attention(lm)
    knock_window(window, locate(lm).n_layers)
    ctx = ctx or NO_JOB
    total = len(records)
    for i, rec in enumerate(records):
        ctx.pause()
        ctx.check()
        try:
            pair = record_pair(lm, rec, scheme, n, template)
        except UserError as exc:
            if i == 0 and "--n" in str(exc):
                raise
            yield RecordTrace(i, rec.case_id, None, str(exc))
        else:
            try:
                traced = trace(lm, pair, window=window, ctx=ctx, heads=heads, every_position=every_position,
                               knock_sink=knock_sink)
            except UserError as exc:
                yield RecordTrace(i, rec.case_id, None, str(exc))
            else:
                yield RecordTrace(i, rec.case_id, traced)
        ctx.progress(i + 1, total)
