"""A defended probe of one prompt (issue 30, the app's Repair view): what the model gives the targets and
what it *says* (its greedy continuation, the paper's Fig. 1), with and without a defense
(``engine.hijack.defenses``).

``defended_probe(lm, question, prepend, targets, defense)``: the undefended side runs ``prepend +
question``; the defended side runs it under the defense:

- ``none``: the undefended side again (not recomputed);
- ``drop-context``: the question alone;
- ``heads`` / ``steer`` / ``attention``: the full prompt with ``install(lm, defense)``'s hooks (attention:
  the span of the prepended text, ``prepended_span``, given before every forward; while generating it
  stays the same, every generated token is a later query);
- ``contrastive``: every step ``contrastive_logp(logp(question + generated), logp(prepend + question +
  generated))``; a target is teacher-forced as ``efficacy_defended`` scores it: token j by the contrast of
  the two runs each continued by the same first j target ids (the full prompt's target ids).

Per side: each target's whole probability (the product over its tokens, the tokens as
``engine.hijack.probe`` takes them: the ids that follow the prompt's ids in ids(prompt + target)), the
top 5 next tokens and the greedy continuation (``k_tokens`` tokens, stopping at EOS). The prompt runs
once with its KV cache (``kv.extend``, under the defense's hooks where it has them, so the cache is the
defended one); the targets' later tokens are teacher-forced after it in one batched step and each
generated token is one step more (full forwards per target and per token where the model gives no
cache: a sliding window). The hooks are on for one forward at a time, so ``ctx.pause()`` between
forwards (a waiting probe answered) never runs under them.

``shape_on_pair``: the defense's settings chosen on the one record at hand (not held out; the view
says so): heads = the top 3 by the rise of logit(true) − logit(false) when each alone is zero-ablated
at the last position (as ``repair.rank_heads``, on this pair); attention = every block; steer = the
middle block, v = clean − hijacked ``resid_post`` at the last position of this pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import UserError
from engine.hijack.defenses import Defense, check_for, contrastive_logp, install, prepended_span
from engine.job_context import NO_JOB, JobContext

TOP = 5
K_HEADS = 3


@dataclass(frozen=True)
class ProbeSide:
    """One side of a defended probe: the prompt it ran, per target its whole probability (and whether
    its tokens were taken exactly, ``probe.continuation_ids``), the top next tokens, the continuation."""

    prompt: str
    probs: tuple[tuple[str, float], ...]
    exact: tuple[bool, ...]
    top: tuple[tuple[str, float], ...]
    continuation: str
    continuation_ids: tuple[int, ...]

    def prob(self, target: str) -> float:
        return dict(self.probs)[target]

    def to_dict(self) -> dict:
        return {"probs": dict(self.probs), "continuation": self.continuation,
                "top": [[t, p] for t, p in self.top]}


@dataclass(frozen=True)
class RepairProbe:
    model: str
    question: str
    prepend: str
    targets: tuple[str, ...]
    defense: Defense
    undefended: ProbeSide
    defended: ProbeSide

    @property
    def prompt(self) -> str:
        return self.prepend + self.question

    def to_dict(self) -> dict:
        """The session's repair record (``kind`` "probe")."""
        return {"kind": "probe", "model": self.model, "prompt": self.prompt, "prepend": self.prepend,
                "question": self.question, "targets": list(self.targets), "defense": self.defense.to_dict(),
                "undefended": self.undefended.to_dict(), "defended": self.defended.to_dict()}


def defended_probe(lm, question: str, prepend: str, targets: Sequence[str], defense: Defense, k_tokens: int = 8,
                   ctx: JobContext | None = None) -> RepairProbe:
    """The probe of ``prepend + question`` without and with ``defense`` (module doc)."""
    if not isinstance(question, str) or not question.strip():
        raise UserError("the question is empty: give the fact's prompt, e.g. 'The Eiffel Tower is in'")
    if isinstance(k_tokens, bool) or not isinstance(k_tokens, int) or k_tokens < 0:
        raise UserError(f"k_tokens must be an integer >= 0, not {k_tokens!r}")
    targets = tuple(targets)
    ctx = ctx or NO_JOB
    check_for(lm, defense)
    prompt = prepend + question
    plain = _Runner(lm, ctx)
    undefended = _side(lm, plain, prompt, targets, k_tokens)
    if defense.name == "none":
        defended = undefended
    elif defense.name == "drop-context":
        defended = _side(lm, plain, question, targets, k_tokens)
    elif defense.name == "contrastive":
        defended = _contrastive_side(lm, plain, question, prompt, targets, k_tokens, defense)
    else:
        span = prepended_span(lm, prompt, prepend, defense.sink) if defense.name == "attention" else None
        defended = _side(lm, _Runner(lm, ctx, defense, span), prompt, targets, k_tokens)
    return RepairProbe(lm.name, question, prepend, targets, defense, undefended, defended)


class _Runner:
    """Forwards of one side (log-probability rows, float32): plain, or under ``defense``'s hooks for the
    one forward; a break (``ctx.pause``) and a cancel check before each. ``__call__``: a full forward of
    ``ids``; ``start`` / ``step``: the prompt once with its KV cache (``kv.extend``), then a few tokens
    after it (None where the model gives no cache: a sliding window, no KV reuse)."""

    def __init__(self, lm, ctx: JobContext, defense: Defense | None = None, span=None):
        self.lm, self.ctx, self.defense, self.span = lm, ctx, defense, span

    def _forward(self, fn, rows: int):
        import torch

        self.ctx.pause()
        self.ctx.check()
        with torch.inference_mode():
            if self.defense is None:
                return fn()
            with install(self.lm, self.defense) as state:
                if self.span is not None:
                    state.rows([self.span] * rows)
                return fn()

    def __call__(self, ids):
        import torch

        x = torch.as_tensor([list(ids)], device=self.lm.device)
        logits = self._forward(lambda: self.lm.model(input_ids=x, use_cache=False).logits, 1)
        return torch.log_softmax(logits[0].float(), dim=-1)

    def start(self, ids):
        """(log-probability rows of ``ids``, its cache or None)."""
        import torch

        from engine.hijack.kv import extend

        logits, _, kv = self._forward(lambda: extend(self.lm, None, [list(ids)]), 1)
        return torch.log_softmax(logits[0].float(), dim=-1), kv

    def step(self, kv, rows: Sequence[Sequence[int]]):
        """Log-probability rows (B, T, V) of token ``rows`` after the cache ``kv`` (one prompt's, repeated
        for each row; right-padded rows) and the cache grown by them (one row: the next step's cache)."""
        import torch

        from engine.hijack.kv import extend

        past = kv if len(rows) == 1 else kv.select([0] * len(rows))
        logits, _, grown = self._forward(lambda: extend(self.lm, past, [list(r) for r in rows]), len(rows))
        return torch.log_softmax(logits.float(), dim=-1), grown


def _target_ids(lm, prompt: str, ids, targets):
    from engine.hijack.probe import continuation_ids

    return [continuation_ids(lm, prompt, ids, t) for t in targets]


def _eos(lm) -> set[int]:
    out = set()
    for e in (lm.tokenizer.eos_token_id, getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)):
        if isinstance(e, int):
            out.add(e)
        elif isinstance(e, (list, tuple)):
            out.update(int(x) for x in e)
    return out


def _top(lm, lp) -> tuple[tuple[str, float], ...]:
    import torch

    top = torch.topk(lp, min(TOP, lp.shape[-1]))
    names = lm.decode_tokens(top.indices.tolist())
    return tuple((names[j], math.exp(float(top.values[j]))) for j in range(len(names)))


def _whole(lp_rows, t, start: int) -> float:
    """exp(sum of log p of ``t``'s tokens), token j read from row ``start + j``."""
    return math.exp(sum(float(lp_rows[start + j, tok]) for j, tok in enumerate(t)))


def _greedy(lm, next_lp, first, k: int) -> list[int]:
    """``k`` tokens by argmax of ``next_lp(generated)`` (``first``: the row for none generated yet)."""
    eos, out, lp = _eos(lm), [], first
    for _ in range(k):
        tok = int(lp.argmax())
        if tok in eos:
            break
        out.append(tok)
        if len(out) == k:
            break
        lp = next_lp(out)
    return out


def _side(lm, run: _Runner, prompt: str, targets, k: int) -> ProbeSide:
    ids = lm.encode(prompt)
    t_ids = _target_ids(lm, prompt, ids, targets)
    rows, kv = run.start(ids)
    if kv is None:
        return _side_full(lm, run, prompt, ids, t_ids, targets, k)
    last = rows[-1]
    probs = _cached_targets(run, kv, last, [t for t, _ in t_ids])

    def next_lp(gen):
        nonlocal kv
        lp, kv = run.step(kv, [gen[-1:]])
        return lp[0, -1]

    gen = _greedy(lm, next_lp, last, _room(lm, ids, k))
    return ProbeSide(prompt, tuple(zip(targets, probs)), tuple(e for _, e in t_ids), _top(lm, last),
                     lm.tokenizer.decode(gen), tuple(gen))


def _cached_targets(run: _Runner, kv, last, t_ids) -> list[float]:
    """Each target's whole probability: its first token from ``last``, the rest teacher-forced after the
    prompt's cache ``kv`` in one batched step (the longer targets only)."""
    long = [t for t in t_ids if len(t) > 1]
    rows = run.step(kv, [t[:-1] for t in long])[0] if long else None
    out, i = [], 0
    for t in t_ids:
        lp = float(last[t[0]])
        if len(t) > 1:
            lp += sum(float(rows[i, j, tok]) for j, tok in enumerate(t[1:]))
            i += 1
        out.append(math.exp(lp))
    return out


def _side_full(lm, run: _Runner, prompt: str, ids, t_ids, targets, k: int) -> ProbeSide:
    """``_side`` without a cache: a full forward per target and per generated token."""
    probs, last = [], None
    for t, _ in t_ids:
        rows = run(ids + t[:-1])
        probs.append(_whole(rows, t, len(ids) - 1))
        last = rows[len(ids) - 1] if last is None else last
    if last is None:
        last = run(ids)[-1]
    gen = _greedy(lm, lambda g: run(ids + g)[-1], last, _room(lm, ids, k))
    return ProbeSide(prompt, tuple(zip(targets, probs)), tuple(e for _, e in t_ids), _top(lm, last),
                     lm.tokenizer.decode(gen), tuple(gen))


def _contrastive_side(lm, run: _Runner, question: str, prompt: str, targets, k: int, d: Defense) -> ProbeSide:
    q_ids, c_ids = lm.encode(question), lm.encode(prompt)
    t_ids = _target_ids(lm, prompt, c_ids, targets)
    a, b = float(d.alpha), float(d.beta)
    q_rows, q_kv = run.start(q_ids)
    c_rows, c_kv = run.start(c_ids)
    if q_kv is None or c_kv is None:
        return _contrastive_full(lm, run, question, prompt, q_ids, c_ids, t_ids, targets, k, d)
    first = contrastive_logp(q_rows[-1], c_rows[-1], a, b)
    long = [t for t, _ in t_ids if len(t) > 1]
    q_long = run.step(q_kv, [t[:-1] for t in long])[0] if long else None
    c_long = run.step(c_kv, [t[:-1] for t in long])[0] if long else None
    probs, i = [], 0
    for t, _ in t_ids:
        lp = float(first[t[0]])
        if len(t) > 1:
            mixed = contrastive_logp(q_long[i, :len(t) - 1], c_long[i, :len(t) - 1], a, b)
            lp += sum(float(mixed[j, tok]) for j, tok in enumerate(t[1:]))
            i += 1
        probs.append(math.exp(lp))

    def next_lp(gen):
        nonlocal q_kv, c_kv
        q, q_kv = run.step(q_kv, [gen[-1:]])
        c, c_kv = run.step(c_kv, [gen[-1:]])
        return contrastive_logp(q[0, -1], c[0, -1], a, b)

    gen = _greedy(lm, next_lp, first, _room(lm, c_ids, k))
    return ProbeSide(question, tuple(zip(targets, probs)), tuple(e for _, e in t_ids), _top(lm, first),
                     lm.tokenizer.decode(gen), tuple(gen))


def _contrastive_full(lm, run: _Runner, question: str, prompt: str, q_ids, c_ids, t_ids, targets, k: int,
                      d: Defense) -> ProbeSide:
    """``_contrastive_side`` without a cache: full forwards of both runs per target and per token."""
    a, b = float(d.alpha), float(d.beta)
    probs, first = [], None
    for t, _ in t_ids:
        q = run(q_ids + t[:-1])[len(q_ids) - 1:]
        c = run(c_ids + t[:-1])[len(c_ids) - 1:]
        lp = contrastive_logp(q, c, a, b)
        probs.append(_whole(lp, t, 0))
        first = lp[0] if first is None else first
    if first is None:
        first = contrastive_logp(run(q_ids)[-1], run(c_ids)[-1], a, b)
    gen = _greedy(lm, lambda g: contrastive_logp(run(q_ids + g)[-1], run(c_ids + g)[-1], a, b), first,
                  _room(lm, c_ids, k))
    return ProbeSide(question, tuple(zip(targets, probs)), tuple(e for _, e in t_ids), _top(lm, first),
                     lm.tokenizer.decode(gen), tuple(gen))


def _room(lm, ids, k: int) -> int:
    """At most ``k`` tokens, and none past the model's window."""
    return max(0, min(k, int(lm.max_length) - len(ids)))


# --- settings shaped on the one record at hand ----------------------------------------------------------

def shape_on_pair(lm, question: str, prepend: str, true: str, false: str, name: str, alpha: float) -> Defense:
    """The defense ``name`` at ``alpha`` with its heads / blocks / v chosen on this pair alone (module doc)."""
    from engine.hijack.blocks import locate
    from engine.hijack.defenses import DEFENSES

    if name not in DEFENSES:
        raise UserError(f"unknown defense {name!r}: choose one of {', '.join(DEFENSES)}")
    layout = locate(lm)
    if name == "heads":
        from engine.hijack.trace import ablate_heads, prepare

        pair = prepare(lm, question, prepend, true, false)
        sets = [[]] + [[(b, h)] for b in range(layout.n_layers) for h in range(layout.n_heads)]
        got = ablate_heads(lm, pair, sets)
        rises = sorted(((m.logit_diff - got[0].logit_diff, s[0]) for s, m in zip(sets[1:], got[1:])),
                       key=lambda r: -r[0])
        return Defense("heads", alpha, tuple(bh for _, bh in rises[:K_HEADS]))
    if name == "attention":
        return Defense("attention", min(alpha, 1.0), blocks=tuple(range(layout.n_layers)))
    if name == "steer":
        block = layout.n_layers // 2
        return Defense("steer", alpha, blocks=(block,), v=_pair_vector(lm, layout, question, prepend, block))
    return Defense(name, alpha)


def _pair_vector(lm, layout, question: str, prepend: str, block: int):
    """clean − hijacked ``resid_post`` of ``block`` at the last position (float32, on the CPU)."""
    import torch

    from engine.hijack.edits import capture

    if not prepend.strip():
        raise UserError("nothing is prepended: the steering vector is clean − hijacked")
    got = []
    with torch.inference_mode():
        for text in (question, prepend + question):
            store: dict = {}
            with capture(layout, store):
                lm.model(input_ids=torch.as_tensor([lm.encode(text)], device=lm.device), use_cache=False)
            got.append(store[("resid", block)][0, -1].float().cpu())
    return got[0] - got[1]
