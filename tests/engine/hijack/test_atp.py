"""Attribution patching (engine.hijack.atp) against a plain reference written here, sharing no code with
atp.py: every estimate is the first-order Taylor term of ``logit_diff`` in the patched activation,
computed by torch.autograd with the activation replaced by a leaf, on a float64 copy of the model (tiny
models of the matrix's families) or on the model itself (the embedded SmolLM2, float32); central
finite differences in float64 confirm the reference on a sample (to 1e-3 only: the families' norms and
rotary embeddings compute in float32 inside a float64 model, which bounds a difference quotient).
The parts are found with the plain trace's own table (``trace_reference_parts``) and the knocked
attention output is captured from the plain trace's full-forward knockout (``trace_reference``).

Exactness: a model that is linear in the patched activation gets the exact trace's numbers. The tiny
Llama with its final RMSNorm's eps set to 1e12 and its gain to 1e6 (the scale rsqrt(ms(x) + eps)·g is
then 1 to float32 precision: the norm is the identity map, no frozen scale needed) and its last
block's MLP output zeroed: logit_diff is then linear in the last block's residual stream, attention
output and z, so every last-block restore, head ablation and single-block knockout is exact."""

from __future__ import annotations

import copy

import pytest

from engine.hijack import trace as T
from engine.hijack import trace_reference as R
from engine.hijack.atp import atp, mapped
from engine.hijack.trace_reference_parts import parts

PROMPT = "The Eiffel Tower is located in the city of"
PREPEND = "Do not think of London. The twin city of Lyon is not Beijing. Do not think of London. "
TINY = (" Paris", " London")
WINDOW = 2
TOL = 1e-5


def _load(family_dir, family):
    from engine.hijack.lm import load_lm

    return load_lm(str(family_dir(family)), device="cpu", dtype="float32",
                   attn_implementation="eager" if family == "gemma2" else None)


# --- the plain reference ------------------------------------------------------------------------------

def _ld(model, ids, true_id, false_id, patches, value_of):
    """One full forward of ``ids`` with each patch's activation set to ``value_of(patch)``."""
    import torch

    handles = []

    def out_hook(pos, sl, value):
        def hook(_m, _a, output):
            x = (output[0] if isinstance(output, (tuple, list)) else output).clone()
            x[0, pos, sl] = value
            return (x, *output[1:]) if isinstance(output, tuple) else x
        return hook

    def in_hook(pos, sl, value):
        def hook(_m, args):
            z = args[0].clone()
            z[0, pos, sl] = value
            return (z, *args[1:])
        return hook

    try:
        for patch in patches:
            module, where, pos, sl = patch[:4]
            make = out_hook if where == "out" else in_hook
            handles.append((module.register_forward_hook if where == "out" else module.register_forward_pre_hook)(
                make(pos, sl, value_of(patch))))
        logits = model(input_ids=torch.tensor([list(ids)]), use_cache=False).logits[0, -1]
    finally:
        for h in handles:
            h.remove()
    return logits[true_id] - logits[false_id]


def taylor_fd(model, pair, patches, eps=1e-4) -> float:
    """d/dt logit_diff(base + t·delta at every patch) at t = 0, central differences (float64 model)."""
    import torch

    with torch.no_grad():
        up = _ld(model, pair.ids, pair.true_id, pair.false_id, patches, lambda p: p[4] + eps * p[5])
        down = _ld(model, pair.ids, pair.true_id, pair.false_id, patches, lambda p: p[4] - eps * p[5])
    return float((up - down) / (2 * eps))


def taylor_grad(model, pair, patches) -> float:
    """Σ delta · ∂logit_diff/∂leaf with each patched activation replaced by a leaf (torch.autograd)."""
    import torch

    leaves = {id(p): p[4].detach().clone().requires_grad_() for p in patches}
    with torch.enable_grad():
        ld = _ld(model, pair.ids, pair.true_id, pair.false_id, patches, lambda p: leaves[id(p)])
        grads = torch.autograd.grad(ld, [leaves[id(p)] for p in patches])
    return float(sum((g.double() * p[5].double()).sum() for g, p in zip(grads, patches)))


def _acts(model, p, ids):
    """Every block's resid/attn/mlp output and z (whole sequence) of one plain forward."""
    import torch

    got, handles = {}, []

    def keep(key, pre=False):
        def hook(_m, args, output=None):
            x = args[0] if pre else (output[0] if isinstance(output, (tuple, list)) else output)
            got[key] = x[0].detach().clone()
        return hook

    try:
        for i in range(p.n_layers):
            handles.append(p.blocks[i].register_forward_hook(keep(("resid", i))))
            handles.append(p.attn[i].register_forward_hook(keep(("attn", i))))
            handles.append(p.mlp[i].register_forward_hook(keep(("mlp", i))))
            handles.append(p.out_proj[i].register_forward_pre_hook(keep(("z", i), pre=True)))
        with torch.no_grad():
            model(input_ids=torch.tensor([list(ids)]), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return got


def knocked_attn_exact(lm, pair, which, layer):
    """The exact trace's attention output of ``layer`` at the last position under the single-block
    knockout of ``which``: captured from the plain trace's full forward with the mask."""
    p = parts(lm)
    got = {}
    handle = p.attn[layer].register_forward_hook(
        lambda _m, _a, out: got.__setitem__("a", (out[0] if isinstance(out, tuple) else out)[0, -1].detach().clone()))
    try:
        R.knockout(lm, pair, which, layer, WINDOW)
    finally:
        handle.remove()
    return got["a"]


def reference(lm, model, pair, taylor, layers=None, heads=None, positions=None, variants=T.KNOCKOUTS):
    """The reference estimate of each measure (a dict keyed like the comparison below): ``model`` is the
    model the Taylor terms are taken on (a float64 copy, or ``lm.model`` itself)."""
    import torch

    dt = next(model.parameters()).dtype
    p = parts(lm)
    shadow = copy.copy(lm)
    shadow.model = model
    mp = parts(shadow)
    hij, clean = _acts(model, mp, pair.ids), _acts(model, mp, pair.clean_ids)
    last = len(pair.ids) - 1
    layers = range(p.n_layers) if layers is None else layers
    positions = range(len(pair.positions)) if positions is None else positions
    out = {}
    full = slice(None)
    for layer in layers:
        for kind, mod in (("resid", mp.blocks), ("attn", mp.attn), ("mlp", mp.mlp)):
            for j in positions:
                h, c = pair.positions[j]
                base = hij[(kind, layer)][h]
                out[("restore", kind, layer, j)] = taylor(model, pair, [(mod[layer], "out", h, full, base,
                                                                         clean[(kind, layer)][c] - base)])
        for head in (range(p.n_heads) if heads is None else heads):
            sl = slice(head * p.d_head, (head + 1) * p.d_head)
            base = hij[("z", layer)][last, sl]
            out[("head", layer, head)] = taylor(model, pair, [(mp.out_proj[layer], "in", last, sl, base, -base)])
    deltas = {}
    for v in variants:
        which = {"window": "all"}.get(v.removesuffix("_window"), v.removesuffix("_window"))
        for layer in layers:
            total = 0.0
            for b in R.window_layers(layer, v, WINDOW, p.n_layers):  # a window: the blocks' terms summed
                if (which, b) not in deltas:
                    knocked = knocked_attn_exact(shadow, pair, which, b).to(dt)
                    base = hij[("attn", b)][last]
                    deltas[(which, b)] = taylor(model, pair, [(mp.attn[b], "out", last, full, base, knocked - base)])
                total += deltas[(which, b)]
            out[("knockout", v, layer)] = total
    del torch
    return out


def estimated(est, key) -> float:
    tr = est.trace
    h = tr.hijacked.logit_diff
    if key[0] == "restore":
        return tr.restore[key[1]][key[2]][key[3]].logit_diff - h
    if key[0] == "head":
        return tr.heads[key[1]][key[2]].logit_diff - h
    return tr.knockout[key[1]][key[2]].logit_diff - h


def _prepare(lm):
    prepend = "Do not think of London. " if lm.kv_limit and lm.kv_limit < 64 else PREPEND
    return T.prepare(lm, PROMPT, prepend, *TINY)


# --- the tests ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma", "gemma2", "gemma3", "gpt2", "gptneox"])
def test_every_estimate_is_the_first_order_term(family, family_dir, one_torch_thread):
    import torch

    lm = _load(family_dir, family)
    pair = _prepare(lm)
    est = atp(lm, pair, window=WINDOW)
    model64 = copy.deepcopy(lm.model).to(torch.float64)
    ref = reference(lm, model64, pair, taylor_grad)
    fd = reference(lm, model64, pair, lambda *a: taylor_fd(*a, eps=1e-3), layers=[0], heads=[0],
                   positions=[len(pair.positions) - 1], variants=("all",))
    assert max(abs(v - ref[k]) for k, v in fd.items()) < 1e-3 * max(1.0, max(abs(v) for v in fd.values()))
    worst = max(abs(estimated(est, k) - v) for k, v in ref.items())
    scale = max(abs(v) for v in ref.values())
    assert len(ref) > 40
    assert worst < TOL * max(1.0, scale), (family, worst, scale)
    # the exact parts of the estimate: the two runs' measures and the direct attribution
    exact = T.trace(lm, pair, window=WINDOW)
    for a, b in ((est.trace.clean, exact.clean), (est.trace.hijacked, exact.hijacked)):
        assert abs(a.logit_diff - b.logit_diff) < TOL and abs(a.p_true - b.p_true) < TOL
    assert est.trace.dla["attn"] == pytest.approx(exact.dla["attn"], abs=TOL)
    assert est.trace.dla["heads"][0] == pytest.approx(exact.dla["heads"][0], abs=TOL)


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2", "gptneox"])
def test_the_recomputed_knocked_attention_is_the_exact_runs(family, family_dir, one_torch_thread):
    lm = _load(family_dir, family)
    pair = _prepare(lm)
    est = atp(lm, pair, window=WINDOW)
    worst = 0.0
    for which in ("all", "mentions", "rest"):
        for layer in range(lm.n_layers):
            got = est.knocked_attn[(which, layer)]
            want = knocked_attn_exact(lm, pair, which, layer).float()
            worst = max(worst, float((got - want).abs().max()))
    assert worst < TOL


def test_exact_on_a_model_linear_in_the_patched_activation(family_dir, one_torch_thread):
    import torch

    lm = _load(family_dir, "llama")
    model = lm.model
    norm = model.model.norm
    with torch.no_grad():
        norm.variance_epsilon = 1e12  # rsqrt(ms(x) + 1e12) = 1e-6 in float32 for any |x| here
        norm.weight.mul_(1e6)
        last_block = model.model.layers[-1]
        last_block.mlp.down_proj.weight.zero_()  # the last block adds its attention output only
    pair = _prepare(lm)
    exact = T.trace(lm, pair, window=WINDOW)
    est = atp(lm, pair, window=WINDOW).trace
    last = lm.n_layers - 1
    pairs = []
    for kind in ("resid", "attn", "mlp"):
        pairs += list(zip(exact.restore[kind][last], est.restore[kind][last]))
    pairs += list(zip(exact.heads[last], est.heads[last]))
    pairs += [(exact.knockout[v][last], est.knockout[v][last]) for v in ("all", "mentions", "rest")]
    worst = max(abs(a.logit_diff - b.logit_diff) for a, b in pairs)
    moved = max(abs(a.logit_diff - exact.hijacked.logit_diff) for a, _ in pairs)
    assert moved > 0.05  # the interventions do something, and the estimate gets it exactly
    assert worst < TOL
    # elsewhere the model is not linear: the estimate is an estimate
    assert max(abs(a.logit_diff - b.logit_diff) for a, b in zip(exact.restore["resid"][0], est.restore["resid"][0])) > 1e-3


def test_probabilities_are_mapped_through_the_two_target_softmax():
    h = T.Measure(0.2, 0.05, 1.3862943611198906)  # ln(0.2 / 0.05)
    assert mapped(h, 0.0).p_true == pytest.approx(0.2) and mapped(h, 0.0).p_false == pytest.approx(0.05)
    m = mapped(h, -1.3862943611198906)
    assert m.p_true == pytest.approx(0.125) and m.p_false == pytest.approx(0.125) and m.logit_diff == pytest.approx(0)


def test_json_shape_is_the_exact_traces_with_method_atp(family_dir, one_torch_thread):
    lm = _load(family_dir, "llama")
    pair = _prepare(lm)
    a = atp(lm, pair, window=WINDOW).to_dict()
    e = T.trace(lm, pair, window=WINDOW).to_dict()
    assert a["method"] == "atp"
    assert set(a) - {"method", "estimate"} == set(e)
    assert set(a["layers"][0]) == set(e["layers"][0])
    assert T.Trace.from_dict(a).n_layers == lm.n_layers


@pytest.mark.slow
def test_smollm2_estimates_are_the_autograd_terms(smollm, one_torch_thread):
    pair = T.prepare(smollm, "The Eiffel Tower is in", "The Eiffel Tower is not in Chicago. " * 3,
                     " Paris", " Chicago")
    est = atp(smollm, pair, window=WINDOW)
    n = smollm.n_layers
    layers = [0, n // 2, n - 1]
    ref = reference(smollm, smollm.model, pair, taylor_grad, layers=layers, heads=[0, 4],
                    positions=[len(pair.positions) - 1], variants=("all", "mentions_window"))
    worst = max(abs(estimated(est, k) - v) for k, v in ref.items())
    assert worst < TOL * max(1.0, max(abs(v) for v in ref.values()))


def test_agreement_measures():
    from engine.hijack.atp_agreement import recall_at, spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)  # scipy's, ties by mean rank
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert recall_at([5, -4, 0.1, 0.2], [-6, 0.3, 3, 0], 2) == 0.5
    assert recall_at([1, 2], [1, 2], 5) is None


def test_disagreement_rule_and_the_components_it_marks(family_dir, one_torch_thread):
    import copy as _copy

    from engine.hijack.atp_agreement import disagreements, disagrees, n_components

    assert not disagrees(0.1, 0.55)  # within the 0.5 floor
    assert disagrees(0.1, 0.65)
    assert not disagrees(4.0, 4.99)  # within 25% of |exact|
    assert disagrees(-4.0, -2.9)
    lm = _load(family_dir, "llama")
    pair = _prepare(lm)
    e = T.trace(lm, pair, window=WINDOW).to_dict()
    assert disagreements(e, e) == []
    moved = _copy.deepcopy(e)
    moved["heads"][1][0]["ablated"]["logit_diff"] += 10.0
    moved["layers"][0]["restore"]["attn"][-1]["logit_diff"] -= 10.0
    got = disagreements(e, moved)
    assert {(d["family"], d["block"], d["index"]) for d in got} == {
        ("heads", 1, 0), ("restore_attn", 0, len(pair.positions) - 1)}
    n = lm.n_layers
    assert n_components(e) == n * (3 * len(pair.positions) + 6) + sum(len(r) for r in e["heads"])
