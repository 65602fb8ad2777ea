"""hijack-repair: the pre-registered rule on rows built for each verdict, and the tiny grid on SmolLM2."""

from __future__ import annotations

import math

import pytest

from engine.experiments import judges
from engine.experiments.verdict import FAILS, HOLDS, UNSURE


def _row(defense="attention", model="m", scheme="not-think", es0=0.1, es=0.7, drop=0.4, lo=0.2, hi=0.6,
         clean=0.0, clean_hi=0.03, rev=0.0, rev_hi=0.02):
    """D = es − es0 = 0.6 by default: drop 0.4 >= D/2 with lo > 0 and both falls' upper bounds < 0.05."""
    return {"model": model, "scheme": scheme, "defense": defense, "alpha": 0.5, "evaluated_on": 12,
            "es_zero": es0, "es_before": es, "es_after": es - drop, "drop": drop, "drop_lo": lo, "drop_hi": hi,
            "clean_fall": clean, "clean_fall_lo": -clean_hi, "clean_fall_hi": clean_hi,
            "reverse_fall": rev, "reverse_fall_lo": None if rev is None else -rev_hi,
            "reverse_fall_hi": None if rev is None else rev_hi}


def test_row_states():
    state = judges.repair_state
    assert state(_row()) == "repairs"
    assert state(_row(drop=0.25, lo=0.1, hi=0.4)) == "undecided"  # 0.25 < D/2 = 0.3
    assert state(_row(lo=-0.05)) == "undecided"  # the drop's CI reaches 0
    assert state(_row(clean_hi=0.08, clean=0.02)) == "undecided"  # cheap on average, the CI too wide
    assert state(_row(rev_hi=0.2, rev=0.1)) == "does not"  # a reverse cost above 0.05
    assert state(_row(clean_hi=0.2, clean=0.06)) == "does not"  # a clean cost above 0.05
    assert state(_row(drop=0.05, lo=-0.05, hi=0.14)) == "does not"  # hi 0.14 < D/4 = 0.15
    assert state(_row(es0=0.5, es=0.5, drop=0.1, lo=0.05, hi=0.15)) == "undecided"  # D = 0: nothing to undo
    assert state(_row(rev=None)) == "repairs"  # no reverse scheme (custom): the clean fall alone
    assert state(_row(clean_hi=math.nan)) == "undecided"  # one record: no CI


def test_rule_holds_fails_and_is_inconclusive():
    judge = judges.judge_hijack_repair
    bad = dict(drop=0.0, lo=-0.1, hi=0.1)
    two = [_row(model="a"), _row(model="b")]
    assert judge(two).verdict == HOLDS  # attention repairs on every model
    assert judge([_row(model="a"), _row(model="b", **bad)]).verdict == UNSURE  # on one model only
    # different defenses repair on different models: no single one everywhere
    assert judge([_row(model="a"), _row(model="a", defense="heads", **bad), _row(model="b", **bad),
                  _row(model="b", defense="heads")]).verdict == UNSURE
    assert judge([_row(model="a", **bad), _row(model="b", defense="heads", **bad)]).verdict == FAILS
    # the ceiling repairing does not count
    assert judge([_row(defense="drop-context"), _row(**bad)]).verdict == FAILS
    assert judge([_row(**bad), _row(defense="heads", drop=0.25, lo=0.1, hi=0.4)]).verdict == FAILS  # undecided only
    assert judge([_row(es0=0.4, es=0.4, **bad)]).verdict == UNSURE  # no hijack anywhere
    assert judge([]).verdict == UNSURE
    j = judge(two)
    assert j.effects[0].name.endswith("ES drop") and "repairs in every (model, scheme) row: attention" in j.reasons[-1]


def test_rows_from_a_repair_dict():
    from engine.experiments.repair import repair_rows

    ci = {"mean": 0.0, "lo": 0.0, "hi": 0.0, "n": 2}
    res = {"scheme": "not-think", "evaluation": [1, 3], "defenses": [
        {"name": "heads", "params": {"alpha": 0.0, "heads": [[3, 1], [5, 0]]}, "es_before": 0.5, "es_after": 0.0,
         "es_drop": 0.5, "es_ci": [-5.85, 6.85], "sign_p": 0.5, "es_zero_before": 0.0,
         "clean_accuracy_before": 1.0, "clean_accuracy_after": 1.0, "reverse_accuracy_before": 1.0,
         "reverse_accuracy_after": 1.0, "clean_fall": ci, "reverse_fall": None, "log_p_true_change": ci,
         "frontier": []}]}
    (row,) = repair_rows("m", res)
    assert row["settings"] == "heads L3H1 L5H0" and row["evaluated_on"] == 2
    assert row["drop_lo"] == -5.85 and row["reverse_fall"] is None and row["es_zero"] == 0.0
    assert judges.repair_state(row) == "undecided"


@pytest.mark.slow
def test_tiny_grid_runs_on_the_embedded_model(smollm):
    import torch

    from engine.experiments import run
    from engine.experiments.repair import DEFENSE_NAMES

    torch.set_num_threads(1)
    res = run("hijack-repair", level="tiny")
    assert res.verdict == judges.judge_hijack_repair(res.rows).verdict  # the rows' own verdict is the result's
    assert [r["defense"] for r in res.rows] == list(DEFENSE_NAMES)
    for r in res.rows:
        assert r["model"] == "smollm2-135m" and r["evaluated_on"] == 2
        assert r["es_before"] - r["es_after"] == pytest.approx(r["drop"])
        assert r["clean_before"] - r["clean_after"] == pytest.approx(r["clean_fall"])
        assert r["reverse_fall"] is not None  # not-think has a reverse scheme
    assert all(len(c["x"]) > 1 for c in res.curves.values())
    assert "smollm2-135m not-think attention" in res.curves
