"""Defenses against the hijack: interventions that act at EVERY position (deployable: in generation every
position becomes the last), on any family ``engine.hijack.blocks.locate`` handles.

- ``none``: the model as it is;
- ``drop-context``: the question alone (the prepended text removed): the ceiling of any defense;
- ``heads``: the heads ``heads`` ([[block, head], ...]) scaled by ``alpha`` in ``z`` (the input of the
  attention's output projection); ``alpha = 0`` is zero ablation;
- ``attention`` (PASTA-style): in the blocks ``blocks``, every query after the prepended span multiplies
  its attention to the span's keys by ``alpha`` in [0, 1] and renormalises: an additive ``log(alpha)``
  on those keys in the attention mask (sdpa and eager both take it). Position 0 (the attention sink)
  is never in the span unless ``sink=False``; a leading BOS is never in it (it is not prepended text).
  The span is the tokens that *begin* inside the prepended sentences (their trailing space excluded,
  so a word like ``" The"`` that carries the separating space belongs to the question);
- ``contrastive`` (context-aware decoding turned towards memory): ``(1 + alpha)·logits(question alone)
  − alpha·logits(context + question)``, with the plausibility cut-off: tokens whose question-alone
  probability is below ``beta·max`` get ``−inf`` (``beta`` = 0.1). A whole target is scored as the ES
  sweep scores it, the product over its tokens: token j is scored by the contrast of the two runs
  teacher-forced on the target's first j tokens (the question alone continued by the same ids), the
  cut-off applied at every step; a token that is cut has probability 0;
- ``steer``: ``alpha·v`` added to the output (``resid_post``) of block ``blocks[0]`` at every position,
  ``v`` the mean (clean − hijacked) last-position ``resid_post`` of that block over selection records
  (``steer_vector``).

A ``Defense`` is data: ``to_dict``/``from_dict``, ``save``/``load`` (JSON, ``v`` beside it as safetensors,
atomic writes). ``install(lm, defense)`` puts the hooks on the model for the forwards inside the
``with`` block (removed on every path); the attention defense needs each row's span and the token
index of every slot, which ``Installed.rows`` sets before each forward (``spans`` per row) and a
pre-hook on the model reads from its attention mask (slot i of a row is token ``cumsum(mask) − 1``,
the positions ``engine.hijack.kv.extend`` gives).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import UserError
from engine.hijack.blocks import first_tensor, locate, replace_first
from engine.hijack.edits import find_cache, hooks

#: name -> what it does (the CLI's --defense choices)
DEFENSES: dict[str, str] = {
    "none": "the model as it is",
    "drop-context": "the question alone: the prepended text removed (the ceiling)",
    "heads": "scale chosen heads' outputs by alpha (0: zero ablation)",
    "attention": "PASTA: later queries pay alpha times their attention to the prepended span, renormalised",
    "contrastive": "(1 + alpha)·logits(question) − alpha·logits(context + question), plausibility cut-off beta",
    "steer": "alpha·v added to one block's residual stream, v = mean(clean − hijacked)",
}
#: defenses whose forwards carry hooks (the rest are arithmetic on undefended forwards)
HOOKED = frozenset({"heads", "attention", "steer"})
BETA = 0.1


@dataclass(frozen=True)
class Defense:
    name: str = "none"
    alpha: float = 1.0
    heads: tuple[tuple[int, int], ...] = ()
    blocks: tuple[int, ...] = ()
    beta: float = BETA  # contrastive: the plausibility cut-off
    sink: bool = True  # attention: position 0 is never in the span
    v: object = field(default=None, compare=False, repr=False)  # steer: torch tensor (d_model,)

    def __post_init__(self):
        check_defense(self)

    @property
    def params(self) -> dict:
        out: dict = {"alpha": float(self.alpha)}
        if self.name == "heads":
            out["heads"] = [[int(b), int(h)] for b, h in self.heads]
        if self.name in ("attention", "steer"):
            out["blocks"] = [int(b) for b in self.blocks]
        if self.name == "attention":
            out["sink"] = bool(self.sink)
        if self.name == "contrastive":
            out["beta"] = float(self.beta)
        if self.name == "steer" and self.v is not None:
            out["v_norm"] = float(self.v.float().norm())
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict, v=None) -> Defense:
        if not isinstance(data, dict) or "name" not in data:
            raise UserError("a defense is a JSON object with a 'name' and its 'params'")
        p = data.get("params") or {}
        if not isinstance(p, dict):
            raise UserError("a defense's 'params' must be a JSON object")
        try:
            heads = tuple((int(b), int(h)) for b, h in p.get("heads", ()))
            blocks = tuple(int(b) for b in p.get("blocks", ()))
            alpha = float(p.get("alpha", 1.0))
            beta = float(p.get("beta", BETA))
        except (TypeError, ValueError) as exc:
            raise UserError(f"bad defense params {p!r}: heads are [[block, head], ...], blocks integers, "
                            f"alpha and beta numbers ({exc})") from None
        return cls(str(data["name"]), alpha, heads, blocks, beta, bool(p.get("sink", True)), v)

    def with_alpha(self, alpha: float) -> Defense:
        return Defense(self.name, float(alpha), self.heads, self.blocks, self.beta, self.sink, self.v)

    def save(self, path) -> Path:
        """JSON at ``path``; ``v`` (steer) as safetensors beside it (``<stem>.safetensors``)."""
        from engine.atomic import atomic_write_bytes, atomic_write_json

        path = Path(path)
        data = self.to_dict()
        if self.v is not None:
            from safetensors.torch import save

            vec = path.with_suffix(".safetensors")
            atomic_write_bytes(vec, save({"v": self.v.detach().cpu().contiguous()}))
            data["v_file"] = vec.name
        return atomic_write_json(path, data)

    @classmethod
    def load(cls, path) -> Defense:
        from engine.atomic import read_json

        path = Path(path)
        try:
            data = read_json(path)
        except OSError as exc:
            raise UserError(f"cannot read the defense file {path}: {exc.strerror or exc}") from None
        v = None
        if isinstance(data, dict) and data.get("v_file"):
            from safetensors.torch import load_file

            vec = path.parent / str(data["v_file"])
            try:
                v = load_file(str(vec))["v"]
            except (OSError, KeyError, ValueError) as exc:
                raise UserError(f"cannot read the steering vector {vec}: {exc}") from None
        return cls.from_dict(data, v)


def settings_text(params: dict, sep: str = "; ") -> str:
    """A defense's settings but α in words (``Defense.params``, or its JSON read back): heads as LbHh,
    blocks (a range a–b when contiguous), β, |v|; "" when it has none. Malformed entries are skipped."""
    p = params if isinstance(params, dict) else {}
    parts = []
    heads = [h for h in p.get("heads") or () if isinstance(h, (list, tuple)) and len(h) == 2]
    if heads:
        parts.append("heads " + " ".join(f"L{b}H{h}" for b, h in heads))
    blocks = [b for b in p.get("blocks") or () if isinstance(b, int) and not isinstance(b, bool)]
    if blocks:
        run = len(blocks) > 2 and blocks == list(range(blocks[0], blocks[-1] + 1))
        parts.append(f"blocks {blocks[0]}–{blocks[-1]}" if run else
                     ("blocks " if len(blocks) > 1 else "block ") + ",".join(map(str, blocks)))
    if p.get("sink") is False:
        parts.append("position 0 in the span")
    for key, name in (("beta", "β"), ("v_norm", "|v|")):
        if isinstance(p.get(key), (int, float)) and not isinstance(p.get(key), bool):
            parts.append(f"{name} {p[key]:.3g}")
    return sep.join(parts)


def check_defense(d: Defense) -> None:
    """One UserError for settings no model can run (the model-specific checks are in ``check_for``)."""
    if d.name not in DEFENSES:
        raise UserError(f"unknown defense {d.name!r}: choose one of {', '.join(DEFENSES)}")
    a = d.alpha
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a < 0:
        raise UserError(f"alpha must be a finite number >= 0, not {a!r}")
    if d.name == "attention" and a > 1:
        raise UserError(f"the attention defense keeps alpha in [0, 1] (a share of the attention), not {a}")
    if d.name == "heads" and not d.heads:
        raise UserError("the heads defense needs heads: [[block, head], ...]")
    if d.name == "attention" and not d.blocks:
        raise UserError("the attention defense needs blocks")
    if d.name == "steer" and len(d.blocks) != 1:
        raise UserError("the steer defense adds its vector to exactly one block")
    if d.name == "contrastive" and not 0 <= d.beta <= 1:
        raise UserError(f"the plausibility cut-off beta lies in [0, 1], not {d.beta}")


def check_for(lm, d: Defense) -> None:
    """``d`` against the model: blocks and heads that exist, a steering vector of its width."""
    layout = locate(lm)
    for b, h in d.heads:
        if not (0 <= b < layout.n_layers and 0 <= h < layout.n_heads):
            raise UserError(f"head [{b}, {h}] does not exist: {lm.name} has {layout.n_layers} blocks of "
                            f"{layout.n_heads} heads")
    for b in d.blocks:
        if not 0 <= b < layout.n_layers:
            raise UserError(f"block {b} does not exist: {lm.name} has {layout.n_layers}")
    if d.name == "steer":
        if d.v is None:
            raise UserError("the steer defense has no vector v: compute it (steer_vector) or load a defense file")
        width = int(getattr(lm.model.config.get_text_config(), "hidden_size", 0) or d.v.shape[-1])
        if tuple(d.v.shape) != (width,):
            raise UserError(f"the steering vector has shape {tuple(d.v.shape)}, not ({width},) as {lm.name} needs")
    if d.name == "attention":
        from engine.hijack.blocks import check_attention

        check_attention(lm)


# --- where the prepended text is ----------------------------------------------------------------------

def prepended_span(lm, prompt: str, prefix: str, sink: bool = True) -> tuple[int, int]:
    """(a, b): the token indices of ``lm.encode(prompt)`` that begin inside ``prefix.rstrip()`` (the
    prepended sentences; ``prompt`` starts with ``prefix``). (0, 0) when nothing is prepended. With
    ``sink`` position 0 is left out."""
    from engine.hijack.trace import token_spans

    end = len(prefix.rstrip())
    if end == 0:
        return 0, 0
    _, spans = token_spans(lm, prompt)
    inside = [i for i, s in enumerate(spans) if s is not None and s[0] < end]
    if not inside:
        return 0, 0
    a, b = inside[0], inside[-1] + 1
    if sink and a == 0:
        a = 1
    return (a, b) if a < b else (0, 0)


# --- the hooks ----------------------------------------------------------------------------------------

class Installed:
    """The hooks of one defense on one model (``install``); ``rows(spans)`` before each forward of the
    attention defense: one (a, b) per batch row (``None`` or (0, 0): nothing prepended)."""

    def __init__(self, defense: Defense):
        self.defense = defense
        self.spans: list | None = None
        self.slots = None  # (B, K) token index of each key slot (-1: padding), from the model's mask

    def rows(self, spans) -> None:
        self.spans = [tuple(s) if s else (0, 0) for s in spans]


def _model_hook(state: Installed):
    import torch

    def hook(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        if mask is None or mask.dim() != 2:
            cache = find_cache(kwargs)
            past = 0 if cache is None else int(cache.get_seq_length())
            mask = torch.ones((ids.shape[0], past + ids.shape[1]), dtype=torch.long, device=ids.device)
        m = mask.long()
        state.slots = torch.where(m > 0, m.cumsum(dim=1) - 1, torch.full_like(m, -1))
        return args, kwargs

    return hook


def _bias_hook(state: Installed, eager: bool):
    import torch

    def hook(_module, args, kwargs):
        spans = state.spans
        if not spans or all(b <= a for a, b in spans):
            return args, kwargs
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        batch, n_query = hidden.shape[0], hidden.shape[1]
        mask = kwargs.get("attention_mask")
        slots = state.slots.to(hidden.device)
        n_keys = int(mask.shape[-1]) if mask is not None else int(slots.shape[1])
        if len(spans) != batch:
            raise RuntimeError(f"the attention defense was given {len(spans)} row spans for a batch of {batch}")
        keys = slots[:, -n_keys:]
        queries = slots[:, -n_query:]
        lo = torch.as_tensor([a for a, _ in spans], device=hidden.device)[:, None]
        hi = torch.as_tensor([b for _, b in spans], device=hidden.device)[:, None]
        in_span = (keys >= lo) & (keys < hi)  # (B, K)
        after = queries >= hi  # (B, Q)
        hit = after[:, :, None] & in_span[:, None, :]  # (B, Q, K)
        dtype = hidden.dtype
        floor = torch.finfo(dtype).min
        if mask is None:
            allowed = torch.ones((n_query, n_keys), dtype=torch.bool, device=hidden.device).tril(n_keys - n_query)
            mask = torch.zeros((batch, 1, n_query, n_keys), dtype=dtype, device=hidden.device)
            mask = mask.masked_fill(~allowed[None, None], floor)
        elif mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=dtype, device=hidden.device).masked_fill(~mask, floor)
        mask = mask[..., -n_query:, :n_keys].expand(batch, mask.shape[1], n_query, n_keys)
        alpha = float(state.defense.alpha)
        bias = math.log(alpha) if alpha > 0 else floor
        add = torch.zeros(hit.shape, dtype=dtype, device=hidden.device).masked_fill(hit, bias)
        kwargs["attention_mask"] = (mask + add[:, None]).clamp(min=floor)
        return args, kwargs

    return hook


def _heads_hook(heads: list[int], d_head: int, alpha: float):
    def hook(_module, args):
        z = args[0].clone()
        for h in heads:
            z[..., h * d_head:(h + 1) * d_head] *= alpha
        return (z, *args[1:])

    return hook


def _steer_hook(v, alpha: float):
    def hook(_module, _args, output):
        hidden = first_tensor(output)
        return replace_first(output, hidden + (alpha * v.float()).to(hidden))

    return hook


@contextmanager
def install(lm, defense: Defense):
    """The defense's hooks on ``lm`` for the forwards inside the block (module doc); yields ``Installed``.
    ``none``, ``drop-context`` and ``contrastive`` install nothing (they change inputs or arithmetic)."""
    state = Installed(defense)
    handles: list = []
    with hooks(handles):
        if defense.name in HOOKED:
            check_for(lm, defense)
            layout = locate(lm)
            if defense.name == "heads":
                by_block: dict[int, list[int]] = {}
                for b, h in defense.heads:
                    by_block.setdefault(b, []).append(h)
                for b, hs in by_block.items():
                    handles.append(layout.blocks[b].out_proj.register_forward_pre_hook(
                        _heads_hook(hs, layout.d_head, float(defense.alpha))))
            elif defense.name == "steer":
                handles.append(layout.blocks[defense.blocks[0]].module.register_forward_hook(
                    _steer_hook(defense.v, float(defense.alpha))))
            else:
                eager = getattr(lm.model.config, "_attn_implementation", "sdpa") == "eager"
                handles.append(lm.model.register_forward_pre_hook(_model_hook(state), with_kwargs=True))
                for b in sorted(set(defense.blocks)):
                    handles.append(layout.blocks[b].attn.register_forward_pre_hook(_bias_hook(state, eager),
                                                                                    with_kwargs=True))
        yield state


# --- contrastive decoding -------------------------------------------------------------------------------

def contrastive_logp(lp_question, lp_context, alpha: float, beta: float = BETA):
    """Log-probabilities of contrastive decoding (module doc) from the two runs' log-probabilities
    (..., V) (log-softmax: the same as from logits, the normalisers cancel after renormalising)."""
    import torch

    q, c = lp_question.float(), lp_context.float()
    mixed = (1 + alpha) * q - alpha * c
    if beta > 0:
        cut = q < q.max(dim=-1, keepdim=True).values + math.log(beta)
        mixed = mixed.masked_fill(cut, float("-inf"))
    return torch.log_softmax(mixed, dim=-1)


# --- the steering vector --------------------------------------------------------------------------------

def steer_vector(lm, records, scheme: str, n: int, block: int, template: str | None = None):
    """v = mean over ``records`` of (clean − hijacked) ``resid_post`` of ``block`` at the last position
    (float32, on the CPU); the hijacked prompt has ``n`` sentences of ``scheme`` prepended. The sum runs
    in record order over ``steer_diff`` (what the repair's selection units return per record)."""
    layout = locate(lm)
    if not 0 <= block < layout.n_layers:
        raise UserError(f"block {block} does not exist: {lm.name} has {layout.n_layers}")
    if not records:
        raise UserError("no selection records to compute the steering vector from")
    return mean_of_diffs([steer_diff(lm, rec, scheme, n, block, template) for rec in records])


def mean_of_diffs(diffs):
    """The steering vector from per-record differences: summed in order, float32, divided by their count."""
    total = None
    for diff in diffs:
        total = diff if total is None else total + diff
    return total / len(diffs)


def steer_diff(lm, record, scheme: str, n: int, block: int, template: str | None = None):
    """One record's (clean − hijacked) ``resid_post`` of ``block`` at the last position (float32, CPU)."""
    import torch

    from engine.hijack.edits import capture
    from engine.hijack.kv import extend
    from engine.hijack.schemes import build_prompt

    layout = locate(lm)
    got = []
    with torch.inference_mode():
        for k in (0, n):
            store: dict = {}
            with capture(layout, store):
                extend(lm, None, [lm.encode(build_prompt(record, scheme, k, template))], keep=1, want_cache=False)
            got.append(store[("resid", block)][0, -1].float().cpu())
    return got[0] - got[1]
