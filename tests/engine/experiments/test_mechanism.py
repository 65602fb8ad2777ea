"""hijack-mechanism: the dataset summary, the held-out head ablation and the pre-registered rule."""

from __future__ import annotations

import math

import pytest

from engine.experiments import judges, mechanism
from engine.experiments.verdict import FAILS, HOLDS, UNSURE
from engine.hijack.counterfact import FactRecord

PROMPT = "{} is located in the city of"


def _records():
    # tiny-tokenizer targets whose first tokens differ (' Paris' -> ' ', ' London' -> ' L')
    subjects = ["The Eiffel Tower", "The Colosseum", "Toko Yasuda", "Danielle Darrieux", "Lyon"]
    return [FactRecord(case_id=i, subject=s, prompt=PROMPT, relation_id="P131", target_true="Paris",
                       target_false="London") for i, s in enumerate(subjects)]


@pytest.fixture(scope="module")
def tiny(tiny_lm_dir):
    import torch

    from engine.hijack.lm import load_lm

    torch.set_num_threads(1)
    return load_lm(str(tiny_lm_dir), device="cpu")


def test_summary_and_held_out_heads_over_records(tiny):
    from engine.hijack import trace_reference as R

    traces, skipped = mechanism.trace_all(tiny, _records(), "not-think", 2, window=1)
    assert not skipped and len(traces) == 5
    s = mechanism.summarise(traces)
    assert s["records"] == 5
    want = sum(t.knockout["mentions"][1].logit_diff for t in traces) / 5
    got = s["layers"]["knockout_mentions"]["logit_diff"][1]
    assert got["mean"] == pytest.approx(want) and got["lo"] < want < got["hi"]
    assert s["drop"]["mean"] == pytest.approx(sum(t.clean.logit_diff - t.hijacked.logit_diff for t in traces) / 5)
    heads = mechanism.held_out_heads(tiny, traces, top_k=(1, 3))
    assert heads["chosen_on"] == 3 and heads["evaluated_on"] == 2
    ranking = mechanism.rank_heads(traces[0::2])
    assert [(r["layer"], r["head"]) for r in heads["ranking"]] == [(a, b) for a, b, _ in ranking[:3]]
    assert ranking[0][2] >= ranking[-1][2]
    none, top1, top3 = heads["ablation"]
    assert none["k"] == 0 and none["up"] == none["down"] == 0
    assert none["es"] == sum(t.hijacked.flipped for t in traces[1::2]) / 2
    plain = [R.zero_heads(tiny, t.pair, [tuple(h) for h in top3["heads"]]) for t in traces[1::2]]
    assert top3["es"] == sum(m.flipped for m in plain) / 2  # the joint ablation is the plain forward's
    rise = [R.zero_heads(tiny, t.pair, [tuple(h) for h in top1["heads"]]).logit_diff - t.hijacked.logit_diff
            for t in traces[1::2]]
    assert top1["rise"]["mean"] == pytest.approx(sum(rise) / 2, abs=1e-4)
    assert top1["up"] == sum(r > 0 for r in rise)


def test_row_uses_even_records_to_choose_and_odd_to_evaluate(tiny):
    traces, _ = mechanism.trace_all(tiny, _records(), "not-think", 2, window=1)
    row = mechanism.mechanism_row("tiny", "not-think", traces, {"ablation": []})
    m = "knockout_mentions_window"
    layer = row[f"{m}_layer"]
    even = mechanism.summarise(traces[0::2])["layers"][m]["logit_diff"]
    assert even[layer]["mean"] == max(c["mean"] for c in even)
    odd = [t.knockout["mentions_window"][layer].logit_diff - t.hijacked.logit_diff for t in traces[1::2]]
    assert row[m] == pytest.approx(sum(odd) / 2)
    assert row["drop"] == pytest.approx(sum(t.clean.logit_diff - t.hijacked.logit_diff for t in traces[1::2]) / 2)


def test_restore_last_is_chosen_before_the_last_block():
    chosen = {"hijacked": {"logit_diff": {"mean": -2.0}}, "clean": {"logit_diff": {"mean": 4.0}}}
    # half the drop back is logit_diff >= 1.0: block 2 is the earliest; the last block (the clean run) never
    assert mechanism.choose_block("restore_last", [-2.0, 0.5, 1.2, 3.0, 4.0], chosen) == 2
    assert mechanism.choose_block("restore_last", [-2.0, -1.9, -1.5, 0.0, 4.0], chosen) == 3  # none: the best but last
    assert mechanism.choose_block("knockout_window", [0.0, 3.0, 1.0], chosen) == 1  # a knockout: its highest


def test_row_restore_last_is_not_the_clean_run(tiny):
    traces, _ = mechanism.trace_all(tiny, _records(), "not-think", 2, window=1)
    row = mechanism.mechanism_row("tiny", "not-think", traces, {"ablation": []})
    assert row["restore_last_layer"] < tiny.n_layers - 1
    odd = [t.restore_last()[row["restore_last_layer"]].logit_diff - t.hijacked.logit_diff for t in traces[1::2]]
    assert row["restore_last"] == pytest.approx(sum(odd) / 2)


def _row(drop, lo, hi, delta, dlo, dhi):
    return {"model": "m", "scheme": "not-think", "evaluated_on": 30, "drop": drop, "drop_lo": lo, "drop_hi": hi,
            "knockout_mentions_window": delta, "knockout_mentions_window_lo": dlo,
            "knockout_mentions_window_hi": dhi, "knockout_mentions_window_layer": 3, "knockout_rest_window": 0.1}


def test_rule_holds_fails_and_is_inconclusive():
    judge = judges.judge_hijack_mechanism
    assert judge([_row(2.0, 1.5, 2.5, 1.6, 1.2, 2.0)]).verdict == HOLDS  # lo 1.2 >= 0.5 * 2
    assert judge([_row(2.0, 1.5, 2.5, 0.2, 0.0, 0.4)]).verdict == FAILS  # hi 0.4 < 0.25 * 2
    assert judge([_row(2.0, 1.5, 2.5, 1.0, 0.6, 1.4)]).verdict == UNSURE  # in between
    assert judge([_row(0.3, -0.2, 0.8, 0.0, -0.1, 0.1)]).verdict == UNSURE  # no measurable hijack
    assert judge([_row(2.0, 1.5, 2.5, 1.6, 1.2, 2.0), _row(2.0, 1.5, 2.5, 0.2, 0.0, 0.4)]).verdict == FAILS
    assert judge([_row(2.0, 1.5, 2.5, 1.6, math.nan, math.nan)]).verdict == UNSURE
    assert judge([]).verdict == UNSURE


@pytest.mark.slow
def test_tiny_grid_runs_on_the_embedded_model(smollm):
    from engine.experiments import run

    res = run("hijack-mechanism", level="tiny")
    (row,) = res.rows
    assert res.verdict == judges.judge_hijack_mechanism(res.rows).verdict  # the rows' own verdict is the result's
    if row["drop_lo"] > 0 and row["knockout_mentions_window_lo"] >= 0.5 * row["drop"]:
        assert res.verdict == HOLDS
    elif row["drop_lo"] > 0 and row["knockout_mentions_window_hi"] < 0.25 * row["drop"]:
        assert res.verdict == FAILS
    else:
        assert res.verdict == UNSURE
    assert row["restore_last_layer"] < 29 and row["restore_last"] != pytest.approx(row["drop"], abs=1e-3)
    assert row["records"] + row["skipped"] == 4 and row["evaluated_on"] == row["records"] // 2
    assert set(res.curves) == {f"smollm2-135m not-think {m}" for m in
                               ("knockout_mentions_window", "knockout_rest_window", "restore_last")}
    assert any("ranked by attribution patching" in n and "held-out ES top1" in n for n in res.notes)


def test_heads_ranked_by_the_estimate_are_ablated_on_the_odd_records(tiny):
    from engine.hijack import trace_reference as R
    from engine.hijack.atp import atp

    traces, _ = mechanism.trace_all(tiny, _records(), "not-think", 2, window=1)
    exact = mechanism.held_out_heads(tiny, traces, top_k=(1, 3))
    got = mechanism.held_out_heads_atp(tiny, traces, exact, top_k=(1, 3))
    assert got["chosen_on"] == 3 and got["evaluated_on"] == 2 and got["method"] == "atp"
    ranking = mechanism.rank_heads([atp(tiny, t.pair, window=1).trace for t in traces[0::2]])
    assert [(r["layer"], r["head"]) for r in got["ranking"]] == [(a, b) for a, b, _ in ranking[:3]]
    top_exact = {(r["layer"], r["head"]) for r in exact["ranking"][:3]}
    assert got["overlap@3"] == len(top_exact & {(a, b) for a, b, _ in ranking[:3]}) / 3
    assert got["spearman"] is None or -1 <= got["spearman"] <= 1
    none, top1, top3 = got["ablation"]
    assert none["es"] == exact["ablation"][0]["es"] and none["es_exact"] == none["es"]
    assert top3["heads"] == [list(h[:2]) for h in ranking[:3]] and top3["es_exact"] == exact["ablation"][2]["es"]
    plain = [R.zero_heads(tiny, t.pair, [tuple(h) for h in top3["heads"]]) for t in traces[1::2]]
    assert top3["es"] == sum(m.flipped for m in plain) / 2
    note = mechanism.heads_atp_note(got)
    assert "attribution patching" in note and f"top3 {top3['es']:.2f} (exact ranking {top3['es_exact']:.2f})" in note


def test_dataset_trace_has_heads_atp(tiny):
    out = mechanism.dataset_trace(tiny, _records()[:4], "not-think", 1, window=1)
    assert out["heads_atp"]["chosen_on"] == 2 and out["heads_atp"]["ablation"]
    assert out["heads_atp"]["ablation"][-1]["es_exact"] == out["heads"]["ablation"][-1]["es"]
