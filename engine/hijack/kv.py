"""The KV cache on its own: ``KV`` (batched past keys/values with a validity mask), ``extend`` (run
token rows after a cache, the one forward every probe and sweep makes), ``fit_window`` (left-truncate
to the model's window) and ``common_prefix`` (how much of a cached prompt a new one reuses).

Used by ``Prober`` (engine.hijack.probe) and the efficacy sweep (engine.hijack.efficacy); nothing here
knows about targets or scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class KV:
    """Batched past keys/values per layer, shape (B, H, S, D), with a (B, S) validity mask."""

    layers: list
    mask: object

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def select(self, rows, width: int | None = None, valid=None) -> KV:
        """Rows ``rows`` (repeats allowed) cut to ``width`` slots; ``valid`` overrides the mask."""
        import torch

        idx = torch.as_tensor(rows, dtype=torch.long, device=self.mask.device)
        w = self.width if width is None else width
        layers = [(k.index_select(0, idx)[:, :, :w], v.index_select(0, idx)[:, :, :w]) for k, v in self.layers]
        mask = self.mask.index_select(0, idx)[:, :w] if valid is None else valid
        return KV(layers, mask)


def pad_rows(rows: Sequence[Sequence[int]], device, left: bool = False):
    """(ids, mask) of rows padded to one width, on the right (or on the left with ``left``)."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        cols = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, cols] = torch.as_tensor(list(r), dtype=torch.long)
        mask[i, cols] = 1
    return ids.to(device), mask.to(device)


def extend(lm, past: KV | None, rows: Sequence[Sequence[int]], keep: int | None = None,
           hidden_states: bool = False, attentions: bool = False, want_cache: bool = True,
           left: bool = False):
    """Run token ``rows`` after ``past``; returns (logits of the last ``keep`` columns, output, KV).

    Rows are right-padded, or left-padded with ``left`` (their ends line up, so ``keep`` can be
    small). Positions count only valid slots, so padded and cropped caches give the same numbers as
    unpadded prompts. ``keep=None`` returns logits for every column.

    Sliding-window models (``lm.kv_limit``): a cache is returned only when every slot fits inside the
    window, and a ``past`` that would overflow it is refused (the caller falls back to full rows):
    the window is counted in cache slots, padding included, as transformers' masks count it.
    """
    import torch
    from transformers import DynamicCache

    ids, new_mask = pad_rows(rows, lm.device, left=left)
    limit = lm.kv_limit
    if past is not None:
        if limit is not None and past.width + ids.shape[1] > limit:
            raise ValueError(f"{past.width + ids.shape[1]} cache slots exceed the sliding window of {limit}")
        mask = torch.cat([past.mask.to(new_mask), new_mask], dim=1)
        start = past.mask.sum(dim=1, keepdim=True).to(new_mask)
        cache = DynamicCache(ddp_cache_data=past.layers)
    else:
        mask, start = new_mask, torch.zeros((len(rows), 1), dtype=torch.long, device=new_mask.device)
        fits = limit is None or ids.shape[1] <= limit
        cache = DynamicCache() if (want_cache and lm.kv_reuse and fits) else None
    positions = (start + new_mask.cumsum(dim=1) - 1).clamp_(min=0, max=lm.max_length - 1)
    kwargs = {cache_kwarg(lm): cache}
    if keep is not None and _accepts_logits_to_keep(lm):
        kwargs["logits_to_keep"] = keep
    out = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=cache is not None,
                   output_hidden_states=hidden_states, output_attentions=attentions, **kwargs)
    logits = out.logits
    if keep is not None and logits.shape[1] != keep:
        logits = logits[:, -keep:]
    kv = None
    if cache is not None:
        kv = KV([(layer.keys, layer.values) for layer in cache.layers], mask)  # updated in place
    return logits, out, kv


def _forward_params(lm):
    import inspect

    return inspect.signature(lm.model.forward).parameters


def _accepts_logits_to_keep(lm) -> bool:
    flag = getattr(lm, "_logits_to_keep", None)
    if flag is None:
        flag = "logits_to_keep" in _forward_params(lm)
        lm._logits_to_keep = flag
    return flag


def cache_kwarg(lm) -> str:
    """The name ``forward`` takes the KV cache by: ``cache`` (transformers >= 5.24; the old name is
    deprecated) or ``past_key_values``."""
    name = getattr(lm, "_cache_kwarg", None)
    if name is None:
        params = _forward_params(lm)
        name = "cache" if "cache" in params and "past_key_values" not in params else "past_key_values"
        try:
            lm._cache_kwarg = name
        except AttributeError:
            pass
    return name


def fit_window(lm, ids: list[int], reserve: int = 0) -> tuple[list[int], int]:
    """Left-truncate ``ids`` to the window minus ``reserve`` (keeping a leading BOS); returns (ids, cut)."""
    budget = max(2, lm.max_length - reserve)
    if len(ids) <= budget:
        return ids, 0
    bos = lm.tokenizer.bos_token_id
    keep_bos = bos is not None and ids and ids[0] == bos
    cut = len(ids) - budget
    return ([bos] + ids[1 + cut:] if keep_bos else ids[cut:]), cut


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
