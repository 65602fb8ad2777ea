"""Efficacy curves ES(n): how often n prepended sentences flip a fact (Fig. 2a not-think, Fig. 2b relation).

ES = fraction of records with P(target_false | prompt_n) > P(target_true | prompt_n). Reverse schemes
(App. C) report accuracy, the fraction with P(true) > P(false), in the same ``es`` field; ``metric``
says which. Scoring rules: ``whole`` (probability of the whole target, product over its tokens; default),
``first`` (first-token probability), ``nll`` (ROME's rule: mean per-token NLL of false < of true).
Targets are scored with a leading space (``" Paris"``) after the space-less CounterFact prompt, by the
exact ids that follow the prompt in ids(prompt + " Paris") (``engine.hijack.probe.continuation_ids``;
records where that is impossible fall back to the target's own ids and are counted in ``notes``).

Speed: the prompts of one record nest (prompt_n = prefix_n + text, prefix_n a prefix of prefix_N),
so the keys/values of the longest prompt are computed once and every n reuses the longest *token*
prefix its own tokenisation shares with it (checked token by token, so the numbers equal the naive
prompts exactly; no sharing simply means a full forward). Each (record, n) then runs only its
remaining tokens plus the target continuation, many rows per forward (``batch_size`` rows),
left-padded so that only the last columns need the unembedding; records and rows of similar length
are batched together to waste little on padding.

Sliding-window models (Gemma-2/3): a shared prefix is reused only while the whole row (cache slots
included) fits inside the window, where it is exact; longer rows run in full. Attention kernels that
cannot take a mask with holes (flash-attention) get no prefix sharing at all, with a note.

The parts, one module each: ``efficacy_results`` (``CurvePoint``, ``RecordScore``, ``EfficacyResult``),
``efficacy_plan`` (each record's prompts as tokens, the shared prefix, scoring one (record, n)),
``efficacy_batch`` (the KV batching: prefix keys/values, then the rows after them), ``efficacy_flips``
(flip points, their summary, ``compare``), ``efficacy_stream`` (``efficacy_streamed``: chunks, tallies,
the job store). This module is the sweep (``efficacy_curve``, its checks, ``naive_efficacy_curve``) and
names the results, the plan's ``target_text`` and the flip points as before.
"""

from __future__ import annotations

from engine.errors import Cancelled, UserError
from engine.hijack.efficacy_batch import _run_batch
from engine.hijack.efficacy_flips import FlipPoint, FlipSummary, compare, flip_points, flip_points_of_rows, flip_summary
from engine.hijack.efficacy_plan import _plan, _score, prepend_counts, target_text
from engine.hijack.efficacy_results import CurvePoint, EfficacyResult, RecordScore
from engine.job_context import NO_JOB, JobContext

__all__ = [  # the sweep here; its results, plan and flip points from their modules, by their old names
    "SCORINGS", "CurvePoint", "EfficacyResult", "FlipPoint", "FlipSummary", "RecordScore", "check_request",
    "check_window", "compare", "efficacy_curve", "flip_points", "flip_points_of_rows", "flip_summary",
    "naive_efficacy_curve", "oom_guard", "sharing", "target_text",
]

SCORINGS = ("whole", "first", "nll")
_WINDOW_BATCHES = 8  # records are planned (tokenised) and length-sorted this many batches at a time


def check_request(records, scheme, max_prepends, scoring="whole", batch_size=8, template=None) -> str:
    """Validate an efficacy request (cheap: no model needed); returns the normalised scheme name."""
    from engine.hijack.schemes import check_scheme, hijack_sentence

    name = check_scheme(scheme)
    if scoring not in SCORINGS:
        raise UserError(f"unknown scoring {scoring!r}: choose one of {', '.join(SCORINGS)}")
    if isinstance(max_prepends, bool) or not isinstance(max_prepends, int) or max_prepends < 0:
        raise UserError(f"the number of prepends must be an integer >= 0, not {max_prepends!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"the batch size must be a positive integer, not {batch_size!r}")
    if not records:
        raise UserError("no records to evaluate: check the dataset, --relation and --limit")
    hijack_sentence(records[0], name, template)  # a bad custom template fails here, once
    return name


def _finish(lm, name, scoring, max_prepends, template, scores, n_done, cancelled, notes=()) -> EfficacyResult:
    from engine.hijack.schemes import metric_name

    inexact = len({s.record_index for s in scores if not s.exact})
    if inexact:
        notes = tuple(notes) + (f"{inexact} record(s): the prompt's tokens are not a prefix of "
                                "prompt + target; scored by the targets' own tokens",)

    curve = []
    for n in range(max_prepends + 1):
        rows = [s for s in scores if s.n == n]
        k = len(rows)
        use_first = scoring == "first"
        pt = [s.first_true if use_first else s.p_true for s in rows]
        pf = [s.first_false if use_first else s.p_false for s in rows]
        curve.append(CurvePoint(n, sum(s.success for s in rows) / k if k else float("nan"),
                                sum(pt) / k if k else float("nan"), sum(pf) / k if k else float("nan"), k))
    return EfficacyResult(lm.name, name, metric_name(name), scoring, max_prepends, n_done, tuple(curve),
                          tuple(scores), cancelled, template, tuple(notes))


def oom_guard(exc: BaseException, batch_size: int | None) -> None:
    """Re-raise an out-of-memory error as a UserError suggesting a smaller batch; else return."""
    import torch

    text = str(exc).lower()
    if (isinstance(exc, (MemoryError, getattr(torch.cuda, "OutOfMemoryError", MemoryError)))
            or "out of memory" in text or "can't allocate memory" in text):
        size = f" with batch size {batch_size}" if batch_size else ""
        raise UserError(f"out of memory{size}: try a smaller --batch-size, a shorter prompt "
                        "or a smaller --dtype") from exc


def batched_scores(records, batch_size: int, ctx: JobContext, total: int, plan, run) -> tuple[list, int, bool]:
    """The batched sweep's loop (``efficacy_curve``, ``efficacy_defended``): windows of
    ``batch_size · _WINDOW_BATCHES`` records planned by ``plan(part, start)`` and length-sorted (records
    of similar prompt length share a batch: less padding), each batch scored by ``run(batch, report)``
    (``report(k)``: k of its prompts done; None: cancelled midway); a cancel is looked at between
    batches. Returns (scores sorted by (n, record), records done, cancelled); out of memory is one
    ``UserError`` (``oom_guard``)."""
    scores: list[RecordScore] = []
    done, cancelled = 0, False
    window = batch_size * _WINDOW_BATCHES
    try:
        for w_start in range(0, len(records), window):
            plans = plan(records[w_start:w_start + window], w_start)
            plans.sort(key=lambda items: len(items[-1].ids))
            for start in range(0, len(plans), batch_size):
                if ctx.cancelled():
                    cancelled = True
                    break
                batch = plans[start:start + batch_size]
                got = run(batch, lambda k: ctx.progress(len(scores) + k, total))
                if got is None:
                    cancelled = True
                    break
                scores.extend(got)
                done += len(batch)
            if cancelled:
                break
    except (RuntimeError, MemoryError) as exc:
        oom_guard(exc, batch_size)
        raise
    scores.sort(key=lambda s: (s.n, s.record_index))
    return scores, done, cancelled


def efficacy_curve(lm, records, scheme: str, max_prepends: int, template: str | None = None,
                   scoring: str = "whole", batch_size: int = 8,
                   ctx: JobContext | None = None,
                   index_offset: int = 0, ends_only: bool = False) -> EfficacyResult:
    """ES(n) for n = 0..max_prepends over ``records`` (see the module docstring); with ``ends_only``
    only n = 0 and n = max_prepends are scored (the points between have no records: ``count`` 0).

    ``batch_size`` is the number of sequences per forward pass. ``ctx.progress(done, total)`` counts
    (record, n) prompts; every forward is followed by ``ctx.pause()``. A cancel seen between batches
    raises ``Cancelled`` whose ``partial`` holds the records finished so far (``cancelled=True``).
    ``record_index`` of the scores counts from ``index_offset``.
    """
    import torch

    name = check_request(records, scheme, max_prepends, scoring, batch_size, template)
    from engine.hijack.schemes import is_reverse

    reverse = is_reverse(name)
    ctx = ctx or NO_JOB
    share, notes = sharing(lm)
    with torch.inference_mode():
        scores, done_records, cancelled = batched_scores(
            records, batch_size, ctx, len(records) * len(prepend_counts(max_prepends, ends_only)),
            plan=lambda part, start: _plan(lm, part, name, max_prepends, template, share, index_offset + start,
                                           ends_only),
            run=lambda batch, report: _run_batch(lm, batch, scoring, batch_size, reverse, ctx, report))
    result = _finish(lm, name, scoring, max_prepends, template, scores, done_records, cancelled, notes)
    if cancelled:
        raise Cancelled(result)
    return result


def check_window(lm, records, scheme: str, max_prepends: int, template: str | None = None,
                 sample: int = 64) -> None:
    """One clear UserError, before any work, when the prompts at n = ``max_prepends`` (with a target)
    of the first ``sample`` records cannot fit the model's window (``lm.max_length`` tokens). The
    length is taken from the tokens at n = 0 and n = 1: every prepended sentence adds the same text,
    so no prompt of N sentences is built."""
    from engine.hijack.schemes import build_prompt

    if max_prepends <= 1:
        return
    worst, fits = 0, max_prepends
    for rec in list(records[:sample]):
        base = len(lm.encode(build_prompt(rec, scheme, 0, template)))
        step = len(lm.encode(build_prompt(rec, scheme, 1, template))) - base
        target = max(len(lm.encode(target_text(rec.text, t), special=False)) for t in (rec.target_true,
                                                                                     rec.target_false))
        need = base + max_prepends * step + target - 1
        if need > worst:
            worst = need
        if step > 0:
            fits = min(fits, max(0, (lm.max_length - base - target + 1) // step))
    if worst > lm.max_length:
        raise UserError(f"--max-prepends {max_prepends} makes prompts of about {worst} tokens, more than the "
                        f"{lm.max_length}-token window of {lm.name}: at most {fits} prepends fit")


def sharing(lm) -> tuple[bool, tuple[str, ...]]:
    """(whether the sweep shares prompt prefixes for this model, notes explaining why not)."""
    if not lm.kv_reuse:
        return False, ()
    if not lm.masks_with_holes:
        impl = getattr(lm.model.config, "_attn_implementation", None) or lm.attn_implementation
        return False, (f"prefix sharing is off: the {impl} attention kernel cannot take the sweep's padding "
                       "mask with holes (load the model with attn_implementation='sdpa' to share prefixes)",)
    return True, ()


def naive_efficacy_curve(lm, records, scheme: str, max_prepends: int, template: str | None = None,
                         scoring: str = "whole") -> EfficacyResult:
    """Reference implementation: one full forward per (prompt, target), no cache, no batching."""
    import torch

    name = check_request(records, scheme, max_prepends, scoring, 1, template)
    from engine.hijack.schemes import is_reverse

    reverse = is_reverse(name)
    scores = []
    with torch.inference_mode():
        for items in _plan(lm, records, name, max_prepends, template, share=False):
            for it in items:
                lps = []
                for t in (it.true_ids, it.false_ids):
                    ids = torch.as_tensor([it.ids + t[:-1]], device=lm.device)
                    lp = torch.log_softmax(lm.model(ids).logits[0].float(), dim=-1)
                    lps.append([float(lp[len(it.ids) - 1 + j, tok]) for j, tok in enumerate(t)])
                scores.append(_score(it, lps[0], lps[1], scoring, reverse))
    scores.sort(key=lambda s: (s.n, s.record_index))
    return _finish(lm, name, scoring, max_prepends, template, scores, len(records), False)


