"""Exact target tokens for every tokenizer, prefix reuse inside a sliding window, attention kernels
that cannot take the sweep's mask, flip points. Every number is checked against a plain full forward."""

from __future__ import annotations

import math

import pytest
import torch

import engine.hijack.efficacy_batch as es_batch
from engine.hijack.counterfact import load_counterfact
from engine.hijack.efficacy import (
    EfficacyResult,
    RecordScore,
    efficacy_curve,
    flip_points,
    flip_summary,
    naive_efficacy_curve,
)
from engine.hijack.lm import LanguageModel, load_lm
from engine.hijack.probe import Prober, continuation_ids

PROMPT = "The Eiffel Tower is located in the city of"


def full_forward_logprobs(lm, ids, n_prompt):
    """log p of ids[n_prompt:] given what precedes them, one plain forward over exactly ``ids``."""
    with torch.inference_mode():
        lp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].float(), -1)
    return [float(lp[j - 1, ids[j]]) for j in range(n_prompt, len(ids))], lp[n_prompt - 1]


def assert_equal_results(fast, slow, tol=1e-4):
    assert [p.es for p in fast.curve] == [p.es for p in slow.curve]
    for a, b in zip(fast.records, slow.records):
        assert (a.case_id, a.n, a.success, a.exact) == (b.case_id, b.n, b.success, b.exact)
        assert math.log(a.p_true) == pytest.approx(math.log(b.p_true), abs=tol)
        assert math.log(a.p_false) == pytest.approx(math.log(b.p_false), abs=tol)
        assert a.first_true == pytest.approx(b.first_true, rel=tol)


# --- exact target tokens ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sp(sp_lm_dir):
    return load_lm(str(sp_lm_dir), device="cpu")


def test_sentencepiece_target_is_the_continuation_not_the_target_alone(sp):
    tok = sp.tokenizer
    alone = sp.encode(" Paris", special=False)
    assert tok.convert_ids_to_tokens(alone) == ["▁", "▁Paris"]  # the dummy prefix space: wrong alone
    ids, exact = continuation_ids(sp, PROMPT, sp.encode(PROMPT), " Paris")
    assert exact and tok.convert_ids_to_tokens(ids) == ["▁Paris"]


@pytest.mark.parametrize("target", [" Paris", " New York", " Chicago"])
def test_sentencepiece_probe_equals_full_forward_over_prompt_plus_target(sp, target):
    res = Prober(sp).probe(PROMPT, [target])
    tp = res.target(target)
    joint = sp.encode(PROMPT + target)  # exactly the ids a naive scorer of prompt + target runs
    n_prompt = len(sp.encode(PROMPT))
    lps, last = full_forward_logprobs(sp, joint, n_prompt)
    assert tp.exact and tp.n_tokens == len(joint) - n_prompt
    assert math.log(tp.prob) == pytest.approx(sum(lps), abs=1e-4)
    assert tp.first_token_prob == pytest.approx(math.exp(lps[0]), rel=1e-4)
    assert tp.rank == int((last > last[joint[n_prompt]]).sum()) + 1


def test_sentencepiece_efficacy_scores_the_continuation(sp):
    recs = load_counterfact("builtin", limit=4, seed=2)
    fast = efficacy_curve(sp, recs, "not-think", 2, batch_size=5)
    assert_equal_results(fast, naive_efficacy_curve(sp, recs, "not-think", 2))
    assert all(r.exact for r in fast.records) and fast.notes == ()
    from engine.hijack.schemes import build_prompt

    for score in fast.records[::3]:
        rec = recs[score.record_index]
        prompt = build_prompt(rec, "not-think", score.n)
        n_prompt = len(sp.encode(prompt))
        for target, p in ((rec.target_true, score.p_true), (rec.target_false, score.p_false)):
            lps, _ = full_forward_logprobs(sp, sp.encode(prompt + " " + target), n_prompt)
            assert math.log(p) == pytest.approx(sum(lps), abs=1e-4)


def test_fallback_when_prompt_ids_are_not_a_prefix(tiny_lm_dir):
    lm = load_lm(str(tiny_lm_dir), device="cpu")
    prompt = "The Eiffel Tower is in Pa"  # "Pa" + "ris" tokenise as "Par" + "is"
    full = lm.encode(prompt)
    assert lm.encode(prompt + "ris")[:len(full)] != full
    ids, exact = continuation_ids(lm, prompt, full, "ris")
    assert not exact and ids == lm.encode("ris", special=False)
    res = Prober(lm).probe(prompt, ["ris", " x"])
    assert [t.exact for t in res.targets] == [False, True]
    lps, _ = full_forward_logprobs(lm, full + ids, len(full))
    assert math.log(res.targets[0].prob) == pytest.approx(sum(lps), abs=1e-4)


def test_efficacy_notes_count_fallback_records(sp):
    from engine.hijack.counterfact import FactRecord

    lm = sp
    good = load_counterfact("builtin", limit=1)[0]
    # A prompt ending in a space: "▁" + "Paris" tokenise as "▁Paris", so the prompt's ids are no prefix.
    odd = FactRecord(7, "The Eiffel Tower", "{} is located in ", "P131", "Paris", "Chicago")
    res = efficacy_curve(lm, [good, odd], "not-think", 1)
    assert [r.exact for r in res.records if r.n == 0] == [True, False]
    assert res.notes == ("1 record(s): the prompt's tokens are not a prefix of prompt + target; "
                         "scored by the targets' own tokens",)
    assert_equal_results(res, naive_efficacy_curve(lm, [good, odd], "not-think", 1))


# --- sliding-window prefix reuse ----------------------------------------------------------------

@pytest.fixture(scope="module")
def g3(tiny_gemma3_dir):
    return load_lm(str(tiny_gemma3_dir), device="cpu")


def test_sliding_window_limit(g3, tiny_lm_dir):
    assert g3.kv_limit == 40 and g3.kv_reuse
    assert load_lm(str(tiny_lm_dir), device="cpu").kv_limit is None


def _assert_probe_equals_full_forward(lm, res, targets):
    ids = list(res.token_ids)
    for tp, target in zip(res.targets, targets):
        t, _ = continuation_ids(lm, res.prompt, ids, target)
        lps, last = full_forward_logprobs(lm, ids + t, len(ids))
        assert math.log(tp.prob) == pytest.approx(sum(lps), abs=1e-4)
        assert tp.first_token_prob == pytest.approx(math.exp(lps[0]), abs=1e-5)
    probs = torch.softmax(last, -1)
    assert [t.token_id for t in res.top_k] == torch.topk(probs, len(res.top_k)).indices.tolist()
    for t in res.top_k:
        assert t.prob == pytest.approx(float(probs[t.token_id]), abs=1e-5)


def test_sliding_window_reuse_inside_the_window_is_exact(g3):
    targets = [" Paris", " Chicago"]  # " Chicago" is several tokens here: its rows are longer
    prober = Prober(g3)
    prober.probe("The Eiffel Tower is", targets)
    grown = prober.probe(PROMPT, targets)  # still inside the 40-token window
    longest = max(t.n_tokens for t in grown.targets)
    assert longest > 1 and len(grown.token_ids) + longest - 1 <= 40 and grown.reused_prefix > 0
    _assert_probe_equals_full_forward(g3, grown, targets)


def test_sliding_window_at_the_edge_and_beyond_falls_back(g3):
    targets = [" Paris"]
    prober = Prober(g3)
    prompt, seen = "Rome", []
    window = g3.kv_limit
    for _ in range(window):  # grow one token (" is") at a time, across the window's edge
        prompt += " is"
        res = prober.probe(prompt, targets)
        total = len(res.token_ids) + res.targets[0].n_tokens - 1  # cache slots the probe needs
        seen.append((total, res.reused_prefix))
        _assert_probe_equals_full_forward(g3, res, targets)
    assert [t for t, _ in seen] == list(range(seen[0][0], seen[0][0] + window))
    assert all(r > 0 for t, r in seen[1:] if t <= window)  # up to the window's last slot: reused
    assert all(r == 0 for t, r in seen if t > window) and seen[-1][0] > window  # beyond: full forwards


def _spy_on_extend(monkeypatch) -> list[bool]:
    """Record, for every batched ``extend`` the sweep makes, whether it reused a shared past."""
    pasts = []
    real = es_batch.extend

    def spy(lm, past, rows, **kw):
        pasts.append(past is not None)
        return real(lm, past, rows, **kw)

    monkeypatch.setattr(es_batch, "extend", spy)
    return pasts


def test_sliding_window_sweep_equals_naive_and_shares(g3, monkeypatch):
    recs = load_counterfact("builtin", limit=5, seed=1)
    pasts = _spy_on_extend(monkeypatch)
    fast = efficacy_curve(g3, recs, "not-think", 4, batch_size=6)
    monkeypatch.undo()
    assert_equal_results(fast, naive_efficacy_curve(g3, recs, "not-think", 4))
    assert any(pasts)  # short prompts shared their prefix
    widths = [len(g3.encode(r.prompt)) for r in fast.records]
    assert max(widths) > 40  # and long ones ran past the window (in full)


def test_kernel_without_holes_turns_sharing_off_with_a_note(tiny_lm_dir, monkeypatch):
    lm = load_lm(str(tiny_lm_dir), device="cpu")
    recs = load_counterfact("builtin", limit=3, seed=0)
    pasts = _spy_on_extend(monkeypatch)
    monkeypatch.setattr(LanguageModel, "masks_with_holes", property(lambda self: False))
    res = efficacy_curve(lm, recs, "not-think", 2, batch_size=4)
    assert not any(pasts)
    assert any("prefix sharing is off" in n for n in res.notes)
    monkeypatch.undo()
    assert_equal_results(res, naive_efficacy_curve(lm, recs, "not-think", 2))


def test_masks_with_holes_by_kernel(tiny_lm_dir):
    lm = load_lm(str(tiny_lm_dir), device="cpu")
    assert lm.masks_with_holes  # sdpa
    lm.model.config._attn_implementation = "flash_attention_2"
    try:
        assert not lm.masks_with_holes
    finally:
        lm.model.config._attn_implementation = lm.attn_implementation


# --- flip points --------------------------------------------------------------------------------

def _result(table, n_max=3):
    """An EfficacyResult from {record_index: [success at n = 0..n_max]}."""
    scores = tuple(RecordScore(100 + i, n, "p", 0.1, 0.2, 0.1, 0.2, 1.0, 1.0, ok, i)
                   for i, row in table.items() for n, ok in enumerate(row))
    return EfficacyResult("m", "not-think", "efficacy", "whole", n_max, len(table), (), scores)


def test_flip_points_and_summary():
    res = _result({0: [False, False, True, True], 1: [True, True, True, True], 2: [False] * 4,
                   3: [False, True, False, True], 4: [False, False, False, True]})
    pts = flip_points(res)
    assert [(p.record_index, p.case_id, p.n) for p in pts] == [(0, 100, 2), (1, 101, 0), (2, 102, None),
                                                               (3, 103, 1), (4, 104, 3)]
    s = flip_summary(pts, 3)
    assert (s.records, s.flipped, s.never) == (5, 4, 1)
    assert s.histogram == (1, 1, 1, 1)
    assert s.mean == pytest.approx(1.5) and s.median == pytest.approx(1.5)
    assert s.earliest == (101,) and s.never_ids == (102,)
    empty = flip_summary(flip_points(_result({0: [False] * 4})), 3)
    assert empty.mean is None and empty.median is None and empty.histogram == (0, 0, 0, 0)


def test_flip_points_of_a_real_sweep(tiny_lm_dir):
    lm = load_lm(str(tiny_lm_dir), device="cpu")
    res = efficacy_curve(lm, load_counterfact("builtin", limit=6, seed=4), "not-think", 3, batch_size=8)
    pts = flip_points(res)
    assert len(pts) == 6
    for p in pts:
        rows = sorted((r for r in res.records if r.record_index == p.record_index), key=lambda r: r.n)
        hits = [r.n for r in rows if r.p_false > r.p_true]
        assert p.n == (hits[0] if hits else None)
    assert sum(flip_summary(pts, 3).histogram[:1]) == round(res.point(0).es * 6)


# --- the embedded Gemma-3-270M (slow: assembled and converted once per run) ---------------------

@pytest.mark.slow
def test_gemma_loads_with_bos_and_a_sliding_window(gemma):
    assert gemma.name == "gemma3-270m" and gemma.kv_limit == gemma.model.config.sliding_window > 0
    assert gemma.encode("The")[0] == gemma.tokenizer.bos_token_id  # Gemma needs its BOS token
    assert "Gemma" in type(gemma.tokenizer).__name__  # SentencePiece-based
    res = Prober(gemma).probe(PROMPT, [" Paris"])
    assert res.top_k[0].token == " Paris" and res.target(" Paris").rank == 1


@pytest.mark.slow
def test_gemma_exact_targets_and_window_reuse_equal_full_forwards(gemma):
    targets = [" Paris", " New York City"]
    prober = Prober(gemma)
    first = prober.probe(PROMPT, targets)
    _assert_probe_equals_full_forward(gemma, first, targets)
    n_prompt = len(first.token_ids)
    for tp, target in zip(first.targets, targets):  # exactly the ids that follow the prompt's
        assert tp.exact and tp.n_tokens == len(gemma.encode(PROMPT + target)) - n_prompt
    grown = prober.probe(PROMPT + " Paris. It is near", targets)
    assert grown.reused_prefix == n_prompt  # inside the 512-token window: the cache is reused
    _assert_probe_equals_full_forward(gemma, grown, targets)


@pytest.mark.slow
def test_gemma_shared_sweep_equals_naive(gemma):
    recs = load_counterfact("builtin", limit=2, seed=0)
    fast = efficacy_curve(gemma, recs, "not-think", 2, batch_size=16)
    assert_equal_results(fast, naive_efficacy_curve(gemma, recs, "not-think", 2))


def test_compare_gives_what_a_side_by_side_view_draws(tiny_lm_dir, tiny_gpt2_dir):
    from engine.hijack.efficacy import compare

    recs = load_counterfact("builtin", limit=4, seed=5)
    results = [efficacy_curve(load_lm(str(d), device="cpu"), recs, "not-think", 2) for d in (tiny_lm_dir, tiny_gpt2_dir)]
    view = compare(results)
    assert list(view["curves"]) == [str(tiny_lm_dir), str(tiny_gpt2_dir)]
    for res in results:
        assert view["curves"][res.model] == [(p.n, p.es) for p in res.curve]
        assert view["flips"][res.model] == [p.n for p in flip_points(res)]
        assert view["summaries"][res.model].histogram == tuple(view["flips"][res.model].count(n) for n in range(3))
    both = compare([results[0], efficacy_curve(load_lm(str(tiny_lm_dir), device="cpu"), recs, "relation", 2)])
    assert list(both["curves"]) == [f"{tiny_lm_dir} not-think", f"{tiny_lm_dir} relation"]


def test_progressive_record_indices_are_unique_across_chunks(tiny_lm_dir):
    from engine.hijack.progressive import efficacy_progressive

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    recs = load_counterfact("builtin", limit=5, seed=6)
    merged = efficacy_progressive(lm, recs, "not-think", 2, chunk=2)
    whole = efficacy_curve(lm, recs, "not-think", 2)
    assert sorted({r.record_index for r in merged.records}) == list(range(5))
    assert flip_points(merged) == flip_points(whole)
