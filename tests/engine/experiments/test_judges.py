"""Every verdict rule on synthetic rows: each judge reaches "holds", "does not hold" and "inconclusive",
and its effect sizes carry the numbers the rows imply."""

import math

import numpy as np
import pytest

from engine.experiments import judges as J
from engine.experiments.stats import mean_ci, t975
from engine.experiments.verdict import Judgement

H, F, U = "holds", "does not hold", "inconclusive"


def _vm(cells):
    """value-matrix rows from {(m, L): (trained_runs, identity_runs)}."""
    rows = []
    for (m, L), (t, i) in cells.items():
        mt, mi = sum(t) / len(t), sum(i) / len(i)
        rows.append({"m": m, "L": L, "d": 32, "trained": mt, "W_V=I": mi, "gap": mt - mi,
                     "trained_runs": t, "identity_runs": i})
    return rows


def test_value_matrix_branches():
    good = _vm({(5, 64): ([0.9, 0.91, 0.92], [0.6, 0.62, 0.61]), (5, 128): ([0.95, 0.96, 0.97], [0.9, 0.9, 0.91])})
    j = J.judge_value_matrix(good)
    assert j.verdict == H and j.effects[0].lo > 0
    assert j.effects[0].value == pytest.approx((0.3 + 0.29 + 0.31 + 0.05 + 0.06 + 0.06) / 6)
    worse = _vm({(5, 64): ([0.5, 0.51, 0.52], [0.6, 0.62, 0.61]), (5, 128): ([0.5, 0.5, 0.5], [0.9, 0.9, 0.91])})
    assert J.judge_value_matrix(worse).verdict == F
    # trained wins everywhere, but the gap is larger at the longest L: the "most visible at short L" part fails
    flipped = _vm({(5, 64): ([0.9, 0.91, 0.92], [0.85, 0.86, 0.87]), (5, 128): ([0.95, 0.96, 0.97], [0.6, 0.6, 0.6])})
    j = J.judge_value_matrix(flipped)
    assert j.verdict == U and any("longest L" in r for r in j.reasons)
    assert J.judge_value_matrix([]).verdict == U


def _swap(tr, co, ra, cells=1):
    return [{"m": 5 + c, "L": 64, "d": 32, "trained_runs": tr, "constructed_runs": co, "random_runs": ra}
            for c in range(cells)]


def test_value_swap_branches():
    # equivalence: the drop's CI lies below the margin 0.05 in every cell
    j = J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.88, 0.87, 0.89], [0.05, 0.04, 0.06], cells=2))
    assert j.verdict == H and "lower by 0.020" in j.reasons[0]
    assert j.effects[0].name == "trained − constructed accuracy" and j.effects[0].value == pytest.approx(0.02)
    # lower by about 0.08 with a tight CI: a significant drop beyond the margin (the old rule, keep >= 0.9, held)
    j = J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.82, 0.825, 0.815], [0.05, 0.04, 0.06]))
    assert j.verdict == F and "lower by more than δ" in j.reasons[-1]
    assert J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.5, 0.5, 0.4], [0.05, 0.04, 0.06])).verdict == F
    assert J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.88, 0.87, 0.89], [0.9, 0.9, 0.9])).verdict == F
    # a drop of 0.04 whose CI straddles the margin: neither equivalent nor beyond it
    assert J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.88, 0.86, 0.84], [0.05, 0.04, 0.06])).verdict == U
    # one cell equivalent, one undecided: not every cell is within the margin
    rows = _swap([0.9, 0.9, 0.9], [0.88, 0.87, 0.89], [0.05, 0.04, 0.06]) + \
        [{**_swap([0.9, 0.9, 0.9], [0.88, 0.86, 0.84], [0.05, 0.04, 0.06])[0], "m": 6}]
    assert J.judge_value_swap(rows).verdict == U


def _ang(c, r, g, we=None):
    row = {"m": 5, "constructed_runs": c, "random_runs": r, "initial_runs": g}
    if we is not None:
        row["W_E_runs"] = we
    return [row]


def test_value_angles_branches():
    assert J.judge_value_angles(_ang([5, 6, 4], [20, 22, 21], [50, 52, 51], we=[15, 16, 15])).verdict == H
    assert J.judge_value_angles(_ang([30, 31, 29], [20, 22, 21], [50, 52, 51], we=[40, 40, 40])).verdict == F
    # smallest on average, but the margin to random-constructed is noise
    assert J.judge_value_angles(_ang([5, 20, 4], [20, 6, 5], [50, 52, 51], we=[15, 16, 15])).verdict == U
    # beats random and initial, but W_E's own top-m subspace is as close: the claim reduces to it
    j = J.judge_value_angles(_ang([5, 6, 4], [20, 22, 21], [50, 52, 51], we=[5.1, 5.9, 4.2]))
    assert j.verdict == U and any("reduces to" in r for r in j.reasons)
    assert j.effects[2].name.startswith("W_E top-m") and j.effects[2].value == pytest.approx(0.2 / 3, abs=1e-9)
    # rows without the W_E baseline (results made before it existed) cannot hold any more
    assert J.judge_value_angles(_ang([5, 6, 4], [20, 22, 21], [50, 52, 51])).verdict == U


def _dim(cells, conv="3/3", V=32):
    """embedding-dim rows from {d: (trained_runs, frozen_runs)}."""
    return [{"m": 5, "V": V, "L": 64, "d": d, "trained_runs": t, "frozen_runs": f, "trained_W_E": sum(t) / len(t),
             "frozen_W_E": sum(f) / len(f), "converged_trained": conv, "converged_frozen": conv}
            for d, (t, f) in cells.items()]


def test_embedding_dim_branches():
    need = ([0.8, 0.81, 0.82], [0.2, 0.21, 0.2])          # d < V: training needed
    free = ([0.85, 0.86, 0.85], [0.84, 0.85, 0.85])       # d > V: frozen within the margin
    j = J.judge_embedding_dim(_dim({8: need, 16: need, 64: free, 128: free}))
    assert j.verdict == H and len(j.effects) == 4 and [e.name for e in j.effects][0] == "gap m=5, d=8 (d < V)"
    # judged per d, not pooled: one d > V where frozen is far behind decides, however good the others are
    far = ([0.85, 0.86, 0.85], [0.6, 0.62, 0.61])
    assert J.judge_embedding_dim(_dim({8: need, 16: need, 64: free, 128: far})).verdict == F
    # a d < V where training does not help (gap CI below the margin)
    same = ([0.8, 0.81, 0.8], [0.8, 0.8, 0.8])
    assert J.judge_embedding_dim(_dim({8: same, 16: need, 64: free})).verdict == F
    # a d > V whose gap CI straddles the margin: undecided
    mid = ([0.85, 0.86, 0.85], [0.85, 0.78, 0.8])
    assert J.judge_embedding_dim(_dim({8: need, 64: mid})).verdict == U
    # runs that did not converge decide nothing, either way
    assert J.judge_embedding_dim(_dim({8: need, 64: free}, conv="2/3")).verdict == U
    assert J.judge_embedding_dim(_dim({8: need, 64: far}, conv="2/3")).verdict == U
    # one side of V only
    assert J.judge_embedding_dim(_dim({8: need, 16: need})).verdict == U
    # d = V is reported (with the orthonormal control), not judged
    rows = _dim({8: need, 32: far, 64: free})
    rows[1]["orthonormal_runs"] = [0.85, 0.85, 0.86]
    j = J.judge_embedding_dim(rows)
    assert j.verdict == H and any("frozen orthonormal" in r for r in j.reasons)


def _geo(label, means, a, b, r2s, m=4):
    row = {"m": m, "L": 64, "d": 16, "W_E": label, "a_pairs": a, "b_pairs": b, "b0": means[0],
           "r2_pairs": sum(r2s) / len(r2s), "r2_pairs_runs": r2s}
    for k, v in enumerate(means):
        row[f"k={k}"] = v
    return row


def test_embedding_geometry_branches():
    fall = [10.0, 4.0, 2.0, 0.0, -2.0]
    lin = [8.0, 6.0, 4.0, 2.0, 0.0]
    good = [_geo("W_V trained", fall, 2.0, 6.0, [0.6, 0.62, 0.61]), _geo("W_V = I", lin, 2.0, 8.0, [0.97, 0.98, 0.975])]
    assert J.judge_embedding_geometry(good).verdict == H
    # the fit over all pairs is poor for W_V = I: not "linear"
    weak = [good[0], _geo("W_V = I", lin, 2.0, 8.0, [0.6, 0.7])]
    assert J.judge_embedding_geometry(weak).verdict == U
    # means rise with distance
    rising = [_geo("W_V trained", [10.0, -2.0, 0.0, 2.0, 4.0], -2.0, -4.0, [0.6, 0.7]), good[1]]
    assert J.judge_embedding_geometry(rising).verdict == F
    # the Gaussian init row is ignored by the rule
    assert J.judge_embedding_geometry(good + [_geo("Gaussian init", [1, 0, 0, 0, 0], 0.0, 0.0, [0.0])]).verdict == H
    # Spearman -0.8 but the mean at D_H = 1 lies below D_H = 2: the means do not fall at every step
    dip = [_geo("W_V trained", [10.0, 2.0, 4.0, 0.0, -2.0], 2.0, 6.0, [0.6, 0.62, 0.61]), good[1]]
    j = J.judge_embedding_geometry(dip)
    assert j.verdict == U and "not lower at D_H = 2" in j.reasons[0]
    # R²_pairs 0.535 on average, but its CI reaches below 0.5 (the old rule held on the mean)
    wide = [_geo("W_V trained", fall, 2.0, 6.0, [0.3, 0.77]), good[1]]
    assert J.judge_embedding_geometry(wide).verdict == U and J.judge_embedding_geometry(wide).effects[0].lo < 0.5
    assert J.means_fall({"m": 3, "k=1": 3.0, "k=2": 2.0, "k=3": 1.0})
    assert not J.means_fall({"m": 3, "k=1": 3.0, "k=2": 3.0, "k=3": 1.0})


def _spec(gaps, inits, k=5):
    return [{"m": 5, "L": 64, "d": 32, "gap": sum(g) / len(g), "gap_init": sum(i) / len(i), "gap_at_k": k,
             "gap_runs": g, "gap_init_runs": i} for g, i in zip(gaps, inits)]


def test_spectrum_branches():
    assert J.judge_spectrum(_spec([[2.0, 2.2]], [[1.05, 1.04]])).verdict == H
    assert J.judge_spectrum(_spec([[1.0, 1.02]], [[1.05, 1.04]])).verdict == F
    assert J.judge_spectrum(_spec([[1.4, 1.45]], [[1.05, 1.04]])).verdict == U
    j = J.judge_spectrum(_spec([[2.0, 2.2]], [[1.0, 1.1]]))
    assert j.effects[0].value == pytest.approx((2.0 + 2.2 / 1.1) / 2)


def _att(ratios, map_ratio=5.0):
    return [{"m": 6, "k": 1, "L": 64, "d": 32, "ratio_runs": ratios, "map_ratio": map_ratio}]


def test_attention_cluster_branches():
    assert J.judge_attention_cluster(_att([7.0, 8.0])).verdict == H
    assert J.judge_attention_cluster(_att([0.9, 0.95])).verdict == F
    assert J.judge_attention_cluster(_att([1.1, 3.0])).verdict == U
    assert J.judge_attention_cluster(_att([7.0, 8.0], map_ratio=0.9)).verdict == U


def _mix(mis, y2, runs=None, bayes=None):
    rs = [i / (len(mis) - 1) for i in range(len(mis))]
    bayes = bayes or [0.0] * len(mis)
    return [{"m": 5, "L": 64, "d": 32, "r": r, "misclassified": a, "predicts_y2": b, "bayes_misclassified": c,
             "mis_runs": (runs[i] if runs else [a, a]), "bayes_mis_runs": [c, c]}
            for i, (r, a, b, c) in enumerate(zip(rs, mis, y2, bayes))]


def test_context_mixing_branches():
    bayes = [0.0, 0.05, 0.15, 0.6]          # the task's own rise: the Bayes classifier on the same contexts
    assert J.judge_context_mixing(_mix([0.1, 0.3, 0.6, 0.9], [0.0, 0.1, 0.3, 0.6], bayes=bayes)).verdict == H
    assert J.judge_context_mixing(_mix([0.3, 0.2, 0.2, 0.1], [0.0, 0.1, 0.3, 0.6], bayes=bayes)).verdict == F
    assert J.judge_context_mixing(_mix([0.1, 0.12, 0.13, 0.15], [0.0, 0.1, 0.3, 0.6], bayes=bayes)).verdict == U
    # a big rise, but the seeds disagree so much the CI reaches below 0
    noisy = _mix([0.1, 0.3, 0.6, 0.5], [0.0, 0.1, 0.3, 0.6], runs=[[0.0, 0.2], [0.3, 0.3], [0.6, 0.6], [0.9, 0.1]],
                 bayes=bayes)
    assert J.judge_context_mixing(noisy).verdict == U
    # the transformer rises exactly as much as Bayes does: the rise is the task's, not the transformer's
    same = _mix([0.1, 0.3, 0.6, 0.9], [0.0, 0.1, 0.3, 0.6], bayes=[0.1, 0.3, 0.6, 0.9])
    j = J.judge_context_mixing(same)
    assert j.verdict == U and any("task's own" in r for r in j.reasons)
    assert j.effects[0].name.startswith("excess rise over Bayes") and j.effects[0].value == pytest.approx(0.0)
    # the excess: mean over the interior r of (transformer − Bayes) minus that at the smallest r
    j = J.judge_context_mixing(_mix([0.1, 0.3, 0.6, 0.9], [0.0, 0.1, 0.3, 0.6], bayes=bayes))
    assert j.effects[0].value == pytest.approx(((0.3 - 0.05) + (0.6 - 0.15)) / 2 - 0.1)


def _len(acc, bayes, runs=None):
    Ls = [8, 16, 32, 64]
    return [{"m": 5, "d": 32, "L": L, "accuracy": a, "bayes": b, "accuracy_runs": runs[i] if runs else [a, a + 0.001],
             "bayes_runs": [b, b]} for i, (L, a, b) in enumerate(zip(Ls, acc, bayes))]


def test_context_length_branches():
    bayes = [0.4, 0.6, 0.8, 0.95]
    j = J.judge_context_length(_len([0.3, 0.5, 0.7, 0.9], bayes))
    assert j.verdict == H and j.effects[0].name.startswith("gap to Bayes at L=64 − at L=8")
    assert j.effects[0].value == pytest.approx((0.05 - 0.1) + (-0.001 - (-0.001)))
    assert J.judge_context_length(_len([0.5, 0.4, 0.3, 0.3], bayes)).verdict == F
    assert J.judge_context_length(_len([0.3, 0.5, 0.9, 0.9], bayes)).verdict == F      # above Bayes + 0.02
    # flat accuracy while Bayes rises: it falls behind Bayes by 0.52 (the old rule said inconclusive)
    assert J.judge_context_length(_len([0.3, 0.29, 0.32, 0.33], bayes)).verdict == F
    # accuracy rises (the old rule held), but it falls behind Bayes as L grows: the gap widens by 0.25
    j = J.judge_context_length(_len([0.35, 0.45, 0.55, 0.65], bayes))
    assert j.verdict == F and j.effects[0].value == pytest.approx(0.25, abs=1e-9)
    # widens by 0.05 with seeds that disagree: the CI straddles the margin
    wob = _len([0.35, 0.5, 0.7, 0.85], bayes, runs=[[0.35, 0.35], [0.5, 0.5], [0.7, 0.7], [0.8, 0.9]])
    assert J.judge_context_length(wob).verdict == U


def _t1(accs_by_L, runs_last=None):
    Ls = [1, 4, 16, 64]
    rows = [{"m": 3, "L": L, "constructed": a} for L, a in zip(Ls, accs_by_L)]
    rows[-1]["constructed_runs"] = runs_last or [accs_by_L[-1]] * 2
    return rows


def test_theorem1_branches():
    assert J.judge_theorem1(_t1([0.2, 0.5, 0.9, 1.0])).verdict == H
    assert J.judge_theorem1(_t1([0.5, 0.4, 0.3, 0.2])).verdict == F
    assert J.judge_theorem1(_t1([0.2, 0.5, 0.9, 0.95])).verdict == U
    assert J.judge_theorem1(_t1([0.2, 0.5, 0.9, 0.995], runs_last=[1.0, 0.97])).verdict == U   # CI reaches below


def _l2(con, bayes, ident):
    return [{"m": 3, "L": L, "constructed": c, "constructed_runs": [c], "bayes": b, "bayes_runs": [b],
             "identity": i, "n": 1000}
            for L, c, b, i in zip([2, 8, 32], con, bayes, ident)]


def test_lemma2_branches():
    assert J.judge_lemma2(_l2([0.5, 0.9, 1.0], [0.5, 0.9, 1.0], [0.0, 0.0, 0.0])).verdict == H
    assert J.judge_lemma2(_l2([0.5, 0.9, 0.99], [0.5, 0.9, 1.0], [0.0, 0.0, 0.0])).verdict == F
    # W_V = I with error 0 somewhere (accuracy 1): the "error > 0" half fails, and it could
    assert J.judge_lemma2(_l2([0.5, 0.9, 1.0], [0.5, 0.9, 1.0], [0.0, 0.0, 1.0])).verdict == F
    # error 0.002 on 1000 samples: its Wilson lower bound is above 0, so it still counts as > 0
    assert J.judge_lemma2(_l2([0.5, 0.9, 1.0], [0.5, 0.9, 1.0], [0.0, 0.0, 0.998])).verdict == H
    assert J.judge_lemma2(_l2([0.5, 0.9, 0.95], [0.5, 0.9, 0.97], [0.0, 0.0, 0.0])).verdict == U
    assert J.wilson(0, 100)[0] == 0.0 and J.wilson(2, 1000)[0] > 0


def _hj(specs):
    return [{"model": "m", "scheme": s, "metric": "efficacy", "relation": "all", "records": n, "up": up, "down": dn}
            for s, n, up, dn in specs]


def test_hijack_curves_branches():
    assert J.judge_hijack_curves(_hj([("not-think", 71, 28, 0), ("reverse-not-think", 71, 11, 0)])).verdict == H
    # a reverse scheme that does not raise accuracy significantly is no longer enough
    assert J.judge_hijack_curves(_hj([("not-think", 71, 28, 0), ("reverse-not-think", 71, 2, 0)])).verdict == U
    assert J.judge_hijack_curves(_hj([("not-think", 71, 0, 12), ("reverse-not-think", 71, 11, 0)])).verdict == F
    j = J.judge_hijack_curves(_hj([("not-think", 10, 5, 1)]))
    e = j.effects[0]
    assert e.value == pytest.approx(0.4) and e.lo < 0.4 < e.hi


def _t3(r2, a=2.0, r2_init=0.01, share=0.99):
    means = [9.0, 6.0, 4.0, 2.0, 0.0]
    row = _geo("W_V = I, ω = 1", means, a, 8.0, r2)
    row["accuracy/bayes"] = share
    return [row, _geo("Gaussian init", [1, 0, 0, 0, 0], 0.0, 0.0, [r2_init])]


def test_theorem3_branches():
    assert J.judge_theorem3(_t3([0.95, 0.97])).verdict == H
    assert J.judge_theorem3(_t3([0.3, 0.35])).verdict == F                # at the minimum, yet not linear
    assert J.judge_theorem3(_t3([0.3, 0.35], share=0.7)).verdict == U     # not trained to the minimum
    assert J.judge_theorem3(_t3([0.95, 0.97], a=-1.0)).verdict == F


def _t4(err, a=1.0, b=1.5):
    """err[(b0, L)]"""
    return [{"m": 3, "a": a, "b": b, "b0-b": b0, "L": L, "error": e, "accuracy": 1 - e, "accuracy_runs": [1 - e]}
            for (b0, L), e in err.items()]


def test_theorem4_branches():
    good = {(0, 4): 0.6, (0, 64): 0.5, (16, 4): 0.4, (16, 64): 0.0}
    j = J.judge_theorem4(_t4(good))
    assert j.verdict == H and "at L* = 64" in j.reasons[0]
    assert J.judge_theorem4(_t4({**good, (16, 64): 0.5})).verdict == F
    assert J.judge_theorem4(_t4({**good, (16, 64): 0.05})).verdict == U
    # the error is 0 at every b_0 at the largest L, and b_0 matters at L = 4 only: judged there (L*)
    flat = {(0, 4): 0.6, (0, 64): 0.0, (4, 4): 0.5, (4, 64): 0.0, (16, 4): 0.4, (16, 64): 0.0}
    j = J.judge_theorem4(_t4(flat))
    assert j.verdict == H and "at L* = 4" in j.reasons[0]
    # ... and at L* the error does not fall with b_0: the old rule (judged at the largest L, zeros tolerated) held
    assert J.judge_theorem4(_t4({**flat, (4, 4): 0.6, (16, 4): 0.6})).verdict == U
    # at L* the error rises with b_0
    j = J.judge_theorem4(_t4({**flat, (16, 4): 0.8}))
    assert j.verdict == F and "rises with b_0 (0.600 -> 0.800)" in j.reasons[0] and "joint limit" in j.reasons[0]
    # b_0 never matters (error <= 0.05 at the smallest b_0 everywhere): vacuous, inconclusive
    zero = {(0, 4): 0.01, (0, 64): 0.0, (16, 4): 0.0, (16, 64): 0.0}
    j = J.judge_theorem4(_t4(zero))
    assert j.verdict == U and any("cannot matter" in r for r in j.reasons)
    # judged per (m, a, b): one bad (a, b) decides
    assert J.judge_theorem4(_t4(good) + _t4({**good, (16, 64): 0.5}, a=0.0)).verdict == F
    # a rise of 0.026 between neighbouring L: noise at N = 2048 samples (τ = 0.031), a real rise at N = 100000
    wiggle = {(0, 1): 0.8, (0, 4): 0.6, (0, 64): 0.5, (16, 1): 0.741, (16, 4): 0.767, (16, 64): 0.0}
    rows = [{**r, "samples": 2048} for r in _t4(wiggle)]
    assert J._noise(rows) == pytest.approx(2 * math.sqrt(0.5 / 2048)) and J.judge_theorem4(rows).verdict == H
    assert J.judge_theorem4([{**r, "samples": 100000} for r in rows]).verdict == U


def _l5(max_rank, ctrl, matches="30/30"):
    return [{"m": 4, "m+2": 6, "draws": 10, "min_rank_b0=b": 5, "max_rank_b0=b": max_rank, "min_rank_b0>b": ctrl,
             "min_rank_b=am/2": 4, "max_rank_b=am/2": 4, "exact_matches": matches}]


def test_lemma5_branches():
    j = J.judge_lemma5(_l5(5, 16))
    assert j.verdict == H and j.effects[0].value == 1 and any("slack 1" in r for r in j.reasons)
    assert J.judge_lemma5(_l5(7, 16)).verdict == F
    assert J.judge_lemma5(_l5(5, 6)).verdict == U
    # the numerical rank disagrees with the exact one somewhere: the count is not trusted
    assert J.judge_lemma5(_l5(5, 16, matches="29/30")).verdict == U


def test_lemma5_exact_rank():
    from engine.experiments.theory import eq52_gram, eq52_is_gram, eq52_rank

    for m in (3, 4, 5):
        for a, b, b0 in ((1.0, 2.5, 2.5), (1.0, m / 2, m / 2), (0.7, 3.0, 3.4), (1.0, 0.4 * m, 0.4 * m + 40)):
            if eq52_is_gram(m, a, b, b0):
                assert np.linalg.matrix_rank(eq52_gram(m, a, b, b0), hermitian=True) == eq52_rank(m, a, b, b0)
                assert np.linalg.eigvalsh(eq52_gram(m, a, b, b0)).min() > -1e-9
        assert eq52_rank(m, 1.0, 2.5 + m, 2.5 + m) == m + 1 and eq52_rank(m, 1.0, m / 2, m / 2) == m
    assert not eq52_is_gram(5, 1.0, 2.0, 2.0)       # b < a·m/2 with b_0 = b: the all-ones eigenvalue is < 0


def test_lemma6_branches():
    row = {"m": 4, "L": 16}
    assert J.judge_lemma6([{**row, "max_rel_err_stated": 1e-12, "max_rel_err_with_alpha": 1e-12}]).verdict == H
    # the stated formula is off, the corrected one exact: an erratum, not a failed lemma
    j = J.judge_lemma6([{**row, "max_rel_err_stated": 0.4, "max_rel_err_with_alpha": 1e-15}])
    assert j.verdict == "holds once corrected" and "matches autograd" in j.reasons[1]
    assert J.judge_lemma6([{**row, "max_rel_err_stated": 0.4, "max_rel_err_with_alpha": 0.3}]).verdict == F
    assert J.judge_lemma6([{**row, "max_rel_err_stated": 1e-5, "max_rel_err_with_alpha": 1e-5}]).verdict == U


def test_degenerate_interval_prints_as_a_constant():
    from engine.experiments.render import _effect_text

    e = mean_ci("accuracy", [1.0, 1.0, 1.0])
    assert e.degenerate and e.text() == "accuracy: all 3 runs = 1"
    assert _effect_text(e.to_dict()) == "accuracy: all 3 runs = 1"
    e = mean_ci("accuracy", [1.0, 0.9, 1.0])
    assert not e.degenerate and "95% CI" in e.text() and "95% CI" in _effect_text(e.to_dict())
    assert not mean_ci("x", [1.0]).degenerate       # one run: no interval at all, not a constant


def test_every_experiment_has_a_judge_and_a_rule():
    from engine import experiments as E

    for name in E.names():
        fn = getattr(J, "judge_" + name.replace("-", "_"))
        assert callable(fn) and len(J.RULES[name]) > 60
        j = fn([])
        assert isinstance(j, Judgement) and j.verdict == U


def test_judgement_unpacks_and_checks_its_verdict():
    v, reasons = Judgement(H, ("a",))
    assert v == H and reasons == ["a"]
    with pytest.raises(ValueError):
        Judgement("maybe", ())


def test_mean_ci_uses_student_t():
    e = mean_ci("x", [1.0, 2.0, 3.0])
    assert e.value == 2.0 and e.hi - e.value == pytest.approx(t975(2) * 1.0 / math.sqrt(3))
    assert math.isnan(mean_ci("x", [1.0]).lo) and t975(1000) == pytest.approx(1.962, abs=1e-3)
