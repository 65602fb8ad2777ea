"""Each defended ES sweep (``engine.hijack.efficacy_defended``: cached prefixes, batched rows, hooks from
``engine.hijack.defenses``) equals a PLAIN implementation written here: one full forward per (record,
n, target), no cache, no padding, the defense as hooks or arithmetic of this file (no code shared
with defenses.py), within ``engine.hijack.tolerance`` (contrastive: times 1 + 2α, its logits are
that sum of two runs' logits). Three families (llama, gpt2, gemma3), float32 and bfloat16.
Also: α = 1 (heads, attention) and α = 0 (steer) are the identity, contrastive with α = 0 and no
cut-off is drop-context, drop-context is the clean prompt, a defense saved and loaded round-trips."""

from __future__ import annotations

import math

import pytest

from engine.errors import UserError
from engine.hijack.counterfact import load_counterfact
from engine.hijack.defenses import Defense, steer_vector
from engine.hijack.efficacy import efficacy_curve
from engine.hijack.efficacy_defended import defended_curve
from engine.hijack.efficacy_plan import _plan
from engine.hijack.schemes import hijack_prefix
from engine.hijack.tolerance import tolerance
from tests.engine.matrix.conftest import cells, default_attn, logit_scale
from tests.families import FAMILIES as ALL_FAMILIES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 2
SCHEME = "not-think"
FAMILIES = tuple(ALL_FAMILIES)  # every family the project claims (tests/families.py)
WORST: dict = {}


@pytest.fixture(scope="module")
def records():
    return load_counterfact("builtin", limit=3, seed=3)


def _cells():
    return cells("default", ("float32", "bfloat16", "float16"), FAMILIES)


# --- the plain implementation ------------------------------------------------------------------------

def _parts(model):
    """(blocks, attention modules, output projections) by the families' own attribute names."""
    if hasattr(model, "transformer"):  # GPT-2
        blocks = list(model.transformer.h)
        return blocks, [b.attn for b in blocks], [b.attn.c_proj for b in blocks]
    if hasattr(model, "gpt_neox"):  # GPT-NeoX
        blocks = list(model.gpt_neox.layers)
        return blocks, [b.attention for b in blocks], [b.attention.dense for b in blocks]
    blocks = list(model.model.layers)
    return blocks, [b.self_attn for b in blocks], [b.self_attn.o_proj for b in blocks]


def _span(lm, prompt, prefix):
    """Token indices of the prepended sentences (start inside prefix.rstrip()), position 0 left out."""
    end = len(prefix.rstrip())
    enc = lm.tokenizer(prompt, add_special_tokens=True, return_offsets_mapping=True)
    offs = list(enc["offset_mapping"])
    if len(enc["input_ids"]) < len(lm.encode(prompt)):
        offs = [(0, 0)] + offs
    special = set(lm.tokenizer.all_special_ids)
    ids = lm.encode(prompt)
    idx = [i for i, (s, e) in enumerate(offs) if not (ids[i] in special and s == e) and s < end]
    if not idx or end == 0:
        return 0, 0
    return max(idx[0], 1), idx[-1] + 1


def _plain_hooks(lm, d, span, handles):
    import torch

    blocks, attns, projs = _parts(lm.model)
    n_heads = lm.model.config.num_attention_heads
    if d.name == "heads":
        for b in {b for b, _ in d.heads}:
            scale = torch.ones(n_heads)
            for bb, h in d.heads:
                if bb == b:
                    scale[h] = d.alpha

            def pre(_m, args, scale=scale):
                z = args[0]
                shaped = z.reshape(*z.shape[:-1], n_heads, -1) * scale.to(z.dtype)[:, None]
                return (shaped.reshape(z.shape), *args[1:])
            handles.append(projs[b].register_forward_pre_hook(pre))
    elif d.name == "steer":
        def post(_m, _a, out):
            h = out[0] if isinstance(out, tuple) else out
            h = h + (d.alpha * d.v.float()).to(h.dtype)
            return (h, *out[1:]) if isinstance(out, tuple) else h
        handles.append(blocks[d.blocks[0]].register_forward_hook(post))
    elif d.name == "attention":
        a, b = span

        def pre(_m, args, kwargs):
            h = kwargs.get("hidden_states", args[0] if args else None)
            t, dt = h.shape[1], h.dtype
            low = torch.finfo(dt).min
            m = torch.zeros((t, t), dtype=torch.float32)
            m[torch.triu(torch.ones(t, t, dtype=torch.bool), 1)] = low
            if b > a:
                m[b:, a:b] += math.log(d.alpha) if d.alpha > 0 else low
            kwargs["attention_mask"] = m.clamp(min=low).to(dt)[None, None]
            return args, kwargs
        for blk in d.blocks:
            handles.append(attns[blk].register_forward_pre_hook(pre, with_kwargs=True))


def _forward_lp(lm, ids, t, d=None, span=(0, 0)):
    """Log-softmax rows predicting each token of t after ids (one full forward, hooks of ``d``)."""
    import torch

    handles: list = []
    try:
        if d is not None:
            _plain_hooks(lm, d, span, handles)
        with torch.inference_mode():
            logits = lm.model(torch.tensor([list(ids) + list(t[:-1])])).logits[0].float()
    finally:
        for h in handles:
            h.remove()
    return logits[len(ids) - 1:len(ids) - 1 + len(t)]


def plain_scores(lm, records, d):
    """{(record, n): (log P(true), log P(false))} under ``d``, the plain way."""
    import torch

    out = {}
    for rec, items in zip(records, _plan(lm, records, SCHEME, N, None, share=False)):
        q_item = items[0]
        for it in items:
            span = _span(lm, it.prompt, hijack_prefix(rec, SCHEME, it.n))
            got = []
            for t in (it.true_ids, it.false_ids):
                if d.name == "drop-context":
                    lp = torch.log_softmax(_forward_lp(lm, q_item.ids, t), -1)
                elif d.name == "contrastive":
                    lq, lc = _forward_lp(lm, q_item.ids, t), _forward_lp(lm, it.ids, t)
                    pq = torch.softmax(lq, -1)
                    mixed = (1 + d.alpha) * lq - d.alpha * lc
                    if d.beta > 0:
                        mixed[pq < d.beta * pq.max(-1, keepdim=True).values] = -math.inf
                    lp = torch.log_softmax(mixed, -1)
                else:
                    lp = torch.log_softmax(_forward_lp(lm, it.ids, t, d, span), -1)
                got.append(sum(float(lp[j, tok]) for j, tok in enumerate(t)))
            out[(it.record_index, it.n)] = tuple(got)
    return out


def _log(p):
    return math.log(p) if p > 0 else -math.inf


def _worst(fast, plain):
    worst = 0.0
    for s in fast.records:
        for got, want in zip((_log(s.p_true), _log(s.p_false)), plain[(s.record_index, s.n)]):
            if math.isinf(got) or math.isinf(want):
                assert got == want, (s, want)
                continue
            worst = max(worst, abs(got - want) / 2)  # log-probabilities get 2 tol (tests/engine/matrix)
    return worst


def _defenses(lm, records):
    from engine.hijack.blocks import locate

    layout = locate(lm)
    last = layout.n_layers - 1
    v = steer_vector(lm, records, SCHEME, N, 1)
    return [Defense("heads", 0.0, ((0, 1), (last, 2), (last, 3))), Defense("heads", 0.5, ((1, 0),)),
            Defense("attention", 0.25, blocks=tuple(range(layout.n_layers))), Defense("attention", 0.0, blocks=(0,)),
            Defense("steer", 2.0, blocks=(1,), v=v), Defense("contrastive", 1.0),
            Defense("contrastive", 0.5, beta=0.0), Defense("drop-context")]


@pytest.mark.parametrize("cell", _cells())
def test_defended_sweeps_equal_the_plain_forwards(cell, load_cell, records):
    lm = load_cell(cell)
    base_tol = tolerance(lm.dtype, max(logit_scale(lm, r.text) for r in records))
    undefended = efficacy_curve(lm, records, SCHEME, N, batch_size=3)
    for d in _defenses(lm, records):
        fast = defended_curve(lm, records, SCHEME, N, d, batch_size=3)
        tol = base_tol * (1 + 2 * d.alpha) if d.name == "contrastive" else base_tol
        worst = _worst(fast, plain_scores(lm, records, d))
        key = (cell, d.name)
        WORST[key] = max(WORST.get(key, 0.0), worst)
        assert worst <= tol, f"{d.name} {d.params}: fast vs plain {worst:.3g} > {tol:.3g} ({cell})"
        # the defense does something: some score moved by far more than the rounding (float32)
        if cell[1] != "float32":
            continue
        moved = max(abs(_log(a.p_true) - _log(b.p_true)) for a, b in zip(fast.records, undefended.records))
        assert moved > 100 * tol, (d.name, moved)
    print("worst |Δ log p|/2 per defense:", {k[1]: f"{w:.2g}" for k, w in WORST.items() if k[0] == cell})


@pytest.mark.parametrize("cell", [c for c in _cells() if c.values[0][1] == "float32"])
def test_identities(cell, load_cell, records):
    lm = load_cell(cell)
    tol = tolerance(lm.dtype, max(logit_scale(lm, r.text) for r in records))
    base = efficacy_curve(lm, records, SCHEME, N, batch_size=3)
    v = steer_vector(lm, records, SCHEME, N, 0)
    for d in (Defense("heads", 1.0, ((0, 1), (1, 2))), Defense("attention", 1.0, blocks=(0, 1)),
              Defense("steer", 0.0, blocks=(0,), v=v), Defense("none")):
        got = defended_curve(lm, records, SCHEME, N, d, batch_size=3)
        worst = max(abs(_log(a.p_true) - _log(b.p_true)) + abs(_log(a.p_false) - _log(b.p_false))
                    for a, b in zip(got.records, base.records))
        assert worst <= tol, (d.name, worst)
        assert [p.es for p in got.curve] == [p.es for p in base.curve]
    drop = defended_curve(lm, records, SCHEME, N, Defense("drop-context"), batch_size=3)
    cad0 = defended_curve(lm, records, SCHEME, N, Defense("contrastive", 0.0, beta=0.0), batch_size=3)
    for a, b in zip(drop.records, cad0.records):
        assert abs(_log(a.p_true) - _log(b.p_true)) <= tol and abs(_log(a.p_false) - _log(b.p_false)) <= tol
    clean = {s.record_index: s for s in base.records if s.n == 0}
    for s in drop.records:  # every n scored as the clean prompt (n = 0)
        c = clean[s.record_index]
        assert abs(_log(s.p_true) - _log(c.p_true)) <= tol and abs(_log(s.p_false) - _log(c.p_false)) <= tol
        assert s.prompt.endswith(c.prompt)


def test_save_and_load_round_trip(tmp_path):
    import torch

    v = torch.linspace(-1, 1, 32)
    for d in (Defense("steer", 1.5, blocks=(2,), v=v), Defense("heads", 0.0, ((3, 1), (20, 4))),
              Defense("attention", 0.2, blocks=(1, 2), sink=False), Defense("contrastive", 0.5, beta=0.2),
              Defense("drop-context"), Defense("none")):
        path = d.save(tmp_path / f"{d.name}.json")
        back = Defense.load(path)
        assert back == d and back.to_dict() == d.to_dict()
        if d.v is not None:
            assert torch.equal(back.v, d.v) and (tmp_path / "steer.safetensors").exists()
        assert Defense.from_dict(d.to_dict(), d.v) == d


@pytest.mark.parametrize("bad", [dict(name="prune"), dict(name="heads"), dict(name="attention", alpha=2.0, blocks=(0,)),
                                 dict(name="steer", blocks=(0, 1)), dict(name="heads", alpha=-1.0, heads=((0, 0),)),
                                 dict(name="contrastive", beta=2.0)])
def test_bad_defenses_are_one_user_error(bad):
    with pytest.raises(UserError):
        Defense(**bad)


def test_repair_selects_on_even_and_scores_on_odd_records(load_cell):
    from engine.hijack.repair import repair, sign_test_p

    lm = load_cell(("llama", "float32", default_attn("llama")))
    recs = load_counterfact("builtin", limit=6, seed=1)
    out = repair(lm, recs, SCHEME, 2, defenses=("heads", "contrastive", "steer", "attention", "drop-context"),
                 batch_size=4)
    assert out["selection"] == [r.case_id for r in recs[0::2]] and out["evaluation"] == [r.case_id for r in recs[1::2]]
    keys = {"name", "params", "es_before", "es_after", "es_ci", "sign_p", "clean_accuracy_before",
            "clean_accuracy_after", "reverse_accuracy_before", "reverse_accuracy_after", "frontier"}
    for d in out["defenses"]:
        assert keys <= set(d), d["name"]
        assert d["frontier"] and {"alpha", "es", "clean_accuracy"} <= set(d["frontier"][0])
        assert d["es_before"] - d["es_after"] == pytest.approx(d["es_drop"])
        # what the hijack-repair rule reads: the paired falls and ES at n = 0 undefended
        assert d["clean_fall"]["mean"] == pytest.approx(d["clean_accuracy_before"] - d["clean_accuracy_after"])
        assert d["reverse_fall"]["mean"] == pytest.approx(d["reverse_accuracy_before"] - d["reverse_accuracy_after"])
        assert d["clean_fall"]["n"] == len(out["evaluation"]) and 0 <= d["es_zero_before"] <= 1
    assert len({d["es_zero_before"] for d in out["defenses"]}) == 1  # the undefended half, once
    heads = out["defenses"][0]
    assert len(heads["params"]["heads"]) == 3 and heads["params"]["alpha"] in (0.0, 0.25, 0.5)
    drop = out["defenses"][-1]
    assert drop["clean_accuracy_after"] == drop["clean_accuracy_before"]  # n = 0 is the question alone already
    assert sign_test_p(3, 0) == 0.125 and sign_test_p(0, 0) == 1.0


def test_settings_text_names_what_a_defense_has():
    from engine.hijack.defenses import settings_text

    assert settings_text(Defense("heads", 0.0, heads=((3, 1), (5, 0))).params) == "heads L3H1 L5H0"
    assert settings_text(Defense("attention", 0.1, blocks=(0, 1, 2, 3)).params) == "blocks 0–3"
    assert settings_text(Defense("attention", 0.1, blocks=(18, 23), sink=False).params, " · ") == \
        "blocks 18,23 · position 0 in the span"
    assert settings_text(Defense("attention", 0.1, blocks=(23,)).params) == "block 23"
    assert settings_text(Defense("contrastive", 1.0).params) == "β 0.1"
    assert settings_text(Defense("none").params) == ""
    assert settings_text({"heads": [[1], "x"], "blocks": ["a", True], "v_norm": 28.64}) == "|v| 28.6"  # malformed skipped
