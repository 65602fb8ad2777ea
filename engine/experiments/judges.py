"""The verdicts: one pure function ``judge_<name>(rows) -> Judgement`` per experiment.

A judgement depends on the result rows only (no torch, no training), so every branch ("holds",
"does not hold", "inconclusive") is reachable from synthetic rows in the tests. Each returns the
verdict, the reasons (with their numbers) and the effect sizes with 95% confidence intervals;
``RULES[name]`` states the rule in words (printed and rendered beside the verdict).

Per-seed numbers travel in the rows as lists (``*_runs`` columns, one entry per seed, in seed order),
so paired statistics can be recomputed from the rows alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.experiments.stats import mean_ci, mean_std, paired_ci, sign_test_p, spearman, wilson
from engine.experiments.verdict import CORRECTED, FAILS, HOLDS, UNSURE, Effect, Judgement
from engine.hijack.measures import MENTIONS_WINDOW, REST_WINDOW
from textnum import fixed as _f


def _flat(rows: Sequence[dict], key: str) -> list[float]:
    out: list[float] = []
    for r in rows:
        out += [float(v) for v in (r.get(key) or []) if v is not None]
    return out


def _lo(e: Effect) -> float:
    return e.lo if math.isfinite(e.lo) else float("nan")


def _verdict(reasons: Sequence[str], effects: Sequence[Effect] = (), *, fails: bool, holds: bool) -> Judgement:
    """Every judge's ending: "does not hold" when ``fails``, else "holds" when ``holds``, else
    "inconclusive", with the reasons and effects."""
    return Judgement(FAILS if fails else HOLDS if holds else UNSURE, tuple(reasons), tuple(effects))


def _cell(r: dict, keys=("m", "L", "d")) -> str:
    return ", ".join(f"{k}={r[k]}" for k in keys if k in r)


RULES: dict[str, str] = {}

# ----------------------------------------------------------------------------------- value-matrix
RULES["value-matrix"] = (
    "runs are paired by seed (same initialisation and data) within each (m, L, d) cell; effect = mean paired "
    "gap trained − (W_V = I) accuracy with its 95% CI; holds if the trained W_V wins in every cell, the CI "
    "lies above 0 and the gap at the shortest L is at least the gap at the longest L (the paper: most "
    "visible at the shorter L); does not hold if the CI lies below 0 or W_V = I wins in most cells; "
    "inconclusive otherwise")


def judge_value_matrix(rows: Sequence[dict]) -> Judgement:
    if not rows:
        return Judgement(UNSURE, ("no rows",))
    gap = paired_ci("trained − (W_V = I) accuracy", _flat(rows, "trained_runs"), _flat(rows, "identity_runs"))
    wins = [r["trained"] > r["W_V=I"] for r in rows]
    Ls = sorted({r["L"] for r in rows})
    by_L = {L: mean_std([r["gap"] for r in rows if r["L"] == L])[0] for L in Ls}
    reasons = [gap.text(), f"trained W_V wins in {sum(wins)} of {len(rows)} cells",
               "mean gap by L: " + ", ".join(f"L={L}: {_f(v, 4)}" for L, v in by_L.items())]
    effects = [gap]
    short_first = True
    if len(Ls) > 1:
        short_first = by_L[Ls[0]] >= by_L[Ls[-1]]
        effects.append(Effect(f"gap(L={Ls[0]}) − gap(L={Ls[-1]})", by_L[Ls[0]] - by_L[Ls[-1]]))
    fails = (math.isfinite(gap.hi) and gap.hi < 0) or sum(wins) < len(wins) / 2
    holds = all(wins) and _lo(gap) > 0 and short_first
    if not fails and not holds and not short_first:
        reasons.append("the gap is larger at the longest L than at the shortest")
    return _verdict(reasons, effects, fails=fails, holds=holds)


# ----------------------------------------------------------------------------------- value-swap
#: Equivalence margin of value-swap (accuracy): a drop below it is "not significant" in the paper's sense.
SWAP_MARGIN = 0.05

RULES["value-swap"] = (
    "paired by run: drop = trained − constructed accuracy, per (m, L, d) cell and pooled, with 95% CIs; an "
    "equivalence test with margin δ = 0.05 accuracy, fixed before the run (the paper: replacing W_V 'does not "
    "drop accuracy significantly'); effect also constructed − random-constructed accuracy; holds if in every "
    "cell the drop's CI lies below δ and the constructed − random CI lies above 0.05; does not hold if in some "
    "cell the drop's CI lies above δ (lower by more than δ), or keep = constructed/trained < 0.7, or the "
    "constructed − random CI does not lie above 0; inconclusive otherwise; the reasons say by how much the "
    "constructed W_V is lower")


def judge_value_swap(rows: Sequence[dict], delta: float = SWAP_MARGIN) -> Judgement:
    tr, co, ra = _flat(rows, "trained_runs"), _flat(rows, "constructed_runs"), _flat(rows, "random_runs")
    if not tr:
        return Judgement(UNSURE, ("no runs",))
    keep = mean_ci("constructed / trained accuracy", [c / t for c, t in zip(co, tr) if t > 0])
    vs_rand = paired_ci("constructed − random-constructed accuracy", co, ra)
    drop = paired_ci("trained − constructed accuracy", tr, co)
    reasons = [f"the constructed W_V is lower by {_f(drop.value, 3)} (pooled, 95% CI [{_f(drop.lo, 3)}, "
               f"{_f(drop.hi, 3)}], n = {drop.n}); equivalence margin δ = {delta:g}", keep.text(), vs_rand.text()]
    effects = [drop, keep, vs_rand]
    within, beyond = True, False
    for r in rows:
        d = paired_ci(f"drop {_cell(r)}", r.get("trained_runs") or [], r.get("constructed_runs") or [])
        effects.append(d)
        hi = d.hi if math.isfinite(d.hi) else float("nan")
        state = "within δ" if hi < delta else "lower by more than δ" if _lo(d) > delta else "undecided"
        reasons.append(f"{_cell(r)}: {d.text()}: {state}")
        within = within and state == "within δ"
        beyond = beyond or state == "lower by more than δ"
    return _verdict(reasons, effects,
                    fails=beyond or keep.value < 0.7 or not (_lo(vs_rand) > 0 or (vs_rand.n < 2 and vs_rand.value > 0)),
                    holds=within and _lo(vs_rand) > 0.05)


# ----------------------------------------------------------------------------------- value-angles
RULES["value-angles"] = (
    "smallest principal angle (degrees) between rank-m approximations of the trained W_V and of the "
    "constructed, random-constructed W_V, the run's own initial (Gaussian) W_V and W_E's own top-m left "
    "singular subspace (= W_E W_Eᵀ's; the constructed W_V = W_E A W_Eᵀ nearly shares it); effects = paired "
    "margins random − constructed, initial − constructed and W_E − constructed with 95% CIs; holds if the "
    "constructed W_V has the smallest mean angle and all three CIs lie above 0; does not hold if its mean "
    "angle is not below the random-constructed and initial ones; inconclusive otherwise — in particular when "
    "it beats random and initial but not W_E's subspace: then the claim reduces to 'W_V follows W_E's "
    "dominant directions'")


def judge_value_angles(rows: Sequence[dict]) -> Judgement:
    c, r, g = _flat(rows, "constructed_runs"), _flat(rows, "random_runs"), _flat(rows, "initial_runs")
    if not c:
        return Judgement(UNSURE, ("no runs",))
    m1 = paired_ci("random − constructed angle (°)", r, c)
    m2 = paired_ci("initial W_V − constructed angle (°)", g, c)
    mc, mr, mg = mean_std(c)[0], mean_std(r)[0], mean_std(g)[0]
    reasons = [f"mean smallest angle: constructed {_f(mc, 2)}°, random-constructed {_f(mr, 2)}°, "
               f"initial W_V {_f(mg, 2)}°", m1.text(), m2.text()]
    effects = [m1, m2]
    has_we = all(row.get("W_E_runs") for row in rows)
    m3 = paired_ci("W_E top-m − constructed angle (°)", _flat(rows, "W_E_runs"), c) if has_we else None
    beats = _lo(m1) > 0 and _lo(m2) > 0
    if m3 is None:
        reasons.append("no W_E subspace baseline in the rows: the constructed W_V is not judged against it")
    else:
        effects.append(m3)
        reasons.append(f"mean smallest angle to W_E's top-m subspace {_f(mean_std(_flat(rows, 'W_E_runs'))[0], 2)}°; "
                       + m3.text())
        if beats and not _lo(m3) > 0:
            reasons.append("the constructed W_V is no closer than W_E's own top-m subspace: the claim reduces to "
                           "'the trained W_V follows W_E's dominant directions'")
    return _verdict(reasons, effects, fails=not (mc < mr and mc < mg),
                    holds=beats and m3 is not None and _lo(m3) > 0 and mc < mean_std(_flat(rows, "W_E_runs"))[0])


# ----------------------------------------------------------------------------------- embedding-dim
#: The margin (accuracy) within which trained and frozen W_E count as equal, fixed before the run.
DIM_MARGIN = 0.05

RULES["embedding-dim"] = (
    "judged per d, not pooled: gap = trained − frozen (Gaussian) W_E test accuracy, paired by seed, with its "
    "95% CI, margin δ = 0.05 (fixed before the run); a d < V supports the claim if the CI lies above 0 and the "
    "gap is >= δ (training needed), contradicts it if the CI lies below δ; a d > V supports it if the CI lies "
    "below δ (frozen is within δ of trained), contradicts it if the CI lies above δ; a d whose runs did not "
    "all converge (either arm) counts as neither; d = V (and the orthonormal frozen W_E control there) is "
    "reported, not judged; holds if every d != V supports the claim, does not hold if some d contradicts it, "
    "inconclusive otherwise (also when the grid lacks d on either side of V)")


def _all_converged(r: dict, keys=("converged_trained", "converged_frozen", "converged")) -> bool:
    for k in keys:
        v = r.get(k)
        if isinstance(v, str) and "/" in v:
            done, total = (int(x) for x in v.split("/"))
            if done < total:
                return False
    return True


def judge_embedding_dim(rows: Sequence[dict], delta: float = DIM_MARGIN) -> Judgement:
    judged = sorted([r for r in rows if r["d"] != r["V"]], key=lambda r: (r["m"], r.get("L", 0), r["d"]))
    reasons, effects, ok, bad = [], [], True, False
    for r in judged:
        below = r["d"] < r["V"]
        g = paired_ci(f"gap m={r['m']}, d={r['d']} ({'d < V' if below else 'd > V'})", r.get("trained_runs") or [],
                      r.get("frozen_runs") or [])
        effects.append(g)
        conv = _all_converged(r)
        lo, hi = _lo(g), g.hi if math.isfinite(g.hi) else float("nan")
        if below:
            support, against = lo > 0 and g.value >= delta, hi < delta
        else:
            support, against = hi < delta, lo > delta
        state = ("not converged" if not conv else "supports" if support else "contradicts" if against
                 else "undecided")
        reasons.append(f"m={r['m']}, d={r['d']} (d/V = {_f(r['d'] / r['V'], 3)}): {g.text()}: {state}"
                       + (f"; converged trained {r.get('converged_trained')}, frozen {r.get('converged_frozen')}"
                          if r.get("converged_trained") else ""))
        if state != "supports":
            ok = False
        if state == "contradicts":
            bad = True
    for r in rows:
        if r["d"] == r["V"]:
            txt = (f"d = V = {r['d']} (reported): trained {_f(r.get('trained_W_E'))}, frozen Gaussian "
                   f"{_f(r.get('frozen_W_E'))}")
            if r.get("orthonormal_runs"):
                o = paired_ci("trained − frozen orthonormal W_E at d = V", r.get("trained_runs") or [],
                              r["orthonormal_runs"])
                txt += f", frozen orthonormal {_f(r.get('orthonormal_W_E'))}; {o.text()}"
            reasons.append(txt)
    sides = {r["d"] < r["V"] for r in judged}
    if sides != {True, False}:
        return Judgement(UNSURE, tuple(reasons) + ("the grid lacks d on one side of V",), tuple(effects))
    return _verdict(reasons, effects, fails=bad, holds=ok)


# ----------------------------------------------------------------------------------- embedding-geometry
RULES["embedding-geometry"] = (
    "per configuration (seeds averaged): eq. 5.2 is fitted by least squares over ALL pairs t != t' "
    "(⟨W_E(t), W_E(t')⟩ ≈ −a·D_H + b, R²_pairs, 95% CI over seeds) and the per-distance means must fall "
    "with D_H: every step k -> k + 1 (k = 1..m − 1) lower, and Spearman ρ(k, mean_k) <= −0.9; holds if with "
    "W_V trained a > 0, b_0 > b, the means fall and the R²_pairs CI's lower bound is >= 0.5, and with W_V = I "
    "(Thm 3, Fig. C.6) a > 0, the means fall and the R²_pairs CI's lower bound is >= 0.9 (linear); does not "
    "hold if in some trained configuration a <= 0 or the means do not fall (ρ >= 0); inconclusive otherwise")


def _means_rho(r: dict) -> float:
    ks = [k for k in range(1, int(r["m"]) + 1) if r.get(f"k={k}") is not None]
    return spearman(ks, [r[f"k={k}"] for k in ks])


def means_fall(r: dict) -> bool:
    """Whether the per-distance mean inner products fall at every step k -> k + 1, k = 1..m − 1."""
    vals = [r.get(f"k={k}") for k in range(1, int(r["m"]) + 1)]
    return None not in vals and all(b < a for a, b in zip(vals, vals[1:]))


def judge_embedding_geometry(rows: Sequence[dict]) -> Judgement:
    trained = [r for r in rows if r["W_E"] in ("W_V trained", "W_V = I")]
    if not trained:
        return Judgement(UNSURE, ("no trained rows",))
    reasons, effects, ok, bad = [], [], True, False
    for r in trained:
        rho = _means_rho(r)
        linear = r["W_E"] == "W_V = I"
        r2 = mean_ci(f"R²_pairs {r['W_E']} ({_cell(r)})", r.get("r2_pairs_runs") or [r["r2_pairs"]])
        effects.append(r2)
        falls = means_fall(r)
        ups = [k for k in range(1, int(r["m"])) if r.get(f"k={k + 1}") is not None and r.get(f"k={k}") is not None
               and r[f"k={k + 1}"] >= r[f"k={k}"]]
        reasons.append(f"{r['W_E']} ({_cell(r)}): a = {_f(r['a_pairs'])}, b = {_f(r['b_pairs'])}, "
                       f"b_0 = {_f(r['b0'])}, ρ(k, mean) = {_f(rho)}, means fall at every step: "
                       f"{'yes' if falls else 'no (not lower at D_H = ' + ', '.join(str(k + 1) for k in ups) + ')'}"
                       f", {r2.text()}")
        if not (r["a_pairs"] > 0) or not (rho < 0):
            bad = True
        need = 0.9 if linear else 0.5
        if not (r["a_pairs"] > 0 and rho <= -0.9 and falls and _lo(r2) >= need
                and (linear or r["b0"] > r["b_pairs"])):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


# ----------------------------------------------------------------------------------- spectrum
RULES["spectrum"] = (
    "spectral gap = the largest ratio s_k / s_{k+1} over k = 1..m+2 (engine.lca.analysis.spectral_gap, "
    "the inspector's definition too); effect = trained gap / initial gap per run (95% CI); holds if in every "
    "(m, L, d) the seed-mean trained gap is >= 1.5 and >= 1.5 x the gap of the Gaussian initial W_E; does "
    "not hold if in some cell the trained gap is not above the initial one; inconclusive otherwise")


def judge_spectrum(rows: Sequence[dict]) -> Judgement:
    if not rows:
        return Judgement(UNSURE, ("no rows",))
    ratio = mean_ci("trained gap / initial gap", [g / g0 for g, g0 in zip(_flat(rows, "gap_runs"),
                                                                              _flat(rows, "gap_init_runs"))])
    reasons = [ratio.text()] + [f"{_cell(r)}: gap {_f(r['gap'])} at k = {r['gap_at_k']} vs initial "
                                f"{_f(r['gap_init'])}" for r in rows]
    return _verdict(reasons, (ratio,),
                    fails=any(not (r["gap"] > r["gap_init"]) for r in rows),
                    holds=all(r["gap"] >= 1.5 and r["gap"] >= 1.5 * r["gap_init"] for r in rows))


# ----------------------------------------------------------------------------------- attention-cluster
RULES["attention-cluster"] = (
    "ratio = mean last-query attention weight per key position in t_L's cluster / in other clusters "
    "(t_L's own position excluded; 1 = no preference), one per training run; effect = mean ratio (95% CI); "
    "holds if the ratio is >= 1.2 in every run and the V x V map's same/other ratio is > 1 in every cell; "
    "does not hold if the mean ratio's CI lies at or below 1 (or its mean is <= 1); inconclusive otherwise")


def judge_attention_cluster(rows: Sequence[dict]) -> Judgement:
    ratios = _flat(rows, "ratio_runs")
    if not ratios:
        return Judgement(UNSURE, ("no runs",))
    e = mean_ci("same/other attention ratio", ratios)
    reasons = (e.text(), f"smallest run ratio {_f(min(ratios))}; map ratios "
                         + ", ".join(_f(r["map_ratio"]) for r in rows))
    return _verdict(reasons, (e,),
                    fails=not (e.value > 1) or (math.isfinite(e.hi) and e.hi <= 1),
                    holds=all(x >= 1.2 for x in ratios) and all(r["map_ratio"] > 1 for r in rows))


# ----------------------------------------------------------------------------------- context-mixing
RULES["context-mixing"] = (
    "per (m, L, d), seeds averaged: misclassification (prediction != y1) against r, beside the Bayes "
    "classifier of the clean task on the same mixed contexts (at r = 1 every context token is drawn for y2, "
    "so any classifier errs: a rise alone tests the task, not the transformer); effects = rise from the "
    "smallest to the largest r and the excess rise over Bayes = mean over 0 < r < 1 of (transformer − Bayes "
    "misclassification at r) − (the same at the smallest r), paired by seed, 95% CIs; holds if in every "
    "configuration misclassification rises with r (Spearman >= 0.9, rise >= 0.2 with its CI above 0, "
    "predicting y2 rises too, Spearman >= 0.9) and the excess rise's CI lies above 0 (the transformer is "
    "hijacked beyond what the task forces); does not hold if in some configuration misclassification at the "
    "largest r is not above that at the smallest; inconclusive otherwise (e.g. the rise is the task's own)")


def _excess_rise(sel: Sequence[dict], name: str) -> Effect:
    """Mean over interior r of (transformer − Bayes misclassification) minus the same at the smallest r,
    one value per seed (Bayes per seed where the rows have it, else its seed mean)."""
    inner = [r for r in sel[1:] if r["r"] < 1.0] or sel[1:]

    def excess(r):
        runs = r.get("mis_runs") or [r["misclassified"]]
        bayes = r.get("bayes_mis_runs") or [r["bayes_misclassified"]] * len(runs)
        return [a - b for a, b in zip(runs, bayes)]

    base = excess(sel[0])
    per = [excess(r) for r in inner]
    if not per:
        return Effect(name, float("nan"))
    vals = [sum(p[i] for p in per) / len(per) - base[i] for i in range(min(len(base), *(len(p) for p in per)))]
    return mean_ci(name, vals)


def judge_context_mixing(rows: Sequence[dict]) -> Judgement:
    cells = sorted({(r["m"], r["L"], r["d"]) for r in rows})
    if not cells:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects, ok, bad = [], [], True, False
    task_only = []
    for cell in cells:
        sel = sorted([r for r in rows if (r["m"], r["L"], r["d"]) == cell], key=lambda r: r["r"])
        rs = [r["r"] for r in sel]
        mis = [r["misclassified"] for r in sel]
        rho, rho2 = spearman(rs, mis), spearman(rs, [r["predicts_y2"] for r in sel])
        tag = f"m={cell[0]} L={cell[1]} d={cell[2]}"
        rise = paired_ci(f"rise {tag}", sel[-1].get("mis_runs") or [mis[-1]], sel[0].get("mis_runs") or [mis[0]])
        extra = _excess_rise(sel, f"excess rise over Bayes {tag}")
        effects += [extra, rise]
        worst = max(sel, key=lambda r: r["misclassified"] - r["bayes_misclassified"])
        reasons.append(f"{tag}: ρ = {_f(rho)}, ρ(y2) = {_f(rho2)}, {rise.text()}; {extra.text()}; largest gap to "
                       f"Bayes at r = {worst['r']:g}: {_f(worst['misclassified'])} vs "
                       f"{_f(worst['bayes_misclassified'])}")
        if not (mis[-1] > mis[0]):
            bad = True
        rises = rho >= 0.9 and rise.value >= 0.2 and (_lo(rise) > 0 or rise.n < 2) and rho2 >= 0.9
        beyond = _lo(extra) > 0
        if rises and not beyond:
            task_only.append(tag)
        if not (rises and beyond):
            ok = False
    if task_only:
        reasons.append("the rise is the task's own (no excess over Bayes) in: " + ", ".join(task_only))
    return _verdict(reasons, effects, fails=bad, holds=ok)


# ----------------------------------------------------------------------------------- context-length
#: Margin (accuracy) by which the gap to Bayes may widen from the shortest to the longest L.
LENGTH_MARGIN = 0.05

RULES["context-length"] = (
    "per (m, d), seeds averaged, accuracy and the gap to Bayes (Bayes − accuracy, paired by seed) against L; "
    "the Bayes accuracy itself rises with L, so a rising accuracy only shows that training works: the "
    "transformer is judged by its gap to Bayes; effects = change of the gap from the shortest to the longest "
    "L and the accuracy gain (95% CIs); margin δ = 0.05 fixed before the run; holds if in every (m, d) "
    "accuracy rises with L (Spearman >= 0.9, gain >= 0.05 with its CI above 0) and the gap's change has its "
    "CI below δ (the transformer keeps up with Bayes as L grows); does not hold if accuracy at the longest L "
    "is not above the shortest, accuracy exceeds Bayes by more than 0.02, or the gap's change has its CI "
    "above δ (it falls behind Bayes); inconclusive otherwise")


def _gap_runs(r: dict) -> list[float]:
    acc = r.get("accuracy_runs") or [r["accuracy"]]
    bayes = r.get("bayes_runs") or [r["bayes"]] * len(acc)
    return [b - a for a, b in zip(acc, bayes)]


def judge_context_length(rows: Sequence[dict], tol: float = 0.02, delta: float = LENGTH_MARGIN) -> Judgement:
    cells = sorted({(r["m"], r["d"]) for r in rows})
    if not cells:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects, ok, bad = [], [], True, False
    for m, d in cells:
        sel = sorted([r for r in rows if (r["m"], r["d"]) == (m, d)], key=lambda r: r["L"])
        Ls, acc = [r["L"] for r in sel], [r["accuracy"] for r in sel]
        over = max(r["accuracy"] - r["bayes"] for r in sel)
        rho = spearman(Ls, acc)
        gain = paired_ci(f"gain m={m} d={d}", sel[-1].get("accuracy_runs") or [acc[-1]],
                         sel[0].get("accuracy_runs") or [acc[0]])
        widen = paired_ci(f"gap to Bayes at L={Ls[-1]} − at L={Ls[0]}, m={m} d={d}", _gap_runs(sel[-1]),
                          _gap_runs(sel[0]))
        effects += [widen, gain]
        peak = max(sel, key=lambda r: r["bayes"] - r["accuracy"])
        hi = widen.hi if math.isfinite(widen.hi) else float("nan")
        reasons.append(f"m={m}, d={d}: ρ = {_f(rho)}, {gain.text()}; {widen.text()}; largest gap to Bayes "
                       f"{_f(peak['bayes'] - peak['accuracy'])} at L = {peak['L']}; max(accuracy − Bayes) = {_f(over)}")
        if not (acc[-1] > acc[0]) or over > tol or _lo(widen) > delta:
            bad = True
        if not (rho >= 0.9 and gain.value >= 0.05 and (_lo(gain) > 0 or gain.n < 2) and hi < delta):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


# ----------------------------------------------------------------------------------- theorem1 / lemma2
RULES["theorem1"] = (
    "per m, seeds averaged: holds if the constructed model's accuracy rises with L (Spearman >= 0.9 over the "
    "L grid) and its 95% CI at the largest L lies above 0.99 (with one seed: its accuracy; or every seed "
    "scores 1); does not hold if for "
    "some m accuracy at the largest L is not above accuracy at the smallest L; inconclusive otherwise")


def judge_theorem1(rows: Sequence[dict]) -> Judgement:
    ms = sorted({r["m"] for r in rows})
    if not ms:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects, ok, bad = [], [], True, False
    for m in ms:
        sel = sorted([r for r in rows if r["m"] == m], key=lambda r: r["L"])
        acc = [r["constructed"] for r in sel]
        rho = spearman([r["L"] for r in sel], acc)
        last = mean_ci(f"accuracy m={m} L={sel[-1]['L']}", sel[-1].get("constructed_runs") or [acc[-1]])
        effects.append(last)
        reasons.append(f"m={m}: ρ(L, accuracy) = {_f(rho)}, {last.text()}")
        perfect = all(v >= 1.0 for v in (sel[-1].get("constructed_runs") or [acc[-1]]))
        if acc[-1] <= acc[0]:
            bad = True
        high = _lo(last) >= 0.99 if last.n >= 2 else last.value >= 0.99
        if not (rho >= 0.9 and (perfect or high)):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


RULES["lemma2"] = (
    "error 0 is read where the Bayes classifier is perfect on every seed's samples (the context determines "
    "y): there the constructed model must be right on every sample; W_V = I (orthonormal W_E, uniform "
    "attention) must have error > 0 with the Wilson 95% lower bound of its error above 0 at every (m, L) — "
    "a trivial half: with ω = 1 the answer never appears in its context, so its logit is 0 and the error is 1 "
    "under any attention (no attention variants are judged); holds if both parts pass; does not hold if "
    "either fails; inconclusive if no L is long enough for Bayes to be perfect")


def judge_lemma2(rows: Sequence[dict]) -> Judgement:
    if not rows:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects = [], []
    det = [r for r in rows if all(b >= 1.0 for b in (r.get("bayes_runs") or [r["bayes"]]))]
    con_ok = all(all(c >= 1.0 for c in (r.get("constructed_runs") or [r["constructed"]])) for r in det)
    reasons.append(f"{len(det)} of {len(rows)} (m, L) cells have a perfect Bayes classifier; the constructed "
                   f"W_V is {'exact in all of them' if con_ok else 'wrong somewhere among them'}")
    id_cols = sorted({k for r in rows for k in r if k.startswith("identity") and not k.endswith("_runs")
                      and not k.endswith("_n")})
    id_ok = True
    for col in id_cols:
        worst = None
        for r in rows:
            if r.get(col) is None:
                continue
            n = int(r.get(f"{col}_n") or r.get("n") or 0)
            err_k = int(round((1.0 - r[col]) * n))
            lo, hi = wilson(err_k, n)
            if worst is None or lo < worst[0]:
                worst = (lo, 1.0 - r[col], hi, n, r)
        if worst is None:
            continue
        lo, err, hi, n, r = worst
        effects.append(Effect(f"error of {col} (m={r['m']}, L={r['L']}), lowest bound", err, lo, hi, n))
        reasons.append(f"{col}: smallest error lower bound {_f(lo, 4)} (error {_f(err, 4)} at m={r['m']}, "
                       f"L={r['L']}, n = {n})")
        if not (lo > 0):
            id_ok = False
    if not id_cols:
        id_ok = False
        reasons.append("no W_V = I column")
    return _verdict(reasons, effects, fails=not con_ok or not id_ok, holds=bool(det))


# ----------------------------------------------------------------------------------- hijack-curves
RULES["hijack-curves"] = (
    "the record set is the grid's, fixed before the run (no re-running with more records); pooled over "
    "relation ids, per model and scheme: each record's outcome at n = 0 and at the largest n (ES for "
    "forward schemes, accuracy for reverse ones) gives a paired change in {−1, 0, 1}; effect = mean change "
    "(95% CI) and an exact one-sided sign test of up vs down; holds if for every model every scheme (forward "
    "and reverse) raises its metric with sign-test p < 0.05; does not hold if some scheme lowers its metric "
    "with p < 0.05; inconclusive otherwise")


def _change_ci(name: str, up: int, down: int, n: int) -> Effect:
    if n <= 0:
        return Effect(name, float("nan"))
    vals = [1.0] * up + [-1.0] * down + [0.0] * max(0, n - up - down)
    return mean_ci(name, vals)


def judge_hijack_curves(rows: Sequence[dict]) -> Judgement:
    pooled = [r for r in rows if r.get("relation") == "all"]
    if not pooled:
        return Judgement(UNSURE, ("no pooled rows",))
    reasons, effects, ok, bad = [], [], True, False
    for r in pooled:
        up, down, n = int(r["up"]), int(r["down"]), int(r["records"])
        e = _change_ci(f"{r['model']} {r['scheme']} change in {r['metric']}", up, down, n)
        effects.append(e)
        p_up, p_down = sign_test_p(up, down), sign_test_p(down, up)
        reasons.append(f"{e.text()}; up {up}, down {down}, sign-test p = {p_up:.3g}")
        if p_down < 0.05:
            bad = True
        if not (p_up < 0.05):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


# ----------------------------------------------------------------------------------- hijack-mechanism
RULES["hijack-mechanism"] = (
    "fixed before the first run; per (model, scheme) row, records at even positions choose and records at odd "
    "positions evaluate: D = mean(clean − hijacked) logit_diff on the odd records with its 95% t CI (the hijack's "
    "size); Δ = the mean rise of logit_diff on the odd records when the last position may not attend to the false "
    "target's mentions in a window of blocks centred on the block chosen on the even records, with its 95% t CI. "
    "A row supports the claim if D's CI lies above 0 and Δ's lower bound >= 0.5·D (the mentions carry at least "
    "half of the hijack); it refutes it if D's CI lies above 0 and Δ's upper bound < 0.25·D (knocking out the "
    "mentions undoes less than a quarter). Holds if every row supports, does not hold if any row refutes, "
    "inconclusive otherwise (no measurable hijack, or in between)")


def judge_hijack_mechanism(rows: Sequence[dict]) -> Judgement:
    if not rows:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects, ok, bad = [], [], True, False
    for r in rows:
        m = MENTIONS_WINDOW.name
        n = int(r.get("evaluated_on") or 0)
        d = Effect(f"{r['model']} {r['scheme']} drop D", r["drop"], r["drop_lo"], r["drop_hi"], n)
        e = Effect(f"{r['model']} {r['scheme']} mentions knockout Δ (block {r[f'{m}_layer']})", r[m],
                   r[f"{m}_lo"], r[f"{m}_hi"], n)
        rest = r.get(REST_WINDOW.name)
        effects += [e, d]  # the main effect first (the summary table shows it)
        present = math.isfinite(d.lo) and d.lo > 0
        supports = present and math.isfinite(e.lo) and e.lo >= 0.5 * d.value
        refutes = present and math.isfinite(e.hi) and e.hi < 0.25 * d.value
        word = "supports" if supports else "refutes" if refutes else "neither"
        reasons.append(f"{d.text()}; {e.text()}; the rest-of-prepend knockout Δ = {_f(rest)}: {word}")
        ok = ok and supports
        bad = bad or refutes
    return _verdict(reasons, effects, fails=bad, holds=ok)


# ----------------------------------------------------------------------------------- hijack-repair
#: The largest fall of clean or reverse accuracy a repairing defense may cost (fixed before the first run).
REPAIR_COST = 0.05
#: The ceiling, reported beside the defenses but not one of them for the verdict.
REPAIR_CEILING = "drop-context"

RULES["hijack-repair"] = (
    "fixed before the first run; per (model, scheme, defense) row, chosen on the records at even positions and "
    "scored on those at odd positions (engine.hijack.repair): D = ES(n) − ES(0) undefended on the odd records (the "
    "hijack's rise, whole-target ES); drop = the mean per-record fall of the hijack (0/1, undefended − defended at "
    "n) with its 95% t CI; clean fall and reverse fall = the mean per-record fall of accuracy at n = 0 and under the "
    "matching reverse scheme at n (0/1, undefended − defended) with their 95% t CIs (paired by record). A row "
    "repairs if D > 0, drop >= D/2, the drop's CI lower bound > 0 and the clean and reverse falls' CI upper bounds "
    "are < 0.05 (a scheme without a reverse scheme: the clean fall alone); it does not repair if the drop's CI "
    "upper bound < D/4 or the clean or reverse fall's mean > 0.05; otherwise (D <= 0: no hijack to undo, or in "
    "between) it is undecided. drop-context (the question alone) is the ceiling and does not count. Holds if some "
    "defense other than drop-context repairs in every (model, scheme) row of the grid (on every model); does not "
    "hold if no defense other than drop-context repairs in any row while some row has D > 0 (a hijack to undo); "
    "inconclusive otherwise (in particular when no row has D > 0)")


def repair_state(r: dict, cost: float = REPAIR_COST) -> str:
    """"repairs", "does not" or "undecided": one ``hijack-repair`` row under ``RULES["hijack-repair"]``."""
    rise = r["es_before"] - r["es_zero"]
    falls = [(r["clean_fall"], r["clean_fall_hi"])]
    if r.get("reverse_fall") is not None:
        falls.append((r["reverse_fall"], r["reverse_fall_hi"]))
    cheap = all(math.isfinite(hi) and hi < cost for _, hi in falls)
    dear = any(m > cost for m, _ in falls)
    lo, hi = r["drop_lo"], r["drop_hi"]
    if rise > 0 and r["drop"] >= rise / 2 and math.isfinite(lo) and lo > 0 and cheap:
        return "repairs"
    if (math.isfinite(hi) and hi < rise / 4) or dear:
        return "does not"
    return "undecided"


def judge_hijack_repair(rows: Sequence[dict]) -> Judgement:
    if not rows:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects = [], []
    cells = sorted({(r["model"], r["scheme"]) for r in rows})
    repaired: dict[str, set] = {}
    for r in rows:
        n = int(r.get("evaluated_on") or 0)
        tag = f"{r['model']} {r['scheme']} {r['defense']}"
        d = Effect(f"{tag} ES drop", r["drop"], r["drop_lo"], r["drop_hi"], n)
        c = Effect(f"{tag} clean accuracy fall", r["clean_fall"], r["clean_fall_lo"], r["clean_fall_hi"], n)
        effects += [d, c]
        state = repair_state(r)
        rev = ("" if r.get("reverse_fall") is None else
               f"; reverse accuracy fall {_f(r['reverse_fall'])} (CI upper {_f(r['reverse_fall_hi'])})")
        reasons.append(f"{tag} (α = {_f(r['alpha'], 3)}): D = ES(n) − ES(0) = {_f(r['es_before'])} − "
                       f"{_f(r['es_zero'])} = {_f(r['es_before'] - r['es_zero'])}; {d.text()}; {c.text()}{rev}: "
                       f"{state}" + (" (the ceiling, not counted)" if r["defense"] == REPAIR_CEILING else ""))
        if state == "repairs" and r["defense"] != REPAIR_CEILING:
            repaired.setdefault(r["defense"], set()).add((r["model"], r["scheme"]))
    everywhere = sorted(name for name, got in repaired.items() if got >= set(cells))
    reasons.append("repairs in every (model, scheme) row: " + (", ".join(everywhere) or "none")
                   + "; repairs somewhere: " + (", ".join(sorted(repaired)) or "none"))
    hijacked = any(r["es_before"] - r["es_zero"] > 0 for r in rows)
    if not hijacked:
        reasons.append("no row has D > 0: no hijack to undo")
    return _verdict(reasons, effects, fails=hijacked and not repaired, holds=bool(everywhere))


# ----------------------------------------------------------------------------------- Sec. 5 checks
RULES["theorem3"] = (
    "per configuration (W_V = I, ω = 1, N = all; seeds averaged): eq. 5.2 without the diagonal fitted over ALL "
    "pairs t != t'; holds if in every configuration a > 0, the per-distance means fall with D_H (Spearman "
    "<= −0.9) and R²_pairs >= 0.9 while the same seeds' Gaussian initial W_E has R²_pairs < 0.5; does not "
    "hold if some configuration has a <= 0 or R²_pairs < 0.5 with accuracy >= 0.95 x Bayes (a minimiser "
    "that is not linear); inconclusive otherwise (e.g. training too far from the minimum)")


def judge_theorem3(rows: Sequence[dict]) -> Judgement:
    trained = [r for r in rows if r["W_E"] != "Gaussian init"]
    init = {(r["m"], r["L"], r["d"]): r for r in rows if r["W_E"] == "Gaussian init"}
    if not trained:
        return Judgement(UNSURE, ("no trained rows",))
    reasons, effects, ok, bad = [], [], True, False
    for r in trained:
        rho = _means_rho(r)
        r2 = mean_ci(f"R²_pairs ({_cell(r)})", r.get("r2_pairs_runs") or [r["r2_pairs"]])
        effects.append(r2)
        base = init.get((r["m"], r["L"], r["d"]))
        r2_0 = base["r2_pairs"] if base else float("nan")
        share = r.get("accuracy/bayes")
        reasons.append(f"{_cell(r)}: a = {_f(r['a_pairs'])}, ρ(k, mean) = {_f(rho)}, {r2.text()}, Gaussian init "
                       f"R²_pairs = {_f(r2_0)}, accuracy/Bayes = {_f(share)}")
        near_min = share is not None and share >= 0.95
        if not (r["a_pairs"] > 0) or (near_min and r2.value < 0.5):
            bad = True
        if not (r["a_pairs"] > 0 and rho <= -0.9 and r2.value >= 0.9 and not (r2_0 >= 0.5)):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


RULES["theorem4"] = (
    "per (m, a, b) (seeds averaged), error of the eq. 5.2 model against (b_0 − b, L), for (a, b) on both sides "
    "of b = a·m/2 and a = 0, over the b_0 for which eq. 5.2 is a Gram matrix; 'falls' = never rises by more than "
    "the noise allowance τ = max(0.01, 2·√(0.5/N)) (two standard errors of a difference of two error rates at "
    "p = 1/2, N = samples per point) from one grid value to the next and ends more than τ below where it "
    "starts (a curve that is 0 throughout does not fall: it cannot tell); L* = the largest L at which the error "
    "at the smallest b_0 exceeds 0.05 (where b_0 can matter); holds if in every (m, a, b) at the largest b_0 "
    "the error falls with L and is <= 0.01 at the largest L, and at L* it falls with b_0; does not hold if in "
    "some (m, a, b) at the largest b_0 the error at the largest L is not below that at the smallest L (which "
    "is > 0), or at L* the error at the largest b_0 is above that at the smallest b_0 by more than τ; "
    "inconclusive otherwise (also when no L* exists: b_0 does not matter anywhere on the grid)")


def _noise(rows: Sequence[dict]) -> float:
    """τ: max(0.01, 2·√(0.5/N)) for N samples per point (the rows' ``samples``; 0.01 without it)."""
    n = min((int(r.get("samples") or 0) for r in rows), default=0)
    return max(0.01, 2 * math.sqrt(0.5 / n)) if n > 0 else 0.01


def _falls(errs: Sequence[float], tol: float = 0.01) -> bool:
    return len(errs) >= 2 and all(b <= a + tol for a, b in zip(errs, errs[1:])) and errs[-1] < errs[0] - tol


def judge_theorem4(rows: Sequence[dict], floor: float = 0.05) -> Judgement:
    combos = sorted({(r["m"], r.get("a", 1.0), r.get("b", r["m"] / 2)) for r in rows})
    if not combos:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects, ok, bad = [], [], True, False
    for m, a, b in combos:
        sel = [r for r in rows if (r["m"], r.get("a", 1.0), r.get("b", r["m"] / 2)) == (m, a, b)]
        tag = f"m={m}, a={a:g}, b={b:g}"
        tau = _noise(sel)
        bmin, bmax, Lmax = min(r["b0-b"] for r in sel), max(r["b0-b"] for r in sel), max(r["L"] for r in sel)
        along_L = sorted([r for r in sel if r["b0-b"] == bmax], key=lambda r: r["L"])
        errs_L = [r["error"] for r in along_L]
        corner = along_L[-1]
        e = mean_ci(f"error {tag} b0-b={bmax:g} L={Lmax}", [1 - x for x in (corner.get("accuracy_runs")
                                                                            or [corner["accuracy"]])])
        effects.append(e)
        low_b = {r["L"]: r["error"] for r in sel if r["b0-b"] == bmin}
        Lstar = max([L for L, err in low_b.items() if err > floor], default=None)
        txt = (f"{tag}: error against L at b0−b={bmax:g}: {', '.join(_f(x) for x in errs_L)}; {e.text()}; "
               f"τ = {_f(tau)}")
        falls_b = False
        if Lstar is None:
            txt += f"; the error at b0−b={bmin:g} is <= {floor:g} at every L: b_0 cannot matter on this grid"
        else:
            along_b = sorted([r for r in sel if r["L"] == Lstar], key=lambda r: r["b0-b"])
            errs_b = [r["error"] for r in along_b]
            falls_b = _falls(errs_b, tau)
            b0s = ", ".join(f"{r['b0-b']:g}" for r in along_b)
            txt += (f"; against b0−b ({b0s}) at L* = {Lstar}: "
                    f"{', '.join(_f(x) for x in errs_b)}")
            if len(errs_b) >= 2 and errs_b[-1] > errs_b[0] + tau:
                bad = True
                txt += (f"; at L* = {Lstar} the error rises with b_0 ({_f(errs_b[0])} -> {_f(errs_b[-1])}): a larger "
                        "b_0 does not help at this L" + ("; the joint limit (the largest b_0 and L) still reaches "
                                                          f"{_f(corner['error'])}" if corner["error"] <= 0.01 else ""))
        reasons.append(txt)
        if not (errs_L[-1] < errs_L[0]) and errs_L[0] > 0:
            bad = True
        if not (_falls(errs_L, tau) and falls_b and corner["error"] <= 0.01):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


RULES["lemma5"] = (
    "for random a > 0 and b = b_0 >= a·m/2 (a valid Gram matrix), the numerical rank of the eq. 5.2 embedding "
    "(= the rank of its Gram matrix) beside its exact rank (m + 1, or m at b = a·m/2, from the Gram matrix's "
    "eigenvalues); effects = the bound's slack (m + 2) − max rank; holds if every draw has rank <= m + 2, the "
    "b_0 > b control draws have rank > m + 2 (the count can tell) and every numerical rank equals the exact "
    "one; does not hold if some b = b_0 draw exceeds m + 2; inconclusive otherwise (controls not above m + 2, "
    "or the numerical rank disagrees with the algebra)")


def judge_lemma5(rows: Sequence[dict]) -> Judgement:
    if not rows:
        return Judgement(UNSURE, ("no rows",))

    def matched(r) -> bool:
        v = r.get("exact_matches")
        if not (isinstance(v, str) and "/" in v):
            return False
        k, n = (int(x) for x in v.split("/"))
        return k == n

    reasons = [f"m={r['m']}: rank with b = b_0 in [{r['min_rank_b0=b']}, {r['max_rank_b0=b']}] over "
               f"{r['draws']} draws (m + 2 = {r['m+2']}, exact m + 1 = {r['m'] + 1}); at b = a·m/2: "
               + (f"[{r['min_rank_b=am/2']}, {r['max_rank_b=am/2']}] (exact m = {r['m']})"
                  if "min_rank_b=am/2" in r else "not drawn")
               + f"; control b_0 > b: rank >= {r['min_rank_b0>b']}; numerical = exact rank in "
               f"{r.get('exact_matches', 'no')} cases" for r in rows]
    effects = tuple(Effect(f"slack (m + 2) − max rank, m={r['m']}", r["m+2"] - r["max_rank_b0=b"], n=r["draws"])
                    for r in rows)
    if all(r["m+2"] - r["max_rank_b0=b"] == 1 for r in rows):
        reasons.append("the bound is never tight: the rank is m + 1 (slack 1)")
    return _verdict(reasons, effects,
                    fails=any(r["max_rank_b0=b"] > r["m+2"] for r in rows),
                    holds=all(r["min_rank_b0>b"] > r["m+2"] and matched(r) for r in rows))


RULES["lemma6"] = (
    "autograd ∂ℓ/∂u(t, t_L) (float64) against the closed form, per (m, L) over seeds and samples: the "
    "formula as stated (α_t on the first term only) and the corrected one (α_t on both terms, "
    "α_t p̂_t (W_E(t) − Σ_l p̂_(t_l) W_E(t_l)), derived in the section's note); holds if the stated form's "
    "largest relative error is <= 1e-6 everywhere; holds once corrected if it exceeds 1e-3 somewhere while "
    "the corrected form is <= 1e-6 everywhere (an erratum in the formula; the gradient still grows with α_t, "
    "the lemma's point); does not hold if both exceed 1e-3 somewhere; inconclusive otherwise")


def judge_lemma6(rows: Sequence[dict], tol: float = 1e-6) -> Judgement:
    if not rows:
        return Judgement(UNSURE, ("no rows",))
    worst = max(r["max_rel_err_stated"] for r in rows)
    worst_a = max(r["max_rel_err_with_alpha"] for r in rows)
    reasons = (f"largest relative error of the stated closed form: {worst:.3g}",
               f"largest relative error with α_t p̂_t (W_E(t) − Σ_l p̂_(t_l) W_E(t_l)): {worst_a:.3g}"
               + (" (matches autograd)" if worst_a <= tol else ""))
    effects = (Effect("max relative error (stated)", worst, n=len(rows)),
               Effect("max relative error (α_t on both terms)", worst_a, n=len(rows)))
    if worst <= tol:
        return Judgement(HOLDS, reasons, effects)
    if worst > 1e-3 and worst_a <= tol:
        return Judgement(CORRECTED, reasons + ("the stated formula is off; with α_t on both terms it is exact",),
                         effects)
    return _verdict(reasons, effects, fails=worst > 1e-3 and worst_a > 1e-3, holds=False)
