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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from engine.errors import Cancelled, UserError
from engine.hijack.kv import common_prefix, extend, fit_window
from engine.hijack.probe import continuation_ids
from engine.job_context import NO_JOB, JobContext

SCORINGS = ("whole", "first", "nll")
_WINDOW_BATCHES = 8  # records are planned (tokenised) and length-sorted this many batches at a time


@dataclass(frozen=True)
class CurvePoint:
    n: int
    es: float  # efficacy (or accuracy for reverse schemes)
    p_true: float  # mean P(target_true) (first-token probability when scoring == "first")
    p_false: float
    count: int


@dataclass(frozen=True)
class RecordScore:
    """One record at one n, kept for drill-down."""

    case_id: int
    n: int
    prompt: str
    p_true: float
    p_false: float
    first_true: float
    first_false: float
    nll_true: float
    nll_false: float
    success: bool  # counts towards the metric (hijacked, or correct for reverse schemes)
    record_index: int = 0  # position of the record in the input list
    exact: bool = True  # both targets scored by the ids that follow the prompt (see the module doc)


@dataclass(frozen=True)
class EfficacyResult:
    model: str
    scheme: str
    metric: str  # "efficacy" or "accuracy"
    scoring: str
    max_prepends: int
    n_records: int
    curve: tuple[CurvePoint, ...]
    records: tuple[RecordScore, ...] = field(repr=False)
    cancelled: bool = False
    template: str | None = None
    notes: tuple[str, ...] = ()  # what the user should know (fallback tokenisation, sharing off)
    flips: tuple = field(default=(), repr=False)  # FlipPoints of a streamed sweep, which keeps no records

    def point(self, n: int) -> CurvePoint:
        return next(p for p in self.curve if p.n == n)

    def to_dict(self, per_record: bool = False) -> dict:
        out = {"model": self.model, "scheme": self.scheme, "metric": self.metric, "scoring": self.scoring,
               "records": self.n_records, "curve": [asdict(p) for p in self.curve], "notes": list(self.notes)}
        if self.template is not None:  # a custom scheme is only reproducible with its template
            out["template"] = self.template
        if per_record:
            out["per_record"] = [asdict(r) for r in self.records]
        return out

    def sweep_dict(self, record) -> dict:
        """A one-record sweep (``jobs.sweep``) as the session stores it: P(true), P(false) per n."""
        return {"kind": "sweep", "model": self.model, "scheme": self.scheme, "record": record.to_dict(),
                "points": [{"n": p.n, "p_true": p.p_true, "p_false": p.p_false} for p in self.curve]}


@dataclass
class _Item:
    """One (record, n) prompt: its token ids, reusable prefix length and target ids."""

    record_index: int
    case_id: int
    n: int
    prompt: str
    ids: list[int]
    shared: int
    true_ids: list[int]
    false_ids: list[int]
    exact: bool = True

    @property
    def width(self) -> int:
        """Tokens of the longest row this item runs: the prompt plus a target continuation."""
        return len(self.ids) + max(len(self.true_ids), len(self.false_ids)) - 1


def target_text(prompt: str, target: str) -> str:
    """The target as scored: with a leading space unless the prompt already ends in whitespace."""
    return target if (not prompt or prompt[-1].isspace() or target[:1].isspace()) else " " + target


def _plan(lm, records, scheme, max_prepends, template, share: bool, offset: int = 0) -> list[list[_Item]]:
    """Token plans of each record's prompts n = 0..N (``record_index`` counts from ``offset``)."""
    from engine.hijack.schemes import build_prompt

    limit = lm.kv_limit if share else None
    plans = []
    for ri, rec in enumerate(records, start=offset):
        items = []
        for n in range(max_prepends + 1):
            prompt = build_prompt(rec, scheme, n, template)
            full = lm.encode(prompt)
            if not rec.target_true or not rec.target_false:
                raise UserError(f"record {rec.case_id} has an empty target")
            t_true, ok_true = continuation_ids(lm, prompt, full, target_text(prompt, rec.target_true))
            t_false, ok_false = continuation_ids(lm, prompt, full, target_text(prompt, rec.target_false))
            ids, _ = fit_window(lm, full, reserve=max(len(t_true), len(t_false)) - 1)
            items.append(_Item(ri, rec.case_id, n, prompt, ids, 0, t_true, t_false, ok_true and ok_false))
        if share:
            root = items[-1].ids
            for it in items:
                fits = limit is None or it.width <= limit  # inside a sliding window the cache is exact
                it.shared = min(common_prefix(it.ids, root), len(it.ids) - 1) if fits else 0
        plans.append(items)
    return plans


def _score(item: _Item, lp_true: Sequence[float], lp_false: Sequence[float], scoring: str,
           reverse: bool) -> RecordScore:
    p_t, p_f = math.exp(sum(lp_true)), math.exp(sum(lp_false))
    f_t, f_f = math.exp(lp_true[0]), math.exp(lp_false[0])
    nll_t, nll_f = -sum(lp_true) / len(lp_true), -sum(lp_false) / len(lp_false)
    if scoring == "whole":
        false_wins, true_wins = p_f > p_t, p_t > p_f
    elif scoring == "first":  # the same first token is a tie, whatever the float noise says
        same = item.true_ids[0] == item.false_ids[0]
        false_wins, true_wins = f_f > f_t and not same, f_t > f_f and not same
    else:
        false_wins, true_wins = nll_f < nll_t, nll_t < nll_f
    return RecordScore(item.case_id, item.n, item.prompt, p_t, p_f, f_t, f_f, nll_t, nll_f,
                       bool(true_wins if reverse else false_wins), item.record_index, item.exact)


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


def efficacy_curve(lm, records, scheme: str, max_prepends: int, template: str | None = None,
                   scoring: str = "whole", batch_size: int = 8, ctx: JobContext | None = None,
                   index_offset: int = 0) -> EfficacyResult:
    """ES(n) for n = 0..max_prepends over ``records`` (see the module docstring).

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
    total = len(records) * (max_prepends + 1)
    scores: list[RecordScore] = []
    done_records = 0
    cancelled = False
    window = batch_size * _WINDOW_BATCHES
    try:
        with torch.inference_mode():
            for w_start in range(0, len(records), window):
                # Records of similar prompt length share a batch: less padding.
                plans = _plan(lm, records[w_start:w_start + window], name, max_prepends, template, share,
                              index_offset + w_start)
                plans.sort(key=lambda items: len(items[-1].ids))
                for start in range(0, len(plans), batch_size):
                    if ctx.cancelled():
                        cancelled = True
                        break
                    batch = plans[start:start + batch_size]
                    batch_scores = _run_batch(lm, batch, scoring, batch_size, reverse, ctx,
                                              lambda k: ctx.progress(len(scores) + k, total))
                    if batch_scores is None:
                        cancelled = True
                        break
                    scores.extend(batch_scores)
                    done_records += len(batch)
                if cancelled:
                    break
    except (RuntimeError, MemoryError) as exc:
        oom_guard(exc, batch_size)
        raise
    scores.sort(key=lambda s: (s.n, s.record_index))
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


#: The store's name for a streamed chunk (``engine.jobstore`` keys entries by function name).
_STREAM_FN = "engine.hijack.efficacy:efficacy_streamed"


def sharing(lm) -> tuple[bool, tuple[str, ...]]:
    """(whether the sweep shares prompt prefixes for this model, notes explaining why not)."""
    if not lm.kv_reuse:
        return False, ()
    if not lm.masks_with_holes:
        impl = getattr(lm.model.config, "_attn_implementation", None) or lm.attn_implementation
        return False, (f"prefix sharing is off: the {impl} attention kernel cannot take the sweep's padding "
                       "mask with holes (load the model with attn_implementation='sdpa' to share prefixes)",)
    return True, ()


def _run_batch(lm, plans, scoring, batch_size, reverse, ctx: JobContext, report):
    """Score every (record, n) of a record batch, ``report(k)`` and ``ctx.pause()`` after each forward
    (the app's model thread answers a waiting probe there); None when cancelled midway."""

    # Stage 1: keys/values of each record's longest shared prefix (one padded forward).
    roots = [(items[0].record_index, items[-1].ids[:max(it.shared for it in items)]) for items in plans]
    roots = [(i, r) for i, r in roots if r]
    slot = {i: s for s, (i, _) in enumerate(roots)}
    root_kv = None
    if roots:
        _, _, root_kv = extend(lm, None, [r for _, r in roots], keep=1)
        report(0)
        ctx.pause()  # a break between forwards (the app's model thread answers a waiting probe there)

    # Stage 2: each (record, n) runs its own remaining tokens (+ target continuations) after the prefix.
    work = []  # (item, rows, row index of the true / false continuation)
    for items in plans:
        for it in items:
            rest = it.ids[it.shared:]
            rows, where = [], {}
            for key, t in (("true", it.true_ids), ("false", it.false_ids)):
                if len(t) > 1:  # whole-target probabilities are kept under every scoring rule
                    where[key] = len(rows)
                    rows.append(rest + t[:-1])
            if not rows:
                rows.append(rest)
            work.append((it, rows, where))
    work.sort(key=lambda entry: max(len(r) for r in entry[1]))  # similar lengths share a forward

    out: list[RecordScore] = []
    chunk: list = []
    n_rows = 0
    for entry in work + [None]:
        if entry is not None and (not chunk or n_rows + len(entry[1]) <= batch_size):
            chunk.append(entry)
            n_rows += len(entry[1])
            continue
        if not chunk:
            break
        if ctx.cancelled():
            return None
        out.extend(_run_chunk(lm, chunk, root_kv, slot, scoring, reverse))
        report(len(out))
        ctx.pause()
        chunk, n_rows = ([entry], len(entry[1])) if entry is not None else ([], 0)
    return out


def _run_chunk(lm, chunk, root_kv, slot, scoring, reverse):
    """One forward for a chunk of (record, n) items: left-padded rows after their shared prefix."""
    import torch

    rows, owners = [], []
    for it, its_rows, _ in chunk:
        rows.extend(its_rows)
        owners.extend([it] * len(its_rows))
    shared = [it.shared for it in owners]
    limit = lm.kv_limit
    if limit is not None and max(shared) + max(len(r) for r in rows) > limit:
        # Padding would push some row past the sliding window: run these rows in full instead.
        rows = [it.ids[:sh] + r for it, sh, r in zip(owners, shared, rows)]
        shared = [0] * len(rows)
    past = None
    if root_kv is not None and max(shared) > 0:
        w = max(shared)
        index = [slot.get(it.record_index, 0) for it in owners]
        valid = (torch.arange(w)[None, :] < torch.as_tensor(shared)[:, None]).long().to(root_kv.mask.device)
        past = root_kv.select(index, width=w, valid=valid)
    # Left padding lines up the row ends, so only the last columns need logits: a row ending with
    # the target continuation t[:-1] has its last prompt token `len(t) - 1` columns before the end.
    cont = [len(r) - (len(it.ids) - sh) for r, it, sh in zip(rows, owners, shared)]
    keep = max(cont) + 1
    logits, _, _ = extend(lm, past, rows, keep=keep, want_cache=False, left=True)
    logp = torch.log_softmax(logits.float(), dim=-1)

    def logprobs(t, row, base):
        first = float(logp[base, keep - 1 - cont[base], t[0]])  # next-token distribution: one row for both
        col = keep - 1 - cont[row]
        return [first] + [float(logp[row, col + j, tok]) for j, tok in enumerate(t[1:], start=1)]

    scores, base = [], 0
    for it, its_rows, where in chunk:
        lp_t = logprobs(it.true_ids, base + where.get("true", 0), base)
        lp_f = logprobs(it.false_ids, base + where.get("false", 0), base)
        scores.append(_score(it, lp_t, lp_f, scoring, reverse))
        base += len(its_rows)
    return scores


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


# ---------------------------------------------------------------------------------------------
# Flip points: how many prepended sentences it takes to flip each record.


@dataclass(frozen=True)
class FlipPoint:
    """The smallest n at which a record counts towards the metric (forward schemes: P(false) > P(true)
    under the scoring rule; reverse schemes: P(true) > P(false)); ``None`` if it never does for
    n <= max_prepends."""

    record_index: int
    case_id: int
    n: int | None


@dataclass(frozen=True)
class FlipSummary:
    """Distribution of flip points over the records of one model and scheme."""

    records: int
    flipped: int
    never: int
    mean: float | None  # mean / median of n over the records that flip (None when none flips)
    median: float | None
    histogram: tuple[int, ...]  # histogram[n] = records whose flip point is n, for n = 0..max_prepends
    earliest: tuple[int, ...]  # case ids of the records that flip at the smallest n
    never_ids: tuple[int, ...]  # case ids of the records that never flip

    def to_dict(self) -> dict:
        return asdict(self)


def flip_points_of_rows(rows: Iterable[tuple[int, int, int, bool]]) -> list[FlipPoint]:
    """The one home of flip points: plain ``(record_index, case_id, n, success)`` rows (any order) ->
    one ``FlipPoint`` per record, in record order: the smallest n with ``success``, else None."""
    first: dict[int, int | None] = {}
    case: dict[int, int] = {}
    for index, case_id, n, success in sorted(rows, key=lambda r: (r[0], r[2])):
        case[index] = case_id
        first.setdefault(index, None)
        if success and first[index] is None:
            first[index] = n
    return [FlipPoint(i, case[i], first[i]) for i in sorted(first)]


def flip_points(result: EfficacyResult) -> list[FlipPoint]:
    """One ``FlipPoint`` per record of ``result``, in record order (``flip_points_of_rows``; a streamed
    result, ``efficacy_streamed``, carries them instead of its records)."""
    if result.flips and not result.records:
        return list(result.flips)
    return flip_points_of_rows((s.record_index, s.case_id, s.n, s.success) for s in result.records)


def flip_summary(points: Sequence[FlipPoint], max_prepends: int) -> FlipSummary:
    """Histogram, mean and median of the flip points; the records that flip earliest and never."""
    import statistics

    ns = [p.n for p in points if p.n is not None]
    hist = [0] * (max_prepends + 1)
    for n in ns:
        hist[n] += 1
    low = min(ns) if ns else None
    return FlipSummary(len(points), len(ns), len(points) - len(ns),
                       statistics.fmean(ns) if ns else None, float(statistics.median(ns)) if ns else None,
                       tuple(hist), tuple(p.case_id for p in points if ns and p.n == low),
                       tuple(p.case_id for p in points if p.n is None))


def compare(results: Sequence[EfficacyResult]) -> dict:
    """What a side-by-side view of several models (Fig. 2) draws, keyed by model name, in order:
    ``curves`` model -> [(n, ES)], ``flips`` model -> [flip point n or None per record] and
    ``summaries`` model -> ``FlipSummary`` (histogram, mean/median, earliest and never-flipping records).
    Results of one model for several schemes are keyed ``"<model> <scheme>"``."""
    several_schemes = len({r.scheme for r in results}) > 1
    out: dict = {"curves": {}, "flips": {}, "summaries": {}}
    for res in results:
        key = f"{res.model} {res.scheme}" if several_schemes else res.model
        points = flip_points(res)
        out["curves"][key] = [(p.n, p.es) for p in res.curve]
        out["flips"][key] = [p.n for p in points]
        out["summaries"][key] = flip_summary(points, res.max_prepends)
    return out
