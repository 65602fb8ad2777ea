"""Where the parts of a decoder live: blocks, their attention and MLP outputs, the per-head outputs,
the final norm and the unembedding, for every causal LM family the project loads.

Names follow TransformerLens' hook points: a block's output is ``resid_post`` (the residual stream
after block l), its attention output ``attn_out`` (the attention module's output, before a Gemma-2/3
post-attention norm), its MLP output ``mlp_out``, and the per-head outputs ``z`` are the input of the
attention's output projection (``o_proj`` / ``c_proj`` / ``dense``: the heads concatenated, H × d_head).

Layouts located: Llama family (Llama-2/3, SmolLM2, Mistral, Qwen2: ``model.layers[i].self_attn.o_proj``),
Gemma-1/2/3 (the same paths; Gemma-2/3 add ``post_attention_layernorm`` and ``post_feedforward_layernorm``
in front of the residual adds), GPT-2 (``transformer.h[i].attn.c_proj``), GPT-NeoX (``gpt_neox.layers[i]
.attention.dense``). Anything else raises one ``UserError`` naming the model class.

``frozen_norm`` is the norm with its scale frozen at the value a given input sets (the standard direct
logit attribution): linear in the component, so the components of the residual stream sum exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import UserError

_BLOCK_PATHS = ("model.layers", "model.language_model.layers", "model.decoder.layers", "transformer.h",
                "gpt_neox.layers")
_ATTN = ("self_attn", "attn", "attention")
_OUT_PROJ = ("o_proj", "c_proj", "dense", "out_proj")


@dataclass(frozen=True)
class Block:
    """One decoder block (the module whose output is ``resid_post``) and its parts."""

    index: int
    module: Any
    attn: Any  # output[0] is attn_out
    mlp: Any
    out_proj: Any  # input is z: the heads' outputs concatenated
    post_attn_norm: Any = None  # Gemma-2/3: applied to attn_out before the residual add
    post_mlp_norm: Any = None


@dataclass(frozen=True)
class Layout:
    blocks: tuple[Block, ...]
    n_heads: int
    d_head: int
    final_norm: Any
    unembed: Any
    family: str

    @property
    def n_layers(self) -> int:
        return len(self.blocks)


def _path(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _first(obj, names):
    for name in names:
        found = getattr(obj, name, None)
        if found is not None:
            return found
    return None


def locate(lm) -> Layout:
    """The decoder's parts (module doc); cached on ``lm``. Unknown layouts raise ``UserError``."""
    cached = getattr(lm, "_layout", None)
    if cached is not None:
        return cached
    model = lm.model
    name = type(model).__name__
    layers = next((found for p in _BLOCK_PATHS if (found := _path(model, p)) is not None), None)
    from engine.hijack.lm import _final_norm

    norm, head = _final_norm(model), model.get_output_embeddings()
    if layers is None or norm is None or head is None or len(layers) == 0:
        raise UserError(f"cannot trace {name}: its decoder blocks, final norm or unembedding are not where "
                        "Llama, Gemma, GPT-2 or GPT-NeoX keep them")
    blocks = []
    for i, block in enumerate(layers):
        attn, mlp = _first(block, _ATTN), getattr(block, "mlp", None)
        out_proj = _first(attn, _OUT_PROJ) if attn is not None else None
        if attn is None or mlp is None or out_proj is None:
            raise UserError(f"cannot trace {name}: block {i} has no attention output projection or MLP "
                            "under the names Llama, Gemma, GPT-2 or GPT-NeoX use")
        sandwich = hasattr(block, "pre_feedforward_layernorm")  # Gemma-2/3: post-norms before the adds
        blocks.append(Block(i, block, attn, mlp, out_proj,
                            getattr(block, "post_attention_layernorm", None) if sandwich else None,
                            getattr(block, "post_feedforward_layernorm", None) if sandwich else None))
    cfg = model.config.get_text_config()
    n_heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", None)
    width = _in_features(blocks[0].out_proj)
    if not n_heads or not width or width % n_heads:
        raise UserError(f"cannot trace {name}: the attention output projection's width {width} is not "
                        f"a multiple of its {n_heads} heads")
    layout = Layout(tuple(blocks), int(n_heads), width // int(n_heads), norm, head, name)
    try:
        lm._layout = layout
    except AttributeError:
        pass
    return layout


def _in_features(proj) -> int | None:
    if hasattr(proj, "in_features"):
        return int(proj.in_features)
    weight = getattr(proj, "weight", None)  # GPT-2's Conv1D keeps (in, out)
    return int(weight.shape[0]) if weight is not None and type(proj).__name__ == "Conv1D" else None


def first_tensor(output):
    """The hidden states of a module's output (a tensor, or a tuple/list whose first item is one)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def replace_first(output, tensor):
    if isinstance(output, tuple):
        return (tensor, *output[1:])
    if isinstance(output, list):
        return [tensor, *output[1:]]
    return tensor


def frozen_norm(norm, x, c):
    """``norm`` applied to the component ``c`` of its input ``x`` with the scale frozen at ``x``'s:
    RMSNorm ``c · g / rms(x)`` (Gemma's gain is ``1 + w``), LayerNorm ``(c − mean c) · g / σ(x)``
    (no bias: it is added once, to the whole). Linear in ``c``; ``frozen_norm(norm, x, x)`` plus the
    bias is ``norm(x)`` (``check_frozen_norm``)."""
    import torch

    x, c = x.float(), c.float()
    eps = float(getattr(norm, "eps", None) or getattr(norm, "variance_epsilon", None) or 1e-6)
    centred = isinstance(norm, torch.nn.LayerNorm)
    if centred:
        scale = torch.rsqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
        c = c - c.mean(-1, keepdim=True)
    else:
        scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    weight = getattr(norm, "weight", None)
    gain = 1.0 if weight is None else weight.float()
    if weight is not None and type(norm).__name__.startswith("Gemma"):
        gain = 1.0 + gain
    return c * scale * gain


def norm_bias(norm):
    import torch

    bias = getattr(norm, "bias", None)
    return torch.zeros(()) if bias is None else bias.float()


def norm_f32(norm, x):
    """``norm`` (the module's own code) run in float32 on ``x`` upcast: a float32 copy of the module, so
    bf16/fp16 weights and rounding play no part (the reference of ``check_frozen_norm``)."""
    import copy

    return copy.deepcopy(norm).float()(x.float()).float()


def check_frozen_norm(norm, x, family: str, rtol: float = 1e-3) -> None:
    """Refuse to attribute through a norm ``frozen_norm`` does not reproduce: ``frozen_norm(x, x)`` plus
    the bias against the norm module run in float32 on the same input (``norm_f32``), both in float32,
    so the model's dtype plays no part; the message says what was compared and by how much."""
    import torch

    want = norm_f32(norm, x)
    got = frozen_norm(norm, x, x) + norm_bias(norm).to(want.device)
    err, scale = float((got - want).abs().max()), float(want.abs().max())
    if not err <= rtol * scale + 1e-5:
        raise UserError(f"cannot attribute through the norm {type(norm).__name__} of {family}: the frozen-scale "
                        f"RMSNorm/LayerNorm formula differs from the module run in float32 by {err:.3g} (largest "
                        f"|norm(x)| {scale:.3g}, allowed {rtol:g} of it) at the last position")
    if not torch.isfinite(want).all():
        raise UserError(f"the final norm of {family} gives non-finite values (the activations overflow)")


#: Attention implementations whose mask the trace's hooks can edit (flash kernels take no mask with
#: holes; flex attention builds its own block mask).
TRACE_ATTENTION = ("eager", "sdpa")


def check_attention(lm) -> None:
    """One clear ``UserError`` before any trace work when the model runs an attention implementation the
    knockout hooks cannot edit (flash_attention_2/3, flex_attention, kernels)."""
    impl = getattr(lm.model.config, "_attn_implementation", None) or getattr(lm, "attn_implementation", "sdpa")
    if str(impl) not in TRACE_ATTENTION:
        raise UserError(f"{lm.name} runs attention as {impl!r}: the trace's hooks edit the attention mask, which "
                        "only 'sdpa' and 'eager' take: load it with attn_implementation='sdpa' or 'eager'")
