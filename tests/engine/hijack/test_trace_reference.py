"""The fast trace (engine.hijack.trace) against the independent plain reference
(engine.hijack.trace_reference, which shares no code with it): the pair (ids, marks, aligned positions,
knocked keys, the targets' first tokens) and every intervention, on tiny Llama (sdpa and eager), GPT-2,
Gemma-3 and GPT-NeoX models (fp32, 1e-4); the per-head attribution head by head, with a check that the
comparison would catch two heads swapped."""

from __future__ import annotations

import pytest

from engine.hijack import trace as T
from engine.hijack import trace_reference as R

TOL = 1e-4
PROMPT = "The Eiffel Tower is located in the city of"
PREPEND = "Do not think of London. The twin city of Lyon is not Beijing. Do not think of London. "
SHORT = "Do not think of London. "  # inside the tiny Gemma-3's 40-token sliding window
TINY = (" Paris", " London")
MEASURE_KEYS = ("p_true", "p_false", "logit_diff")
MODELS = ["llama", "llama-eager", "gpt2", "gemma3", "neox", "neox-eager"]


@pytest.fixture(scope="module")
def tiny_neox_dir(tmp_path_factory, tiny_gpt2_dir):
    """A tiny random GPT-NeoX (partial rotary, parallel residual) with the tiny byte-level tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForCausalLM

    path = tmp_path_factory.mktemp("tiny-neox")
    tok = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, rotary_pct=0.5, use_parallel_residual=True,
                        max_position_embeddings=128, bos_token_id=0, eos_token_id=1, initializer_range=0.3)
    GPTNeoXForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=MODELS)
def tiny(request, tiny_lm_dir, tiny_gpt2_dir, tiny_gemma3_dir, tiny_neox_dir, one_torch_thread):
    from engine.hijack.lm import load_lm

    name = request.param
    folder = {"llama": tiny_lm_dir, "gpt2": tiny_gpt2_dir, "gemma3": tiny_gemma3_dir,
              "neox": tiny_neox_dir}[name.removesuffix("-eager")]
    lm = load_lm(str(folder), device="cpu", attn_implementation="eager" if name.endswith("eager") else None)
    return name, lm


def _prepend(lm) -> str:
    return SHORT if lm.kv_limit else PREPEND


def _diff(ref: dict, fast) -> float:
    return max(abs(ref[k] - getattr(fast, k)) for k in MEASURE_KEYS)


@pytest.fixture(scope="module")
def traced(tiny):
    """(name, lm, fast pair, fast trace, reference trace) per tiny model, window 2 (a window variant
    that differs from the single block on a 2-block model)."""
    name, lm = tiny
    pair = T.prepare(lm, PROMPT, _prepend(lm), *TINY)
    fast = T.trace(lm, pair, window=2, chunk=7)
    ref = R.reference_trace(lm, PROMPT, _prepend(lm), *TINY, window=2)
    return name, lm, pair, fast, ref


def test_reference_pair_equals_the_fast_pair(traced):
    name, lm, pair, fast, ref = traced
    assert ref["ids"] == list(pair.ids) == lm.encode(_prepend(lm) + PROMPT)
    assert ref["clean_ids"] == list(pair.clean_ids)
    assert (ref["true_id"], ref["false_id"]) == (pair.true_id, pair.false_id)  # first tokens, found our way
    assert ref["prepended"] == list(pair.prepended)
    assert ref["mentions"] == list(pair.mentions)
    assert any(ref["mentions"])
    assert ref["positions"] == [tuple(x) for x in pair.positions]
    assert ref["unaligned"] == list(getattr(pair, "unaligned", ()))
    d = fast.to_dict()
    assert d.get("knocked") == ref["knocked"]
    assert d.get("unaligned") == ref["unaligned"]
    assert d.get("knock_sink") is False


def test_the_tiny_tokenizer_leaves_the_prompts_first_word_unaligned(traced):
    """' The' after the prepend's '. ' is not the clean prompt's 'The': the walk stops there."""
    name, lm, pair, fast, ref = traced
    first_prompt = min(i for i, (pre, s) in enumerate(zip(ref["prepended"], R._tokens(lm, _prepend(lm) + PROMPT)[1]))
                       if s is not None and not pre)
    assert ref["unaligned"] == [first_prompt]
    assert ref["positions"][0][0] == first_prompt + 1
    assert ref["positions"][-1] == (len(ref["ids"]) - 1, len(ref["clean_ids"]) - 1)
    assert 0 not in ref["knocked"]["all"]  # the sink
    if ref["prepended"][0]:  # no BOS (GPT-2, GPT-NeoX): position 0 is a prepended word, still not knocked
        assert ref["knocked"]["all"][0] == 1


def test_clean_and_hijacked_measures(traced):
    name, lm, pair, fast, ref = traced
    assert _diff(ref["clean"], fast.clean) < TOL
    assert _diff(ref["hijacked"], fast.hijacked) < TOL


def test_every_restore_equals_the_reference(traced):
    name, lm, pair, fast, ref = traced
    fast_at = {tuple(hc): j for j, hc in enumerate(pair.positions)}
    common = [(j, fast_at[tuple(hc)]) for j, hc in enumerate(ref["positions"]) if tuple(hc) in fast_at]
    assert common and common[-1][0] == len(ref["positions"]) - 1  # the last position is in both
    worst = 0.0
    for kind in R.KINDS:
        for layer in range(lm.n_layers):
            for jr, jf in common:
                worst = max(worst, _diff(ref["restore"][kind][layer][jr], fast.restore[kind][layer][jf]))
    assert worst < TOL, f"{name}: restore differs by {worst:.3g}"


def test_every_knockout_equals_the_reference(traced):
    name, lm, pair, fast, ref = traced
    bad = {}
    for v in R.VARIANTS:
        for layer in range(lm.n_layers):
            d = _diff(ref["knockout"][v][layer], fast.knockout[v][layer])
            if d >= TOL:
                bad[(v, layer)] = round(d, 5)
    assert not bad, f"{name}: knockouts differ from the reference: {bad}"


def test_every_head_ablation_equals_the_reference(traced):
    name, lm, pair, fast, ref = traced
    worst = max(_diff(ref["heads"][layer][h], fast.heads[layer][h])
                for layer in range(lm.n_layers) for h in range(len(ref["heads"][layer])))
    assert worst < TOL


def test_dla_head_by_head_and_a_swap_would_be_caught(traced):
    name, lm, pair, fast, ref = traced
    got, want = fast.dla["heads"], ref["dla_heads"]
    assert [len(r) for r in got] == [len(r) for r in want]
    for layer, (g, w) in enumerate(zip(got, want)):
        assert max(abs(a - b) for a, b in zip(g, w)) < TOL, f"{name} block {layer}: {g} vs {w}"
        swapped = [g[1], g[0], *g[2:]]
        # the heads differ, so the head-by-head comparison has power: a swap fails it
        assert max(abs(a - b) for a, b in zip(swapped, w)) > 100 * TOL, f"{name} block {layer}: heads alike {w}"
    if name.startswith(("llama", "gemma3")):  # no output-projection bias: the heads sum to the block's attn
        for layer in range(lm.n_layers):
            assert sum(want[layer]) == pytest.approx(fast.dla["attn"][layer], abs=1e-4)


def test_reference_sanity_without_the_fast_path(traced):
    """Facts of the definitions the reference must meet on its own."""
    name, lm, pair, fast, ref = traced
    last = len(ref["positions"]) - 1
    # restoring the last block's output at the last position gives the clean run's measures
    assert _diff(ref["restore"]["resid"][-1][last], _as_measure(ref["clean"])) < TOL
    # knocking out keys changes the measures somewhere (the masks reach the attention)
    assert max(_diff(m, _as_measure(ref["hijacked"])) for m in ref["knockout"]["all"]) > 1e-3
    # no hook outlives the reference
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in lm.model.modules())


def _as_measure(d: dict):
    return R.Measured(d["p_true"], d["p_false"], d["logit_diff"])


def test_knock_sink_masks_position_0_too(tiny_gpt2_dir, one_torch_thread):
    """GPT-2 has no BOS: position 0 is the prepended 'Do'; with ``knock_sink`` it is masked as well."""
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_gpt2_dir), device="cpu")
    ref = R.reference_trace(lm, PROMPT, PREPEND, *TINY, window=2, knock_sink=True, heads=False,
                            every_position=False)
    assert ref["knocked"]["all"][0] == 0
    without = R.reference_trace(lm, PROMPT, PREPEND, *TINY, window=2, heads=False, every_position=False)
    assert ref["knockout"]["all"][0]["logit_diff"] != pytest.approx(without["knockout"]["all"][0]["logit_diff"])
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    fast = T.trace(lm, pair, window=2, knock_sink=True, heads=False, every_position=False)
    assert fast.to_dict()["knocked"] == ref["knocked"]
    for v in R.VARIANTS:
        for layer in range(lm.n_layers):
            assert _diff(ref["knockout"][v][layer], fast.knockout[v][layer]) < TOL


def test_sdpa_and_eager_masks_agree_in_the_reference(tiny_lm_dir, one_torch_thread):
    from engine.hijack.lm import load_lm

    got = [R.reference_trace(load_lm(str(tiny_lm_dir), device="cpu", attn_implementation=impl), PROMPT, PREPEND,
                             *TINY, window=2, heads=False, every_position=False) for impl in ("sdpa", "eager")]
    for v in R.VARIANTS:
        for a, b in zip(got[0]["knockout"][v], got[1]["knockout"][v]):
            assert _diff(a, _as_measure(b)) < 1e-5


def test_window_layers():
    assert R.window_layers(0, "all", 3, 4) == [0]
    assert R.window_layers(0, "window", 3, 4) == [0, 1, 2]
    assert R.window_layers(2, "rest_window", 3, 4) == [1, 2, 3]
    assert R.window_layers(3, "mentions_window", 3, 4) == [1, 2, 3]
    assert R.window_layers(1, "window", 2, 2) == [0, 1]
    assert R.window_layers(0, "window", 2, 2) == [0, 1]
    assert all(R.window_layers(layer, "window", 1, 4) == [layer] for layer in range(4))


def test_sentencepiece_style_pair_equals_the_fast_pair(sp_lm_dir, one_torch_thread):
    """The legacy Llama-2 dummy-prefix tokenizer: offsets around '▁' differ from byte-level BPE's."""
    from engine.hijack.lm import load_lm

    lm = load_lm(str(sp_lm_dir), device="cpu")
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    ref = R.pair_from_strings(lm, PROMPT, PREPEND, *TINY)
    assert ref["ids"] == list(pair.ids)
    assert (ref["prepended"], ref["mentions"]) == (list(pair.prepended), list(pair.mentions))
    assert ref["positions"] == [tuple(x) for x in pair.positions]
    assert ref["unaligned"] == list(getattr(pair, "unaligned", ()))
    assert (ref["true_id"], ref["false_id"]) == (pair.true_id, pair.false_id)


@pytest.mark.slow
def test_smollm2_pair_and_last_position_equal_the_reference(smollm, one_torch_thread):
    """The embedded SmolLM2 on the Figure 1 prompt: ' The' after the prepend is unaligned; the
    last-position residual restores, two knockout variants and the per-head attribution at every
    block equal the reference (a subset: each plain forward of 78 tokens costs ~0.5 s on 2 cores)."""
    prompt, prepend = "The Eiffel Tower is in", "The Eiffel Tower is not in Chicago. " * 8
    pair = T.prepare(smollm, prompt, prepend, " Paris", " Chicago")
    fast = T.trace(smollm, pair, heads=False, every_position=False)
    ref = R.pair_from_strings(smollm, prompt, prepend, " Paris", " Chicago")
    assert ref["ids"] == list(pair.ids) and ref["knocked"] == fast.to_dict()["knocked"]
    assert ref["unaligned"] == list(getattr(pair, "unaligned", ())) and len(ref["unaligned"]) == 1
    assert ref["positions"] == [tuple(x) for x in pair.positions]
    assert (ref["true_id"], ref["false_id"]) == (pair.true_id, pair.false_id)
    plain = R.last_position_trace(smollm, pair, fast.window, variants=("all", "mentions_window"))
    worst = max(_diff(m.to_dict(), f) for m, f in zip(plain["restore_last"], fast.restore_last()))
    for v in ("all", "mentions_window"):
        worst = max(worst, *(_diff(m.to_dict(), f) for m, f in zip(plain[v], fast.knockout[v])))
    assert worst < TOL
    want = R.head_attribution(smollm, R.parts(smollm), ref["ids"], ref["true_id"], ref["false_id"])
    assert max(abs(a - b) for g, w in zip(fast.dla["heads"], want) for a, b in zip(g, w)) < TOL
