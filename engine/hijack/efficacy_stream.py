"""A streamed efficacy sweep: ``efficacy_curve`` over a large record set in chunks of
``CHUNK_RECORDS`` records, each chunk kept as its ``tally`` (and in the job store), memory flat in the
number of records."""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import Cancelled
from engine.hijack.efficacy import check_request, check_window, efficacy_curve
from engine.hijack.efficacy_flips import FlipPoint, flip_points
from engine.hijack.efficacy_results import CurvePoint, EfficacyResult
from engine.job_context import NO_JOB, JobContext

#: Records per chunk of a streamed sweep (one store entry each; ``efficacy_streamed``, hijack-curves).
CHUNK_RECORDS = 256


def tally(res: EfficacyResult) -> dict:
    """A scored chunk as plain data whose size does not grow with N x records' prompts: per n
    [successes, sum P(true), sum P(false), count] (first-token probabilities under ``first``, summed
    in the order ``_finish`` sums them), one [record_index, case_id, flip n] per record, ``up`` /
    ``down``: records that start / stop counting between n = 0 and N, ``inexact`` record indices."""
    use_first = res.scoring == "first"
    per_n = []
    for n in range(res.max_prepends + 1):
        rows = [s for s in res.records if s.n == n]
        per_n.append([sum(s.success for s in rows), sum(s.first_true if use_first else s.p_true for s in rows),
                      sum(s.first_false if use_first else s.p_false for s in rows), len(rows)])
    first = {s.record_index: s.success for s in res.records if s.n == 0}
    last = {s.record_index: s.success for s in res.records if s.n == res.max_prepends}
    return {"per_n": per_n, "records": res.n_records,
            "flips": [[p.record_index, p.case_id, p.n] for p in flip_points(res)],
            "up": sum(1 for i, ok in last.items() if ok and not first.get(i, False)),
            "down": sum(1 for i, ok in last.items() if not ok and first.get(i, False)),
            "inexact": sorted({s.record_index for s in res.records if not s.exact}),
            "notes": [n for n in res.notes if "record(s)" not in n]}


def tally_curve(parts: Sequence[dict], max_prepends: int) -> tuple[CurvePoint, ...]:
    """The ES curve of several chunks' tallies (their per-n sums added)."""
    curve = []
    for n in range(max_prepends + 1):
        k = sum(p["per_n"][n][3] for p in parts)
        succ = sum(p["per_n"][n][0] for p in parts)
        pt = sum(p["per_n"][n][1] for p in parts)  # one chunk: exactly efficacy_curve's mean
        pf = sum(p["per_n"][n][2] for p in parts)
        curve.append(CurvePoint(n, succ / k if k else float("nan"), pt / k if k else float("nan"),
                                pf / k if k else float("nan"), k))
    return tuple(curve)


def efficacy_streamed(lm, records, scheme: str, max_prepends: int, template: str | None = None,
                      scoring: str = "whole", batch_size: int = 8, store=None, ctx: JobContext | None = None,
                      chunk: int = CHUNK_RECORDS) -> EfficacyResult:
    """``efficacy_curve`` over a large record set in chunks of ``chunk`` records, keeping only each
    chunk's ``tally`` (memory flat in the number of records: no per-record scores or prompts are kept).
    With a job store (``engine.jobstore.JobStore``) every chunk is written as soon as it is scored and
    a rerun reads the finished chunks instead (resume; ``store.hits`` counts them). The result has
    the curve and the flip points (``flips``) but no ``records``. ``ctx.progress(done, total)`` counts
    (record, n) prompts, the resumed ones first; a cancel raises ``Cancelled`` with the finished
    chunks' result (``cancelled=True``) as its ``partial``."""
    name = check_request(records, scheme, max_prepends, scoring, batch_size, template)
    check_window(lm, records, name, max_prepends, template)
    ctx = ctx or NO_JOB
    total = len(records) * (max_prepends + 1)
    parts: list[dict] = []
    done = 0
    cancelled = False
    for start in range(0, len(records), chunk):
        part_records = records[start:start + chunk]
        spec = {"model": lm.name, "source": lm.source, "device": str(lm.device), "dtype": str(lm.dtype),
                "scheme": name, "max_prepends": max_prepends, "template": template, "scoring": scoring,
                "batch_size": batch_size, "offset": start, "records": [r.to_dict() for r in part_records]}
        hit, part = store.get(_STREAM_FN, spec) if store is not None else (False, None)
        if not hit:
            try:
                res = efficacy_curve(lm, part_records, name, max_prepends, template, scoring, batch_size,
                                     ctx.part(done, total), index_offset=start)
            except Cancelled:
                cancelled = True
                break
            part = tally(res)
            if store is not None:
                part = store.put(_STREAM_FN, spec, part)
        parts.append(part)
        done += len(part_records) * (max_prepends + 1)
        ctx.progress(done, total)
    notes = tuple(dict.fromkeys(n for p in parts for n in p["notes"]))
    inexact = sum(len(p["inexact"]) for p in parts)
    if inexact:
        notes += (f"{inexact} record(s): the prompt's tokens are not a prefix of prompt + target; "
                  "scored by the targets' own tokens",)
    from engine.hijack.schemes import metric_name

    flips = tuple(FlipPoint(i, c, n) for p in parts for i, c, n in p["flips"])
    result = EfficacyResult(lm.name, name, metric_name(name), scoring, max_prepends,
                            sum(p["records"] for p in parts), tally_curve(parts, max_prepends), (), cancelled,
                            template, notes, flips)
    if cancelled:
        raise Cancelled(result)
    return result


#: The store's name for a streamed chunk (``engine.jobstore`` keys entries by function name; the name the
#: function had before it moved here, kept so that the chunks already stored are found).
_STREAM_FN = "engine.hijack.efficacy:efficacy_streamed"
