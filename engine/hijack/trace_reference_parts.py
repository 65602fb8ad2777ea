"""Where each model family keeps its parts, for the plain causal trace (``engine.hijack.trace_reference``):
its own table, sharing nothing with the fast trace's ``engine.hijack.blocks``. ``parts(lm)`` -> the
blocks, attention and MLP modules, output projections, norms and unembedding of a model by its
``model_type`` (``FAMILIES``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import UserError

# model_type -> (blocks, attention, output projection, final norm, unembedding, norm math, eps key, sandwich)
_LLAMA = ("model.layers", "self_attn", "o_proj", "model.norm", "lm_head", "rms", "rms_norm_eps", False)
_GEMMA = ("model.layers", "self_attn", "o_proj", "model.norm", "lm_head", "rms_1p", "rms_norm_eps", False)
_GEMMA_SANDWICH = ("model.layers", "self_attn", "o_proj", "model.norm", "lm_head", "rms_1p", "rms_norm_eps", True)
FAMILIES = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "gemma": _GEMMA,
    "gemma2": _GEMMA_SANDWICH,
    "gemma3_text": _GEMMA_SANDWICH,
    "gemma3": ("model.language_model.layers", "self_attn", "o_proj", "model.language_model.norm", "lm_head",
               "rms_1p", "rms_norm_eps", True),
    "gpt2": ("transformer.h", "attn", "c_proj", "transformer.ln_f", "lm_head", "layer", "layer_norm_epsilon", False),
    "gpt_neox": ("gpt_neox.layers", "attention", "dense", "gpt_neox.final_layer_norm", "lm_head", "layer",
                 "layer_norm_eps", False),
}


@dataclass(frozen=True)
class Parts:
    blocks: list  # the decoder layer modules (output: resid_post)
    attn: list  # attention modules (output[0]: attn_out)
    mlp: list
    out_proj: list  # input: z, the heads concatenated
    post_attn: list  # Gemma-2/3 post-attention norms (None elsewhere)
    final_norm: Any
    unembed: Any  # weight (V, d)
    norm: str  # "rms" | "rms_1p" | "layer": the math of every norm of the family
    eps: float
    n_heads: int
    d_head: int
    conv1d: bool  # GPT-2: out_proj.weight is (in, out)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)


def _get(obj, dotted: str):
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def parts(lm) -> Parts:
    """The model's parts by its family (``FAMILIES``); other families raise ``UserError``."""
    model = lm.model
    cfg = model.config
    kind = getattr(cfg, "model_type", None)
    if kind not in FAMILIES:
        raise UserError(f"the plain reference trace knows {', '.join(FAMILIES)}, not {kind!r}")
    layers, attn_name, out_name, final, head, norm, eps_key, sandwich = FAMILIES[kind]
    text = cfg.get_text_config() if kind == "gemma3" else cfg
    blocks = list(_get(model, layers))
    attn = [getattr(b, attn_name) for b in blocks]
    out_proj = [getattr(a, out_name) for a in attn]
    if sandwich and not all(hasattr(b, "pre_feedforward_layernorm") for b in blocks):
        raise UserError(f"{kind}: expected Gemma-2/3 sandwich norms (pre_feedforward_layernorm)")
    post_attn = [b.post_attention_layernorm if sandwich else None for b in blocks]
    if kind == "gpt2":
        n_heads, d_model = int(text.n_head), int(text.n_embd)
        d_head = d_model // n_heads
    else:
        n_heads = int(text.num_attention_heads)
        d_head = int(getattr(text, "head_dim", None) or text.hidden_size // n_heads)
    conv1d = kind == "gpt2"
    width = out_proj[0].weight.shape[0 if conv1d else 1]
    if width != n_heads * d_head:
        raise UserError(f"{kind}: the output projection takes {width} inputs, not {n_heads} x {d_head}")
    return Parts(blocks, attn, [b.mlp for b in blocks], out_proj, post_attn, _get(model, final),
                 _get(model, head), norm, float(getattr(text, eps_key)), n_heads, d_head, conv1d)
