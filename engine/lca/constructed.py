"""Hand-built matrices of Sec. 5: the constructed value matrix and the Theorem 1 model.

Constructed W_V (eq. 5.1):  W_V = Σ_t W_E(t) (Σ_{t' ∈ N_1(t)} W_E(t'))ᵀ = W_E A W_Eᵀ,
with N_1(t) = {t' : D_H(t, t') = 1} ∩ N(t) and A its adjacency (A[t, t'] = 1 iff t' ∈ N_1(t)). For
N = all other tokens (Thm 1) and N = Hamming-1 (Lemma 2) that is every Hamming-1 pair (V·m ones); for
the cluster neighbourhoods of Sec. 5.4 (first k bits shared) only the flips of bits k+1..m stay
(V·(m − k) ones). The random-constructed baseline keeps the same number of outer-product pairs but
draws the pairs (t, t'), t ≠ t', uniformly at random.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.lca.latent import LatentSpace
from engine.lca.model import ModelConfig, OneLayerTransformer


def n1_adjacency(m: int, neighborhood: str = "all") -> np.ndarray:
    """(V, V) 0/1 adjacency of N_1(t) = {t' : D_H(t, t') = 1} ∩ N(t) (eq. 5.1)."""
    space = LatentSpace(m)
    return (space.hamming1_adjacency().astype(bool) & space.neighborhood_mask(neighborhood)).astype(np.float64)


def constructed_value_matrix(W_E: torch.Tensor, m: int, neighborhood: str = "all") -> torch.Tensor:
    """Eq. 5.1 for a given W_E (d, V): W_E A W_Eᵀ with A the adjacency of N_1(t) = {D_H = 1} ∩ N(t)
    for the task's neighbourhood N (``all``, ``hamming1`` or ``cluster:k``)."""
    A = torch.tensor(n1_adjacency(m, neighborhood), dtype=W_E.dtype, device=W_E.device)
    return W_E @ A @ W_E.T


def random_pairs_adjacency(V: int, n_pairs: int, generator: torch.Generator) -> torch.Tensor:
    """A (V, V) 0/1 matrix with ``n_pairs`` distinct off-diagonal ones at uniformly random places."""
    off = torch.tensor(np.flatnonzero(~np.eye(V, dtype=bool)))
    pick = off[torch.randperm(off.numel(), generator=generator)[:n_pairs]]
    A = torch.zeros(V * V, dtype=torch.float64)
    A[pick] = 1.0
    return A.view(V, V)


def random_constructed_value_matrix(W_E: torch.Tensor, m: int, generator: torch.Generator,
                                    neighborhood: str = "all") -> torch.Tensor:
    """The baseline of Sec. 6.1: Σ over random pairs (t, t') of W_E(t) W_E(t')ᵀ, as many pairs as
    the construction for ``neighborhood`` has (V·m for ``all``/``hamming1``)."""
    V = W_E.shape[1]
    n_pairs = int(n1_adjacency(m, neighborhood).sum())
    A = random_pairs_adjacency(V, n_pairs, generator).to(W_E.dtype).to(W_E.device)
    return W_E @ A @ W_E.T


def orthonormal_embedding(d: int, V: int, generator: torch.Generator) -> torch.Tensor:
    """(d, V) W_E with orthonormal columns (needs d >= V): the first V columns of a random
    orthogonal matrix (QR of a Gaussian)."""
    if d < V:
        raise ValueError(f"orthonormal embeddings need d >= V, got d = {d}, V = {V}")
    G = torch.randn(d, V, generator=generator, dtype=torch.float64)
    Q, R = torch.linalg.qr(G)
    return (Q * torch.sign(torch.diagonal(R))).to(torch.float32)


def theorem1_model(m: int, d: int | None = None, generator: torch.Generator | None = None,
                   value: str = "constructed", neighborhood: str = "all") -> OneLayerTransformer:
    """The Theorem 1 model: orthonormal W_E (d >= V), W_K = W_Q = 0 (uniform attention) and
    W_V from eq. 5.1 for ``neighborhood`` (``value="constructed"``) or W_V = I (``value="identity"``,
    Lemma 2's foil)."""
    V = 2 ** m
    d = d or V
    g = generator or torch.Generator().manual_seed(0)
    model = OneLayerTransformer(V, ModelConfig(d=d, d_a=d, uniform_attention=True,
                                               freeze_value=(value == "identity")), g)
    with torch.no_grad():
        model.W_E.copy_(orthonormal_embedding(d, V, g))
        if value == "constructed":
            model.W_V.copy_(constructed_value_matrix(model.W_E.detach(), m, neighborhood))
        elif value != "identity":
            raise ValueError(f"value must be 'constructed' or 'identity', got {value!r}")
    return model
