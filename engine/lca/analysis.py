"""Analyses of a (trained or constructed) eq. 4.1 model: the numbers behind Sec. 5–6 and App. C.

Pure functions: torch tensors or numpy arrays in, numpy arrays or small frozen dataclasses out.
Nothing here knows about the UI; the inspector panel and the experiment suite both call these.

- Embeddings (Sec. 5.3): ``embedding_geometry`` (Fig. 3b, C.5, C.6; fit of eq. 5.2),
  ``gram_matrix``, ``singular_values`` / ``spectral_gap`` / ``spectral_gap_at`` (Fig. C.9–C.12).
- Value matrix (Sec. 6.1): ``swap_value_accuracy`` / ``value_swap_report`` (Fig. C.2),
  ``rank_k_approx`` / ``principal_angles`` / ``value_angles_report`` (Fig. C.3).
- Attention (Sec. 5.4, 6.3): ``attention_by_hamming``, ``attention_by_cluster``,
  ``average_attention_matrix`` (Fig. 3c, C.7, C.8).
- Context length (Fig. C.6 of the experiments issue): ``accuracy_vs_length``.

Matrices follow the paper's shapes: W_E (d, V) with column t = W_E(t), W_V (d, d). Tokens are in
bit order (token id = bit vector read as a binary number, ``LatentSpace``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from engine.errors import ConfigError
from engine.lca.constructed import constructed_value_matrix, random_constructed_value_matrix
from engine.lca.latent import LatentSpace
from engine.lca.task import LCATask, TaskConfig

#: Samples per forward pass when scoring a model (bounds memory: B·L·d floats per chunk).
_CHUNK = 4096
#: Largest B·L·L block ``average_attention_matrix`` materialises at once.
_ATTN_BLOCK = 1 << 22
#: Off-diagonal inner products whose spread is below this fraction of the Gram matrix's RMS are
#: "flat" (e.g. orthonormal W_E up to rounding): R² is then undefined (NaN).
_FLAT_RTOL = 1e-6


# ----------------------------------------------------------------------------- helpers
def _np(M) -> np.ndarray:
    """float64 numpy copy of a tensor / array (detached, on the CPU)."""
    if torch.is_tensor(M):
        return M.detach().to("cpu", torch.float64).numpy()
    return np.asarray(M, dtype=np.float64)


def _m_of(V: int) -> int:
    m = int(V).bit_length() - 1
    if m < 1 or 2 ** m != V:
        raise ConfigError(f"V = {V} is not 2^m for an integer m >= 1")
    return m


def _check_m(V: int, m: int) -> None:
    if 2 ** m != V:
        raise ConfigError(f"W_E has V = {V} columns but m = {m} gives 2^m = {2 ** m} tokens")


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


# ----------------------------------------------------------------------------- embeddings
@dataclass(frozen=True, eq=False)
class EmbeddingGeometry:
    """Inner products of embedding columns against Hamming distance, and the eq. 5.2 fit.

    ``dist``/``inner``: one entry per unordered pair t < t' (the scatter of Fig. 3b).
    ``mean_inner[k]``: mean ⟨W_E(t), W_E(t')⟩ over pairs at distance k (k = 0..m; k = 0 is the
    mean squared norm, i.e. b_0); ``counts[k]`` the number of pairs (k = 0: the V diagonal entries).
    Fit (least squares over the off-diagonal pairs): inner ≈ -a·D_H + b, ``r2`` its coefficient of
    determination (NaN when the off-diagonal inner products are constant up to rounding, as for an
    orthonormal W_E: there is no variance to explain). ``a`` is NaN for m = 1 (every D_H = 1).
    """

    m: int
    dist: np.ndarray
    inner: np.ndarray
    mean_inner: np.ndarray
    counts: np.ndarray
    a: float
    b: float
    b0: float
    r2: float

    @property
    def distances(self) -> np.ndarray:
        return np.arange(self.m + 1)

    def fitted(self) -> np.ndarray:
        """Eq. 5.2 evaluated at k = 0..m: b_0 at k = 0, -a·k + b for k >= 1."""
        k = np.arange(self.m + 1, dtype=np.float64)
        out = -self.a * k + self.b
        out[0] = self.b0
        return out

    def to_dict(self, pairs: bool = False) -> dict:
        """JSON-ready summary; ``pairs=True`` adds the full scatter (V(V-1)/2 points)."""
        d = {"m": self.m, "a": self.a, "b": self.b, "b0": self.b0, "r2": self.r2,
             "mean_inner": self.mean_inner.tolist(), "counts": self.counts.tolist()}
        if pairs:
            d["dist"] = self.dist.tolist()
            d["inner"] = self.inner.tolist()
        return d


def gram_matrix(W_E) -> np.ndarray:
    """(V, V) Gram matrix G[t, t'] = ⟨W_E(t), W_E(t')⟩ = (W_Eᵀ W_E)[t, t'], tokens in bit order."""
    E = _np(W_E)
    return E.T @ E


def embedding_geometry(W_E, m: int) -> EmbeddingGeometry:
    """Fig. 3b / eq. 5.2: ⟨W_E(t), W_E(t')⟩ = b_0 if t = t', else ≈ -a·D_H(t, t') + b."""
    G = gram_matrix(W_E)
    V = G.shape[0]
    _check_m(V, m)
    D = LatentSpace(m).hamming()
    iu = np.triu_indices(V, k=1)
    dist, inner = D[iu], G[iu]
    diag = np.diag(G)
    counts = np.bincount(dist, minlength=m + 1).astype(np.int64)
    sums = np.bincount(dist, weights=inner, minlength=m + 1)
    counts[0], sums[0] = V, diag.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_inner = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    b0 = float(diag.mean())
    x = dist.astype(np.float64)
    if np.ptp(x) == 0:  # m = 1: one distance only, slope undetermined
        a, b = float("nan"), float(inner.mean())
        resid = inner - b
    else:
        xm, ym = x.mean(), inner.mean()
        slope = float(((x - xm) * (inner - ym)).sum() / ((x - xm) ** 2).sum())
        a, b = -slope, float(ym - slope * xm)
        resid = inner - (slope * x + b)
    ss_res = float((resid ** 2).sum())
    ss_tot = float(((inner - inner.mean()) ** 2).sum())
    scale = float(np.sqrt((G ** 2).mean()))
    flat = np.sqrt(ss_tot / max(len(inner), 1)) <= _FLAT_RTOL * scale
    r2 = float("nan") if flat else 1.0 - ss_res / ss_tot
    return EmbeddingGeometry(m=m, dist=dist, inner=inner, mean_inner=mean_inner, counts=counts,
                             a=a, b=b, b0=b0, r2=r2)


def singular_values(M) -> np.ndarray:
    """Singular values of M, descending (spectra of W_E and W_V, Fig. C.9–C.12)."""
    return np.linalg.svd(_np(M), compute_uv=False)


def spectral_gap_at(s, m: int) -> tuple[float, int]:
    """The spectral gap of Sec. 5.3 / Fig. C.9–C.12 and where it sits: the largest ratio
    s_k / s_{k+1} over k = 1..m+2 (1-based, s descending; Lemma 5 bounds the rank of eq. 5.2
    embeddings by m + 2, so the gap may sit anywhere up to there). (NaN, 0) when there are fewer than
    two values; (inf, k) when s_{k+1} = 0 < s_k. The one definition used by the spectrum experiment and
    the inspector."""
    if m < 1:
        raise ConfigError(f"the gap index m must be >= 1, got {m}")
    s = np.sort(np.asarray(s, dtype=np.float64))[::-1]
    best, at = float("nan"), 0
    for k in range(1, min(m + 2, len(s) - 1) + 1):
        if s[k - 1] <= 0:
            break
        g = float(s[k - 1] / s[k]) if s[k] > 0 else float("inf")
        if not (best >= g):
            best, at = g, k
    return best, at


def spectral_gap(s, m: int) -> float:
    """The ratio of ``spectral_gap_at``: max over k = 1..m+2 of s_k / s_{k+1}."""
    return spectral_gap_at(s, m)[0]


# ----------------------------------------------------------------------------- value matrix
@torch.no_grad()
def _accuracy(model, x: torch.Tensor, y: torch.Tensor, W_V=None) -> float:
    """Accuracy of eq. 4.1, optionally with W_V replaced: f(x) = W_Eᵀ W_V h(x). Never mutates."""
    dev = _model_device(model)
    W_E = model.W_E
    Wv = model.W_V if W_V is None else torch.as_tensor(W_V).to(dev, W_E.dtype)
    if Wv.shape != model.W_V.shape:
        raise ConfigError(f"W_V must have shape {tuple(model.W_V.shape)}, got {tuple(Wv.shape)}")
    x, y = x.to(dev), y.to(dev)
    correct = 0
    for i in range(0, x.shape[0], _CHUNK):
        h, _ = model.hidden(x[i:i + _CHUNK])
        logits = (h @ Wv.T) @ W_E
        correct += (logits.argmax(1) == y[i:i + _CHUNK]).sum().item()
    return correct / max(x.shape[0], 1)


def model_accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of samples where argmax_t f_t(x) = y."""
    return _accuracy(model, x, y)


def swap_value_accuracy(model, x: torch.Tensor, y: torch.Tensor, W_V) -> float:
    """Accuracy of the model with its value matrix replaced by ``W_V`` (Sec. 6.1, Fig. C.2).
    The model is not modified: the forward pass is recomputed with the given matrix."""
    return _accuracy(model, x, y, W_V)


def value_swap_report(source, m: int | None = None, x: torch.Tensor | None = None,
                      y: torch.Tensor | None = None,
                      generator: torch.Generator | None = None, neighborhood: str | None = None) -> dict:
    """Fig. C.2: accuracy with the trained W_V, the constructed W_V of eq. 5.1 (from the model's own
    W_E, with N_1(t) = {D_H = 1} ∩ N(t) for ``neighborhood``: the trainer's task's when None, else
    ``all``) and the random-constructed baseline (as many random pairs, ``generator``; seed 0 if None).

    ``source`` is a Trainer (then m, x, y default to its task and held-out set) or a model.
    Returns {"trained", "constructed", "random_constructed", "bayes"} (``bayes`` is None unless
    ``source`` has a task to compute it from).
    """
    model = getattr(source, "model", source)
    task = getattr(source, "task", None)
    if m is None:
        if task is None:
            m = _m_of(model.V)
        else:
            m = task.cfg.m
    if x is None or y is None:
        if not hasattr(source, "x_eval"):
            raise ConfigError("value_swap_report needs x and y when given a model, not a trainer")
        x, y = source.x_eval, source.y_eval
    if neighborhood is None:
        neighborhood = task.cfg.neighborhood if task is not None else "all"
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    # Built in the model's own dtype and device: the Thm 1 model's logits are count-based and tie
    # often, so a float64 rebuild would flip argmax ties and differ from the model's own W_V.
    W_E = model.W_E.detach()
    W_c = constructed_value_matrix(W_E, m, neighborhood)
    W_r = random_constructed_value_matrix(W_E, m, g, neighborhood)
    bayes = None
    if task is not None:
        bayes = task.bayes_accuracy(x.to(task.device), y.to(task.device))
    return {"trained": _accuracy(model, x, y),
            "constructed": _accuracy(model, x, y, W_c),
            "random_constructed": _accuracy(model, x, y, W_r),
            "bayes": bayes}


def rank_k_approx(M, k: int) -> np.ndarray:
    """Best rank-k approximation (Eckart–Young) U[:, :k] diag(s[:k]) V[:k]ᵀ from the SVD."""
    A = _np(M)
    if not 0 <= k <= min(A.shape):
        raise ConfigError(f"rank k = {k} must lie in [0, {min(A.shape)}] for a {A.shape} matrix")
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    return (U[:, :k] * s[:k]) @ Vt[:k]


def principal_angles(A, B, k: int) -> np.ndarray:
    """Principal angles in degrees, ascending, between the column spaces of the rank-k
    approximations of A and B (Fig. C.3): cos θ_i are the singular values of U_A[:, :k]ᵀ U_B[:, :k].
    When s_k = s_{k+1} the rank-k subspace is not unique and the SVD picks one."""
    Am, Bm = _np(A), _np(B)
    if Am.shape[0] != Bm.shape[0]:
        raise ConfigError(f"A and B must have the same number of rows, got {Am.shape} and {Bm.shape}")
    if not 1 <= k <= min(min(Am.shape), min(Bm.shape)):
        raise ConfigError(f"k = {k} must lie in [1, {min(min(Am.shape), min(Bm.shape))}]")
    Ua = np.linalg.svd(Am, full_matrices=False)[0][:, :k]
    Ub = np.linalg.svd(Bm, full_matrices=False)[0][:, :k]
    cos = np.clip(np.linalg.svd(Ua.T @ Ub, compute_uv=False), -1.0, 1.0)
    return np.sort(np.degrees(np.arccos(cos)))


def smallest_principal_angle(A, B, k: int) -> float:
    """The smallest principal angle (degrees) between the rank-k column spaces of A and B."""
    return float(principal_angles(A, B, k)[0])


def value_angles_report(W_V, W_E, m: int, generator: torch.Generator | None = None,
                        neighborhood: str = "all", W_V_init=None, all_angles: bool = False) -> dict:
    """Fig. C.3: principal angles (degrees, rank k = m) between the trained W_V and the constructed
    W_V (eq. 5.1 for ``neighborhood``), the random-constructed one and a baseline: the run's own
    initial W_V when ``W_V_init`` is given, else a Gaussian (d, d) matrix with N(0, 1/d) entries (the
    initialisation's law). ``generator`` (CPU; seed 0 if None) draws the random pairs and then the
    Gaussian. Returns {"constructed", "random_constructed", "gaussian", "k"} (smallest angles) and,
    with ``all_angles``, "all": {same keys -> the m angles, ascending}."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    E = torch.as_tensor(_np(W_E))
    _check_m(E.shape[1], m)
    d = E.shape[0]
    W = _np(W_V)
    W_c = constructed_value_matrix(E, m, neighborhood)
    W_r = random_constructed_value_matrix(E, m, g, neighborhood)
    W_g = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    if W_V_init is not None:
        W_g = _np(W_V_init)
    every = {"constructed": principal_angles(W, W_c, m), "random_constructed": principal_angles(W, W_r, m),
             "gaussian": principal_angles(W, W_g, m)}
    out = {k: float(v[0]) for k, v in every.items()}
    out["k"] = m
    if all_angles:
        out["all"] = {k: [float(a) for a in v] for k, v in every.items()}
    return out


# ----------------------------------------------------------------------------- attention
@dataclass(frozen=True, eq=False)
class GroupedAttention:
    """Attention of the last position (column L of σ, eq. 4.1) grouped by a relation to t_L.

    ``mean[g]``: mean weight per (sample, key position) pair in group g — the average of a[b, l]
    over all pairs with the key token in group g (NaN where ``counts[g]`` = 0). Uniform
    attention gives 1/L everywhere.
    ``mass[g]``: mean over samples of the total weight on group g (sums to 1 over the groups when
    the last position itself is included).
    ``counts[g]``: number of (sample, position) pairs in group g (B·L in all by default).
    ``labels``: the group names (Hamming distances 0..m, or ``same``/``other`` cluster).
    """

    labels: tuple
    mean: np.ndarray
    mass: np.ndarray
    counts: np.ndarray

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "mean": self.mean.tolist(),
                "mass": self.mass.tolist(), "counts": self.counts.tolist()}


@torch.no_grad()
def _grouped(model, x: torch.Tensor, group: np.ndarray, n_groups: int, include_last: bool,
             labels: tuple) -> GroupedAttention:
    """Group the last-position attention weights by ``group[t_l, t_L]`` (a (V, V) int table)."""
    dev = _model_device(model)
    x = x.to(dev)
    a = torch.cat([model.attention_last(x[i:i + _CHUNK]) for i in range(0, x.shape[0], _CHUNK)])
    a = a.detach().to("cpu", torch.float64).numpy()
    xs = x.cpu().numpy()
    B = xs.shape[0]
    gid = group[xs, xs[:, -1:]]                               # (B, L)
    if not include_last:
        gid, a = gid[:, :-1], a[:, :-1]
    gid, w = gid.ravel(), a.ravel()
    counts = np.bincount(gid, minlength=n_groups).astype(np.int64)
    sums = np.bincount(gid, weights=w, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return GroupedAttention(labels=labels, mean=mean, mass=sums / max(B, 1), counts=counts)


def attention_by_hamming(model, x: torch.Tensor, include_last: bool = True) -> GroupedAttention:
    """Sec. 5.4 / Fig. C.7: last-position attention grouped by D_H(t_l, t_L) = k, k = 0..m.

    ``mean[k]`` is the mean of a[b, l] over (sample, position) pairs at distance k (see
    ``GroupedAttention``). Position L itself (distance 0) is counted unless ``include_last=False``.
    """
    m = _m_of(model.V)
    D = LatentSpace(m).hamming()
    return _grouped(model, x, D, m + 1, include_last, tuple(range(m + 1)))


def attention_by_cluster(model, x: torch.Tensor, k_bits: int,
                         include_last: bool = True) -> GroupedAttention:
    """Fig. 3c, C.7 (k = 1), C.8 (k = 2): last-position attention on tokens in the same cluster as
    t_L (same first ``k_bits`` bits) vs the other clusters; labels ("same", "other")."""
    m = _m_of(model.V)
    if not (isinstance(k_bits, int) and 1 <= k_bits <= m):
        raise ConfigError(f"k_bits must be an integer in [1, {m}], got {k_bits!r}")
    top = np.arange(2 ** m) >> (m - k_bits)
    other = (top[:, None] != top[None, :]).astype(np.int64)   # 0 = same cluster, 1 = other
    return _grouped(model, x, other, 2, include_last, ("same", "other"))


@torch.no_grad()
def average_attention_matrix(model, x: torch.Tensor, last_query_only: bool = False) -> np.ndarray:
    """Fig. 3c: (V, V) A[t, t'] = mean attention weight σ[i, j] of query token t = x_j on key token
    t' = x_i, over every (sample, query position j, key position i) with those tokens
    (``attention_full``; only j = L with ``last_query_only``). Unseen pairs are NaN.
    Vectorised with bincount over batch blocks; no loop over samples or positions."""
    V = model.V
    dev = _model_device(model)
    x = x.to(dev)
    B, L = x.shape
    sums = np.zeros(V * V)
    counts = np.zeros(V * V)
    step = max(1, _ATTN_BLOCK // (L * L))
    for i in range(0, B, step):
        xb = x[i:i + step]
        A = model.attention_full(xb)                          # [b, key i, query j]
        if last_query_only:
            A = A[:, :, -1:]
            q = xb[:, -1:].unsqueeze(1).expand(-1, L, 1)
        else:
            q = xb.unsqueeze(1).expand(-1, L, L)              # [b, i, j] = x[b, j]
        k = xb.unsqueeze(2).expand_as(q)                      # [b, i, j] = x[b, i]
        idx = (q * V + k).reshape(-1).cpu().numpy()
        sums += np.bincount(idx, weights=A.reshape(-1).double().cpu().numpy(), minlength=V * V)
        counts += np.bincount(idx, minlength=V * V)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out.reshape(V, V)


# ----------------------------------------------------------------------------- context length
@dataclass(frozen=True, eq=False)
class LengthCurve:
    """Accuracy of a model and the Bayes-optimal accuracy on the same samples, per context length."""

    lengths: np.ndarray
    accuracy: np.ndarray
    bayes_accuracy: np.ndarray

    def to_dict(self) -> dict:
        return {"lengths": self.lengths.tolist(), "accuracy": self.accuracy.tolist(),
                "bayes_accuracy": self.bayes_accuracy.tolist()}


def accuracy_vs_length(model_or_factory, task_cfg: TaskConfig, lengths: Sequence[int], n: int,
                       generator: torch.Generator) -> LengthCurve:
    """Accuracy against context length L (Fig. C.6; Thm 1 / Lemma 2 against L).

    ``model_or_factory`` is a model (eq. 4.1 has no positional terms, so the same weights run on any
    L) or a callable L -> model. For each L, ``n`` samples are drawn from
    LCATask(replace(task_cfg, L=L)) on the generator's device, in the order of ``lengths``.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    acc, bayes = [], []
    for L in lengths:
        task = LCATask(replace(task_cfg, L=int(L)), generator.device)
        if isinstance(model_or_factory, torch.nn.Module):
            model = model_or_factory
        else:
            model = model_or_factory(int(L))
        x, y = task.sample(n, generator)
        acc.append(_accuracy(model, x, y))
        bayes.append(task.bayes_accuracy(x, y))
    return LengthCurve(lengths=np.asarray([int(L) for L in lengths], dtype=np.int64),
                       accuracy=np.asarray(acc), bayes_accuracy=np.asarray(bayes))
