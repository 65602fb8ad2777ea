"""The defended probe of one prompt (``engine.hijack.repair_probe``) equals a PLAIN implementation written
here: one full forward per step and per target, the defense as the plain hooks of test_defenses.py or
the arithmetic below (no code from repair_probe.py or defenses.py), within ``engine.hijack.tolerance``
(contrastive: times 1 + 2α). Every defense, three families (llama, gpt2, gemma3), float32 and bfloat16.
Each defense must change something (float32): a target's probability by far more than the tolerance, or
the continuation. ``shape_on_pair``'s heads, blocks and v equal plain ablations and captures of the pair."""

from __future__ import annotations

import math

import pytest

from engine.errors import UserError
from engine.hijack.counterfact import load_counterfact
from engine.hijack.defenses import Defense
from engine.hijack.repair_probe import defended_probe, shape_on_pair
from engine.hijack.schemes import hijack_prefix
from engine.hijack.tolerance import tolerance
from tests.engine.hijack.test_defenses import _parts, _plain_hooks, _span
from tests.engine.matrix.conftest import cells, default_attn, logit_scale

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAMILIES = ("llama", "gpt2", "gemma3")
K = 6


def _cells():
    return cells("default", ("float32", "bfloat16"), FAMILIES)


def _case(lm):
    """(question, prepend, targets): a built-in record whose targets' first tokens differ, n = 2 not-think."""
    for rec in load_counterfact("builtin"):
        a, b = (_ids_after(lm, rec.text, " " + t) for t in (rec.target_true, rec.target_false))
        if a[0] != b[0]:
            # a third, longer target: the teacher-forced rows of targets of different lengths share a batch
            return rec.text, hijack_prefix(rec, "not-think", 2), (" " + rec.target_true, " " + rec.target_false,
                                                                  f" {rec.target_true} and {rec.target_false}")
    raise AssertionError("no record with distinct first target tokens")


# --- the plain implementation ------------------------------------------------------------------------

def _ids_after(lm, prompt, target):
    ids, joint = lm.encode(prompt), lm.encode(prompt + target)
    return joint[len(ids):] if joint[:len(ids)] == ids and len(joint) > len(ids) else lm.encode(target, special=False)


def _logp(lm, ids, d=None, span=(0, 0)):
    """log-softmax rows of one full forward over ``ids`` (float32), the plain hooks of ``d`` on."""
    import torch

    handles: list = []
    try:
        if d is not None:
            _plain_hooks(lm, d, span, handles)
        with torch.inference_mode():
            logits = lm.model(torch.tensor([list(ids)])).logits[0].float()
    finally:
        for h in handles:
            h.remove()
    return torch.log_softmax(logits, -1)


def _contrast(q, c, d):
    import torch

    mixed = (1 + d.alpha) * q - d.alpha * c
    if d.beta > 0:
        pq = q.exp()
        mixed = mixed.masked_fill(pq < d.beta * pq.max(-1, keepdim=True).values, -math.inf)
    return torch.log_softmax(mixed, -1)


def plain(lm, question, prepend, targets, d, k):
    """{"logp": [log P(target)], "top": [p of the top 5], "ids": [greedy ids], "rows": [next-token rows]}."""
    prompt = prepend + question
    eos = lm.tokenizer.eos_token_id
    if d is None or d.name == "drop-context":
        text = question if d is not None else prompt
        ids = lm.encode(text)

        def step(g):
            return _logp(lm, ids + g)[-1]

        def rows(t):
            return _logp(lm, ids + t[:-1])[len(ids) - 1:]
        t_ids = [_ids_after(lm, text, t) for t in targets]
    elif d.name == "contrastive":
        q_ids, c_ids = lm.encode(question), lm.encode(prompt)

        def step(g):
            return _contrast(_logp(lm, q_ids + g)[-1], _logp(lm, c_ids + g)[-1], d)

        def rows(t):
            return _contrast(_logp(lm, q_ids + t[:-1])[len(q_ids) - 1:], _logp(lm, c_ids + t[:-1])[len(c_ids) - 1:], d)
        t_ids = [_ids_after(lm, prompt, t) for t in targets]
    else:
        ids, span = lm.encode(prompt), _span(lm, prompt, prepend)

        def step(g):
            return _logp(lm, ids + g, d, span)[-1]

        def rows(t):
            return _logp(lm, ids + t[:-1], d, span)[len(ids) - 1:]
        t_ids = [_ids_after(lm, prompt, t) for t in targets]
    logp = [sum(float(r[j, tok]) for j, tok in enumerate(t)) for t in t_ids for r in [rows(t)]]
    gen, lps = [], []
    for _ in range(k):
        lp = step(gen)
        lps.append(lp)
        tok = int(lp.argmax())
        if tok == eos:
            break
        gen.append(tok)
    top = sorted(lps[0].exp().tolist(), reverse=True)[:5]
    return {"logp": logp, "top": top, "ids": gen, "rows": lps}


def _log(p):
    return math.log(p) if p > 0 else -math.inf


def _same_continuation(got, want, tol):
    """Equal token by token; a divergence only where the plain run's top two are a tie within ``tol``."""
    for i, (a, b) in enumerate(zip(got, want["ids"])):
        if a != b:
            row = want["rows"][i]
            assert float(row[b]) - float(row[a]) <= tol, (i, got, want["ids"])
            return
    assert len(got) == len(want["ids"]), (got, want["ids"])


def _defenses(lm, question, prepend, targets):
    last = len(_parts(lm.model)[0]) - 1
    steer = shape_on_pair(lm, question, prepend, *targets[:2], "steer", 2.0)
    return [Defense("none"), Defense("drop-context"), Defense("heads", 0.0, ((0, 1), (last, 2), (last, 3))),
            Defense("heads", 0.5, ((1, 0),)), Defense("attention", 0.25, blocks=tuple(range(last + 1))),
            Defense("attention", 0.0, blocks=(0,)), steer, Defense("contrastive", 1.0),
            Defense("contrastive", 0.5, beta=0.0)]


@pytest.mark.parametrize("cell", _cells())
def test_defended_probe_equals_the_plain_forwards(cell, load_cell):
    lm = load_cell(cell)
    question, prepend, targets = _case(lm)
    base = tolerance(lm.dtype, logit_scale(lm, prepend + question))
    ref0 = plain(lm, question, prepend, targets, None, K)
    for d in _defenses(lm, question, prepend, targets):
        got = defended_probe(lm, question, prepend, targets, d, k_tokens=K)
        tol = base * (1 + 2 * d.alpha) if d.name == "contrastive" else base
        for side, want in ((got.undefended, ref0), (got.defended, plain(lm, question, prepend, targets, d, K)
                                                   if d.name != "none" else ref0)):
            for (t, p), w in zip(side.probs, want["logp"]):
                if math.isinf(w) or p == 0:
                    assert _log(p) == w, (d.name, t, p, w)
                else:
                    assert abs(_log(p) - w) <= 2 * tol, (d.name, t, _log(p) - w, tol, cell)
            assert all(abs(a - b) <= tol for (_, a), b in zip(side.top, want["top"])), (d.name, side.top, want["top"])
            _same_continuation(side.continuation_ids, want, 2 * tol)
            assert side.continuation == lm.tokenizer.decode(list(side.continuation_ids))
        if d.name == "none":
            assert got.defended == got.undefended
            continue
        if cell[1] != "float32":
            continue
        # the defense does something: a target's probability or what the model says
        moved = max(abs(_log(a) - _log(b)) for (_, a), (_, b) in zip(got.defended.probs, got.undefended.probs))
        assert moved > 100 * tol or got.defended.continuation_ids != got.undefended.continuation_ids, d.name


def test_the_record_and_bad_input(load_cell):
    lm = load_cell(("llama", "float32", default_attn("llama")))
    question, prepend, targets = _case(lm)
    got = defended_probe(lm, question, prepend, targets, Defense("drop-context"), k_tokens=3)
    data = got.to_dict()
    assert data["kind"] == "probe" and data["prompt"] == prepend + question and data["question"] == question
    assert data["defense"] == {"name": "drop-context", "params": {"alpha": 1.0}}
    assert set(data["undefended"]["probs"]) == set(targets) and len(data["defended"]["top"]) == 5
    assert got.defended.prompt == question and len(got.defended.continuation_ids) <= 3
    with pytest.raises(UserError):
        defended_probe(lm, question, prepend, targets, Defense("none"), k_tokens=-1)
    with pytest.raises(UserError):
        defended_probe(lm, question, prepend, targets, Defense("heads", 0.0, ((9, 0),)))
    with pytest.raises(UserError):
        shape_on_pair(lm, question, prepend, *targets[:2], "prune", 1.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_shape_on_pair_is_the_plain_ablation_and_capture(family, load_cell):
    import torch

    lm = load_cell((family, "float32", default_attn(family)))
    question, prepend, targets = _case(lm)
    blocks, _, projs = _parts(lm.model)
    n_heads = lm.model.config.num_attention_heads
    ids = lm.encode(prepend + question)
    a, b = (_ids_after(lm, question, t)[0] for t in targets[:2])

    def diff(hook=None, at=None):
        h = at.register_forward_pre_hook(hook) if at is not None else None
        try:
            with torch.inference_mode():
                logits = lm.model(torch.tensor([ids])).logits[0, -1].float()
        finally:
            if h is not None:
                h.remove()
        return float(logits[a] - logits[b])

    def zero(head):
        def pre(_m, args):
            z = args[0].clone()
            w = z.shape[-1] // n_heads
            z[:, -1, head * w:(head + 1) * w] = 0
            return (z, *args[1:])
        return pre

    d0 = diff()
    rises = sorted(((diff(zero(h), projs[blk]) - d0, (blk, h)) for blk in range(len(blocks)) for h in range(n_heads)),
                   key=lambda r: -r[0])
    heads = shape_on_pair(lm, question, prepend, *targets[:2], "heads", 0.25)
    assert heads.alpha == 0.25 and set(heads.heads) == {bh for _, bh in rises[:3]}
    att = shape_on_pair(lm, question, prepend, *targets[:2], "attention", 2.0)
    assert att.blocks == tuple(range(len(blocks))) and att.alpha == 1.0
    steer = shape_on_pair(lm, question, prepend, *targets[:2], "steer", 3.0)
    mid = len(blocks) // 2
    got = []
    for text in (question, prepend + question):
        seen: dict = {}

        def keep(_m, _a, out, seen=seen):
            seen["h"] = out[0] if isinstance(out, tuple) else out
        h = blocks[mid].register_forward_hook(keep)
        try:
            with torch.inference_mode():
                lm.model(torch.tensor([lm.encode(text)]))
        finally:
            h.remove()
        got.append(seen["h"][0, -1].float())
    assert steer.blocks == (mid,) and torch.allclose(steer.v, got[0] - got[1], atol=1e-5)
    assert shape_on_pair(lm, question, prepend, *targets[:2], "contrastive", 0.5) == Defense("contrastive", 0.5)


def test_one_long_target_alone(load_cell):
    """One target of several tokens: its teacher-forced step runs on the prompt's own cache (no copy), which
    the continuation after it must not see."""
    lm = load_cell(("llama", "float32", default_attn("llama")))
    question, prepend, targets = _case(lm)
    one = (targets[2],)
    assert len(_ids_after(lm, prepend + question, one[0])) > 1
    for d in (Defense("none"), Defense("heads", 0.0, ((0, 1),)), Defense("contrastive", 1.0)):
        got = defended_probe(lm, question, prepend, one, d, k_tokens=K)
        want = plain(lm, question, prepend, one, None if d.name == "none" else d, K)
        p, w = got.defended.probs[0][1], want["logp"][0]
        assert _log(p) == w if math.isinf(w) or p == 0 else abs(_log(p) - w) <= 1e-4, (d.name, p, w)
        _same_continuation(got.defended.continuation_ids, want, 1e-4)
