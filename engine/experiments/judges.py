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
from engine.experiments.verdict import FAILS, HOLDS, UNSURE, Effect, Judgement


def _f(x: float, nd: int = 3) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.{nd}g}" if abs(x) >= 1e3 else f"{x:.{nd}f}"


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
RULES["value-swap"] = (
    "paired by run: keep = mean of constructed/trained accuracy; effects = constructed − random-constructed "
    "and trained − constructed accuracy with 95% CIs; holds if keep >= 0.9 and the constructed − random CI "
    "lies above 0.05; does not hold if keep < 0.7 or the constructed − random CI does not lie above 0; "
    "inconclusive otherwise")


def judge_value_swap(rows: Sequence[dict]) -> Judgement:
    tr, co, ra = _flat(rows, "trained_runs"), _flat(rows, "constructed_runs"), _flat(rows, "random_runs")
    if not tr:
        return Judgement(UNSURE, ("no runs",))
    keep = mean_ci("constructed / trained accuracy", [c / t for c, t in zip(co, tr) if t > 0])
    vs_rand = paired_ci("constructed − random-constructed accuracy", co, ra)
    drop = paired_ci("trained − constructed accuracy", tr, co)
    reasons = (keep.text(), vs_rand.text(), drop.text())
    effects = (keep, vs_rand, drop)
    return _verdict(reasons, effects,
                    fails=keep.value < 0.7 or not (_lo(vs_rand) > 0 or (vs_rand.n < 2 and vs_rand.value > 0)),
                    holds=keep.value >= 0.9 and _lo(vs_rand) > 0.05)


# ----------------------------------------------------------------------------------- value-angles
RULES["value-angles"] = (
    "smallest principal angle (degrees) between rank-m approximations of the trained W_V and of the "
    "constructed, random-constructed W_V and the run's own initial (Gaussian) W_V; effects = paired margins "
    "random − constructed and initial − constructed with 95% CIs; holds if the constructed W_V has the "
    "smallest mean angle and both CIs lie above 0; does not hold if its mean angle is not the smallest; "
    "inconclusive otherwise")


def judge_value_angles(rows: Sequence[dict]) -> Judgement:
    c, r, g = _flat(rows, "constructed_runs"), _flat(rows, "random_runs"), _flat(rows, "initial_runs")
    if not c:
        return Judgement(UNSURE, ("no runs",))
    m1 = paired_ci("random − constructed angle (°)", r, c)
    m2 = paired_ci("initial W_V − constructed angle (°)", g, c)
    mc, mr, mg = mean_std(c)[0], mean_std(r)[0], mean_std(g)[0]
    reasons = (f"mean smallest angle: constructed {_f(mc, 2)}°, random-constructed {_f(mr, 2)}°, "
               f"initial W_V {_f(mg, 2)}°", m1.text(), m2.text())
    return _verdict(reasons, (m1, m2), fails=not (mc < mr and mc < mg), holds=_lo(m1) > 0 and _lo(m2) > 0)


# ----------------------------------------------------------------------------------- embedding-dim
RULES["embedding-dim"] = (
    "gap = trained − frozen W_E test accuracy, paired by seed, pooled over cells with d < V and with d > V "
    "(95% CIs); holds if the d < V gap is > 0.05 with its CI above 0 while the d > V gap is < min(0.05, "
    "half the d < V gap); does not hold if the d < V gap is <= 0.02 or the d > V gap is at least the d < V "
    "gap; inconclusive otherwise (also when the grid lacks d on either side of V)")


def judge_embedding_dim(rows: Sequence[dict]) -> Judgement:
    below = [r for r in rows if r["d"] < r["V"]]
    above = [r for r in rows if r["d"] > r["V"]]
    gb = paired_ci("gap d < V", _flat(below, "trained_runs"), _flat(below, "frozen_runs"))
    ga = paired_ci("gap d > V", _flat(above, "trained_runs"), _flat(above, "frozen_runs"))
    reasons = (gb.text(), ga.text())
    if gb.n == 0 or ga.n == 0:
        return Judgement(UNSURE, reasons + ("the grid lacks d on one side of V",), (gb, ga))
    return _verdict(reasons, (gb, ga),
                    fails=gb.value <= 0.02 or ga.value >= gb.value,
                    holds=gb.value > 0.05 and _lo(gb) > 0 and ga.value < min(0.05, gb.value / 2))


# ----------------------------------------------------------------------------------- embedding-geometry
RULES["embedding-geometry"] = (
    "per configuration (seeds averaged): eq. 5.2 is fitted by least squares over ALL pairs t != t' "
    "(⟨W_E(t), W_E(t')⟩ ≈ −a·D_H + b, R²_pairs) and the per-distance means must fall with D_H "
    "(Spearman ρ(k, mean_k) over k = 1..m); holds if with W_V trained a > 0, b_0 > b, ρ <= −0.9 and "
    "R²_pairs >= 0.5, and with W_V = I (Thm 3, Fig. C.6) a > 0, ρ <= −0.9 and R²_pairs >= 0.9 (linear); "
    "does not hold if in some trained configuration a <= 0 or the means do not fall (ρ >= 0); "
    "inconclusive otherwise")


def _means_rho(r: dict) -> float:
    ks = [k for k in range(1, int(r["m"]) + 1) if r.get(f"k={k}") is not None]
    return spearman(ks, [r[f"k={k}"] for k in ks])


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
        reasons.append(f"{r['W_E']} ({_cell(r)}): a = {_f(r['a_pairs'])}, b = {_f(r['b_pairs'])}, "
                       f"b_0 = {_f(r['b0'])}, ρ(k, mean) = {_f(rho)}, {r2.text()}")
        if not (r["a_pairs"] > 0) or not (rho < 0):
            bad = True
        need = 0.9 if linear else 0.5
        if not (r["a_pairs"] > 0 and rho <= -0.9 and r2.value >= need and (linear or r["b0"] > r["b_pairs"])):
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
    "per (m, L, d), seeds averaged: misclassification (prediction != y1) against r; effect = rise from the "
    "smallest to the largest r (paired by seed, 95% CI); holds if in every configuration it rises with r "
    "(Spearman >= 0.9), the rise is >= 0.2 with its CI above 0, and predicting y2 also rises (Spearman "
    ">= 0.9); does not hold if in some configuration misclassification at the largest r is not above that "
    "at the smallest; inconclusive otherwise")


def judge_context_mixing(rows: Sequence[dict]) -> Judgement:
    cells = sorted({(r["m"], r["L"], r["d"]) for r in rows})
    if not cells:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects, ok, bad = [], [], True, False
    for cell in cells:
        sel = sorted([r for r in rows if (r["m"], r["L"], r["d"]) == cell], key=lambda r: r["r"])
        rs = [r["r"] for r in sel]
        mis = [r["misclassified"] for r in sel]
        rho, rho2 = spearman(rs, mis), spearman(rs, [r["predicts_y2"] for r in sel])
        rise = paired_ci(f"rise m={cell[0]} L={cell[1]} d={cell[2]}", sel[-1].get("mis_runs") or [mis[-1]],
                         sel[0].get("mis_runs") or [mis[0]])
        effects.append(rise)
        reasons.append(f"m={cell[0]}, L={cell[1]}, d={cell[2]}: ρ = {_f(rho)}, ρ(y2) = {_f(rho2)}, {rise.text()}")
        if not (mis[-1] > mis[0]):
            bad = True
        if not (rho >= 0.9 and rise.value >= 0.2 and (_lo(rise) > 0 or rise.n < 2) and rho2 >= 0.9):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


# ----------------------------------------------------------------------------------- context-length
RULES["context-length"] = (
    "per (m, d), seeds averaged, accuracy against L; effect = gain from the shortest to the longest L "
    "(paired by seed, 95% CI); holds if in every (m, d) accuracy rises with L (Spearman >= 0.9), the gain "
    "is >= 0.05 with its CI above 0, and accuracy never exceeds the Bayes accuracy by more than 0.02; does "
    "not hold if accuracy at the longest L is not above the shortest, or exceeds Bayes by more than 0.02; "
    "inconclusive otherwise")


def judge_context_length(rows: Sequence[dict], tol: float = 0.02) -> Judgement:
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
        effects.append(gain)
        reasons.append(f"m={m}, d={d}: ρ = {_f(rho)}, {gain.text()}, max(accuracy − Bayes) = {_f(over)}")
        if not (acc[-1] > acc[0]) or over > tol:
            bad = True
        if not (rho >= 0.9 and gain.value >= 0.05 and (_lo(gain) > 0 or gain.n < 2)):
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
    "y): there the constructed model must be right on every sample; W_V = I (orthonormal W_E) must have "
    "error > 0 with the Wilson 95% lower bound of its error above 0 at every (m, L), for uniform attention "
    "AND for the attention columns measured with other W_K, W_Q (random sharp and trained, `identity_*` "
    "columns); holds if both parts pass; does not hold if either fails; inconclusive if no L is long enough "
    "for Bayes to be perfect")


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
        m = "knockout_mentions_window"
        n = int(r.get("evaluated_on") or 0)
        d = Effect(f"{r['model']} {r['scheme']} drop D", r["drop"], r["drop_lo"], r["drop_hi"], n)
        e = Effect(f"{r['model']} {r['scheme']} mentions knockout Δ (block {r[f'{m}_layer']})", r[m],
                   r[f"{m}_lo"], r[f"{m}_hi"], n)
        rest = r.get("knockout_rest_window")
        effects += [d, e]
        present = math.isfinite(d.lo) and d.lo > 0
        supports = present and math.isfinite(e.lo) and e.lo >= 0.5 * d.value
        refutes = present and math.isfinite(e.hi) and e.hi < 0.25 * d.value
        word = "supports" if supports else "refutes" if refutes else "neither"
        reasons.append(f"{d.text()}; {e.text()}; the rest-of-prepend knockout Δ = {_f(rest)}: {word}")
        ok = ok and supports
        bad = bad or refutes
    return _verdict(reasons, effects, fails=bad, holds=ok)


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
                       f"R²_pairs = {_f(r2_0)}, accuracy/Bayes = {_f(share) if share is not None else 'nan'}")
        near_min = share is not None and share >= 0.95
        if not (r["a_pairs"] > 0) or (near_min and r2.value < 0.5):
            bad = True
        if not (r["a_pairs"] > 0 and rho <= -0.9 and r2.value >= 0.9 and not (r2_0 >= 0.5)):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


RULES["theorem4"] = (
    "per m (seeds averaged), error of the eq. 5.2 model against (b_0 − b, L); 'falls' = never rises by more "
    "than 0.01 from one grid value to the next and ends below where it starts (or is 0 throughout); holds if "
    "at the largest b_0 the error falls with L, at the largest L it falls with b_0, and the error at the "
    "largest (b_0, L) is <= 0.01; does not hold if at the largest b_0 the error at the largest L is not below "
    "that at the smallest L; inconclusive otherwise")


def _falls(errs: Sequence[float], tol: float = 0.01) -> bool:
    if all(e == 0 for e in errs):
        return True
    return all(b <= a + tol for a, b in zip(errs, errs[1:])) and errs[-1] < errs[0]


def judge_theorem4(rows: Sequence[dict]) -> Judgement:
    ms = sorted({r["m"] for r in rows})
    if not ms:
        return Judgement(UNSURE, ("no rows",))
    reasons, effects, ok, bad = [], [], True, False
    for m in ms:
        sel = [r for r in rows if r["m"] == m]
        bmax, Lmax = max(r["b0-b"] for r in sel), max(r["L"] for r in sel)
        along_L = sorted([r for r in sel if r["b0-b"] == bmax], key=lambda r: r["L"])
        along_b = sorted([r for r in sel if r["L"] == Lmax], key=lambda r: r["b0-b"])
        errs_L = [r["error"] for r in along_L]
        errs_b = [r["error"] for r in along_b]
        corner = along_L[-1]
        e = mean_ci(f"error m={m} b0-b={bmax:g} L={Lmax}", [1 - a for a in (corner.get("accuracy_runs")
                                                                            or [corner["accuracy"]])])
        effects.append(e)
        reasons.append(f"m={m}: error against L at b0−b={bmax:g}: {', '.join(_f(x) for x in errs_L)}; against "
                       f"b0−b at L={Lmax}: {', '.join(_f(x) for x in errs_b)}; {e.text()}")
        if not (errs_L[-1] < errs_L[0]) and errs_L[0] > 0:
            bad = True
        if not (_falls(errs_L) and _falls(errs_b) and corner["error"] <= 0.01):
            ok = False
    return _verdict(reasons, effects, fails=bad, holds=ok)


RULES["lemma5"] = (
    "for random a > 0 and b = b_0 >= a·m/2 (a valid Gram matrix), the numerical rank of the eq. 5.2 embedding "
    "(= the rank of its Gram matrix); holds if every draw has rank <= m + 2 and the b_0 > b control draws "
    "have rank > m + 2 (the count can tell); does not hold if some b = b_0 draw exceeds m + 2; inconclusive "
    "if the controls do not exceed m + 2")


def judge_lemma5(rows: Sequence[dict]) -> Judgement:
    if not rows:
        return Judgement(UNSURE, ("no rows",))
    reasons = tuple(f"m={r['m']}: rank with b = b_0 in [{r['min_rank_b0=b']}, {r['max_rank_b0=b']}] over "
                    f"{r['draws']} draws (m + 2 = {r['m+2']}); control b_0 > b: rank >= {r['min_rank_b0>b']}"
                    for r in rows)
    effects = tuple(Effect(f"max rank − (m + 2), m={r['m']}", r["max_rank_b0=b"] - r["m+2"], n=r["draws"])
                    for r in rows)
    return _verdict(reasons, effects,
                    fails=any(r["max_rank_b0=b"] > r["m+2"] for r in rows),
                    holds=all(r["min_rank_b0>b"] > r["m+2"] for r in rows))


RULES["lemma6"] = (
    "autograd ∂ℓ/∂u(t, t_L) (float64) against the closed form as stated, per (m, L) over seeds and samples; "
    "holds if the largest relative error is <= 1e-6 everywhere; does not hold if it exceeds 1e-3 somewhere "
    "(the reasons say whether the variant with α_t on both terms matches instead); inconclusive otherwise")


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
    return _verdict(reasons, effects, fails=worst > 1e-3 and not worst <= tol, holds=worst <= tol)
