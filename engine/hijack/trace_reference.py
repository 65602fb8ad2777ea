"""The plain causal trace: one full forward of the hijacked prompt per intervention, no shared
keys/values, no batching, its own one-edit hooks. Slow on purpose: the reference the fast trace
(``engine.hijack.trace``) is tested equal to, and the baseline of ``bench/bench_trace.py``.
"""

from __future__ import annotations

from contextlib import contextmanager

from engine.hijack.blocks import first_tensor, locate, replace_first
from engine.hijack.trace import KNOCKOUTS, Measure, Pair, knock_keys, knock_layers, measures


def _forward(lm, ids) -> Measure:
    import torch

    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([list(ids)], device=lm.device), use_cache=False)
    return out.logits[:, -1]


def _measure(lm, pair: Pair) -> Measure:
    return measures(_forward(lm, pair.ids), pair.true_id, pair.false_id)[0]


@contextmanager
def _hook(handle):
    try:
        yield
    finally:
        handle.remove()


def clean_activation(lm, pair: Pair, kind: str, layer: int, clean_index: int):
    """The clean run's ``resid_post`` / ``attn_out`` / ``mlp_out`` of one block at one position."""
    block = locate(lm).blocks[layer]
    module = {"resid": block.module, "attn": block.attn, "mlp": block.mlp}[kind]
    got = {}
    with _hook(module.register_forward_hook(lambda _m, _a, out: got.__setitem__("x", first_tensor(out)[0]))):
        _forward(lm, pair.clean_ids)
    return got["x"][clean_index].clone()


def clean_last(lm, pair: Pair) -> list:
    """Every block's clean ``resid_post`` at the last position, from one clean forward."""
    blocks = locate(lm).blocks
    got: dict = {}
    handles = [b.module.register_forward_hook(
        lambda _m, _a, out, i=b.index: got.__setitem__(i, first_tensor(out)[0, -1].clone())) for b in blocks]
    try:
        _forward(lm, pair.clean_ids)
    finally:
        for hd in handles:
            hd.remove()
    return [got[b.index] for b in blocks]


def restore(lm, pair: Pair, kind: str, layer: int, j: int, value=None) -> Measure:
    """Block ``layer``'s ``kind`` output at ``pair.positions[j]`` replaced by the clean run's
    (``value``, else read from a clean forward of its own)."""
    h, c = pair.positions[j]
    if value is None:
        value = clean_activation(lm, pair, kind, layer, c)
    block = locate(lm).blocks[layer]
    module = {"resid": block.module, "attn": block.attn, "mlp": block.mlp}[kind]

    def hook(_m, _a, out):
        x = first_tensor(out).clone()
        x[0, h] = value
        return replace_first(out, x)

    with _hook(module.register_forward_hook(hook)):
        return _measure(lm, pair)


def knockout(lm, pair: Pair, variant: str, layer: int, window: int) -> Measure:
    """The last position may not attend to the variant's keys in the variant's blocks: a full causal
    mask built from scratch with those entries off."""
    import torch

    layout = locate(lm)
    keys = knock_keys(pair, variant)
    n = len(pair.ids)
    allowed = torch.ones((n, n), dtype=torch.bool).tril()
    allowed[n - 1, keys] = False
    eager = getattr(lm.model.config, "_attn_implementation", "sdpa") == "eager"

    def hook(_m, args, kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        if eager:
            mask = torch.zeros((n, n), dtype=hidden.dtype).masked_fill(~allowed, torch.finfo(hidden.dtype).min)
        else:
            mask = allowed
        kwargs["attention_mask"] = mask[None, None].to(hidden.device)
        return args, kwargs

    handles = [layout.blocks[b].attn.register_forward_pre_hook(hook, with_kwargs=True)
               for b in knock_layers(layer, variant, window, layout.n_layers)]
    try:
        return _measure(lm, pair)
    finally:
        for hd in handles:
            hd.remove()


def zero_head(lm, pair: Pair, layer: int, head: int) -> Measure:
    """Head ``head`` of block ``layer`` zeroed in ``z`` at the last position."""
    layout = locate(lm)
    d = layout.d_head

    def hook(_m, args):
        z = args[0].clone()
        z[0, -1, head * d:(head + 1) * d] = 0
        return (z, *args[1:])

    with _hook(layout.blocks[layer].out_proj.register_forward_pre_hook(hook)):
        return _measure(lm, pair)


def zero_heads(lm, pair: Pair, heads) -> Measure:
    """Every (layer, head) in ``heads`` zeroed together in ``z`` at the last position."""
    layout = locate(lm)
    d = layout.d_head
    by_layer: dict = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def hook_for(hs):
        def hook(_m, args):
            z = args[0].clone()
            for head in hs:
                z[0, -1, head * d:(head + 1) * d] = 0
            return (z, *args[1:])
        return hook

    handles = [layout.blocks[layer].out_proj.register_forward_pre_hook(hook_for(hs)) for layer, hs in by_layer.items()]
    try:
        return _measure(lm, pair)
    finally:
        for hd in handles:
            hd.remove()


def last_position_trace(lm, pair: Pair, window: int, variants=KNOCKOUTS) -> dict:
    """``restore_last`` and the knockout ``variants`` at every block, one full forward each (the bench's
    plain loop)."""
    n_layers = locate(lm).n_layers
    last = len(pair.positions) - 1
    clean = clean_last(lm, pair)  # one clean forward, then one full forward per intervention
    out = {"restore_last": [restore(lm, pair, "resid", layer, last, clean[layer]) for layer in range(n_layers)]}
    for v in variants:
        out[v] = [knockout(lm, pair, v, layer, window) for layer in range(n_layers)]
    return out
