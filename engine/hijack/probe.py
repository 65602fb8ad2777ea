"""Next-token probes with a prefix KV-cache (the live view behind the hijack panel).

Leading-space rule: a target is scored exactly as given, as the text that follows the prompt.
After "The Eiffel Tower is in" write ``" Paris"`` (with the space), not ``"Paris"`` (a word-initial
piece that rarely follows a space-less boundary). The probability of a multi-token target is the
product of its token probabilities under teacher forcing; its rank is the rank of its first token in
the next-token distribution.

Exact target tokens (every tokenizer): a target's tokens are the ids that follow the prompt's ids in
ids(prompt + target), whenever the prompt's ids are a prefix of them. Tokenising the target alone is
wrong for SentencePiece tokenizers that add a dummy prefix space (Llama-2, Gemma-1/2: ``" Paris"``
alone becomes ``▁ ▁Paris`` or ``▁▁Paris`` instead of ``▁Paris``). When the prompt's ids are not a
prefix (the target's first characters merge with the prompt's last token), the target alone is used
and the result says so (``exact=False``).

``Prober`` keeps the keys/values of the previous prompt. A new prompt that shares a token prefix with
it reuses that prefix (the cache is cropped where the prompts diverge) and only the new tokens are
run: one forward per probe, the tracked targets' continuation tokens batched into the same call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from engine.errors import UserError


@dataclass(frozen=True)
class TokenProb:
    token: str
    token_id: int
    prob: float
    logit: float
    rank: int  # 1-based


@dataclass(frozen=True)
class TargetProb:
    target: str
    prob: float  # whole target continuing the prompt: product of its token probabilities
    first_token_prob: float
    rank: int  # 1-based rank of the first token in the next-token distribution
    n_tokens: int
    exact: bool = True  # False: scored by the target's own tokens (prompt ids not a prefix; see module doc)


@dataclass(frozen=True)
class LogitLens:
    """Per-layer read-out (final norm + unembedding) of the last position, first token of each target.

    ``probs`` and ``ranks`` are numpy arrays of shape (n_layers, n_targets); the last layer equals the
    model's output.
    """

    targets: tuple[str, ...]
    probs: object
    ranks: object


@dataclass(frozen=True)
class ProbeResult:
    prompt: str
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    top_k: tuple[TokenProb, ...]
    targets: tuple[TargetProb, ...]
    surprise: tuple[float, ...] | None = None  # -log p(token | prefix) in nats; nan for the first token
    logit_lens: LogitLens | None = None
    attention: object = None  # numpy (n_layers, n_heads, n_tokens): weights from the last position
    truncated: int = 0  # tokens cut from the left to fit the window
    reused_prefix: int = 0  # tokens served from the cache

    def target(self, text: str) -> TargetProb:
        return next(t for t in self.targets if t.target == text)


# ---------------------------------------------------------------------------------------------
# The shared primitive: extend a (batched, possibly padded) KV cache by right-padded token rows.


@dataclass
class KV:
    """Batched past keys/values per layer, shape (B, H, S, D), with a (B, S) validity mask."""

    layers: list
    mask: object

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def select(self, rows, width: int | None = None, valid=None) -> "KV":
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


def target_ids(lm, targets: Sequence[str]) -> list[list[int]]:
    """Token ids of each target alone (no special tokens); empty -> UserError. The fallback of
    ``continuation_ids``."""
    out = []
    for t in targets:
        ids = lm.encode(t, special=False) if isinstance(t, str) and t else []
        if not ids:
            raise UserError(f"target {t!r} is empty: give a non-empty string such as ' Paris'")
        out.append(ids)
    return out


def continuation_ids(lm, prompt: str, prompt_ids: Sequence[int], target: str) -> tuple[list[int], bool]:
    """(ids, exact): the ids that follow ``prompt_ids`` in ids(prompt + target) when ``prompt_ids``
    (= ``lm.encode(prompt)``) are a prefix of them, else the target's own ids and ``exact=False``."""
    if isinstance(target, str) and target:
        joint = lm.encode(prompt + target)
        k = len(prompt_ids)
        if len(joint) > k and list(joint[:k]) == list(prompt_ids):
            return list(joint[k:]), True
    return target_ids(lm, [target])[0], False


# ---------------------------------------------------------------------------------------------


class Prober:
    """Probes one model, reusing the KV-cache of the previous prompt's shared token prefix."""

    def __init__(self, lm):
        self.lm = lm
        self.reset()

    def reset(self) -> None:
        """Forget the cached prompt (the next probe runs in full)."""
        self._ids: list[int] = []
        self._kv: KV | None = None
        self._surprise: list[float] = []

    def probe(self, prompt: str, targets: Sequence[str] = (), top_k: int = 10, logit_lens: bool = False,
              attention: bool = False, surprise: bool = False) -> ProbeResult:
        """Top-k next tokens and the tracked targets' probabilities after ``prompt`` (see module doc)."""
        import torch

        if not isinstance(prompt, str) or not prompt.strip():
            raise UserError("the prompt is empty: type some text to probe")
        if top_k < 1:
            raise UserError(f"top-k must be at least 1, not {top_k}")
        targets = list(targets)
        target_ids(self.lm, targets)  # empty targets fail before any work
        full = self.lm.encode(prompt)
        if not full:
            raise UserError("the prompt has no tokens for this tokenizer")
        pairs = [continuation_ids(self.lm, prompt, full, t) for t in targets]
        t_ids = [p[0] for p in pairs]
        exact = [p[1] for p in pairs]
        longest = max((len(t) for t in t_ids), default=1)
        ids, cut = fit_window(self.lm, full, reserve=longest - 1)
        with torch.inference_mode():
            if attention:
                with self.lm.eager_attention():
                    return self._run(prompt, ids, cut, targets, t_ids, exact, top_k, logit_lens, True, surprise)
            return self._run(prompt, ids, cut, targets, t_ids, exact, top_k, logit_lens, False, surprise)

    def _start(self, ids, surprise) -> int:
        """How many leading tokens of ``ids`` the cache serves."""
        if self._kv is None:
            return 0
        start = min(common_prefix(ids, self._ids), len(ids) - 1)
        if surprise and start > 0:
            start -= 1  # the logits at start-1 score token `start`
            if any(math.isnan(s) for s in self._surprise[1:start + 1]):
                start = 0
        return start

    def _run(self, prompt, ids, cut, targets, t_ids, exact, top_k, lens, attention, surprise):
        import numpy as np
        import torch

        lm = self.lm
        multi = [i for i, t in enumerate(t_ids) if len(t) > 1]
        row_of = {i: r for r, i in enumerate(multi)}
        start = self._start(ids, surprise)
        limit = lm.kv_limit
        total = len(ids) + max((len(t) - 1 for t in t_ids), default=0)
        if limit is not None and total > limit:
            start = 0  # beyond a sliding window a cached prefix is no longer exact: full forward
        new = ids[start:]
        rows = [new + t_ids[i][:-1] for i in multi] or [new]
        width = max(len(r) for r in rows)
        first = 0 if surprise else len(new) - 1  # first column whose logits we need
        past = None
        if start > 0:
            past = KV([(k[:, :, :start].expand(len(rows), -1, -1, -1), v[:, :, :start].expand(len(rows), -1, -1, -1))
                       for k, v in self._kv.layers], torch.ones((len(rows), start), dtype=torch.long))
        logits, out, kv = extend(lm, past, rows, keep=width - first, hidden_states=lens, attentions=attention)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (R, width-first, V)
        last = len(new) - 1 - first
        next_logits = logits[0, last].float()
        next_logp = logp[0, last]
        probs = next_logp.exp()

        k = min(top_k, probs.shape[-1])
        top = torch.topk(next_logits, k)
        top_ids = top.indices.tolist()
        names = lm.decode_tokens(top_ids)
        top_list = tuple(TokenProb(names[j], top_ids[j], float(probs[top_ids[j]]), float(top.values[j]), j + 1)
                         for j in range(k))

        result_targets = []
        for i, (text, tids) in enumerate(zip(targets, t_ids)):
            p_first = float(probs[tids[0]])
            total = float(next_logp[tids[0]])
            r = row_of.get(i)
            for j, tok in enumerate(tids[1:], start=1):
                total += float(logp[r, last + j, tok])
            rank = int((probs > probs[tids[0]]).sum()) + 1
            result_targets.append(TargetProb(text, math.exp(total), p_first, rank, len(tids), exact[i]))

        surp = None
        if surprise:
            fresh = [float("nan")] if start == 0 else []
            for j in range(1, len(new)):
                fresh.append(-float(logp[0, j - 1 - first, new[j]]))
            known = self._surprise[:start + 1] if start > 0 else []
            surp_list = known + fresh
            surp = tuple(surp_list)
        else:
            surp_list = (self._surprise[:start] + [float("nan")] * len(new)) if start > 0 else [float("nan")] * len(ids)

        lens_result = None
        if lens:
            pos = len(new) - 1
            hs = torch.stack([h[0, pos] for h in out.hidden_states[1:-1]])  # raw block outputs
            layer_logp = torch.log_softmax(lm.lens_logits(hs), dim=-1)
            layer_logp = torch.cat([layer_logp, next_logp[None]], dim=0)
            firsts = torch.as_tensor([t[0] for t in t_ids], dtype=torch.long, device=layer_logp.device)
            chosen = layer_logp[:, firsts]  # (L, T)
            ranks = (layer_logp[:, None, :] > chosen[:, :, None]).sum(-1) + 1
            lens_result = LogitLens(tuple(targets), chosen.exp().cpu().numpy(), ranks.cpu().numpy())

        att = None
        if attention:
            pos = len(new) - 1
            n_keys = start + len(new)
            att = np.stack([a[0, :, pos, :n_keys].float().cpu().numpy() for a in out.attentions])

        if kv is not None:
            self._kv = KV([(k[:1, :, :len(ids)], v[:1, :, :len(ids)]) for k, v in kv.layers], None)
            self._ids = list(ids)
            self._surprise = surp_list
        else:
            self.reset()
        return ProbeResult(prompt=prompt, token_ids=tuple(ids), tokens=tuple(lm.decode_tokens(ids)),
                           top_k=top_list, targets=tuple(result_targets), surprise=surp,
                           logit_lens=lens_result, attention=att, truncated=cut, reused_prefix=start)
