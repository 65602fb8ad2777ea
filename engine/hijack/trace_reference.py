"""The plain causal trace: one full forward of the whole hijacked prompt per intervention, written
from the definitions (the issue-28 spec) and sharing no code with the fast trace
(``engine.hijack.trace``, ``edits``, ``blocks``, ``kv``): its own token marks and aligned positions,
its own table of where each model family keeps its parts (``trace_reference_parts``), its own
masks, measures and per-head attribution. Slow on purpose: the reference the fast trace is tested equal to
(``tests/engine/hijack/test_trace_reference.py``), and the baseline of ``bench/bench_trace.py``.

``reference_trace(lm, prompt, prepend, target_true, target_false, ...)`` -> a plain dict (below).
The single-intervention helpers (``restore``, ``knockout``, ``zero_head``, ``zero_heads``,
``last_position_trace``, ``_measure``) take an already prepared pair (any object with the fields of
``engine.hijack.trace.Pair``: ``ids``, ``clean_ids``, ``positions``, ``prepended``, ``mentions``,
``true_id``, ``false_id``) and read only those fields as data.

Definitions (the spec's):
- prepended: a token whose character span lies within ``prepend.rstrip()``; mentions: prepended
  tokens whose span overlaps an occurrence of the mention text (default: the false target,
  stripped) in that text; special tokens (BOS) are neither;
- positions: walking back from the end, the i-th non-prepended non-special hijacked token pairs with
  the i-th non-special clean token while their ids agree; ``unaligned``: the prompt tokens left over;
- knocked: the prepended tokens (``all``), the mentions, the rest; never position 0 (the attention
  sink) unless ``knock_sink``; a window variant covers ``window`` consecutive blocks centred on l,
  moved to lie inside the model;
- measures at the last position: softmax (float32) over the vocabulary of the targets' first tokens,
  and ``logit_true - logit_false`` of the logits as the model returns them;
- restore: block l's output / attention module output / MLP module output at a prompt position set
  to the clean run's at its aligned position; heads: head h's slice of the output projection's input
  zeroed at the last position; per-head DLA: ``W_O[:, h] @ z_h`` (no bias) through a Gemma-2/3
  post-attention norm frozen at the attention output's scale, then the final norm frozen at the
  final residual's scale, dotted with ``W_U[true] - W_U[false]`` (float64).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from engine.errors import UserError
from engine.hijack.trace_reference_parts import Parts, parts

VARIANTS = ("all", "window", "mentions", "mentions_window", "rest", "rest_window")
KNOCKOUTS = VARIANTS  # the name the bench and older tests use
KINDS = ("resid", "attn", "mlp")

# --- the pair from the strings ------------------------------------------------------------------------

def _tokens(lm, text: str):
    """``lm.encode(text)`` and each token's (start, end) in ``text``, None for special tokens."""
    enc = lm.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, spans = [int(i) for i in enc["input_ids"]], [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    want = lm.encode(text)
    if ids != want:
        if want[1:] != ids:
            raise UserError(f"the tokenizer's ids of {text[:40]!r} are not lm.encode's")
        ids, spans = want, [(0, 0), *spans]  # lm.encode put a BOS in front
    special = set(lm.tokenizer.all_special_ids or ())
    return ids, [None if (i in special and a == b) else (a, b) for i, (a, b) in zip(ids, spans)]


def _scored(prompt: str, target: str) -> str:
    """The target as scored: a leading space after a prompt that does not end in whitespace."""
    if prompt[-1:].isspace() or target[:1].isspace():
        return target
    return " " + target


def _first_id(lm, text: str, target: str) -> int:
    """The token the target starts with after ``text``: tokenise ``text + target`` and take the
    first token that reaches past ``text`` (the target alone if that token straddles the join)."""
    ids, spans = _tokens(lm, text + target)
    for i, s in zip(ids, spans):
        if s is not None and s[1] > len(text):
            if s[0] >= len(text):
                return i
            break
    return int(lm.tokenizer(target, add_special_tokens=False)["input_ids"][0])


def pair_from_strings(lm, prompt: str, prepend: str, target_true: str, target_false: str,
                      mention: str | None = None, knock_sink: bool = False) -> dict:
    """ids, clean_ids, prepended, mentions, positions, unaligned, knocked, true_id, false_id."""
    text = prepend + prompt
    ids, spans = _tokens(lm, text)
    clean_ids, clean_spans = _tokens(lm, prompt)
    end = len(prepend.rstrip())
    prepended = [s is not None and s[1] <= end for s in spans]
    needle = (mention if mention is not None else target_false).strip()
    hits = []
    if needle:
        at = prepend[:end].find(needle)
        while at >= 0:
            hits.append((at, at + len(needle)))
            at = prepend[:end].find(needle, at + 1)
    mentions = [p and any(s[0] < b and a < s[1] for a, b in hits) for p, s in zip(prepended, spans)]
    hij = [i for i in range(len(ids)) if spans[i] is not None and not prepended[i]]
    cln = [i for i in range(len(clean_ids)) if clean_spans[i] is not None]
    walk = []
    for h, c in zip(hij[::-1], cln[::-1]):
        if ids[h] != clean_ids[c]:
            break
        walk.append((h, c))
    positions = walk[::-1]
    if not positions or not any(prepended):
        raise UserError("the reference found no prepended token or no aligned prompt position")
    aligned = {h for h, _ in positions}
    first = 0 if knock_sink else 1
    knocked = {"all": [i for i in range(first, len(ids)) if prepended[i]],
               "mentions": [i for i in range(first, len(ids)) if mentions[i]],
               "rest": [i for i in range(first, len(ids)) if prepended[i] and not mentions[i]]}
    t_true, t_false = _scored(prompt, target_true), _scored(prompt, target_false)
    return {"ids": ids, "clean_ids": clean_ids, "prepended": prepended, "mentions": mentions,
            "positions": positions, "unaligned": [h for h in hij if h not in aligned], "knocked": knocked,
            "true_id": _first_id(lm, text, t_true), "false_id": _first_id(lm, text, t_false)}


# --- forwards, hooks, measures ------------------------------------------------------------------------

@contextmanager
def _hooks(handles: list):
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()


def _logits(lm, ids):
    """The last position's logits (V,) of one full forward, no cache."""
    import torch

    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([list(ids)], device=lm.device), use_cache=False)
    return out.logits[0, -1]


def _measure_logits(logits, true_id: int, false_id: int) -> dict:
    import torch

    lp = torch.log_softmax(logits.float(), dim=-1)
    return {"p_true": float(lp[true_id].exp()), "p_false": float(lp[false_id].exp()),
            "logit_diff": float(logits[true_id].float() - logits[false_id].float())}


def _hidden(output):
    return output[0] if isinstance(output, (tuple, list)) else output


def _with_hidden(output, hidden):
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if isinstance(output, list):
        return [hidden, *output[1:]]
    return hidden


def _module(p: Parts, kind: str, layer: int):
    return {"resid": p.blocks, "attn": p.attn, "mlp": p.mlp}[kind][layer]


def _set_at(position: int, value):
    def hook(_m, _args, output):
        x = _hidden(output).clone()
        x[0, position] = value.to(x)
        return _with_hidden(output, x)
    return hook


def _zero_at(heads, d_head: int):
    def hook(_m, args):
        z = args[0].clone()
        for h in heads:
            z[0, -1, h * d_head:(h + 1) * d_head] = 0
        return (z, *args[1:])
    return hook


def _mask_hook(n: int, keys, eager: bool):
    """A forward pre-hook giving the attention a full (n x n) causal mask built from scratch with the
    last row's ``keys`` off: bool (True attends) for sdpa, additive float for eager."""
    import torch

    allowed = torch.ones((n, n), dtype=torch.bool).tril()
    allowed[n - 1, list(keys)] = False

    def hook(_m, args, kwargs):
        if "attention_mask" not in kwargs:
            raise RuntimeError("the attention module was not given attention_mask as a keyword")
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        if hidden.shape[1] != n:
            raise RuntimeError(f"expected the whole sequence ({n} tokens), got {hidden.shape[1]}")
        if eager:
            mask = torch.zeros((n, n), dtype=hidden.dtype).masked_fill(~allowed, torch.finfo(hidden.dtype).min)
        else:
            mask = allowed
        kwargs["attention_mask"] = mask[None, None].to(hidden.device)
        return args, kwargs
    return hook


def _eager(lm) -> bool:
    return getattr(lm.model.config, "_attn_implementation", None) == "eager"


def window_layers(layer: int, variant: str, window: int, n_layers: int) -> list[int]:
    """Block ``layer`` alone, or for a ``*_window`` variant ``window`` consecutive blocks centred on it
    (``window // 2`` before it), moved back inside [0, n_layers) at either end."""
    if not variant.endswith("window"):
        return [layer]
    start = layer - window // 2
    start = max(start, 0)
    start = min(start, n_layers - window)
    return list(range(start, start + window))


def _run(lm, ids, install) -> Any:
    """One full forward with the hooks ``install(handles)`` registers, removed on every path."""
    with _hooks([]) as handles:
        install(handles)
        return _logits(lm, ids)


def _capture_all(lm, p: Parts, ids) -> dict:
    """Every block's resid/attn/mlp output (whole sequence) of one forward."""
    got: dict = {}

    def keep(key):
        def hook(_m, _a, output):
            got[key] = _hidden(output)[0].detach().clone()
        return hook

    def install(handles):
        for kind in KINDS:
            for layer in range(p.n_layers):
                handles.append(_module(p, kind, layer).register_forward_hook(keep((kind, layer))))

    _run(lm, ids, install)
    return got


def _knock(lm, p: Parts, ids, keys, layers, measure):
    n = len(ids)

    def install(handles):
        for b in layers:
            handles.append(p.attn[b].register_forward_pre_hook(_mask_hook(n, keys, _eager(lm)), with_kwargs=True))

    return measure(_run(lm, ids, install))


def _zero(lm, p: Parts, ids, by_layer: dict, measure):
    def install(handles):
        for layer, hs in by_layer.items():
            handles.append(p.out_proj[layer].register_forward_pre_hook(_zero_at(hs, p.d_head)))

    return measure(_run(lm, ids, install))


def _restore(lm, p: Parts, ids, kind, layer, position, value, measure):
    def install(handles):
        handles.append(_module(p, kind, layer).register_forward_hook(_set_at(position, value)))

    return measure(_run(lm, ids, install))


# --- per-head direct logit attribution ----------------------------------------------------------------

def _frozen(p: Parts, norm_module, x, c):
    """The family's norm applied to component ``c`` with the scale frozen at input ``x`` (float64)."""
    import torch

    x, c = x.double(), c.double()
    w = norm_module.weight.double()
    if p.norm == "layer":
        return (c - c.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False) + p.eps) * w
    gain = 1.0 + w if p.norm == "rms_1p" else w
    return c / torch.sqrt(x.pow(2).mean(-1) + p.eps) * gain


def head_attribution(lm, p: Parts, ids, true_id: int, false_id: int) -> list[list[float]]:
    """Per layer, per head: the head's direct contribution to ``logit_diff`` at the last position."""
    got: dict = {}

    def install(handles):
        for layer in range(p.n_layers):
            handles.append(p.out_proj[layer].register_forward_pre_hook(
                lambda _m, args, i=layer: got.__setitem__(("z", i), args[0][0, -1].detach().clone())))
            handles.append(p.attn[layer].register_forward_hook(
                lambda _m, _a, out, i=layer: got.__setitem__(("a", i), _hidden(out)[0, -1].detach().clone())))
        handles.append(p.final_norm.register_forward_pre_hook(
            lambda _m, args: got.__setitem__("x", args[0][0, -1].detach().clone())))

    _run(lm, ids, install)
    w_u = p.unembed.weight.double()
    direction = w_u[true_id] - w_u[false_id]
    out = []
    for layer in range(p.n_layers):
        w_o = p.out_proj[layer].weight.double()
        if p.conv1d:
            w_o = w_o.T  # Conv1D keeps (in, out)
        z = got[("z", layer)].double()
        row = []
        for h in range(p.n_heads):
            sl = slice(h * p.d_head, (h + 1) * p.d_head)
            c = w_o[:, sl] @ z[sl]
            if p.post_attn[layer] is not None:
                c = _frozen(p, p.post_attn[layer], got[("a", layer)], c)
            c = _frozen(p, p.final_norm, got["x"], c)
            row.append(float(c @ direction))
        out.append(row)
    return out


# --- the whole trace ----------------------------------------------------------------------------------

def reference_trace(lm, prompt: str, prepend: str, target_true: str, target_false: str,
                    mention: str | None = None, window: int | None = None, knock_sink: bool = False,
                    heads: bool = True, every_position: bool = True) -> dict:
    """Every intervention of the trace, one full forward each (module doc). Keys: ``ids``,
    ``clean_ids``, ``positions`` ([(hijacked, clean)]), ``unaligned``, ``knocked`` (variant ->
    indices), ``true_id``, ``false_id``, ``window``, ``clean`` / ``hijacked`` (dicts p_true, p_false,
    logit_diff), ``restore`` ({kind: [[m per position] per layer]}), ``knockout`` ({variant: [m per
    layer]}), ``heads`` ([[m per head] per layer], empty without ``heads``), ``dla_heads``
    ([[float per head] per layer])."""
    import torch

    p = parts(lm)
    L = p.n_layers
    window = min(5, L) if window is None else window
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= L:
        raise UserError(f"the knockout window must be 1..{L} blocks, not {window!r}")
    pr = pair_from_strings(lm, prompt, prepend, target_true, target_false, mention, knock_sink)
    ids, t, f = pr["ids"], pr["true_id"], pr["false_id"]

    def measure(logits):
        return _measure_logits(logits, t, f)

    positions = pr["positions"] if every_position else pr["positions"][-1:]
    with torch.inference_mode():
        clean_acts = _capture_all(lm, p, pr["clean_ids"])
        out = {**pr, "positions": positions, "window": window, "knock_sink": knock_sink,
               "clean": measure(_logits(lm, pr["clean_ids"])), "hijacked": measure(_logits(lm, ids))}
        out["restore"] = {kind: [[_restore(lm, p, ids, kind, layer, h, clean_acts[(kind, layer)][c], measure)
                                  for h, c in positions] for layer in range(L)] for kind in KINDS}
        out["knockout"] = {v: [_knock(lm, p, ids, pr["knocked"][v.removesuffix("_window").replace("window", "all")],
                                      window_layers(layer, v, window, L), measure) for layer in range(L)]
                           for v in VARIANTS}
        out["heads"] = [[_zero(lm, p, ids, {layer: [h]}, measure) for h in range(p.n_heads)]
                        for layer in range(L)] if heads else []
        out["dla_heads"] = head_attribution(lm, p, ids, t, f)
    return out


# --- single interventions on a prepared pair (the bench and the older tests) ---------------------------

@dataclass(frozen=True)
class Measured:
    """A measure with the fields of ``engine.hijack.trace.Measure`` (compared field by field)."""

    p_true: float
    p_false: float
    logit_diff: float

    @property
    def flipped(self) -> bool:
        return self.p_false > self.p_true

    def to_dict(self) -> dict:
        return {"p_true": self.p_true, "p_false": self.p_false, "logit_diff": self.logit_diff}


def _measurer(pair):
    return lambda logits: Measured(**_measure_logits(logits, pair.true_id, pair.false_id))


def _measure(lm, pair) -> Measured:
    """The plain measures of ``pair.ids``."""
    return _measurer(pair)(_logits(lm, pair.ids))


def knock_indices(pair, variant: str, sink: bool = False) -> list[int]:
    """The hijacked indices a variant masks, from the pair's ``prepended`` / ``mentions`` marks."""
    which = variant.removesuffix("_window").replace("window", "all")
    first = 0 if sink else 1
    keep = {"all": lambda pre, men: pre, "mentions": lambda pre, men: pre and men,
            "rest": lambda pre, men: pre and not men}[which]
    return [i for i in range(first, len(pair.ids)) if keep(pair.prepended[i], pair.mentions[i])]


def clean_activation(lm, pair, kind: str, layer: int, clean_index: int):
    """The clean run's ``resid_post`` / ``attn_out`` / ``mlp_out`` of one block at one position."""
    return _capture_all(lm, parts(lm), pair.clean_ids)[(kind, layer)][clean_index]


def clean_last(lm, pair) -> list:
    """Every block's clean ``resid_post`` at the last position, from one clean forward."""
    p = parts(lm)
    acts = _capture_all(lm, p, pair.clean_ids)
    return [acts[("resid", layer)][-1] for layer in range(p.n_layers)]


def restore(lm, pair, kind: str, layer: int, j: int, value=None) -> Measured:
    """Block ``layer``'s ``kind`` output at ``pair.positions[j]`` replaced by the clean run's."""
    h, c = pair.positions[j]
    if value is None:
        value = clean_activation(lm, pair, kind, layer, c)
    return _restore(lm, parts(lm), pair.ids, kind, layer, h, value, _measurer(pair))


def knockout(lm, pair, variant: str, layer: int, window: int, sink: bool = False) -> Measured:
    """The last position may not attend to the variant's keys in the variant's blocks."""
    p = parts(lm)
    return _knock(lm, p, pair.ids, knock_indices(pair, variant, sink),
                  window_layers(layer, variant, window, p.n_layers), _measurer(pair))


def zero_head(lm, pair, layer: int, head: int) -> Measured:
    """Head ``head`` of block ``layer`` zeroed in ``z`` at the last position."""
    return zero_heads(lm, pair, [(layer, head)])


def zero_heads(lm, pair, heads) -> Measured:
    """Every (layer, head) in ``heads`` zeroed together in ``z`` at the last position."""
    by_layer: dict = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(int(head))
    return _zero(lm, parts(lm), pair.ids, by_layer, _measurer(pair))


def last_position_trace(lm, pair, window: int, variants=VARIANTS) -> dict:
    """``restore_last`` and the knockout ``variants`` at every block, one full forward each (the bench's
    plain loop)."""
    n_layers = parts(lm).n_layers
    last = len(pair.positions) - 1
    clean = clean_last(lm, pair)
    out = {"restore_last": [restore(lm, pair, "resid", layer, last, clean[layer]) for layer in range(n_layers)]}
    for v in variants:
        out[v] = [knockout(lm, pair, v, layer, window) for layer in range(n_layers)]
    return out
