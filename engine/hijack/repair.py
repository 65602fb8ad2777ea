"""What undoes the hijack, scored on held-out records (issue 30, item 2): a defense
(``engine.hijack.defenses``) chosen on the selection half (records at even positions) and scored on the
evaluation half (odd positions), every ES the defended, batched sweep (``efficacy_defended``) with
whole-target scoring, as ``lca-tui hijack`` scores it.

Per defense on the evaluation half: ES at n before → after, with the 95% t CI of the per-record drop
(hijacked before minus after, 0/1) and the one-sided exact sign test (records repaired against records
newly hijacked); accuracy on the clean prompts (n = 0, P(true) > P(false)) before → after; accuracy under
the matching reverse scheme at n (not-think → reverse-not-think, relation → reverse-relation; none for
custom) before → after; the mean change of log P(true) at n; the frontier over the α grid
([{alpha, es, clean_accuracy}]); ES at n = 0 undefended (``es_zero_before``: the hijack's rise is
ES(n) − ES(0)); the paired falls of clean and reverse accuracy (``clean_fall``, ``reverse_fall``: per
record before − after, {mean, lo, hi, n} with the 95% t CI), which the ``hijack-repair`` rule reads.

Selection (unless the defense is given whole, e.g. from a file): ``heads`` ranks every head by the mean
rise of the logit difference (true − false) when it alone is zero-ablated at the last position of the
selection records' hijacked prompts (``trace.ablate_heads``, the ranking ``engine.experiments.mechanism``
uses), and takes the top ``k_heads``; ``attention`` acts in every block; ``steer`` adds at the middle
block, v from the selection records; α comes from ``GRIDS`` on the selection half: the largest ES drop
whose clean accuracy falls by at most ``MAX_CLEAN_COST`` (0.02); if no α qualifies, the cheapest one.

The statistics are a few lines here (``engine.hijack`` may not import ``engine.experiments``; the same
t quantiles and exact sign test as ``engine.experiments.stats``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.errors import UserError
from engine.hijack.defenses import DEFENSES, Defense, steer_vector
from engine.hijack.efficacy_defended import defended_curve

MAX_CLEAN_COST = 0.02
GRIDS: dict[str, tuple[float, ...]] = {
    "heads": (0.0, 0.25, 0.5),
    "attention": (0.0, 0.1, 0.3, 0.6),
    "contrastive": (0.5, 1.0, 2.0),
    "steer": (1.0, 2.0, 4.0),
    "none": (1.0,),
    "drop-context": (1.0,),
}
REVERSE = {"not-think": "reverse-not-think", "relation": "reverse-relation"}
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def sign_test_p(k_up: int, k_down: int) -> float:
    """One-sided exact sign test: P(X >= k_up), X ~ Bin(k_up + k_down, 1/2); 1 with no pairs."""
    n = k_up + k_down
    return 1.0 if n == 0 else sum(math.comb(n, i) for i in range(k_up, n + 1)) / 2 ** n


def mean_ci(values: Sequence[float]) -> dict:
    """{mean, lo, hi, n}: the mean with its 95% Student-t interval (NaN bounds below 2 values)."""
    vals = [float(v) for v in values if math.isfinite(float(v))]
    n = len(vals)
    if n == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    mu = sum(vals) / n
    if n < 2:
        return {"mean": mu, "lo": float("nan"), "hi": float("nan"), "n": n}
    sd = math.sqrt(sum((v - mu) ** 2 for v in vals) / (n - 1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.959964 + 2.4 / (n - 1)
    half = t * sd / math.sqrt(n)
    return {"mean": mu, "lo": mu - half, "hi": mu + half, "n": n}


def halves(records: Sequence) -> tuple[list, list]:
    """(selection, evaluation): records at even positions, records at odd positions."""
    return list(records[0::2]), list(records[1::2])


def score(lm, records, scheme: str, n: int, defense: Defense, template: str | None = None,
          batch_size: int = 8, ctx=None) -> dict:
    """One defense on ``records``: per-record hijack (0/1) and log P(true) at n, clean and reverse
    correctness (0/1), and their means ``es``, ``clean_accuracy``, ``reverse_accuracy`` (None: no reverse)."""
    res = defended_curve(lm, records, scheme, n, defense, template=template, scoring="whole",
                         batch_size=batch_size, ctx=ctx)
    at_n = sorted((s for s in res.records if s.n == n), key=lambda s: s.record_index)
    clean = sorted((s for s in res.records if s.n == 0), key=lambda s: s.record_index)
    out = {"hijacked": [int(s.success) for s in at_n],
           "log_p_true": [math.log(s.p_true) if s.p_true > 0 else float("-inf") for s in at_n],
           "clean_correct": [int(s.p_true > s.p_false) for s in clean],
           "clean_hijacked": [int(s.success) for s in clean], "reverse_correct": None}
    rev = REVERSE.get(scheme)
    if rev is not None:
        r = defended_curve(lm, records, rev, n, defense, scoring="whole", batch_size=batch_size, ctx=ctx)
        out["reverse_correct"] = [int(s.success) for s in sorted((s for s in r.records if s.n == n),
                                                                 key=lambda s: s.record_index)]
    k = len(at_n)
    out["es"] = sum(out["hijacked"]) / k
    out["clean_accuracy"] = sum(out["clean_correct"]) / k
    out["reverse_accuracy"] = (sum(out["reverse_correct"]) / k) if out["reverse_correct"] is not None else None
    return out


def rank_heads(lm, records, scheme: str, n: int, template: str | None = None) -> list[tuple[int, int, float]]:
    """(block, head, mean rise of logit_diff when that head alone is zero-ablated at the last position),
    highest first, over ``records`` (those the trace cannot take are left out)."""
    from engine.hijack.blocks import locate
    from engine.hijack.trace import ablate_heads
    from engine.hijack.trace_dataset import record_pair

    layout = locate(lm)
    sets = [[]] + [[(b, h)] for b in range(layout.n_layers) for h in range(layout.n_heads)]
    rises = [0.0] * (len(sets) - 1)
    used = 0
    for rec in records:
        try:
            pair = record_pair(lm, rec, scheme, n, template)
        except UserError:
            continue
        got = ablate_heads(lm, pair, sets)
        for i, m in enumerate(got[1:]):
            rises[i] += m.logit_diff - got[0].logit_diff
        used += 1
    if not used:
        raise UserError("no selection record can be traced: no head ranking")
    return sorted(((b, h, rises[i] / used) for i, (b, h) in enumerate(s[0] for s in sets[1:])),
                  key=lambda s: -s[2])


def shape(lm, name: str, selection, scheme: str, n: int, template: str | None = None, k_heads: int = 3,
          alpha: float = 1.0) -> Defense:
    """The defense ``name`` with its heads / blocks / v chosen on ``selection`` (module doc), at ``alpha``."""
    from engine.hijack.blocks import locate

    if name not in DEFENSES:
        raise UserError(f"unknown defense {name!r}: choose one of {', '.join(DEFENSES)}")
    layout = locate(lm)
    if name == "heads":
        top = rank_heads(lm, selection, scheme, n, template)[:k_heads]
        return Defense("heads", alpha, tuple((b, h) for b, h, _ in top))
    if name == "attention":
        return Defense("attention", min(alpha, 1.0), blocks=tuple(range(layout.n_layers)))
    if name == "steer":
        block = layout.n_layers // 2
        return Defense("steer", alpha, blocks=(block,), v=steer_vector(lm, selection, scheme, n, block, template))
    return Defense(name, alpha)


def choose_alpha(points: Sequence[tuple[float, dict]], base: dict) -> float:
    """The α of the largest ES drop with clean accuracy down by at most ``MAX_CLEAN_COST``; if none
    qualifies, the α with the smallest clean cost."""
    ok = [(base["es"] - s["es"], a) for a, s in points
          if base["clean_accuracy"] - s["clean_accuracy"] <= MAX_CLEAN_COST + 1e-12]
    if ok:
        return max(ok, key=lambda x: (x[0], -abs(x[1])))[1]
    return min(points, key=lambda p: base["clean_accuracy"] - p[1]["clean_accuracy"])[0]


def repair(lm, records, scheme: str, n: int, defenses: Sequence = ("heads", "attention", "contrastive", "steer",
                                                                     "drop-context"),
           alpha: float | None = None, template: str | None = None, batch_size: int = 8,
           k_heads: int = 3, ctx=None) -> dict:
    """Select on the even records, evaluate on the odd ones (module doc); ``defenses`` are names or
    ``Defense`` objects (taken as they are: no selection, no grid). The JSON of ``lca-tui repair``."""
    from engine.hijack.schemes import check_scheme

    scheme = check_scheme(scheme)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"--n must be an integer >= 1, not {n!r}")
    selection, evaluation = halves(records)
    if not selection or not evaluation:
        raise UserError("repair needs at least 2 records (one to select on, one to evaluate on)")
    base_sel = score(lm, selection, scheme, n, Defense("none"), template, batch_size, ctx)
    base_eval = score(lm, evaluation, scheme, n, Defense("none"), template, batch_size, ctx)
    out = {"model": lm.name, "scheme": scheme, "n": n, "selection": [r.case_id for r in selection],
           "evaluation": [r.case_id for r in evaluation], "max_clean_cost": MAX_CLEAN_COST, "defenses": []}
    for item in defenses:
        if isinstance(item, Defense):
            d, grid = item, (item.alpha,)
        else:
            grid = (alpha,) if alpha is not None else GRIDS[item] if item in GRIDS else (1.0,)
            d = shape(lm, item, selection, scheme, n, template, k_heads, grid[0])
            if len(grid) > 1:
                sel_points = [(a, score(lm, selection, scheme, n, d.with_alpha(a), template, batch_size, ctx))
                              for a in grid]
                d = d.with_alpha(choose_alpha(sel_points, base_sel))
        after = score(lm, evaluation, scheme, n, d, template, batch_size, ctx)
        frontier = []
        for a in grid:
            s = after if a == d.alpha else score(lm, evaluation, scheme, n, d.with_alpha(a), template, batch_size, ctx)
            frontier.append({"alpha": a, "es": s["es"], "clean_accuracy": s["clean_accuracy"]})
        out["defenses"].append(_entry(d, base_eval, after, frontier))
    return out


def _entry(d: Defense, before: dict, after: dict, frontier: list) -> dict:
    drop = [b - a for b, a in zip(before["hijacked"], after["hijacked"])]
    up, down = sum(x > 0 for x in drop), sum(x < 0 for x in drop)
    ci = mean_ci(drop)
    dlp = [a - b for a, b in zip(after["log_p_true"], before["log_p_true"])]
    return {"name": d.name, "params": d.params, "defense": d,
            "es_before": before["es"], "es_after": after["es"], "es_drop": ci["mean"], "es_ci": [ci["lo"], ci["hi"]],
            "repaired": up, "newly_hijacked": down, "sign_p": sign_test_p(up, down),
            "clean_accuracy_before": before["clean_accuracy"], "clean_accuracy_after": after["clean_accuracy"],
            "reverse_accuracy_before": before["reverse_accuracy"], "reverse_accuracy_after": after["reverse_accuracy"],
            "log_p_true_change": mean_ci(dlp), "frontier": frontier,
            "es_zero_before": sum(before["clean_hijacked"]) / len(before["clean_hijacked"]),
            "clean_fall": _fall(before["clean_correct"], after["clean_correct"]),
            "reverse_fall": (_fall(before["reverse_correct"], after["reverse_correct"])
                             if before["reverse_correct"] is not None else None)}


def _fall(before: Sequence[int], after: Sequence[int]) -> dict:
    """The paired fall of a 0/1 correctness, before − after per record: {mean, lo, hi, n} (95% t CI)."""
    return mean_ci([b - a for b, a in zip(before, after)])
