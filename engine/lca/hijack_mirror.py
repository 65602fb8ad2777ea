"""The hijack mirror: where context hijacking happens in the one-layer model (Sec. 5.5, App. C.5).

The question issue #19 asks of a real LM (``engine.hijack`` trace), asked of eq. 4.1:

    f(x) = W_Eᵀ W_V Σ_l a_l W_E(x_l),   a = softmax_l(⟨W_K u_l, W_Q u_L⟩/√d_a),   u_l = W_E(x_l)

A context is drawn for the latent y with a fraction r of its tokens drawn for ỹ instead
(``LCATask.sample_mixed``, the sampler of the context-mixing experiment): k = round(r·(L-1)) of the
positions 1..L-1, chosen uniformly; the query t_L is always drawn from π(·|y) and never mixed in.
``clean`` is the context the same seed draws with r = 0: every position reads the same uniform for
either source, so it is the mixed context with each ỹ token replaced by its y twin.

Measures, named as in the LLM trace so the two read side by side: ``p_true`` / ``p_false`` are the
softmax probabilities (over all V tokens) of y / ỹ at the output, ``logit_diff`` = f_y − f_ỹ, and
``prediction`` is the argmax token.

- ``tokens``: the exact contribution of each position, a_l · [W_Eᵀ W_V W_E(x_l)] at y and ỹ
  (``to_true``, ``to_false``, ``to_diff``); they sum to the logits (f is linear in the a_l u_l).
- ``knockout``: the mixed-in (ỹ) positions cannot be attended: masked before the softmax, so the
  weights renormalise over the rest (eq. 4.1 has no positions, so this equals deleting them).
  ``knockout_rest``: the other context positions (the y-drawn ones, t_L kept) masked instead —
  what the ỹ clues alone and the query give, the mirror of the LLM trace's "rest of the prepended
  tokens" contrast.
- ``mirror_sweep``: mean p_true / p_false / logit_diff and the flip rates over n contexts per r,
  hijacked and knocked out. Every r reads the same uniforms (one seed), so the r = 0 point is the
  clean context of every other point and a larger r only adds ỹ positions.

Everything is computed in float64 on the CPU from a copy of the weights; the model is not modified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from engine.errors import UserError
from engine.lca.config import RunConfig, TaskConfig
from engine.lca.model import OneLayerTransformer
from engine.lca.task import LCATask

__all__ = ["MirrorSweep", "MirrorTrace", "mirror_contexts", "mirror_sweep", "parse_token", "trace_mirror",
           "RATIOS"]

#: The sweep's default ratios r (as in the context-mixing experiment, Fig. C.5).
RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SOURCES = ("y", "y~")
MEASURES = ("clean", "hijacked", "knockout", "knockout_rest")


# ----------------------------------------------------------------------------- input
def parse_token(text, m: int, name: str = "y") -> int:
    """A token id from user text: an m-bit vector (``01011``, z_1 first, as the inspector labels
    tokens) or a decimal id 0..2^m - 1. Raises UserError naming ``name``."""
    V = 2 ** m
    if isinstance(text, bool):
        raise UserError(f"{name} must be a token: an id 0..{V - 1} or {m} bits")
    if isinstance(text, int):
        t = text
    else:
        s = str(text).strip()
        if len(s) == m and s and set(s) <= {"0", "1"}:
            return int(s, 2)
        try:
            t = int(s, 10)
        except ValueError:
            raise UserError(f"{name} must be a token: an id 0..{V - 1} or {m} bits, got {s!r}") from None
    if not 0 <= t < V:
        raise UserError(f"{name} must be a token id in 0..{V - 1} (m = {m}), got {t}")
    return t


def _task_cfg(cfg) -> TaskConfig:
    task = cfg.task if isinstance(cfg, RunConfig) else cfg
    if not isinstance(task, TaskConfig):
        raise UserError(f"the hijack mirror needs a RunConfig or TaskConfig, got {type(cfg).__name__}")
    return task


def _check(task: TaskConfig, model: OneLayerTransformer, y, y_tilde, r) -> tuple[int, int, float]:
    if model.V != task.V:
        raise UserError(f"the model has V = {model.V} tokens but the task has m = {task.m} (V = {task.V})")
    y, y_tilde = parse_token(y, task.m, "y"), parse_token(y_tilde, task.m, "ỹ")
    if y == y_tilde:
        raise UserError(f"ỹ must differ from y (both are {y})")
    r = _ratio(r)
    return y, y_tilde, r


def _ratio(r) -> float:
    try:
        v = float(r) if not isinstance(r, bool) else math.nan
    except (TypeError, ValueError):
        raise UserError(f"r must be a number in [0, 1], got {r!r}") from None
    if not 0.0 <= v <= 1.0:
        raise UserError(f"r must be a number in [0, 1], got {r!r}")
    return v


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"the seed must be a whole number >= 0, got {seed!r}")
    return seed


def mirror_contexts(task: LCATask, y: int, y_tilde: int, r: float, n: int = 1,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (n, L), mixed (n, L) bool): n contexts for y with round(r·(L-1)) positions drawn for ỹ,
    from a CPU generator seeded with ``seed`` (``LCATask.sample_mixed``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"the number of contexts must be a whole number >= 1, got {n!r}")
    ys = torch.full((n,), int(y), dtype=torch.int64)
    yt = torch.full((n,), int(y_tilde), dtype=torch.int64)
    return task.sample_mixed(ys, yt, float(r), torch.Generator().manual_seed(_seed(seed)))


# ----------------------------------------------------------------------------- the computation
class _Weights:
    """float64 CPU copies of W_E, W_K, W_Q, W_V and the masked forward of eq. 4.1."""

    def __init__(self, model: OneLayerTransformer):
        def w(p):
            return p.detach().to("cpu", torch.float64, copy=True)

        self.W_E, self.W_K, self.W_Q, self.W_V = w(model.W_E), w(model.W_K), w(model.W_Q), w(model.W_V)
        self.d_a = model.cfg.d_a

    def run(self, x: torch.Tensor, masked: torch.Tensor | None = None):
        """(logits (B, V), attention a (B, L), U (B, L, d)) with ``masked`` positions given no
        weight (their scores set to −inf before the softmax; the last position is never masked)."""
        U = self.W_E.T[x]                                               # (B, L, d): u_l = W_E(x_l)
        q = U[:, -1] @ self.W_Q.T                                       # (B, d_a)
        s = torch.einsum("bld,bd->bl", U @ self.W_K.T, q) / math.sqrt(self.d_a)
        if masked is not None:
            s = s.masked_fill(masked, -math.inf)
        a = s.softmax(dim=1)
        h = torch.einsum("bl,bld->bd", a, U)
        return (h @ self.W_V.T) @ self.W_E, a, U


def _scores(logits: torch.Tensor, y: int, y_tilde: int) -> dict:
    """Per row: p_true, p_false (softmax over the vocabulary), logit_diff, prediction (argmax)."""
    p = logits.softmax(dim=1)
    return {"p_true": p[:, y], "p_false": p[:, y_tilde], "logit_diff": logits[:, y] - logits[:, y_tilde],
            "prediction": logits.argmax(dim=1)}


def _row(sc: dict, logits: torch.Tensor, y: int, y_tilde: int) -> dict:
    """One context's measures, with its two logits ``logit_true`` = f_y and ``logit_false`` = f_ỹ."""
    return {"p_true": float(sc["p_true"][0]), "p_false": float(sc["p_false"][0]),
            "logit_diff": float(sc["logit_diff"][0]), "prediction": int(sc["prediction"][0]),
            "logit_true": float(logits[0, y]), "logit_false": float(logits[0, y_tilde])}


def _rest(mixed: torch.Tensor) -> torch.Tensor:
    """The y-drawn context positions: neither mixed in nor the last."""
    rest = ~mixed
    rest[:, -1] = False
    return rest


@dataclass(frozen=True, eq=False)
class MirrorTrace:
    """One mixed context, its clean twin and what each position contributes (see the module doc).

    ``tokens``: one dict a position (1-based ``position``, ``token`` id, ``bits``, ``source`` "y" or
    "y~", ``last``, ``attention`` a_l, ``to_true``, ``to_false``, ``to_diff``) in the hijacked
    context; ``by_source``: their sums over the y-drawn context tokens (``y``), the mixed-in ones
    (``y~``) and the query t_L (``last``). Each measure (``clean``, ``hijacked``, ``knockout``,
    ``knockout_rest``) is {p_true, p_false, logit_diff, prediction, logit_true, logit_false}."""

    m: int
    L: int
    y: int
    y_tilde: int
    r: float
    k: int
    seed: int
    clean: dict
    hijacked: dict
    knockout: dict
    knockout_rest: dict
    tokens: list
    by_source: dict
    clean_tokens: list = field(default_factory=list)

    @property
    def flip(self) -> dict:
        """``away_from_true``: the clean context predicts y and the hijacked one does not;
        ``to_false``: the hijacked context predicts ỹ; ``restored``: the knockout predicts y again."""
        c, h, ko = self.clean["prediction"], self.hijacked["prediction"], self.knockout["prediction"]
        return {"away_from_true": c == self.y and h != self.y, "to_false": h == self.y_tilde,
                "restored": h != self.y and ko == self.y}

    def to_dict(self) -> dict:
        bits = f"0{self.m}b"
        return {"kind": "mirror", "m": self.m, "L": self.L, "y": self.y, "y_tilde": self.y_tilde,
                "y_bits": format(self.y, bits), "y_tilde_bits": format(self.y_tilde, bits),
                "r": self.r, "k": self.k, "seed": self.seed,
                **{name: dict(getattr(self, name)) for name in MEASURES},
                "prediction": {name: getattr(self, name)["prediction"] for name in MEASURES},
                "flip": self.flip, "tokens": [dict(t) for t in self.tokens],
                "by_source": {k: dict(v) for k, v in self.by_source.items()},
                "clean_tokens": list(self.clean_tokens)}


@torch.no_grad()
def trace_mirror(cfg: RunConfig | TaskConfig, model: OneLayerTransformer, y, y_tilde, r,
                 seed: int = 0) -> MirrorTrace:
    """The mirror of one hijacked context for ``model`` (eq. 4.1) on ``cfg``'s task.

    ``y`` / ``y_tilde``: token ids or m-bit strings (``parse_token``); ``r`` in [0, 1]. The same
    arguments give the same trace. Raises UserError (one sentence) on bad input."""
    task_cfg = _task_cfg(cfg)
    y, y_tilde, r = _check(task_cfg, model, y, y_tilde, r)
    seed = _seed(seed)
    task = LCATask(task_cfg, "cpu")
    x, mixed = mirror_contexts(task, y, y_tilde, r, 1, seed)
    x_clean, _ = mirror_contexts(task, y, y_tilde, 0.0, 1, seed)
    w = _Weights(model)
    logits, a, U = w.run(x)
    clean_logits, _, _ = w.run(x_clean)
    ko_logits, _, _ = w.run(x, mixed)
    rest_logits, _, _ = w.run(x, _rest(mixed))
    G = w.W_E[:, [y, y_tilde]].T @ w.W_V                                # (2, d): rows of W_Eᵀ W_V at y, ỹ
    contrib = a[0, :, None] * (U[0] @ G.T)                              # (L, 2): a_l [W_Eᵀ W_V W_E(x_l)]
    L = task_cfg.L
    tokens = []
    for i in range(L):
        t = int(x[0, i])
        tokens.append({"position": i + 1, "token": t, "bits": format(t, f"0{task_cfg.m}b"),
                       "source": "y~" if bool(mixed[0, i]) else "y", "last": i == L - 1,
                       "attention": float(a[0, i]), "to_true": float(contrib[i, 0]),
                       "to_false": float(contrib[i, 1]), "to_diff": float(contrib[i, 0] - contrib[i, 1])})
    groups = {"y": [t for t in tokens if t["source"] == "y" and not t["last"]],
              "y~": [t for t in tokens if t["source"] == "y~"], "last": [tokens[-1]]}
    by_source = {g: {"count": len(ts), **{key: float(sum(t[key] for t in ts))
                                          for key in ("attention", "to_true", "to_false", "to_diff")}}
                 for g, ts in groups.items()}
    return MirrorTrace(
        m=task_cfg.m, L=L, y=y, y_tilde=y_tilde, r=r, k=int(mixed.sum()), seed=seed,
        **{name: _row(_scores(lg, y, y_tilde), lg, y, y_tilde) for name, lg in
           (("clean", clean_logits), ("hijacked", logits), ("knockout", ko_logits), ("knockout_rest", rest_logits))},
        tokens=tokens, by_source=by_source, clean_tokens=[int(t) for t in x_clean[0]])


# ----------------------------------------------------------------------------- the sweep over r
@dataclass(frozen=True, eq=False)
class MirrorSweep:
    """Means over ``n`` contexts per r: ``points`` one dict a ratio with ``r``, ``k`` and, for
    ``hijacked``, ``knockout`` and ``knockout_rest``, {p_true, p_false, logit_diff, away_from_true,
    to_false} (the last two: fractions of contexts whose prediction is not y / is ỹ)."""

    m: int
    L: int
    y: int
    y_tilde: int
    n: int
    seed: int
    points: list

    def to_dict(self) -> dict:
        return {"kind": "mirror_sweep", "m": self.m, "L": self.L, "y": self.y, "y_tilde": self.y_tilde,
                "n": self.n, "seed": self.seed, "points": [dict(p) for p in self.points]}

    def curve(self, measure: str, key: str) -> tuple[list, list]:
        """(r values, the mean ``key`` of ``measure``) for a chart."""
        return [p["r"] for p in self.points], [p[measure][key] for p in self.points]


def _means(sc: dict, y: int, y_tilde: int) -> dict:
    pred = sc["prediction"]
    return {"p_true": float(sc["p_true"].mean()), "p_false": float(sc["p_false"].mean()),
            "logit_diff": float(sc["logit_diff"].mean()),
            "away_from_true": float((pred != y).double().mean()),
            "to_false": float((pred == y_tilde).double().mean())}


@torch.no_grad()
def mirror_sweep(cfg: RunConfig | TaskConfig, model: OneLayerTransformer, y, y_tilde,
                 ratios=RATIOS, n: int = 256, seed: int = 0) -> MirrorSweep:
    """Mean measures against r over ``n`` contexts a ratio (the same seed, hence the same
    uniforms, for every r): hijacked, knockout and knockout_rest. Raises UserError on bad input."""
    task_cfg = _task_cfg(cfg)
    rs = [_ratio(r) for r in ratios]
    if not rs:
        raise UserError("the sweep needs at least one ratio r")
    y, y_tilde, _ = _check(task_cfg, model, y, y_tilde, rs[0])
    task = LCATask(task_cfg, "cpu")
    w = _Weights(model)
    points = []
    for r in rs:
        x, mixed = mirror_contexts(task, y, y_tilde, r, n, _seed(seed))
        point = {"r": r, "k": int(mixed[0].sum())}
        for name, mask in (("hijacked", None), ("knockout", mixed), ("knockout_rest", _rest(mixed))):
            point[name] = _means(_scores(w.run(x, mask)[0], y, y_tilde), y, y_tilde)
        points.append(point)
    return MirrorSweep(m=task_cfg.m, L=task_cfg.L, y=y, y_tilde=y_tilde, n=n, seed=seed, points=points)
