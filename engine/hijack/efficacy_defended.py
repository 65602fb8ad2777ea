"""The ES sweep under a defense (``engine.hijack.defenses``) on the cached, batched path of
``engine.hijack.efficacy`` (its plan and its KV batching, ``efficacy_plan`` / ``efficacy_batch``).

- ``none``: the plain sweep;
- ``heads`` / ``steer`` / ``attention``: the defense's hooks stay installed for the whole sweep, so the
  shared prefix's keys/values are computed under the defense as well (they act at every position).
  The attention defense tells the hooks each row's prepended span before every forward, and a (record,
  n) reuses the shared prefix only up to the end of its own span (no query of the shared part pays
  the bias then, under the longest prompt's span or under its own: the cache stays exact);
- ``contrastive``: undefended forwards; the question alone is the record's n = 0 prompt, which the
  sweep runs anyway (once per record); each target token's full log-probability rows of the two runs
  are combined (``defenses.contrastive_logp``). Where the question alone tokenises a target
  differently from the hijacked prompt, the question alone is run again on the hijacked prompt's
  target ids (one plain forward);
- ``drop-context``: every n scored by the record's n = 0 prompt (the question alone).

Scores, curve and result types are the sweep's (``EfficacyResult``); ``notes`` name the defense.
"""

from __future__ import annotations

from dataclasses import replace

from engine.errors import Cancelled
from engine.hijack.defenses import Defense, check_for, contrastive_logp, install, prepended_span
from engine.hijack.efficacy import _finish, batched_scores, check_request, efficacy_curve, sharing
from engine.hijack.efficacy_batch import _run_batch
from engine.hijack.efficacy_plan import _plan, _score, prepend_counts
from engine.job_context import NO_JOB, JobContext


def defended_curve(lm, records, scheme: str, max_prepends: int, defense: Defense, template: str | None = None,
                   scoring: str = "whole", batch_size: int = 8, ctx: JobContext | None = None,
                   index_offset: int = 0, ends_only: bool = False):
    """ES(n), n = 0..max_prepends (``ends_only``: n = 0 and max_prepends), under ``defense`` (module doc);
    ``ctx`` as ``efficacy_curve``'s."""
    import torch

    name = check_request(records, scheme, max_prepends, scoring, batch_size, template)
    if defense.name == "none":
        return efficacy_curve(lm, records, name, max_prepends, template, scoring, batch_size, ctx, index_offset,
                              ends_only)
    check_for(lm, defense)
    if defense.name == "drop-context":
        return _drop_context(lm, records, name, max_prepends, template, scoring, batch_size, ctx, index_offset,
                             ends_only)
    from engine.hijack.schemes import hijack_prefix, is_reverse

    reverse = is_reverse(name)
    ctx = ctx or NO_JOB
    share, notes = sharing(lm)
    spans: dict[tuple[int, int], tuple[int, int]] = {}

    def plan(part, start):
        plans = _plan(lm, part, name, max_prepends, template, share, index_offset + start, ends_only)
        if defense.name == "attention":
            for rec, items in zip(part, plans):
                for it in items:
                    a, b = prepended_span(lm, it.prompt, hijack_prefix(rec, name, it.n, template), defense.sink)
                    spans[(it.record_index, it.n)] = (a, b)
                    it.shared = min(it.shared, b)
        return plans

    def run(batch, report):
        if defense.name == "contrastive":
            return _contrastive_batch(lm, batch, scoring, batch_size, reverse, ctx, report, defense)
        return _run_batch(lm, batch, scoring, batch_size, reverse, ctx, report, before=before)

    with torch.inference_mode(), install(lm, defense) as state:
        before = None
        if defense.name == "attention":
            def before(items):
                state.rows([spans[(it.record_index, it.n)] for it in items])
        total = len(records) * len(prepend_counts(max_prepends, ends_only))
        scores, done_records, cancelled = batched_scores(records, batch_size, ctx, total, plan, run)
    notes = tuple(notes) + (f"defense {defense.name} {defense.params}",)
    result = _finish(lm, name, scoring, max_prepends, template, scores, done_records, cancelled, notes)
    if cancelled:
        raise Cancelled(result)
    return result


def _drop_context(lm, records, name, max_prepends, template, scoring, batch_size, ctx, index_offset, ends_only):
    """Every (record, n) scored by the question alone (the record's n = 0 prompt)."""
    from engine.hijack.schemes import build_prompt

    base = efficacy_curve(lm, records, name, 0, template, scoring, batch_size, ctx, index_offset)
    scores = [replace(s, n=n, prompt=build_prompt(records[s.record_index - index_offset], name, n, template))
              for n in prepend_counts(max_prepends, ends_only) for s in base.records]
    notes = tuple(base.notes) + ("defense drop-context: every n scored by the question alone",)
    return _finish(lm, name, scoring, max_prepends, template, scores, base.n_records, False, notes)


def _target_rows(logp, keep, cont, t, row, base):
    """(len(t), V) log-probability rows predicting each token of ``t`` (as ``_run_chunk`` reads them)."""
    import torch

    first = logp[base, keep - 1 - cont[base]]
    col = keep - 1 - cont[row]
    return torch.stack([first] + [logp[row, col + j] for j in range(1, len(t))])


def _collect_rows(chunk, logp, keep, cont):
    out, base = [], 0
    for it, its_rows, where in chunk:
        out.append((it, _target_rows(logp, keep, cont, it.true_ids, base + where.get("true", 0), base),
                    _target_rows(logp, keep, cont, it.false_ids, base + where.get("false", 0), base)))
        base += len(its_rows)
    return out


def _plain_rows(lm, ids, t):
    """Log-probability rows of ``t`` after ``ids`` from one plain forward (the rare re-tokenised case)."""
    import torch

    x = torch.as_tensor([list(ids) + list(t[:-1])], device=lm.device)
    lp = torch.log_softmax(lm.model(x).logits[0].float(), dim=-1)
    return lp[len(ids) - 1:len(ids) - 1 + len(t)]


def _contrastive_batch(lm, plans, scoring, batch_size, reverse, ctx, report, d: Defense):
    got = _run_batch(lm, plans, scoring, batch_size, reverse, ctx, report, collect=_collect_rows)
    if got is None:
        return None
    question = {it.record_index: (it, rt, rf) for it, rt, rf in got if it.n == 0}
    out = []
    for it, rt, rf in got:
        q_it, qt, qf = question[it.record_index]
        if list(q_it.true_ids) != list(it.true_ids):
            qt = _plain_rows(lm, q_it.ids, it.true_ids)
        if list(q_it.false_ids) != list(it.false_ids):
            qf = _plain_rows(lm, q_it.ids, it.false_ids)
        lps = []
        for t, q, c in ((it.true_ids, qt, rt), (it.false_ids, qf, rf)):
            lp = contrastive_logp(q.to(c.device), c, float(d.alpha), float(d.beta))
            lps.append([float(lp[j, tok]) for j, tok in enumerate(t)])
        out.append(_score(it, lps[0], lps[1], scoring, reverse))
    return out
