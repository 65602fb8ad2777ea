"""Planning an efficacy sweep (``engine.hijack.efficacy``): each record's prompts n = 0..N as token
ids, the prefix each shares with the longest one, the target ids that follow the prompt; and the
scoring of one (record, n) from its targets' log-probabilities under a scoring rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import UserError
from engine.hijack.efficacy_results import RecordScore
from engine.hijack.kv import common_prefix, fit_window
from engine.hijack.probe import continuation_ids


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


def prepend_counts(max_prepends: int, ends_only: bool = False) -> tuple[int, ...]:
    """The n a sweep scores: 0..N, or with ``ends_only`` just 0 and N (what a before/after needs)."""
    return tuple(sorted({0, max_prepends})) if ends_only else tuple(range(max_prepends + 1))


def _plan(lm, records, scheme, max_prepends, template, share: bool, offset: int = 0,
          ends_only: bool = False) -> list[list[_Item]]:
    """Token plans of each record's prompts n = 0..N, or n = 0 and N with ``ends_only``
    (``record_index`` counts from ``offset``)."""
    from engine.hijack.schemes import build_prompt

    limit = lm.kv_limit if share else None
    plans = []
    for ri, rec in enumerate(records, start=offset):
        items = []
        for n in prepend_counts(max_prepends, ends_only):
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
