"""Where the hijack happens: causal tracing of a hijacked prompt against its clean prompt.

The clean prompt is the prompt alone (n = 0); the hijacked one is ``prepend + prompt``, the prepended
text used exactly as given. Measures (``Measure``) at the last position: the first-token
probabilities of the true and the false target (softmax over the vocabulary) and their logit
difference ``logit_true − logit_false`` (the hijack lowers it). For every block l:

- ``restore`` (ROME's causal tracing, Meng et al. 2022, with the clean run in place of the
  uncorrupted one): block l's ``resid_post`` / ``attn_out`` / ``mlp_out`` at one of the prompt's own
  positions replaced by the clean run's at the same position counted from the end, where the two
  prompts hold the same token there (``align_positions``; the others are ``unaligned``);
  ``restore_last`` is the residual stream at the last position;
- ``knockout`` (attention knockout, Geva et al. 2023): in block l the last position may not attend to
  the prepended tokens (masked before the softmax; its weights renormalise over the rest); also over
  a window of ``window`` blocks centred on l (``window``), and restricted to the tokens of the false
  target's mentions or to the other prepended tokens (the variants of
  ``engine.hijack.measures.KNOCKOUTS``, each also over the window): "the false target as a clue"
  against "the sentence as a whole". A token is prepended when its characters lie within the
  prepended text, its trailing whitespace excluded. Position 0 is never masked (``knock_sink``
  masks it): the first token is the attention sink whether or not it is a BOS, and masking it
  removes the sink, not the prepended content;
- per head: the direct logit attribution of each head to ``logit_diff`` at the last position
  (``dla``: the head's share of the attention output, through a Gemma post-attention norm and the
  final norm with their scales frozen at the run's values, ``blocks.frozen_norm``; the pieces sum to
  the logit difference before any soft-capping) and the effect of zero-ablating the head at the last
  position (``ablated``).

Fast and exact: an intervention at one position changes nothing before it, so every intervention at
position p reuses the hijacked run's keys/values of the tokens before p, and all interventions at p
run as rows of one batched forward over the tokens from p on (at the last position: one token).
``engine.hijack.trace_reference`` runs one full forward per intervention; the tests hold them equal.
Beside this module: ``knockouts`` (which keys and blocks a knockout masks), ``attribution`` (the
direct logit attribution) and ``device_check`` (the bench's ``last_position`` and device check).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.errors import UserError
from engine.hijack.attribution import direct_attribution
from engine.hijack.blocks import check_attention, locate
from engine.hijack.edits import KINDS, Edit, apply, capture
from engine.hijack.knockouts import DEFAULT_WINDOW, knock_keys, knock_layers, knock_window, knocked
from engine.hijack.kv import KV, extend
from engine.hijack.measures import (
    BY_NAME,
    KNOCKOUTS,
    LAYER_MEASURES,
    Label,
    LayerMeasure,
    knockout_measure,
)
from engine.job_context import NO_JOB, JobContext

ABLATION = "zero"  # head ablation: the head's z set to 0 at the last position


@dataclass(frozen=True)
class Measure:
    p_true: float
    p_false: float
    logit_diff: float  # logit_true - logit_false

    def to_dict(self) -> dict:
        return {"p_true": self.p_true, "p_false": self.p_false, "logit_diff": self.logit_diff}

    @property
    def flipped(self) -> bool:
        return self.p_false > self.p_true


@dataclass(frozen=True)
class Pair:
    """A prepared clean/hijacked pair: token ids, which hijacked tokens are prepended or mention the
    false target, the prompt's positions aligned by token from the end (``align_positions``), the
    targets' first tokens."""

    prompt: str
    prepend: str
    target_true: str  # as scored (leading space added after a space-less prompt)
    target_false: str
    clean_ids: tuple[int, ...]
    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    prepended: tuple[bool, ...]
    mentions: tuple[bool, ...]
    positions: tuple[tuple[int, int], ...]  # (hijacked index, clean index) of agreeing tokens, the last one last
    true_id: int
    false_id: int
    unaligned: tuple[int, ...] = ()  # hijacked prompt indices whose token has no agreeing clean partner


@dataclass(frozen=True)
class Trace:
    model: str
    pair: Pair
    clean: Measure
    hijacked: Measure
    restore: dict  # kind -> per layer, per position of pair.positions: Measure
    knockout: dict  # variant -> per layer: Measure
    heads: tuple  # per layer, per head: Measure (zero ablation at the last position)
    dla: dict  # "embed", "bias": float; "attn", "mlp": per layer; "heads": per layer, per head
    window: int = DEFAULT_WINDOW
    notes: tuple[str, ...] = field(default=())
    knock_sink: bool = False  # the knockouts masked position 0 too (``knocked``)

    @property
    def n_layers(self) -> int:
        return len(self.knockout["all"])

    def positions_note(self, short: bool = False) -> str:
        """``positions_note`` of this trace (the kept sink, the unaligned prompt positions)."""
        p = self.pair
        return positions_note({"tokens": list(p.tokens), "knock_sink": self.knock_sink,
                               "knocked": {"all": knocked(p, "all", self.knock_sink)}, "unaligned": list(p.unaligned)},
                              short)

    def restore_last(self, kind: str = "resid") -> list[Measure]:
        return [row[-1] for row in self.restore[kind]]

    def curve(self, measure: LayerMeasure | str) -> list[Measure]:
        """A per-block measure (``engine.hijack.measures``, or its name): one ``Measure`` per block."""
        spec = BY_NAME[measure] if isinstance(measure, str) else measure
        if spec.kind == "restore":
            return self.restore_last(spec.variant)
        return list(self.knockout[spec.variant])

    def to_dict(self) -> dict:
        p = self.pair
        layers = []
        curves = {spec.name: self.curve(spec) for spec in LAYER_MEASURES}
        for i in range(self.n_layers):
            entry = {"layer": i, **{name: ms[i].to_dict() for name, ms in curves.items()}}
            entry["restore"] = {k: [m.to_dict() for m in self.restore[k][i]] for k in KINDS}
            entry["dla_attn"], entry["dla_mlp"] = self.dla["attn"][i], self.dla["mlp"][i]
            layers.append(entry)
        heads = [[{"dla": self.dla["heads"][i][h], "ablated": m.to_dict()} for h, m in enumerate(row)]
                 for i, row in enumerate(self.heads)]
        return {"model": self.model, "prompt": p.prompt, "prepend": p.prepend, "target_true": p.target_true,
                "target_false": p.target_false, "ids": list(p.ids), "clean_ids": list(p.clean_ids),
                "true_id": p.true_id, "false_id": p.false_id, "tokens": list(p.tokens), "prepended": list(p.prepended),
                "mentions": list(p.mentions),
                "positions": [{"index": h, "clean_index": c, "token": p.tokens[h]} for h, c in p.positions],
                "unaligned": list(p.unaligned), "knock_sink": self.knock_sink,
                "knocked": {v: knocked(p, v, self.knock_sink) for v in ("all", "mentions", "rest")},
                "window": self.window, "ablation": ABLATION, "clean": self.clean.to_dict(),
                "hijacked": self.hijacked.to_dict(), "dla_embed": self.dla["embed"], "dla_bias": self.dla["bias"],
                "layers": layers, "heads": heads, "notes": list(self.notes)}


    @classmethod
    def from_dict(cls, d: dict) -> Trace:
        """The trace ``to_dict`` wrote (a job-store entry of the dataset trace)."""
        def m(x):
            return Measure(float(x["p_true"]), float(x["p_false"]), float(x["logit_diff"]))

        pair = Pair(d["prompt"], d["prepend"], d["target_true"], d["target_false"], tuple(d["clean_ids"]),
                    tuple(d["ids"]), tuple(d["tokens"]), tuple(d["prepended"]), tuple(d["mentions"]),
                    tuple((p["index"], p["clean_index"]) for p in d["positions"]), int(d["true_id"]),
                    int(d["false_id"]), tuple(d.get("unaligned") or ()))
        layers = d["layers"]
        restore = {k: [[m(x) for x in e["restore"][k]] for e in layers] for k in KINDS}
        knockout = {v: [m(e[knockout_measure(v).name]) for e in layers] for v in KNOCKOUTS}
        heads = tuple(tuple(m(h["ablated"]) for h in row) for row in d["heads"])
        dla = {"embed": d["dla_embed"], "bias": d["dla_bias"], "attn": [e["dla_attn"] for e in layers],
               "mlp": [e["dla_mlp"] for e in layers], "heads": [[h["dla"] for h in row] for row in d["heads"]]}
        # written before the sink rule (no "knock_sink"): those knockouts masked position 0 too
        return cls(d["model"], pair, m(d["clean"]), m(d["hijacked"]), restore, knockout, heads, dla,
                   int(d["window"]), tuple(d.get("notes") or ()), bool(d.get("knock_sink", True)))


def positions_note(d: dict, short: bool = False) -> str:
    """One line from a trace's JSON: how many positions the knockouts masked, whether position 0 (the
    attention sink) was kept, and which prompt positions were not restored (no agreeing clean token).
    ``short``: the few words a screen's status line has room for."""
    tokens, masked = d.get("tokens") or [], (d.get("knocked") or {}).get("all")
    first = repr(tokens[0]) if tokens else "?"
    unaligned = [i for i in d.get("unaligned") or [] if isinstance(i, int) and 0 <= i < len(tokens)]
    if short:
        kept = "masked too" if d.get("knock_sink", True) else "kept"
        line = f"knockouts: {0 if masked is None else len(masked)} positions, sink {first} {kept}"
        if unaligned:
            line += " · not restored (blank): " + ", ".join(repr(tokens[i]) for i in unaligned)
        return line
    count = "the prepended" if masked is None else f"{len(masked)} prepended"
    if d.get("knock_sink", True) and d.get("knocked") is not None:
        line = f"knockouts mask {count} positions, position 0 ({first}) included"
    elif d.get("knocked") is None:
        line = "knockouts mask every prepended position, position 0 included (a trace from before the sink rule)"
    else:
        line = f"knockouts mask {count} positions and keep position 0 ({first}, the attention sink)"
    if unaligned:
        line += ("; not restored, the clean prompt has another token there: "
                 + ", ".join(f"{tokens[i]!r} ({i})" for i in unaligned))
    return line


# --- preparing a pair --------------------------------------------------------------------------------

def token_spans(lm, text: str) -> tuple[list[int], list[tuple[int, int] | None]]:
    """``lm.encode(text)`` and each token's character span in ``text`` (None for special tokens)."""
    try:
        enc = lm.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise UserError(f"the tokenizer of {lm.name} gives no character offsets (a fast tokenizer is "
                        "needed to tell prepended tokens from the prompt's)") from exc
    ids, spans = list(enc["input_ids"]), [tuple(s) for s in enc["offset_mapping"]]
    want = lm.encode(text)
    if ids != want and want[1:] == ids:  # the project adds a BOS the tokenizer does not
        ids, spans = want, [(0, 0)] + spans
    if ids != want:
        raise UserError(f"the tokenizer of {lm.name} tokenises {text[:40]!r} differently with offsets")
    special = set(getattr(lm.tokenizer, "all_special_ids", []) or [])
    return ids, [None if (i in special and s[0] == s[1]) else s for i, s in zip(ids, spans)]


def _first_token(lm, prompt_text: str, ids, target: str) -> int:
    from engine.hijack.probe import continuation_ids

    return continuation_ids(lm, prompt_text, ids, target)[0][0]


def prepare(lm, prompt: str, prepend: str, target_true: str, target_false: str,
            mention: str | None = None) -> Pair:
    """The pair for ``prepend + prompt`` against ``prompt``; ``mention`` (default: the false target)
    is the text whose occurrences in the prepend count as mentions. Bad input raises ``UserError``."""
    from engine.hijack.efficacy import target_text

    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError("the prompt is empty: give the fact's prompt, e.g. 'The Eiffel Tower is in'")
    if not isinstance(prepend, str) or not prepend.strip():
        raise UserError("nothing is prepended: the trace compares prepend + prompt against the prompt alone")
    for name, t in (("true", target_true), ("false", target_false)):
        if not isinstance(t, str) or not t.strip():
            raise UserError(f"the {name} target is empty: give one such as ' Paris'")
    t_true, t_false = target_text(prompt, target_true), target_text(prompt, target_false)
    text = prepend + prompt
    ids, spans = token_spans(lm, text)
    clean_ids, clean_spans = token_spans(lm, prompt)
    limit = min(lm.max_length, lm.kv_limit or lm.max_length)
    if len(ids) + 1 > limit:
        raise UserError(f"the hijacked prompt has {len(ids)} tokens; {lm.name} traces at most {limit - 1} "
                        "(its window): shorten the prepended text")
    end = len(prepend.rstrip())
    prepended = [s is not None and s[1] <= end for s in spans]
    marks = _mention_marks(prepend[:end], (mention or target_false).strip(), spans)
    h_pos = [i for i, s in enumerate(spans) if s is not None and not prepended[i]]
    c_pos = [i for i, s in enumerate(clean_spans) if s is not None]
    if not h_pos or not c_pos or not any(prepended):
        raise UserError("no token of the hijacked prompt lies within the prepended text or the prompt")
    positions = align_positions(ids, h_pos, clean_ids, c_pos)
    if not positions:
        ends = lm.decode_tokens([ids[h_pos[-1]], clean_ids[c_pos[-1]]])
        raise UserError("the hijacked and the clean prompt end in different tokens: no position to restore "
                        f"({ends[0]!r} against {ends[1]!r})")
    paired = {h for h, _ in positions}
    true_id, false_id = _first_token(lm, text, ids, t_true), _first_token(lm, text, ids, t_false)
    if true_id == false_id:
        raise UserError(f"{t_true!r} and {t_false!r} start with the same token: the trace measures first tokens")
    return Pair(prompt, prepend, t_true, t_false, tuple(clean_ids), tuple(ids), tuple(lm.decode_tokens(ids)),
                tuple(prepended), tuple(marks), positions, true_id, false_id,
                tuple(h for h in h_pos if h not in paired))


def align_positions(ids, h_pos, clean_ids, c_pos) -> tuple[tuple[int, int], ...]:
    """The prompt's positions restored from the clean run: walking back from the end, the i-th prompt
    token of the hijacked ids from the end pairs with the i-th of the clean ids while their token ids
    agree; the walk stops at the first disagreement (byte-level BPE reads the clean prompt's first
    word as 'The' and the hijacked one's as ' The': different tokens, no restore)."""
    out = []
    for h, c in zip(reversed(h_pos), reversed(c_pos)):
        if ids[h] != clean_ids[c]:
            break
        out.append((h, c))
    return tuple(reversed(out))


def _mention_marks(text: str, mention: str, spans) -> list[bool]:
    """Tokens whose span overlaps an occurrence of ``mention`` in ``text`` (the prepend)."""
    hits, at = [], text.find(mention) if mention else -1
    while at >= 0:
        hits.append((at, at + len(mention)))
        at = text.find(mention, at + 1)
    return [s is not None and s[0] < len(text) and any(s[0] < b and s[1] > a for a, b in hits) for s in spans]


# --- measures and the runs ---------------------------------------------------------------------------

def measures(logits, true_id: int, false_id: int) -> list[Measure]:
    """One ``Measure`` per row of last-position ``logits`` (R, V)."""
    import torch

    logits = logits.float()
    lp = torch.log_softmax(logits, dim=-1)
    pt, pf = lp[:, true_id].exp().tolist(), lp[:, false_id].exp().tolist()
    diff = (logits[:, true_id] - logits[:, false_id]).tolist()
    return [Measure(a, b, c) for a, b, c in zip(pt, pf, diff)]


def _eager(lm) -> bool:
    return getattr(lm.model.config, "_attn_implementation", "sdpa") == "eager"


Row = tuple[Label, list[Edit]]  # an intervention: its label and its edits (one batch row)


def _run_rows(lm, layout, kv: KV, ids, start: int, rows: list[Row], pair: Pair, chunk: int,
              ctx: JobContext | None) -> dict[Label, Measure]:
    """Labelled rows of edits (``row`` fields ignored: each row is its own batch row) on the tokens
    from ``start`` on after the hijacked keys/values before it; the measure at the last position of
    each, by label. Between forwards, while no hook is installed, ``ctx.pause()`` may run other
    forwards (the app's model thread answers a waiting probe there) and ``ctx.check()`` stops at a
    cancel."""
    import torch

    ctx = ctx or NO_JOB
    out: dict[Label, Measure] = {}
    new = list(ids[start:])
    for lo in range(0, len(rows), chunk):
        ctx.pause()
        ctx.check()
        part = rows[lo:lo + chunk]
        n = len(part)
        edits = [Edit(e.kind, e.layer, r, e.col, e.value, e.head, e.keys)
                 for r, (_, row) in enumerate(part) for e in row]
        past = KV([(k[:1, :, :start].expand(n, -1, -1, -1), v[:1, :, :start].expand(n, -1, -1, -1))
                   for k, v in kv.layers], torch.ones((n, start), dtype=torch.long))
        with apply(layout, edits, eager=_eager(lm)):
            logits, _, _ = extend(lm, past, [new] * n, keep=1, want_cache=False)
        out.update(zip((label for label, _ in part), measures(logits[:, -1], pair.true_id, pair.false_id)))
    return out


def trace(lm, pair: Pair, window: int | None = None, chunk: int = 64,
          ctx: JobContext | None = None, heads: bool = True, every_position: bool = True,
          knock_sink: bool = False) -> Trace:
    """The full trace of ``pair`` (module doc); ``ctx`` pauses between batched forwards and a cancel
    raises ``Cancelled``; hooks are removed on every path. ``every_position=False`` restores at the
    last position only (``pair`` is cut to it: the dataset trace's curves need no heat map).
    ``knock_sink``: the knockouts mask position 0 too when it is prepended (``knocked``)."""
    import torch

    check_attention(lm)
    layout = locate(lm)
    window = knock_window(window, layout.n_layers)
    if not lm.kv_reuse:
        raise UserError(f"{lm.name} cannot reuse keys/values (chunked or recurrent layers): no trace")
    n_layers = layout.n_layers
    if not every_position:
        pair = replace(pair, positions=pair.positions[-1:], unaligned=())
    with torch.inference_mode():
        clean_store: dict = {}
        with capture(layout, clean_store):
            c_logits, _, _ = extend(lm, None, [list(pair.clean_ids)], keep=1, want_cache=False)
        hij_store: dict = {}
        h_logits, kv = _hijacked(lm, layout, pair, hij_store)
        clean = measures(c_logits[:, -1], pair.true_id, pair.false_id)[0]
        hijacked = measures(h_logits[:, -1], pair.true_id, pair.false_id)[0]
        last = len(pair.ids) - 1
        got: dict[Label, Measure] = {}
        for j, (h, c) in enumerate(pair.positions):
            rows = [(Label("restore", kind, layer, j), [Edit(kind, layer, 0, 0, clean_store[(kind, layer)][0, c])])
                    for kind in KINDS for layer in range(n_layers)]
            if h == last:  # the last position also carries the knockouts and the heads
                rows += _last_rows(pair, n_layers, layout.n_heads, window, heads, knock_sink)
            got.update(_run_rows(lm, layout, kv, pair.ids, h, rows, pair, chunk, ctx))
        restore = {k: [[got[Label("restore", k, layer, j)] for j in range(len(pair.positions))]
                       for layer in range(n_layers)] for k in KINDS}
        knockout = {v: [got[Label("knockout", v, layer)] for layer in range(n_layers)] for v in KNOCKOUTS}
        head_rows = [[got[Label("head", ABLATION, layer, h)] for h in range(layout.n_heads)] if heads else []
                     for layer in range(n_layers)]
        dla = direct_attribution(lm, layout, hij_store, pair.true_id, pair.false_id)
    notes = () if any(pair.mentions) else ("no token of the prepended text mentions the false target: "
                                           "the mentions knockout masks nothing",)
    return Trace(lm.name, pair, clean, hijacked, restore, knockout, tuple(tuple(r) for r in head_rows), dla,
                 window, notes, knock_sink)


def _hijacked(lm, layout, pair: Pair, store: dict | None = None):
    """The hijacked run: (last logits, its keys/values), capturing the last position into ``store``."""
    if store is None:
        h_logits, _, kv = extend(lm, None, [list(pair.ids)], keep=1)
    else:
        with capture(layout, store, cols=[len(pair.ids) - 1]):
            h_logits, _, kv = extend(lm, None, [list(pair.ids)], keep=1)
    if kv is None:
        raise UserError(f"{lm.name} returned no key/value cache: no trace")
    return h_logits, kv


def ablate_heads(lm, pair: Pair, head_sets, chunk: int = 64) -> list[Measure]:
    """The hijacked prompt with each set of (layer, head) zero-ablated together at the last position:
    one ``Measure`` per set (an empty set is the hijacked run itself)."""
    import torch

    check_attention(lm)
    layout = locate(lm)
    with torch.inference_mode():
        _, kv = _hijacked(lm, layout, pair)
        rows = [(Label("heads", ABLATION, -1, i), [Edit("zero_head", int(layer), 0, 0, head=int(h)) for layer, h in hs])
                for i, hs in enumerate(head_sets)]
        got = _run_rows(lm, layout, kv, pair.ids, len(pair.ids) - 1, rows, pair, chunk, None)
        return [got[label] for label, _ in rows]


def _knock_rows(pair: Pair, n_layers: int, window: int, sink: bool, variants=KNOCKOUTS) -> list[Row]:
    """One labelled row per knockout variant and block."""
    rows = []
    for v in variants:
        keys = knock_keys(pair, v, sink)
        rows += [(Label("knockout", v, layer), [Edit("knock", b, 0, 0, keys=keys)
                                                for b in knock_layers(layer, v, window, n_layers)])
                 for layer in range(n_layers)]
    return rows


def _last_rows(pair: Pair, n_layers: int, n_heads: int, window: int, heads: bool, sink: bool = False) -> list[Row]:
    """The knockout rows, then one row per head (zero ablation at the last position)."""
    rows = _knock_rows(pair, n_layers, window, sink)
    if heads:
        rows += [(Label("head", ABLATION, layer, h), [Edit("zero_head", layer, 0, 0, head=h)])
                 for layer in range(n_layers) for h in range(n_heads)]
    return rows


def knockout_curve(lm, pair: Pair, variant: str = "all", sink: bool = False, window: int | None = None,
                   chunk: int = 64) -> tuple[Measure, list[Measure]]:
    """(the hijacked run's measure, the knockout ``variant`` at each block): the rows ``trace`` runs for
    ``Trace.knockout[variant]`` (the same keys, blocks and sink rule), without the rest of the trace."""
    import torch

    check_attention(lm)
    layout = locate(lm)
    window = knock_window(window, layout.n_layers)
    with torch.inference_mode():
        h_logits, kv = _hijacked(lm, layout, pair)
        hijacked = measures(h_logits[:, -1], pair.true_id, pair.false_id)[0]
        rows = _knock_rows(pair, layout.n_layers, window, sink, variants=(variant,))
        got = _run_rows(lm, layout, kv, pair.ids, len(pair.ids) - 1, rows, pair, chunk, None)
    return hijacked, [got[Label("knockout", variant, layer)] for layer in range(layout.n_layers)]
