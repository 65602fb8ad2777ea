"""Attribution patching of the causal trace (Nanda 2023; Kramár et al. 2024, "AtP*"): every measure of
``engine.hijack.trace`` estimated from one forward of the clean prompt, one of the hijacked prompt and
one backward of ``logit_diff`` (at the last position) from the hijacked run. The hijacked run keeps
a graph only from the first aligned position on (nothing is patched before it, and no activation
depends on a later one): the backward runs over the prompt's few tokens, not the prepended text.

The metric is ``ld = logit_true − logit_false`` at the last position of the hijacked run; an
intervention that changes an activation ``a`` by ``Δa`` changes it by about ``Δa · ∂ld/∂a`` (first
order, the gradient at the hijacked run). Estimates, in float32 whatever the model's dtype:

- restores (``resid`` / ``attn`` / ``mlp`` of block l at each aligned position, ``restore_last``
  among them): ``(a_clean − a_hijacked) · ∂ld/∂a`` at that position;
- head ablation (zero, at the last position): ``(0 − z_h) · ∂ld/∂z_h``;
- knockouts, the AtP* way: the last query's attention output of block l recomputed exactly with the
  knocked keys masked (the block's attention module rerun on the last position's captured input after
  the hijacked run's cached keys/values, one row per knocked key set, with the knock mask of
  ``edits.knock_mask``: the model's own code, so grouped-query attention, q/k norms, rotary
  embeddings, sliding windows and Gemma-2's soft-capping are exactly those of the exact trace; the
  sink rule is ``knockouts.knocked``'s), then first order downstream:
  ``(attn_knocked − attn) · ∂ld/∂attn`` at the last position, summed over the blocks of a window
  (each block's recomputation on the hijacked run's input: the window's blocks do not see each
  other's knockout, the first-order reading).

P(true) and P(false) are not estimated to first order. Each estimate's ``Measure`` carries the
estimated ``logit_diff`` and the two probabilities mapped from it through the two-target softmax
with the hijacked run's mass ``s = p_true + p_false`` held: ``p_true = s·σ(ld)``,
``p_false = s·σ(−ld)`` (exact at Δ = 0, since ``p_true/p_false = exp(ld)``; it ignores the rest of
the vocabulary's change). The clean and hijacked measures and the direct logit attribution are
exact (they need no estimate). ``atp(lm, pair, ...)`` returns an ``Estimate``: ``trace`` is a
``Trace`` (the exact trace's shape), ``to_dict()`` is its JSON with ``"method": "atp"``.

A model whose attention module cannot be rerun on its captured input raises one ``UserError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.errors import UserError
from engine.hijack.attribution import direct_attribution
from engine.hijack.blocks import check_attention, first_tensor, locate
from engine.hijack.edits import KINDS, Edit, capture, hooks, knock_mask
from engine.hijack.knockouts import knock_keys, knock_layers, knock_window
from engine.hijack.kv import extend
from engine.hijack.measures import KNOCKOUTS
from engine.hijack.trace import Measure, Pair, Trace, measures

METHOD = "atp"
KEY_SETS = ("all", "mentions", "rest")  # the knocked key sets of the six variants


@dataclass(frozen=True)
class Estimate:
    """An attribution-patching trace: ``trace`` holds the estimates in the exact trace's shape;
    ``knocked_attn`` the recomputed last-position attention outputs by (key set, block) (float32),
    ``attn_last`` the hijacked run's, for tests and diagnostics."""

    trace: Trace
    knocked_attn: dict = field(default_factory=dict, repr=False)
    attn_last: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = self.trace.to_dict()
        d["method"] = METHOD
        d["estimate"] = ("attribution patching (first order in the patched activation, logit_diff at the last "
                         "position; knockouts: attention recomputed exactly, first order downstream); "
                         "p_true/p_false mapped from the estimated logit_diff with p_true + p_false held")
        return d


def mapped(hijacked: Measure, delta: float) -> Measure:
    """The ``Measure`` of an estimated change ``delta`` of the hijacked run's logit difference (module
    doc: the probabilities through the two-target softmax, their sum held)."""
    ld = hijacked.logit_diff + delta
    s = hijacked.p_true + hijacked.p_false
    sig = 1.0 / (1.0 + math.exp(-ld)) if ld >= 0 else math.exp(ld) / (1.0 + math.exp(ld))
    return Measure(s * sig, s * (1.0 - sig), ld)


def _hijacked_with_grads(lm, layout, pair: Pair):
    """The hijacked run: the tokens before the first aligned position without a graph (nothing is
    patched there, and an activation depends on none after it), then the rest with every block's
    resid/attn/mlp output and ``z``, the attention modules' inputs, and ``∂ld/∂`` of each (columns
    from ``start`` on); returns (logits, acts, grads, attn_calls, dla store, keys/values, start)."""
    import torch

    acts: dict = {}
    calls: dict = {}
    start = pair.positions[0][0]
    with torch.no_grad():
        _, _, past = extend(lm, None, [list(pair.ids[:start])], keep=1)
    if past is None:
        raise UserError(f"{lm.name} returned no key/value cache: no estimate")

    def out_hook(key):
        def hook(_m, _a, output):
            acts[key] = first_tensor(output)
        return hook

    def z_hook(i):
        def hook(_m, args):
            acts[("z", i)] = args[0]
        return hook

    def attn_in(i):
        def hook(_m, args, kwargs):
            calls[i] = (args, dict(kwargs))
        return hook

    def embed_hook(_m, _a, output):  # the parameters need no gradient: the activations do
        return output.detach().requires_grad_()

    def in_hook(key):
        def hook(_m, args, kwargs):
            acts[key] = kwargs.get("hidden_states", args[0] if args else None)
        return hook

    handles = []
    with torch.enable_grad(), hooks(handles):
        handles.append(lm.model.get_input_embeddings().register_forward_hook(embed_hook))
        for b in layout.blocks:
            handles.append(b.module.register_forward_hook(out_hook(("resid", b.index))))
            handles.append(b.attn.register_forward_hook(out_hook(("attn", b.index))))
            handles.append(b.mlp.register_forward_hook(out_hook(("mlp", b.index))))
            handles.append(b.out_proj.register_forward_pre_hook(z_hook(b.index)))
            handles.append(b.attn.register_forward_pre_hook(attn_in(b.index), with_kwargs=True))
        handles.append(layout.blocks[0].module.register_forward_pre_hook(in_hook("resid_pre0"), with_kwargs=True))
        handles.append(layout.final_norm.register_forward_pre_hook(in_hook("resid_final"), with_kwargs=True))
        logits, _, kv = extend(lm, past, [list(pair.ids[start:])], keep=1)
        if kv is None:
            raise UserError(f"{lm.name} returned no key/value cache: no knockout estimate")
        row = logits[0, -1]
        ld = row[pair.true_id].float() - row[pair.false_id].float()
        keys = [k for k in acts if isinstance(k, tuple) and k[0] in (*KINDS, "z")]
        if not ld.requires_grad:
            raise UserError(f"{lm.name}: the logit difference does not depend on the activations (no gradient)")
        got = torch.autograd.grad(ld, [acts[k] for k in keys], allow_unused=True)
    grads = {}
    for k, g in zip(keys, got):
        a = acts[k]
        grads[k] = (torch.zeros_like(a, dtype=torch.float32) if g is None else g.float()).detach()
    store = {k: v.detach()[:, [-1]] for k, v in acts.items()}  # the last position, for the attribution
    return logits.detach(), {k: v.detach() for k, v in acts.items()}, grads, calls, store, kv, start


class _Past:
    """One block's past keys/values, as the attention module's ``cache.update`` uses a cache: the new
    token's keys/values appended (a DynamicCache of every block costs more than the rerun)."""

    def __init__(self, keys, values):
        self.keys, self.values = keys, values

    def update(self, key_states, value_states, *_args, **_kwargs):
        import torch

        return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)

    def get_seq_length(self, *_args) -> int:
        return int(self.keys.shape[-2])


def knocked_attention(lm, layout, calls: dict, kv, layer: int, key_sets, n_tokens: int):
    """Block ``layer``'s attention output at the last position, one row per bool tensor of
    ``key_sets`` (over the hijacked tokens, True = the last query may not attend there): the block's
    attention module rerun on the last position's input the hijacked run gave it (``calls``), after
    the hijacked run's keys/values of the tokens before it (``kv``; ``calls`` hold the inputs of the
    tokens from the first aligned position on, the last one last), with the knock mask of
    ``edits.knock_mask``; (rows, d_model) float32."""
    import torch

    if layer not in calls:
        raise UserError(f"{lm.name}: block {layer}'s attention module was not called in the hijacked run")
    args, kwargs = calls[layer]
    kwargs = dict(kwargs)
    rows, last = len(key_sets), n_tokens - 1
    hidden = kwargs.get("hidden_states", args[0] if args else None)
    cache_name = next((k for k, v in kwargs.items() if hasattr(v, "get_seq_length")), None)
    if hidden is None or cache_name is None:
        raise UserError(f"cannot estimate the knockouts of {lm.name}: its attention modules take no hidden states "
                        "or no key/value cache")
    hidden = hidden.detach()[:, -1:].expand(rows, -1, -1)
    k, v = kv.layers[layer]
    kwargs[cache_name] = _Past(k[:, :, :last].detach().expand(rows, -1, -1, -1),
                               v[:, :, :last].detach().expand(rows, -1, -1, -1))
    pe = kwargs.get("position_embeddings")
    if isinstance(pe, tuple):
        kwargs["position_embeddings"] = tuple(t[..., -1:, :] for t in pe)
    if torch.is_tensor(kwargs.get("cache_position")):
        kwargs["cache_position"] = kwargs["cache_position"][-1:]
    if torch.is_tensor(kwargs.get("position_ids")):
        kwargs["position_ids"] = kwargs["position_ids"][..., -1:]
    mask = kwargs.get("attention_mask")
    if torch.is_tensor(mask):
        mask = mask.detach()[..., -1:, :n_tokens]
    eager = getattr(lm.model.config, "_attn_implementation", "sdpa") == "eager"
    edits = [Edit("knock", layer, r, 0, keys=keys) for r, keys in enumerate(key_sets)]
    kwargs["attention_mask"] = knock_mask(mask, edits, rows, 1, n_tokens, eager, hidden.dtype, hidden.device)
    if "hidden_states" in kwargs:
        kwargs["hidden_states"] = hidden
        rest = args
    else:
        rest = (hidden, *args[1:])
    try:
        out = layout.blocks[layer].attn(*rest, **kwargs)
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise UserError(f"cannot estimate the knockouts of {lm.name}: rerunning block {layer}'s attention "
                        f"failed ({exc})") from exc
    return first_tensor(out)[:, -1].float()


def atp(lm, pair: Pair, window: int | None = None, heads: bool = True, knock_sink: bool = False) -> Estimate:
    """The attribution-patching estimate of ``trace(lm, pair, window, heads=heads, knock_sink=...)``
    (module doc)."""
    import torch

    check_attention(lm)
    layout = locate(lm)
    window = knock_window(window, layout.n_layers)
    n_layers, n_heads, d_head = layout.n_layers, layout.n_heads, layout.d_head
    with torch.no_grad():
        clean_store: dict = {}
        with capture(layout, clean_store):
            c_logits, _, _ = extend(lm, None, [list(pair.clean_ids)], keep=1, want_cache=False)
    if not lm.kv_reuse:
        raise UserError(f"{lm.name} cannot reuse keys/values (chunked or recurrent layers): no estimate")
    h_logits, acts, grads, calls, store, kv, start = _hijacked_with_grads(lm, layout, pair)
    with torch.no_grad():
        clean = measures(c_logits[:, -1], pair.true_id, pair.false_id)[0]
        hijacked = measures(h_logits[:, -1], pair.true_id, pair.false_id)[0]
        restore = {}
        for kind in KINDS:
            rows = []
            for layer in range(n_layers):
                c_act = clean_store[(kind, layer)][0].float()
                h_act, g = acts[(kind, layer)][0].float(), grads[(kind, layer)][0]
                hs = [h - start for h, _ in pair.positions]
                cs = [c for _, c in pair.positions]
                deltas = ((c_act[cs] - h_act[hs]) * g[hs]).sum(-1).tolist()
                rows.append([mapped(hijacked, d) for d in deltas])
            restore[kind] = rows
        attn_last = {layer: acts[("attn", layer)][0, -1].float() for layer in range(n_layers)}
        knocked_attn, direct = {}, {}
        sets = {which: knock_keys(pair, which, knock_sink) for which in KEY_SETS}
        live = [which for which in KEY_SETS if sets[which].any()]
        for layer in range(n_layers):
            got = (knocked_attention(lm, layout, calls, kv, layer, [sets[w] for w in live], len(pair.ids))
                   if live else [])
            for which in KEY_SETS:
                a = got[live.index(which)] if which in live else attn_last[layer]
                knocked_attn[(which, layer)] = a
                direct[(which, layer)] = float(((a - attn_last[layer]) * grads[("attn", layer)][0, -1]).sum())
        knockout = {}
        for v in KNOCKOUTS:
            which = v.removesuffix("_window")
            which = "all" if which == "window" else which
            knockout[v] = [mapped(hijacked, sum(direct[(which, b)] for b in knock_layers(layer, v, window, n_layers)))
                           for layer in range(n_layers)]
        head_rows = []
        for layer in range(n_layers):
            if not heads:
                head_rows.append(())
                continue
            z = acts[("z", layer)][0, -1].float().reshape(n_heads, d_head)
            gz = grads[("z", layer)][0, -1].reshape(n_heads, d_head)
            head_rows.append(tuple(mapped(hijacked, d) for d in (-(z * gz)).sum(-1).tolist()))
        dla = direct_attribution(lm, layout, store, pair.true_id, pair.false_id)
    del calls, kv
    notes = () if any(pair.mentions) else ("no token of the prepended text mentions the false target: "
                                           "the mentions knockout masks nothing",)
    tr = Trace(lm.name, pair, clean, hijacked, restore, knockout, tuple(head_rows), dla, window, notes, knock_sink)
    return Estimate(tr, knocked_attn, attn_last)
