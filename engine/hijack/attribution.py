"""Direct logit attribution at the last position of a traced run (``engine.hijack.trace``): each
piece's contribution to logit(true) − logit(false), through the frozen norms (``blocks.frozen_norm``)."""

from __future__ import annotations

import math

from engine.errors import UserError
from engine.hijack.blocks import check_frozen_norm, frozen_norm, norm_bias, norm_f32


def direct_attribution(lm, layout, store: dict, true_id: int, false_id: int) -> dict:
    """Each piece's direct contribution to ``logit_diff`` at the captured last position (module doc):
    ``embed`` (the residual in front of block 0), per block ``attn`` and ``mlp`` (after a Gemma-2/3
    post-norm), per head ``heads`` (each head's share of ``attn``, bias excluded) and ``bias`` (the
    final norm's and the unembedding's); embed + Σ attn + Σ mlp + bias is the logit difference.
    All in float32 whatever the model's dtype: the captured activations, the output projection's and
    the unembedding's rows and the norms are upcast (a bf16 model's pieces then sum to its own logit
    difference up to the rounding of its residual stream)."""
    import torch

    w = layout.unembed.weight
    direction = w[true_id].float() - w[false_id].float()
    x = store["resid_final"][0, -1].float()
    check_frozen_norm(layout.final_norm, x, layout.family)

    def logit(c):
        return (frozen_norm(layout.final_norm, x, c) * direction).sum(-1)

    bias = float((norm_bias(layout.final_norm).to(direction) * direction).sum())
    ub = getattr(layout.unembed, "bias", None)
    if ub is not None:
        bias += float(ub[true_id].float() - ub[false_id].float())
    attn, mlp, heads = [], [], []
    for b in layout.blocks:
        a, m = store[("attn", b.index)][0, -1].float(), store[("mlp", b.index)][0, -1].float()
        z = store[("z", b.index)][0, -1].float().reshape(layout.n_heads, layout.d_head)
        w_o = out_weight(b.out_proj).reshape(-1, layout.n_heads, layout.d_head)  # (d_model, H, d_head)
        per_head = torch.einsum("dhk,hk->hd", w_o, z)  # head h's slice of W_O times its z_h
        if b.post_attn_norm is not None:
            per_head = frozen_norm(b.post_attn_norm, a, per_head)
            a = norm_f32(b.post_attn_norm, a)
        if b.post_mlp_norm is not None:
            m = norm_f32(b.post_mlp_norm, m)
        attn.append(float(logit(a)))
        mlp.append(float(logit(m)))
        heads.append([float(v) for v in logit(per_head)])
    embed = float(logit(store["resid_pre0"][0, -1].float()))
    if not all(math.isfinite(v) for v in attn + mlp + [embed]):
        raise UserError("the direct attribution is not finite (the model's activations overflow)")
    return {"embed": embed, "attn": attn, "mlp": mlp, "heads": heads, "bias": bias}


def out_weight(proj):
    """The output projection's weight as (d_model, H·d_head) in float32 (GPT-2's Conv1D keeps it
    transposed)."""
    w = proj.weight.float()
    return w.t() if type(proj).__name__ == "Conv1D" else w
