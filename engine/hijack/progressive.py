"""Efficacy curves that fill in as records finish (for live views).

``efficacy_progressive`` runs ``efficacy_curve`` over chunks of records and, after each chunk,
reports the merged curve so far (``ctx.progress``'s ``partial``). Merging weights each chunk's per-n
means by its record count, so the final curve equals one ``efficacy_curve`` call over all records;
record indices count over all chunks (so flip points of the merged result are per record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from engine.errors import Cancelled
from engine.hijack.efficacy import CurvePoint, EfficacyResult, efficacy_curve
from engine.job_context import NO_JOB, JobContext


def merge_results(parts: Sequence[EfficacyResult]) -> EfficacyResult:
    """Count-weighted merge of efficacy results over disjoint record sets (same scheme and n)."""
    if not parts:
        raise ValueError("nothing to merge")
    by_n: dict[int, list[CurvePoint]] = {}
    for part in parts:
        for p in part.curve:
            by_n.setdefault(p.n, []).append(p)
    curve = []
    for n in sorted(by_n):
        pts = [p for p in by_n[n] if p.count > 0]
        total = sum(p.count for p in pts)
        if total == 0:
            curve.append(CurvePoint(n, float("nan"), float("nan"), float("nan"), 0))
            continue
        mean = lambda attr, pts=pts, total=total: sum(getattr(p, attr) * p.count for p in pts) / total  # noqa: E731
        curve.append(CurvePoint(n, mean("es"), mean("p_true"), mean("p_false"), total))
    notes = tuple(dict.fromkeys(n for p in parts for n in p.notes if "record(s)" not in n))
    inexact = len({r.record_index for p in parts for r in p.records if not r.exact})
    if inexact:
        notes += (f"{inexact} record(s): the prompt's tokens are not a prefix of prompt + target; "
                  "scored by the targets' own tokens",)
    return replace(parts[0], n_records=sum(p.n_records for p in parts), curve=tuple(curve),
                   records=tuple(r for p in parts for r in p.records),
                   cancelled=any(p.cancelled for p in parts), notes=notes)


def efficacy_progressive(lm, records, scheme: str, max_prepends: int, chunk: int = 8,
                         ctx: JobContext | None = None, **kwargs) -> EfficacyResult:
    """``efficacy_curve`` in chunks of ``chunk`` records, reporting ``ctx.progress(records done, records,
    merged result so far)`` after each; a cancel raises ``Cancelled`` whose ``partial`` is the merged
    result of the records scored (``cancelled=True``)."""
    ctx = ctx or NO_JOB
    records = list(records)
    parts: list[EfficacyResult] = []
    for start in range(0, len(records), chunk):
        if ctx.cancelled() and parts:
            raise Cancelled(replace(merge_results(parts), cancelled=True))
        try:
            part = efficacy_curve(lm, records[start:start + chunk], scheme, max_prepends, ctx=ctx.quiet(),
                                  index_offset=start, **kwargs)
        except Cancelled as exc:
            raise Cancelled(merge_results([*parts, exc.partial])) from None
        parts.append(part)
        ctx.progress(min(start + chunk, len(records)), len(records), merge_results(parts))
        ctx.pause()
    return merge_results(parts) if parts else efficacy_curve(lm, records, scheme, max_prepends, ctx=ctx.quiet(),
                                                             **kwargs)
