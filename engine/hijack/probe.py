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

The KV-cache plumbing (``KV``, ``extend``, ``fit_window``) lives in ``engine.hijack.kv``; this module
holds the result types, target tokenisation and ``Prober``. ``Prober`` keeps the keys/values of the
previous prompt. A new prompt that shares a token prefix with
it reuses that prefix (the cache is cropped where the prompts diverge) and only the new tokens are
run: one forward per probe, the tracked targets' continuation tokens batched into the same call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import UserError
from engine.hijack.kv import KV, common_prefix, extend, fit_window


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
class TargetLens:
    """Per-layer logit-lens logits of each tracked target's first token at the last prompt position.

    ``logits`` is a numpy array of shape (n_layers, n_targets): row i < n_layers − 1 is block i + 1's
    output read out by the final norm and the target rows of the unembedding (``lm.lens_target_logits``,
    soft-capped like the model's logits); the last row is the model's own next-token logits. Only the
    targets' rows are computed, so it costs a few dot products per layer, not a vocabulary matmul.
    """

    targets: tuple[str, ...]
    token_ids: tuple[int, ...]  # each target's first token
    logits: object

    def logit_diff(self, true: str, false: str):
        """``logit(true) − logit(false)`` per layer (numpy, shape (n_layers,)) of two tracked targets.

        Under the logit lens this is the lens's log-odds of the two targets, log p(true) − log p(false)
        (the softmax's normaliser cancels), so it equals the difference of ``LogitLens`` log-probs. The
        last row is the model's own logit difference, the quantity the causal trace measures and the
        Trace view plots (``engine.hijack.trace``: ``logit_diff = logit_true − logit_false``).
        """
        i, j = self.targets.index(true), self.targets.index(false)
        return self.logits[:, i] - self.logits[:, j]


@dataclass(frozen=True)
class ProbeResult:
    prompt: str
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    top_k: tuple[TokenProb, ...]
    targets: tuple[TargetProb, ...]
    surprise: tuple[float, ...] | None = None  # -log p(token | prefix) in nats; nan for the first token
    logit_lens: LogitLens | None = None
    target_lens: TargetLens | None = None
    attention: object = None  # numpy (n_layers, n_heads, n_tokens): weights from the last position
    truncated: int = 0  # tokens cut from the left to fit the window
    reused_prefix: int = 0  # tokens served from the cache

    def target(self, text: str) -> TargetProb:
        return next(t for t in self.targets if t.target == text)


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


#: The optional read-outs a probe adds to its top-k, by the ``ProbeResult`` field each fills:
#: per-token surprise, the logit lens over the blocks, the last position's attention, and the logit
#: lens of the tracked targets' first tokens only (``TargetLens``: cheap, no vocabulary matmul).
ANALYSES = ("surprise", "logit_lens", "attention", "target_lens")


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

    def probe(self, prompt: str, targets: Sequence[str] = (), top_k: int = 10,
              analyses: Sequence[str] = ()) -> ProbeResult:
        """Top-k next tokens and the tracked targets' probabilities after ``prompt`` (see module doc),
        plus the read-outs named in ``analyses`` (any of ``ANALYSES``)."""
        import torch

        unknown = sorted(set(analyses) - set(ANALYSES))
        if unknown:
            raise UserError(f"unknown probe analysis {', '.join(unknown)}: choose from {', '.join(ANALYSES)}")
        surprise, logit_lens, attention, target_lens = (name in analyses for name in ANALYSES)
        reads = (logit_lens, target_lens, surprise)
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
                    return self._run(prompt, ids, cut, targets, t_ids, exact, top_k, True, *reads)
            return self._run(prompt, ids, cut, targets, t_ids, exact, top_k, False, *reads)

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

    def _run(self, prompt, ids, cut, targets, t_ids, exact, top_k, attention, lens, target_lens, surprise):
        """One forward over the tokens the cache does not serve, then the read-outs."""
        import torch

        lm = self.lm
        start = self._reusable(ids, t_ids, surprise)
        new = ids[start:]
        multi = [i for i, t in enumerate(t_ids) if len(t) > 1]
        rows = [new + t_ids[i][:-1] for i in multi] or [new]  # row 0 is the prompt, then one per long target
        first = 0 if surprise else len(new) - 1  # first column whose logits we need
        logits, out, kv = extend(lm, self._past(start, len(rows)), rows, keep=max(len(r) for r in rows) - first,
                                 hidden_states=lens or target_lens, attentions=attention)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (R, width-first, V)
        last = len(new) - 1 - first
        next_logp = logp[0, last]
        probs = next_logp.exp()
        top_list = self._top(logits[0, last].float(), probs, top_k)
        row_of = {i: r for r, i in enumerate(multi)}
        result_targets = [self._target(text, tids, exact[i], probs, next_logp, logp, row_of.get(i), last)
                          for i, (text, tids) in enumerate(zip(targets, t_ids))]
        surp, surp_list = self._surprises(ids, new, start, first, logp, surprise)
        lens_result = self._lens(out, len(new) - 1, next_logp, targets, t_ids) if lens else None
        tl = self._target_lens(out, len(new) - 1, logits[0, last], targets, t_ids) if target_lens else None
        att = self._attention(out, len(new) - 1, start + len(new)) if attention else None
        self._remember(kv, ids, surp_list)
        return ProbeResult(prompt=prompt, token_ids=tuple(ids), tokens=tuple(lm.decode_tokens(ids)),
                           top_k=top_list, targets=tuple(result_targets), surprise=surp,
                           logit_lens=lens_result, target_lens=tl, attention=att, truncated=cut, reused_prefix=start)

    def _reusable(self, ids, t_ids, surprise) -> int:
        """The cached prefix this probe may reuse: ``_start``, or 0 when prompt and targets overflow a
        sliding window (a cached prefix is no longer exact there: full forward)."""
        limit = self.lm.kv_limit
        total = len(ids) + max((len(t) - 1 for t in t_ids), default=0)
        if limit is not None and total > limit:
            return 0
        return self._start(ids, surprise)

    def _past(self, start: int, n_rows: int) -> KV | None:
        """The first ``start`` cached slots, repeated for ``n_rows`` rows (None for no reuse)."""
        import torch

        if start <= 0:
            return None
        return KV([(k[:, :, :start].expand(n_rows, -1, -1, -1), v[:, :, :start].expand(n_rows, -1, -1, -1))
                   for k, v in self._kv.layers], torch.ones((n_rows, start), dtype=torch.long))

    def _top(self, next_logits, probs, top_k: int) -> tuple[TokenProb, ...]:
        import torch

        k = min(top_k, probs.shape[-1])
        top = torch.topk(next_logits, k)
        top_ids = top.indices.tolist()
        names = self.lm.decode_tokens(top_ids)
        return tuple(TokenProb(names[j], top_ids[j], float(probs[top_ids[j]]), float(top.values[j]), j + 1)
                     for j in range(k))

    @staticmethod
    def _target(text, tids, exact, probs, next_logp, logp, row, last) -> TargetProb:
        """A target's probability under teacher forcing: its first token from the prompt's row, the
        rest from its own row ``row``; its rank is its first token's."""
        p_first = float(probs[tids[0]])
        total = float(next_logp[tids[0]])
        for j, tok in enumerate(tids[1:], start=1):
            total += float(logp[row, last + j, tok])
        rank = int((probs > probs[tids[0]]).sum()) + 1
        return TargetProb(text, math.exp(total), p_first, rank, len(tids), exact)

    def _surprises(self, ids, new, start, first, logp, surprise):
        """(the result's surprise or None, the per-token list the cache keeps)."""
        if not surprise:
            kept = (self._surprise[:start] + [float("nan")] * len(new)) if start > 0 else [float("nan")] * len(ids)
            return None, kept
        fresh = [float("nan")] if start == 0 else []
        for j in range(1, len(new)):
            fresh.append(-float(logp[0, j - 1 - first, new[j]]))
        known = self._surprise[:start + 1] if start > 0 else []
        surp_list = known + fresh
        return tuple(surp_list), surp_list

    def _lens(self, out, pos, next_logp, targets, t_ids) -> LogitLens:
        import torch

        hs = torch.stack([h[0, pos] for h in out.hidden_states[1:-1]])  # raw block outputs
        layer_logp = torch.log_softmax(self.lm.lens_logits(hs), dim=-1)
        layer_logp = torch.cat([layer_logp, next_logp[None]], dim=0)
        firsts = torch.as_tensor([t[0] for t in t_ids], dtype=torch.long, device=layer_logp.device)
        chosen = layer_logp[:, firsts]  # (L, T)
        ranks = (layer_logp[:, None, :] > chosen[:, :, None]).sum(-1) + 1
        return LogitLens(tuple(targets), chosen.exp().cpu().numpy(), ranks.cpu().numpy())

    def _target_lens(self, out, pos, next_logits, targets, t_ids) -> TargetLens:
        """The lens of the targets' first tokens over the blocks, then the model's own logits."""
        import torch

        firsts = [t[0] for t in t_ids]
        final = next_logits.float()[torch.as_tensor(firsts, dtype=torch.long, device=next_logits.device)]
        rows = [final[None].cpu()]
        blocks = out.hidden_states[1:-1]  # raw block outputs (the last one is the final norm's output)
        if blocks:
            rows.insert(0, self.lm.lens_target_logits(torch.stack([h[0, pos] for h in blocks]), firsts).cpu())
        return TargetLens(tuple(targets), tuple(firsts), torch.cat(rows).numpy())

    @staticmethod
    def _attention(out, pos, n_keys):
        import numpy as np

        return np.stack([a[0, :, pos, :n_keys].float().cpu().numpy() for a in out.attentions])

    def _remember(self, kv, ids, surp_list) -> None:
        """Keep the prompt's row of the cache for the next probe (forget it when there is none)."""
        if kv is not None:
            self._kv = KV([(k[:1, :, :len(ids)], v[:1, :, :len(ids)]) for k, v in kv.layers], None)
            self._ids = list(ids)
            self._surprise = surp_list
        else:
            self.reset()
