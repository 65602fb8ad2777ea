"""What undoes the hijack, scored on held-out records (issue 30, item 2): a defense
(``engine.hijack.defenses``) chosen on the selection half (records at even positions) and scored on the
evaluation half (odd positions), every ES the defended, batched sweep (``efficacy_defended``) with
whole-target scoring, as ``lca-tui hijack`` scores it.

Per defense on the evaluation half: ES at n before → after, with the 95% t CI of the per-record drop
(hijacked before minus after, 0/1) and the one-sided exact sign test (records repaired against records
newly hijacked); accuracy on the clean prompts (n = 0, P(true) > P(false)) before → after; accuracy under
the matching reverse scheme at n (not-think → reverse-not-think, relation → reverse-relation; none for
custom) before → after; the mean change of log P(true) at n, and under the reverse scheme
(``reverse_log_p_true_change``: how much of a helpful context's boost the defense takes away, which
accuracy cannot see where the model is right without the context); ``tied_after``, the evaluation
records whose defended P(true) = P(false) (the contrastive cut-off can set both to 0: not hijacked, not
right either); the frontier over the α grid
([{alpha, es, clean_accuracy, reverse_accuracy}]); ES at n = 0 undefended (``es_zero_before``: the
hijack's rise is ES(n) − ES(0)); the paired falls of clean and reverse accuracy (``clean_fall``,
``reverse_fall``: per record before − after, {mean, lo, hi, n} with the 95% t CI), which the
``hijack-repair`` rule reads.

Selection (unless the defense is given whole, e.g. from a file), on the selection half only:

- ``heads``: every head ranked by the mean rise of the logit difference (true − false) when it alone
  is zero-ablated at the last position of the hijacked prompt (``trace.ablate_heads``, the ranking
  ``engine.experiments.mechanism`` uses); the top ``k_heads``;
- ``attention``: the blocks from the knockout curve (``trace.knockout_curve``, variant ``KNOCKOUT`` =
  ``all``: in one block the last position may not attend to the prepended tokens, position 0 kept, as
  ``lca-tui trace`` knocks out; the α = 0 defense at the last position of that block alone). e_l is the
  mean rise of the logit difference when block l is knocked out; with P = Σ max(e_l, 0), the blocks are
  the fewest, taken by e_l from the highest (ties: the lower block first), whose e_l sum to at least P/2
  (``knockout_blocks``); every block when no knockout raises it (P = 0);
- ``steer``: the middle block, v the mean (clean − hijacked) ``resid_post`` there (``steer_vector``);
- α from ``GRIDS``: the largest ES drop on the selection half among the α whose clean accuracy AND
  reverse accuracy (where the scheme has a reverse) each fall by at most ``MAX_CLEAN_COST`` (0.02);
  ties go to the smaller α; if no α qualifies, the α whose larger cost is smallest (``choose_alpha``).
  (Bounding the clean cost alone let the attention defense always take α = 0 in every block: the
  clean prompt has no prepended span, so its clean cost is 0 at every α.)

The work is in record-additive units, so it can be sharded (``engine.experiments.repair_jobs`` runs
them as jobs through the job store and the executors): ``select`` units (a chunk of the selection
records: per record the head-ablation rises, the knockout rises and the steering difference) and
``score`` units (one defense at one α on a chunk of one half's records: the per-record lists ``score``
returns). Every score unit is known once the selection units are in (the frontier on the evaluation
half needs every α of the grid anyway), so they are submitted together. ``repair(run_units=...)`` takes
the runner, ``run_units(kind, specs, ctx) -> results``; the default runs them here, one after another
(``in_process``). A unit's records are scored together, batched as the ES sweep batches them (2.6x
faster than one record at a time with ``ends_only`` on 16 records, SmolLM2, CPU), and the parts are
combined in record order. The units are fixed by ``chunk`` (in every spec), so the result is the same,
bit for bit, however the units are spread over processes, GPUs, Slurm tasks or reruns; another ``chunk``
batches records differently and may move a probability by float rounding (~1e-6, tested), which can
only flip a 0/1 outcome at an exact tie. Only n = 0 and n are scored (``ends_only``).

The statistics are a few lines here (``engine.hijack`` may not import ``engine.experiments``; the same
t quantiles and exact sign test as ``engine.experiments.stats``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.errors import UserError
from engine.hijack.defenses import DEFENSES, Defense
from engine.hijack.efficacy_defended import defended_curve
from engine.job_context import NO_JOB

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


LISTS = ("hijacked", "log_p_true", "tied", "clean_correct", "clean_hijacked", "reverse_correct",
         "reverse_log_p_true")
CHUNK = 8  # records per unit (default)
KNOCKOUT = "all"  # the knockout variant the attention defense's blocks are chosen by
DEFAULT_DEFENSES = ("heads", "attention", "contrastive", "steer", "drop-context")


def score(lm, records, scheme: str, n: int, defense: Defense, template: str | None = None,
          batch_size: int = 8, ctx=None) -> dict:
    """One defense on ``records`` (batched together): per-record hijack (0/1) and log P(true) at n,
    clean and reverse correctness (0/1), and their means ``es``, ``clean_accuracy``, ``reverse_accuracy``
    (None: no reverse)."""
    res = defended_curve(lm, records, scheme, n, defense, template=template, scoring="whole",
                         batch_size=batch_size, ctx=ctx, ends_only=True)
    at_n = sorted((s for s in res.records if s.n == n), key=lambda s: s.record_index)
    clean = sorted((s for s in res.records if s.n == 0), key=lambda s: s.record_index)
    out = {"hijacked": [int(s.success) for s in at_n],
           "log_p_true": [math.log(s.p_true) if s.p_true > 0 else float("-inf") for s in at_n],
           "tied": [int(s.p_true == s.p_false) for s in at_n],
           "clean_correct": [int(s.p_true > s.p_false) for s in clean],
           "clean_hijacked": [int(s.success) for s in clean], "reverse_correct": None, "reverse_log_p_true": None}
    rev = REVERSE.get(scheme)
    if rev is not None:
        r = defended_curve(lm, records, rev, n, defense, scoring="whole", batch_size=batch_size, ctx=ctx,
                           ends_only=True)
        rev_n = sorted((s for s in r.records if s.n == n), key=lambda s: s.record_index)
        out["reverse_correct"] = [int(s.success) for s in rev_n]
        out["reverse_log_p_true"] = [math.log(s.p_true) if s.p_true > 0 else float("-inf") for s in rev_n]
    return _means(out)


def _means(out: dict) -> dict:
    k = len(out["hijacked"])
    out["es"] = sum(out["hijacked"]) / k
    out["clean_accuracy"] = sum(out["clean_correct"]) / k
    out["reverse_accuracy"] = (sum(out["reverse_correct"]) / k) if out["reverse_correct"] is not None else None
    return out


# --- units --------------------------------------------------------------------------------------------

def defense_spec(d: Defense) -> dict:
    """A defense as plain data for a unit's spec: ``to_dict`` and the steering vector as a list."""
    out = d.to_dict()
    if d.v is not None:
        out["v"] = d.v.detach().cpu().reshape(-1).tolist()
        out["v_dtype"] = str(d.v.dtype).replace("torch.", "")
    return out


def defense_from_spec(data: dict) -> Defense:
    v = None
    if data.get("v") is not None:
        import torch

        v = torch.tensor(data["v"], dtype=getattr(torch, data.get("v_dtype") or "float32"))
    return Defense.from_dict(data, v)


def _records(spec: dict) -> list:
    from engine.hijack.counterfact import FactRecord

    return [FactRecord.from_dict(r) for r in spec["records"]]


def selection_unit(lm, spec: dict, ctx=None) -> dict:
    """A chunk of selection records (``spec``: records, scheme, n, template, ``heads``/``knock``: bool,
    ``steer_block``: int or None): per record the rise of the logit difference when each head alone is
    zero-ablated at the last position (``heads``), when each block alone is knocked out (``knock``; None
    for a record the trace cannot take) and its steering difference (``steer``, a list)."""
    from engine.hijack.blocks import locate
    from engine.hijack.defenses import steer_diff
    from engine.hijack.trace import ablate_heads, knockout_curve
    from engine.hijack.trace_dataset import record_pair

    ctx = ctx or NO_JOB
    scheme, n, template = spec["scheme"], spec["n"], spec.get("template")
    layout = locate(lm)
    sets = [[]] + [[(b, h)] for b in range(layout.n_layers) for h in range(layout.n_heads)]
    out: dict = {"heads": [], "knock": [], "steer": []}
    for rec in _records(spec):
        ctx.pause()
        ctx.check()
        pair = None
        if spec.get("heads") or spec.get("knock"):
            try:
                pair = record_pair(lm, rec, scheme, n, template)
            except UserError:
                pair = None
        if spec.get("heads"):
            got = ablate_heads(lm, pair, sets) if pair is not None else None
            out["heads"].append(None if got is None else [m.logit_diff - got[0].logit_diff for m in got[1:]])
        if spec.get("knock"):
            if pair is None:
                out["knock"].append(None)
            else:
                hijacked, curve = knockout_curve(lm, pair, KNOCKOUT)
                out["knock"].append([m.logit_diff - hijacked.logit_diff for m in curve])
        if spec.get("steer_block") is not None:
            out["steer"].append(steer_diff(lm, rec, scheme, n, int(spec["steer_block"]), template).tolist())
    return out


def score_unit(lm, spec: dict, ctx=None) -> dict:
    """One defense (``spec["defense"]``, ``defense_spec``) on a chunk of records, batched together as the ES
    sweep batches them: the per-record lists of ``score`` (``LISTS``)."""
    ctx = ctx or NO_JOB
    d = defense_from_spec(spec["defense"])
    got = score(lm, _records(spec), spec["scheme"], spec["n"], d, spec.get("template"), spec["batch_size"],
                ctx.quiet())
    return {k: got[k] for k in LISTS}


UNITS = {"select": selection_unit, "score": score_unit}


def in_process(lm):
    """The default runner: the units one after another on ``lm``, ``ctx.progress(units done, units)``
    after each, a cancel between (and inside) units raising ``Cancelled``."""
    def run(kind: str, specs: list, ctx) -> list:
        out = []
        for i, spec in enumerate(specs):
            ctx.check()
            out.append(UNITS[kind](lm, spec, ctx.quiet()))
            ctx.progress(i + 1, len(specs))
        return out

    return run


def _merge(parts: Sequence[dict]) -> dict:
    out = {k: (None if any(p[k] is None for p in parts) else [x for p in parts for x in p[k]]) for k in LISTS}
    return _means(out)


# --- selection ------------------------------------------------------------------------------------------

def knockout_blocks(effects: Sequence[float]) -> tuple[int, ...]:
    """The attention defense's blocks from the mean knockout rises e_l (module doc): the fewest blocks,
    by e_l from the highest (ties: the lower block), whose e_l sum to at least half of Σ max(e_l, 0);
    every block when none is positive."""
    pos = sum(max(e, 0.0) for e in effects)
    if not pos > 0:
        return tuple(range(len(effects)))
    order = sorted(range(len(effects)), key=lambda b: (-effects[b], b))
    chosen, got = [], 0.0
    for b in order:
        chosen.append(b)
        got += effects[b]
        if got >= pos / 2:
            break
    return tuple(sorted(chosen))


def _mean_rises(rows: Sequence, what: str) -> list[float]:
    used = [r for r in rows if r is not None]
    if not used:
        raise UserError(f"no selection record can be traced: no {what}")
    sums = [0.0] * len(used[0])
    for r in used:
        for i, x in enumerate(r):
            sums[i] += x
    return [x / len(used) for x in sums]


def _ranking(layout, rows) -> list[tuple[int, int, float]]:
    means = _mean_rises(rows, "head ranking")
    heads = [(b, h) for b in range(layout.n_layers) for h in range(layout.n_heads)]
    return sorted(((b, h, means[i]) for i, (b, h) in enumerate(heads)), key=lambda s: -s[2])


def rank_heads(lm, records, scheme: str, n: int, template: str | None = None) -> list[tuple[int, int, float]]:
    """(block, head, mean rise of logit_diff when that head alone is zero-ablated at the last position),
    highest first, over ``records`` (those the trace cannot take are left out)."""
    from engine.hijack.blocks import locate

    got = selection_unit(lm, {"records": [r.to_dict() for r in records], "scheme": scheme, "n": n,
                              "template": template, "heads": True})
    return _ranking(locate(lm), got["heads"])


def _shaped(layout, name: str, sel: dict, k_heads: int, alpha: float, steer_block: int) -> Defense:
    """The defense ``name`` with its heads / blocks / v from the merged selection units (module doc)."""
    if name == "heads":
        top = _ranking(layout, sel["heads"])[:k_heads]
        return Defense("heads", alpha, tuple((b, h) for b, h, _ in top))
    if name == "attention":
        blocks = knockout_blocks(_mean_rises(sel["knock"], "knockout curve"))
        return Defense("attention", min(alpha, 1.0), blocks=blocks)
    if name == "steer":
        import torch

        from engine.hijack.defenses import mean_of_diffs

        if not sel["steer"]:
            raise UserError("no selection records to compute the steering vector from")
        v = mean_of_diffs([torch.tensor(x, dtype=torch.float32) for x in sel["steer"]])
        return Defense("steer", alpha, blocks=(steer_block,), v=v)
    return Defense(name, alpha)


def shape(lm, name: str, selection, scheme: str, n: int, template: str | None = None, k_heads: int = 3,
          alpha: float = 1.0) -> Defense:
    """The defense ``name`` with its heads / blocks / v chosen on ``selection`` (module doc), at ``alpha``."""
    from engine.hijack.blocks import locate

    if name not in DEFENSES:
        raise UserError(f"unknown defense {name!r}: choose one of {', '.join(DEFENSES)}")
    layout = locate(lm)
    block = layout.n_layers // 2
    sel = selection_unit(lm, {"records": [r.to_dict() for r in selection], "scheme": scheme, "n": n,
                              "template": template, "heads": name == "heads", "knock": name == "attention",
                              "steer_block": block if name == "steer" else None})
    return _shaped(layout, name, sel, k_heads, alpha, block)


def costs(point: dict, base: dict) -> tuple[float, float]:
    """(clean cost, reverse cost): the falls of clean and reverse accuracy from ``base`` (0 without a reverse)."""
    clean = base["clean_accuracy"] - point["clean_accuracy"]
    rev = 0.0
    if base.get("reverse_accuracy") is not None and point.get("reverse_accuracy") is not None:
        rev = base["reverse_accuracy"] - point["reverse_accuracy"]
    return clean, rev


def choose_alpha(points: Sequence[tuple[float, dict]], base: dict) -> float:
    """The α of the largest ES drop whose clean and reverse accuracy each fall by at most
    ``MAX_CLEAN_COST`` (ties: the smaller α); if none qualifies, the α whose larger cost is smallest."""
    ok = [(base["es"] - s["es"], a) for a, s in points if max(costs(s, base)) <= MAX_CLEAN_COST + 1e-12]
    if ok:
        return max(ok, key=lambda x: (x[0], -abs(x[1])))[1]
    return min(points, key=lambda p: max(costs(p[1], base)))[0]


# --- the whole repair -----------------------------------------------------------------------------------

def _chunks(records: Sequence, size: int) -> list[list]:
    return [list(records[i:i + size]) for i in range(0, len(records), size)]


def repair(lm, records, scheme: str, n: int, defenses: Sequence = DEFAULT_DEFENSES,
           alpha: float | None = None, template: str | None = None, batch_size: int = 8,
           k_heads: int = 3, ctx=None, run_units=None, chunk: int = CHUNK) -> dict:
    """Select on the even records, evaluate on the odd ones (module doc); ``defenses`` are names or
    ``Defense`` objects (taken as they are: no selection, no grid). The JSON of ``lca-tui repair``.
    ``run_units(kind, specs, ctx)`` runs the units (default ``in_process(lm)``), ``chunk`` records
    each; ``ctx.progress(units done, units)``; a cancel raises ``Cancelled``."""
    from engine.hijack.blocks import locate
    from engine.hijack.schemes import check_scheme

    scheme = check_scheme(scheme)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"--n must be an integer >= 1, not {n!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UserError(f"the records per unit must be an integer >= 1, not {chunk!r}")
    selection, evaluation = halves(records)
    if not selection or not evaluation:
        raise UserError("repair needs at least 2 records (one to select on, one to evaluate on)")
    ctx = ctx or NO_JOB
    run_units = run_units or in_process(lm)
    items = []
    for item in defenses:
        if isinstance(item, Defense):
            items.append((item, (item.alpha,)))
        elif item not in DEFENSES:
            raise UserError(f"unknown defense {item!r}: choose one of {', '.join(DEFENSES)}")
        else:
            items.append((item, (alpha,) if alpha is not None else GRIDS.get(item, (1.0,))))
    names = {i for i, _ in items if isinstance(i, str)}
    layout = locate(lm)
    steer_block = layout.n_layers // 2
    common = {"scheme": scheme, "n": n, "template": template}
    sel_parts, eval_parts = _chunks(selection, chunk), _chunks(evaluation, chunk)
    want = {"heads": "heads" in names, "knock": "attention" in names,
            "steer_block": steer_block if "steer" in names else None}
    sel_specs = ([{"unit": "select", **common, **want, "records": [r.to_dict() for r in part]} for part in sel_parts]
                 if want["heads"] or want["knock"] or want["steer_block"] is not None else [])
    tuned = any(len(g) > 1 for _, g in items)
    estimate = len(sel_specs) + len(eval_parts) + (len(sel_parts) if tuned else 0) + sum(
        len(g) * (len(eval_parts) + (len(sel_parts) if len(g) > 1 else 0)) for _, g in items)
    sel = {"heads": [], "knock": [], "steer": []}
    if sel_specs:
        for got in run_units("select", sel_specs, ctx.part(0, estimate)):
            for k in sel:
                sel[k].extend(got.get(k) or [])
    # every score unit at once: (defense, alpha, half) over the half's chunks, identical specs run once
    specs: list[dict] = []
    index: dict[str, int] = {}

    def want_score(d: Defense, parts) -> list[int]:
        import json

        at = []
        for part in parts:
            spec = {"unit": "score", **common, "defense": defense_spec(d), "batch_size": batch_size,
                    "records": [r.to_dict() for r in part]}
            key = json.dumps(spec, sort_keys=True)
            if key not in index:
                index[key] = len(specs)
                specs.append(spec)
            at.append(index[key])
        return at

    base_sel = want_score(Defense("none"), sel_parts) if tuned else None
    base_eval = want_score(Defense("none"), eval_parts)
    plans = []
    for item, grid in items:
        d = item if isinstance(item, Defense) else _shaped(layout, item, sel, k_heads, grid[0], steer_block)
        points = [d.with_alpha(a) for a in grid] if not isinstance(item, Defense) else [d]
        plans.append((d, grid, [want_score(p, sel_parts) for p in points] if len(grid) > 1 else None,
                      [want_score(p, eval_parts) for p in points]))
    results = run_units("score", specs, ctx.part(len(sel_specs), len(sel_specs) + len(specs)))

    def merged(at: list[int]) -> dict:
        return _merge([results[i] for i in at])

    before_sel = merged(base_sel) if base_sel is not None else None
    before = merged(base_eval)
    out = {"model": lm.name, "scheme": scheme, "n": n, "selection": [r.case_id for r in selection],
           "evaluation": [r.case_id for r in evaluation], "max_clean_cost": MAX_CLEAN_COST, "defenses": []}
    for d, grid, sel_at, eval_at in plans:
        if sel_at is not None:
            d = d.with_alpha(choose_alpha([(a, merged(at)) for a, at in zip(grid, sel_at)], before_sel))
        evals = [merged(at) for at in eval_at]
        after = evals[list(grid).index(d.alpha)] if d.alpha in grid else evals[0]
        frontier = [{"alpha": a, "es": s["es"], "clean_accuracy": s["clean_accuracy"],
                     "reverse_accuracy": s["reverse_accuracy"]} for a, s in zip(grid, evals)]
        out["defenses"].append(_entry(d, before, after, frontier))
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
            "tied_after": sum(after["tied"]),
            "reverse_log_p_true_change": (mean_ci([a - b for a, b in zip(after["reverse_log_p_true"],
                                                                         before["reverse_log_p_true"])])
                                          if before["reverse_log_p_true"] is not None else None),
            "es_zero_before": sum(before["clean_hijacked"]) / len(before["clean_hijacked"]),
            "clean_fall": _fall(before["clean_correct"], after["clean_correct"]),
            "reverse_fall": (_fall(before["reverse_correct"], after["reverse_correct"])
                             if before["reverse_correct"] is not None else None)}


def _fall(before: Sequence[int], after: Sequence[int]) -> dict:
    """The paired fall of a 0/1 correctness, before − after per record: {mean, lo, hi, n} (95% t CI)."""
    return mean_ci([b - a for b, a in zip(before, after)])
