"""The KV batching of an efficacy sweep (``engine.hijack.efficacy``): per record batch, one padded
forward for the keys/values of each record's longest shared prefix, then every (record, n) runs only
its remaining tokens and target continuations, many rows per forward, left-padded so that only the
last columns need the unembedding.

Defenses (``engine.hijack.defenses``) ride the same path: their hooks stay installed around the whole
batch (so the shared prefix's keys/values are computed under them too), ``before(items)`` is told the
(record, n) item of every row before each forward (the attention defense's per-row spans), and
``collect(chunk, logp, keep, cont)`` replaces the scoring (contrastive decoding takes whole rows of
log-probabilities instead of the targets' numbers)."""

from __future__ import annotations

from engine.hijack.efficacy_plan import _score
from engine.hijack.efficacy_results import RecordScore
from engine.hijack.kv import extend
from engine.job_context import JobContext


def _run_batch(lm, plans, scoring, batch_size, reverse, ctx: JobContext, report, before=None, collect=None):
    """Score every (record, n) of a record batch, ``report(k)`` and ``ctx.pause()`` after each forward
    (the app's model thread answers a waiting probe there); None when cancelled midway. ``before`` and
    ``collect``: module doc (``collect`` returns one entry per item of the chunk)."""

    # Stage 1: keys/values of each record's longest shared prefix (one padded forward).
    roots = [(items[0].record_index, items[-1].ids[:max(it.shared for it in items)]) for items in plans]
    roots = [(i, r) for i, r in roots if r]
    slot = {i: s for s, (i, _) in enumerate(roots)}
    root_kv = None
    if roots:
        if before is not None:
            by_index = {items[0].record_index: items[-1] for items in plans}
            before([by_index[i] for i, _ in roots])
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
        out.extend(_run_chunk(lm, chunk, root_kv, slot, scoring, reverse, before, collect))
        report(len(out))
        ctx.pause()
        chunk, n_rows = ([entry], len(entry[1])) if entry is not None else ([], 0)
    return out


def _run_chunk(lm, chunk, root_kv, slot, scoring, reverse, before=None, collect=None):
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
    if before is not None:
        before(owners)
    logits, _, _ = extend(lm, past, rows, keep=keep, want_cache=False, left=True)
    logp = torch.log_softmax(logits.float(), dim=-1)
    if collect is not None:
        return collect(chunk, logp, keep, cont)

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
