"""Row-wise interventions on one batched forward, as forward hooks that are removed on every path.

An ``Edit`` changes one row of the batch at one column (a position of the tokens this forward runs):
- ``restore``: the output of ``resid_post`` / ``attn_out`` / ``mlp_out`` of block ``layer`` replaced
  by a given vector (the clean run's, in causal tracing);
- ``zero_head``: head ``head`` of block ``layer`` zeroed in ``z`` (the input of the attention's output
  projection): the head's whole contribution removed at that position (zero ablation);
- ``knock``: in block ``layer`` the query at ``col`` may not attend to the key slots in ``keys``
  (masked before the softmax, so the weights renormalise over the rest).

``apply(layout, edits)`` is a context manager; many edits of many rows share one hook per
(block, kind). Names of the parts: ``engine.hijack.blocks``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from engine.hijack.blocks import Layout, first_tensor, replace_first
from engine.hijack.measures import RESTORE_KINDS as KINDS  # resid_post, attn_out, mlp_out


@dataclass(frozen=True)
class Edit:
    kind: str  # "resid" | "attn" | "mlp" | "zero_head" | "knock"
    layer: int
    row: int
    col: int
    value: object = None  # restore: the vector (d_model,)
    head: int = -1  # zero_head
    keys: object = None  # knock: bool tensor (key slots,), True = may not be attended


@contextmanager
def hooks(handles: list):
    """Remove every handle in ``handles`` when the block ends, however it ends."""
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()


def _restore_hook(group: Sequence[Edit]):
    import torch

    rows = [e.row for e in group]
    cols = [e.col for e in group]
    values = torch.stack([e.value for e in group])

    def hook(_module, _args, output):
        hidden = first_tensor(output).clone()
        hidden[rows, cols] = values.to(hidden)
        return replace_first(output, hidden)

    return hook


def _zero_head_hook(group: Sequence[Edit], d_head: int):
    def hook(_module, args):
        z = args[0].clone()
        for e in group:
            z[e.row, e.col, e.head * d_head:(e.head + 1) * d_head] = 0
        return (z, *args[1:])

    return hook


def knock_mask(mask, group: Sequence[Edit], batch: int, n_query: int, n_keys: int, eager: bool, dtype, device):
    """The block's attention mask with the knocked-out keys of each edit's (row, query) masked.

    ``mask`` is the one the model built (bool where True attends, or additive float) or None (full
    causal attention, which ``sdpa`` then expresses as ``is_causal``)."""
    import torch

    if mask is None:
        allowed = torch.ones((n_query, n_keys), dtype=torch.bool, device=device).tril(n_keys - n_query)
        allowed = allowed[None, None].expand(batch, 1, n_query, n_keys)
        mask = allowed if not eager else torch.zeros((batch, 1, n_query, n_keys), dtype=dtype,
                                                     device=device).masked_fill(~allowed, torch.finfo(dtype).min)
    mask = mask[..., :n_keys].expand(batch, mask.shape[1], n_query, n_keys).clone()
    for e in group:
        keys = e.keys.to(device)[:n_keys]
        if mask.dtype == torch.bool:
            mask[e.row, :, e.col, keys] = False
        else:
            mask[e.row, :, e.col, keys] = torch.finfo(mask.dtype).min
    return mask


def _knock_hook(group: Sequence[Edit], eager: bool):
    def hook(_module, args, kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        batch, n_query = hidden.shape[0], hidden.shape[1]
        cache = find_cache(kwargs)
        past = 0 if cache is None else int(cache.get_seq_length(_module_layer(_module)))
        kwargs["attention_mask"] = knock_mask(kwargs.get("attention_mask"), group, batch, n_query, past + n_query,
                                              eager, hidden.dtype, hidden.device)
        return args, kwargs

    return hook


def find_cache(kwargs: dict):
    """The KV cache an attention module was handed, whatever its family calls it (``past_key_values``
    on Llama/Gemma, ``layer_past`` on GPT-NeoX and GPT-2, ``cache`` elsewhere): the one keyword
    value with ``get_seq_length``; None without one."""
    return next((v for v in kwargs.values() if hasattr(v, "get_seq_length")), None)


def _module_layer(module) -> int:
    return int(getattr(module, "layer_idx", 0) or 0)


@contextmanager
def apply(layout: Layout, edits: Iterable[Edit], eager: bool = False):
    """Install the hooks that carry out ``edits`` on the next forward(s); removed on exit."""
    groups: dict[tuple[str, int], list[Edit]] = defaultdict(list)
    for e in edits:
        groups[(e.kind, e.layer)].append(e)
    handles = []
    with hooks(handles):
        for (kind, layer), group in groups.items():
            block = layout.blocks[layer]
            if kind in KINDS:
                module = {"resid": block.module, "attn": block.attn, "mlp": block.mlp}[kind]
                handles.append(module.register_forward_hook(_restore_hook(group)))
            elif kind == "zero_head":
                handles.append(block.out_proj.register_forward_pre_hook(_zero_head_hook(group, layout.d_head)))
            elif kind == "knock":
                handles.append(block.attn.register_forward_pre_hook(_knock_hook(group, eager), with_kwargs=True))
            else:
                raise ValueError(f"unknown edit kind {kind!r}")
        yield


@contextmanager
def capture(layout: Layout, store: dict, cols=None):
    """Record ``resid_post`` / ``attn_out`` / ``mlp_out`` (B, T, d), ``z`` (B, T, H·d_head) per block, the
    residual in front of block 0 (``resid_pre0``) and in front of the final norm (``resid_final``) into
    ``store`` (``cols``: keep only those columns)."""

    def keep(tensor):
        tensor = tensor.detach()
        return tensor if cols is None else tensor[:, cols]

    def out_hook(key):
        def hook(_module, _args, output):
            store[key] = keep(first_tensor(output))
        return hook

    def in_hook(key):
        def hook(_module, args, kwargs):
            store[key] = keep(kwargs.get("hidden_states", args[0] if args else None))
        return hook

    handles = []
    with hooks(handles):
        for b in layout.blocks:
            handles.append(b.module.register_forward_hook(out_hook(("resid", b.index))))
            handles.append(b.attn.register_forward_hook(out_hook(("attn", b.index))))
            handles.append(b.mlp.register_forward_hook(out_hook(("mlp", b.index))))
            handles.append(b.out_proj.register_forward_pre_hook(
                lambda _m, args, i=b.index: store.__setitem__(("z", i), keep(args[0]))))
        handles.append(layout.blocks[0].module.register_forward_pre_hook(in_hook("resid_pre0"), with_kwargs=True))
        handles.append(layout.final_norm.register_forward_pre_hook(in_hook("resid_final"), with_kwargs=True))
        yield store
