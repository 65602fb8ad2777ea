"""Every verdict rule on synthetic rows: each judge reaches "holds", "does not hold" and "inconclusive",
and its effect sizes carry the numbers the rows imply."""

import math

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


def _swap(tr, co, ra):
    return [{"m": 5, "L": 64, "d": 32, "trained_runs": tr, "constructed_runs": co, "random_runs": ra}]


def test_value_swap_branches():
    assert J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.88, 0.87, 0.89], [0.05, 0.04, 0.06])).verdict == H
    assert J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.5, 0.5, 0.4], [0.05, 0.04, 0.06])).verdict == F
    assert J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.88, 0.87, 0.89], [0.9, 0.9, 0.9])).verdict == F
    # keeps 80%: neither rule fires
    assert J.judge_value_swap(_swap([0.9, 0.9, 0.9], [0.72, 0.73, 0.71], [0.05, 0.04, 0.06])).verdict == U


def _ang(c, r, g):
    return [{"m": 5, "constructed_runs": c, "random_runs": r, "initial_runs": g}]


def test_value_angles_branches():
    assert J.judge_value_angles(_ang([5, 6, 4], [20, 22, 21], [50, 52, 51])).verdict == H
    assert J.judge_value_angles(_ang([30, 31, 29], [20, 22, 21], [50, 52, 51])).verdict == F
    # smallest on average, but the margin to random-constructed is noise
    assert J.judge_value_angles(_ang([5, 20, 4], [20, 6, 5], [50, 52, 51])).verdict == U


def _dim(below, above):
    rows = [{"m": 5, "V": 32, "d": 16, "trained_runs": below[0], "frozen_runs": below[1]}]
    if above:
        rows.append({"m": 5, "V": 32, "d": 64, "trained_runs": above[0], "frozen_runs": above[1]})
    return rows


def test_embedding_dim_branches():
    assert J.judge_embedding_dim(_dim(([0.8, 0.81], [0.2, 0.21]), ([0.85, 0.86], [0.84, 0.85]))).verdict == H
    assert J.judge_embedding_dim(_dim(([0.8, 0.81], [0.8, 0.8]), ([0.85, 0.86], [0.84, 0.85]))).verdict == F
    assert J.judge_embedding_dim(_dim(([0.8, 0.81], [0.2, 0.21]), ([0.85, 0.86], [0.6, 0.62]))).verdict == U
    assert J.judge_embedding_dim(_dim(([0.8, 0.81], [0.2, 0.21]), None)).verdict == U


def _geo(label, means, a, b, r2s, m=4):
    row = {"m": m, "L": 64, "d": 16, "W_E": label, "a_pairs": a, "b_pairs": b, "b0": means[0],
           "r2_pairs": sum(r2s) / len(r2s), "r2_pairs_runs": r2s}
    for k, v in enumerate(means):
        row[f"k={k}"] = v
    return row


def test_embedding_geometry_branches():
    fall = [10.0, 4.0, 2.0, 0.0, -2.0]
    lin = [8.0, 6.0, 4.0, 2.0, 0.0]
    good = [_geo("W_V trained", fall, 2.0, 6.0, [0.6, 0.7]), _geo("W_V = I", lin, 2.0, 8.0, [0.97, 0.98])]
    assert J.judge_embedding_geometry(good).verdict == H
    # the fit over all pairs is poor for W_V = I: not "linear"
    weak = [good[0], _geo("W_V = I", lin, 2.0, 8.0, [0.6, 0.7])]
    assert J.judge_embedding_geometry(weak).verdict == U
    # means rise with distance
    rising = [_geo("W_V trained", [10.0, -2.0, 0.0, 2.0, 4.0], -2.0, -4.0, [0.6, 0.7]), good[1]]
    assert J.judge_embedding_geometry(rising).verdict == F
    # the Gaussian init row is ignored by the rule
    assert J.judge_embedding_geometry(good + [_geo("Gaussian init", [1, 0, 0, 0, 0], 0.0, 0.0, [0.0])]).verdict == H


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


def _mix(mis, y2, runs=None):
    rs = [i / (len(mis) - 1) for i in range(len(mis))]
    return [{"m": 5, "L": 64, "d": 32, "r": r, "misclassified": a, "predicts_y2": b,
             "mis_runs": (runs[i] if runs else [a, a])} for i, (r, a, b) in enumerate(zip(rs, mis, y2))]


def test_context_mixing_branches():
    assert J.judge_context_mixing(_mix([0.1, 0.3, 0.6, 0.9], [0.0, 0.1, 0.3, 0.6])).verdict == H
    assert J.judge_context_mixing(_mix([0.3, 0.2, 0.2, 0.1], [0.0, 0.1, 0.3, 0.6])).verdict == F
    assert J.judge_context_mixing(_mix([0.1, 0.12, 0.13, 0.15], [0.0, 0.1, 0.3, 0.6])).verdict == U
    # a big rise, but the seeds disagree so much the CI reaches below 0
    noisy = _mix([0.1, 0.3, 0.6, 0.5], [0.0, 0.1, 0.3, 0.6], runs=[[0.0, 0.2], [0.3, 0.3], [0.6, 0.6], [0.9, 0.1]])
    assert J.judge_context_mixing(noisy).verdict == U


def _len(acc, bayes, runs=None):
    Ls = [8, 16, 32, 64]
    return [{"m": 5, "d": 32, "L": L, "accuracy": a, "bayes": b, "accuracy_runs": runs[i] if runs else [a, a + 0.001]}
            for i, (L, a, b) in enumerate(zip(Ls, acc, bayes))]


def test_context_length_branches():
    bayes = [0.4, 0.6, 0.8, 0.95]
    assert J.judge_context_length(_len([0.3, 0.5, 0.7, 0.9], bayes)).verdict == H
    assert J.judge_context_length(_len([0.5, 0.4, 0.3, 0.3], bayes)).verdict == F
    assert J.judge_context_length(_len([0.3, 0.5, 0.9, 0.9], bayes)).verdict == F      # above Bayes + 0.02
    assert J.judge_context_length(_len([0.3, 0.29, 0.32, 0.33], bayes)).verdict == U


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
             "identity": i, "identity_trained_attention": i, "n": 1000}
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


def _t4(err):
    """err[(b0, L)]"""
    return [{"m": 3, "b0-b": b0, "L": L, "error": e, "accuracy": 1 - e, "accuracy_runs": [1 - e]}
            for (b0, L), e in err.items()]


def test_theorem4_branches():
    good = {(0, 4): 0.6, (0, 64): 0.5, (16, 4): 0.4, (16, 64): 0.0}
    assert J.judge_theorem4(_t4(good)).verdict == H
    assert J.judge_theorem4(_t4({**good, (16, 64): 0.5})).verdict == F
    assert J.judge_theorem4(_t4({**good, (16, 64): 0.05})).verdict == U
    # errors that reach 0 and stay there still "fall" (ties are not a failure)
    flat = {(0, 4): 0.6, (0, 64): 0.0, (4, 4): 0.5, (4, 64): 0.0, (16, 4): 0.4, (16, 64): 0.0}
    assert J.judge_theorem4(_t4(flat)).verdict == H
    # the error rises with b_0 at the largest L: not a fall
    assert J.judge_theorem4(_t4({**good, (0, 64): 0.0, (16, 64): 0.009, (8, 64): 0.3})).verdict == U


def _l5(max_rank, ctrl):
    return [{"m": 4, "m+2": 6, "draws": 10, "min_rank_b0=b": 5, "max_rank_b0=b": max_rank, "min_rank_b0>b": ctrl}]


def test_lemma5_branches():
    assert J.judge_lemma5(_l5(5, 16)).verdict == H
    assert J.judge_lemma5(_l5(7, 16)).verdict == F
    assert J.judge_lemma5(_l5(5, 6)).verdict == U


def test_lemma6_branches():
    row = {"m": 4, "L": 16}
    assert J.judge_lemma6([{**row, "max_rel_err_stated": 1e-12, "max_rel_err_with_alpha": 1e-12}]).verdict == H
    j = J.judge_lemma6([{**row, "max_rel_err_stated": 0.4, "max_rel_err_with_alpha": 1e-15}])
    assert j.verdict == F and "matches autograd" in j.reasons[1]
    assert J.judge_lemma6([{**row, "max_rel_err_stated": 1e-5, "max_rel_err_with_alpha": 1e-5}]).verdict == U


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
