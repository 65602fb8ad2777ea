"""The causal trace (engine.hijack.trace): the fast batched paths equal one full forward per
intervention (engine.hijack.trace_reference) to 1e-4 in fp32, on tiny Llama / GPT-2 / Gemma-3 models
(every intervention), and on both embedded models (every block for the last-position measures, a
sample of the rest); the direct attribution sums to the logit difference; hooks never outlive a trace."""

from __future__ import annotations

import threading

import pytest

from engine.errors import Cancelled, UserError
from engine.hijack import device_check as D
from engine.hijack import trace as T
from engine.hijack import trace_reference as R
from engine.job_context import JobContext

TOL = 1e-4
PROMPT = "The Eiffel Tower is located in the city of"
PREPEND = "Do not think of London. The twin city of Lyon is not Beijing. Do not think of London. "
TINY = (" Paris", " London")  # first tokens differ in the tiny tokenizer


def _close(a: T.Measure, b: T.Measure) -> float:
    return max(abs(a.p_true - b.p_true), abs(a.p_false - b.p_false), abs(a.logit_diff - b.logit_diff))


def _check(lm, tr: T.Trace, layers, heads_per_layer=None, kinds=T.KNOCKOUTS, positions=None):
    pair = tr.pair
    worst = 0.0
    for layer in layers:
        for v in kinds:
            worst = max(worst, _close(R.knockout(lm, pair, v, layer, tr.window), tr.knockout[v][layer]))
        for kind in ("resid", "attn", "mlp"):
            for j in positions if positions is not None else range(len(pair.positions)):
                worst = max(worst, _close(R.restore(lm, pair, kind, layer, j), tr.restore[kind][layer][j]))
        for h in range(heads_per_layer if heads_per_layer is not None else len(tr.heads[layer])):
            worst = max(worst, _close(R.zero_head(lm, pair, layer, h), tr.heads[layer][h]))
    assert worst < TOL
    return worst


def _check_sums(tr: T.Trace):
    d = tr.dla
    total = d["embed"] + sum(d["attn"]) + sum(d["mlp"]) + d["bias"]
    assert total == pytest.approx(tr.hijacked.logit_diff, abs=1e-3)
    for layer, row in enumerate(d["heads"]):  # the tiny models and both embedded ones have no o_proj bias
        assert sum(row) == pytest.approx(d["attn"][layer], abs=1e-4)


def _common(lm, tr: T.Trace):
    # restoring the last block's output at the last position is the clean run's output there
    assert _close(tr.restore_last()[-1], tr.clean) < TOL
    # the plain measures of the two prompts
    assert _close(R._measure(lm, tr.pair), tr.hijacked) < TOL
    clean_pair = T.Pair(**{**tr.pair.__dict__, "ids": tr.pair.clean_ids})
    assert _close(R._measure(lm, clean_pair), tr.clean) < TOL


@pytest.fixture(params=["llama", "gpt2", "gemma3", "llama-eager"])
def tiny(request, tiny_lm_dir, tiny_gpt2_dir, tiny_gemma3_dir, one_torch_thread):
    from engine.hijack.lm import load_lm

    folder = {"llama": tiny_lm_dir, "gpt2": tiny_gpt2_dir, "gemma3": tiny_gemma3_dir,
              "llama-eager": tiny_lm_dir}[request.param]
    return load_lm(str(folder), device="cpu", attn_implementation="eager" if "eager" in request.param else None)


def test_tiny_models_every_intervention_equals_the_plain_forward(tiny):
    window = tiny.kv_limit  # the tiny Gemma-3's sliding window is 40 tokens: a shorter prepend
    prepend = "Do not think of London. " if window else PREPEND
    pair = T.prepare(tiny, PROMPT, prepend, *TINY)
    tr = T.trace(tiny, pair, window=2, chunk=7)  # a small chunk: rows cross batch boundaries
    _check(tiny, tr, range(tiny.n_layers))
    _common(tiny, tr)
    if type(tiny.model).__name__ != "GPT2LMHeadModel":  # GPT-2's c_proj has a bias the heads leave out
        _check_sums(tr)
    else:
        d = tr.dla
        assert d["embed"] + sum(d["attn"]) + sum(d["mlp"]) + d["bias"] == pytest.approx(tr.hijacked.logit_diff,
                                                                                          abs=1e-3)


def test_last_position_only_equals_the_plain_loop(tiny_lm_dir, one_torch_thread):
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    fast = D.last_position(lm, pair, variants=("all", "mentions_window"), window=2)
    plain = R.last_position_trace(lm, pair, 2, variants=("all", "mentions_window"))
    assert set(fast) == set(plain) == {"restore_last", "all", "mentions_window"}
    for key in fast:
        assert max(_close(a, b) for a, b in zip(fast[key], plain[key])) < TOL


def test_device_check_of_a_model_against_itself(tiny_lm_dir, one_torch_thread):
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    other = load_lm(str(tiny_lm_dir), device="cpu", dtype="bfloat16")
    kw = dict(prompt=PROMPT, prepend=PREPEND, targets=TINY)
    diff, tol = D.device_check(lm, lm, **kw)
    assert diff == 0.0 and tol == 1e-4
    diff, tol = D.device_check(lm, other, **kw)
    assert 0 < diff <= tol  # bf16 rounding shows, within the half-precision tolerance
    assert tol < 0.5  # derived from the rounding (cross_dtype_tolerance), not the old fixed 0.5 logits


def test_joint_head_ablation_equals_the_plain_forward(tiny_lm_dir, one_torch_thread):
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    sets = [[], [(0, 1)], [(0, 1), (1, 0)], [(0, 0), (0, 1), (1, 0), (1, 1)]]
    got = T.ablate_heads(lm, pair, sets, chunk=3)
    for hs, m in zip(sets, got):
        assert _close(R.zero_heads(lm, pair, hs), m) < TOL
    assert _close(got[0], R._measure(lm, pair)) < TOL
    assert _close(got[1], T.trace(lm, pair, window=1).heads[0][1]) < TOL


def test_pair_marks_prepended_tokens_and_mentions(tiny_lm_dir):
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    text = PREPEND + PROMPT
    ids, spans = T.token_spans(lm, text)
    assert list(pair.ids) == ids == lm.encode(text)
    end = len(PREPEND.rstrip())
    starts = [i for i in range(end) if text.startswith("London", i)]
    assert len(starts) == 2
    for span, pre, men in zip(spans, pair.prepended, pair.mentions):
        if span is None:  # BOS is neither
            assert not pre and not men
            continue
        assert pre == (span[1] <= end)
        assert men == (pre and any(span[0] < a + 6 and span[1] > a for a in starts))
        if men:
            assert set(text[span[0]:span[1]].strip()) <= set("London")
    assert sum(pair.mentions) >= 2  # both "London"s, none of "Beijing"
    # the positions are the prompt's tokens, aligned from the end; the last is the last token
    assert pair.positions[-1] == (len(pair.ids) - 1, len(pair.clean_ids) - 1)
    assert all(not pair.prepended[h] for h, _ in pair.positions)


def test_bad_input_one_clear_message(tiny_lm_dir):
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    for args, words in [(("", PREPEND, *TINY), "prompt is empty"),
                        ((PROMPT, "  ", *TINY), "nothing is prepended"),
                        ((PROMPT, PREPEND, "", " London"), "true target is empty"),
                        ((PROMPT, PREPEND, " Paris", " Paris"), "same token"),
                        ((PROMPT, PREPEND * 40, *TINY), "shorten")]:
        with pytest.raises(UserError, match=words):
            T.prepare(lm, *args)
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    with pytest.raises(UserError, match="window"):
        T.trace(lm, pair, window=0)


def test_hooks_removed_on_cancel_and_error(tiny_lm_dir):
    from engine.hijack.blocks import locate
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    calls = []
    stop = threading.Event()
    with pytest.raises(Cancelled):  # the third break cancels
        T.trace(lm, pair, window=1, chunk=3, ctx=JobContext(cancel=stop, pause=lambda: calls.append(1) or (
            len(calls) > 2 and stop.set())))
    modules = list(lm.model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in modules)
    bad = T.Pair(**{**pair.__dict__, "clean_ids": ()})  # an empty clean prompt fails inside the forward
    with pytest.raises(Exception):  # noqa: B017 - any failure; the point is the hooks
        T.trace(lm, bad)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in modules)
    assert locate(lm).n_layers == 2


def test_unknown_architecture_is_one_message():
    import torch

    from engine.hijack.blocks import locate

    class Odd(torch.nn.Module):
        config = None

        def get_output_embeddings(self):
            return torch.nn.Linear(2, 2)

    class FakeLM:
        model = Odd()
        name = "odd"

    with pytest.raises(UserError, match="cannot trace Odd"):
        locate(FakeLM())


FIG1 = "The Eiffel Tower is not in Chicago. " * 8


def _real(lm, every_layer_kinds=("all",), sample_layers=None):
    pair = T.prepare(lm, "The Eiffel Tower is in", FIG1, " Paris", " Chicago")
    tr = T.trace(lm, pair)
    _common(lm, tr)
    _check_sums(tr)
    last = len(pair.positions) - 1
    worst = 0.0
    for layer in range(lm.n_layers):  # the bench's last-position trace, every block
        worst = max(worst, _close(R.restore(lm, pair, "resid", layer, last), tr.restore["resid"][layer][last]))
        for v in every_layer_kinds:
            worst = max(worst, _close(R.knockout(lm, pair, v, layer, tr.window), tr.knockout[v][layer]))
    assert worst < TOL
    layers = sample_layers or (0, lm.n_layers // 2, lm.n_layers - 1)
    _check(lm, tr, layers, heads_per_layer=1, positions=(0, last))
    return tr


@pytest.mark.slow
def test_smollm2_fast_trace_equals_plain_forwards(smollm):
    tr = _real(smollm)
    assert len(tr.pair.ids) == 78  # the Figure 1 prompt of the bench
    assert tr.hijacked.flipped and not tr.clean.flipped  # the Figure 1 hijack, on this model


@pytest.mark.slow
def test_gemma3_fast_trace_equals_plain_forwards(gemma):
    assert gemma.kv_limit is not None  # sliding-window layers, the prompt inside the window
    _real(gemma)


# --- issue 28: the sink, aligned positions, the attention implementation, half precision -------------

def test_knockouts_keep_position_0_unless_asked(tiny_gpt2_dir, one_torch_thread):
    """GPT-2 adds no BOS: position 0 is a prepended token. The knockouts keep it visible (the attention
    sink) unless knock_sink; the JSON names what each masked; masking it changes the measure."""
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_gpt2_dir), device="cpu")
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    assert pair.prepended[0] and lm.tokenizer.bos_token_id not in pair.ids[:1]
    prepended = [i for i, p in enumerate(pair.prepended) if p]
    assert T.knocked(pair, "all") == prepended[1:] and T.knocked(pair, "all", sink=True) == prepended
    assert T.knocked(pair, "window") == T.knocked(pair, "all")
    assert 0 not in T.knocked(pair, "rest") and 0 in T.knocked(pair, "rest", sink=True)  # 'Do' is no mention
    assert not T.knock_keys(pair, "all")[0] and T.knock_keys(pair, "all", sink=True)[0]
    kept, masked = T.trace(lm, pair, window=1), T.trace(lm, pair, window=1, knock_sink=True)
    d = kept.to_dict()
    assert d["knock_sink"] is False and d["knocked"]["all"] == prepended[1:]
    assert sorted(d["knocked"]["mentions"] + d["knocked"]["rest"]) == prepended[1:]
    assert masked.to_dict()["knocked"]["all"] == prepended
    assert _close(kept.knockout["all"][0], R.knockout(lm, pair, "all", 0, 1)) < TOL
    assert _close(kept.knockout["all"][0], masked.knockout["all"][0]) > 1e-3  # the sink matters here
    assert "keep position 0" in kept.positions_note() and "included" in masked.positions_note()
    assert f"sink {pair.tokens[0]!r} kept" in kept.positions_note(short=True) and "masked too" in masked.positions_note(short=True)
    assert T.Trace.from_dict(d).knock_sink is False and T.Trace.from_dict(masked.to_dict()).knock_sink is True


def test_positions_are_restored_only_where_the_tokens_agree(tiny_gpt2_dir):
    """Byte-level BPE: after '... London. ' the prompt's first word is ' The', alone it is 'The'."""
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_gpt2_dir), device="cpu")
    pair = T.prepare(lm, "The Eiffel Tower is in", "Do not think of London. ", *TINY)
    for h, c in pair.positions:
        assert pair.ids[h] == pair.clean_ids[c]
    assert pair.unaligned and lm.decode_tokens([pair.ids[pair.unaligned[0]]])[0] == " The"
    assert lm.decode_tokens([pair.clean_ids[0]])[0] == "The"
    assert pair.positions[0][1] > 0  # clean 'The' has no partner
    tr = T.trace(lm, pair, window=1)
    d = tr.to_dict()
    assert d["unaligned"] == list(pair.unaligned)
    assert [p["index"] for p in d["positions"]] == [h for h, _ in pair.positions]
    assert "' The'" in tr.positions_note()
    assert T.align_positions([5, 1, 2, 3], [1, 2, 3], [9, 2, 3], [0, 1, 2]) == ((2, 1), (3, 2))
    assert T.align_positions([1, 2], [0, 1], [1, 3], [0, 1]) == ()


@pytest.mark.parametrize("impl", ["flash_attention_2", "flex_attention", "sdpa_paged"])
def test_attention_the_hooks_cannot_edit_is_refused_before_any_work(tiny_lm_dir, impl):
    from engine.hijack.lm import load_lm
    from engine.hijack.trace_dataset import trace_records

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    lm.model.config._attn_implementation = impl  # as a model loaded that way reports it
    calls = []
    lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    for run in (lambda: T.trace(lm, pair), lambda: D.last_position(lm, pair), lambda: T.ablate_heads(lm, pair, [[]]),
                lambda: list(trace_records(lm, [object()], "not-think", 1))):
        with pytest.raises(UserError, match=f"{impl}.*'sdpa' and 'eager'"):
            run()
    assert not calls


def test_half_precision_traces_and_attributes_in_float32(tiny_lm_dir, one_torch_thread):
    """bf16: the frozen-norm check compares in float32 (it refused every bf16 model before), and the
    pieces of the attribution sum to the bf16 model's own logit difference within its rounding."""
    import torch

    from engine.hijack.blocks import check_frozen_norm, locate
    from engine.hijack.lm import load_lm
    from engine.hijack.tolerance import tolerance

    lm = load_lm(str(tiny_lm_dir), device="cpu", dtype="bfloat16")
    pair = T.prepare(lm, PROMPT, PREPEND, *TINY)
    tr = T.trace(lm, pair, window=1)
    d = tr.dla
    total = d["embed"] + sum(d["attn"]) + sum(d["mlp"]) + d["bias"]
    scale = max(abs(tr.clean.logit_diff), abs(tr.hijacked.logit_diff), 1.0)
    assert abs(total - tr.hijacked.logit_diff) <= tolerance(torch.bfloat16, scale)
    for layer, row in enumerate(d["heads"]):  # the heads from z in float32, attn the module's bf16 output
        assert abs(sum(row) - d["attn"][layer]) <= tolerance(torch.bfloat16, abs(d["attn"][layer]))
    norm = locate(lm).final_norm
    x = torch.randn(32, dtype=torch.bfloat16) * 3
    check_frozen_norm(norm, x, "tiny")  # passes in bf16
    bad = torch.nn.Module()
    bad.forward = lambda h: norm(h) * 1.01  # not an RMSNorm of the frozen-scale kind: 1% off
    bad.weight, bad.eps = norm.weight, norm.variance_epsilon
    with pytest.raises(UserError, match=r"differs from the module run in float32 by .* allowed"):
        check_frozen_norm(bad, x, "tiny")


@pytest.mark.slow
def test_smollm2_fig1_in_bfloat16_follows_float32(smollm):
    """The Figure 1 trace's last-position curves (restore_last and the knockouts of every block) and the
    clean/hijacked P(true), P(false) in bf16 against float32, within the bf16-vs-float32 tolerance."""
    import torch

    from engine.hijack.lm import load_lm
    from engine.hijack.tolerance import cross_dtype_tolerance

    half = load_lm(None, device="cpu", dtype="bfloat16")
    assert half.dtype == torch.bfloat16
    diff, tol = D.device_check(smollm, half, prepend=FIG1, targets=(" Paris", " Chicago"))
    assert 0 < diff <= tol
    pair = T.prepare(smollm, "The Eiffel Tower is in", FIG1, " Paris", " Chicago")
    for ids in (pair.clean_ids, pair.ids):
        got = []
        for m in (smollm, half):
            with torch.inference_mode():
                logits = m.model(input_ids=torch.tensor([list(ids)]), use_cache=False).logits[0, -1].float()
            p = logits.softmax(-1)
            got.append(T.Measure(float(p[pair.true_id]), float(p[pair.false_id]),
                                 float(logits[pair.true_id] - logits[pair.false_id])))
        assert abs(got[0].p_true - got[1].p_true) < 0.02 and abs(got[0].p_false - got[1].p_false) < 0.02
        assert abs(got[0].logit_diff - got[1].logit_diff) <= cross_dtype_tolerance(torch.bfloat16, 7.0)
