"""Theorem 1 and Lemma 2 with the constructed value matrix of eq. 5.1."""

import numpy as np
import torch

from engine.lca.constructed import (
    constructed_value_matrix,
    n1_adjacency,
    orthonormal_embedding,
    random_constructed_value_matrix,
    random_pairs_adjacency,
    theorem1_model,
)
from engine.lca.latent import LatentSpace
from engine.lca.task import LCATask, TaskConfig


def _accuracy(model, cfg, n=3000, seed=0):
    x, y = LCATask(cfg).sample(n, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def test_constructed_value_matrix_is_sum_of_outer_products():
    W_E = torch.randn(6, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    D = LatentSpace(3).hamming()
    direct = sum(torch.outer(W_E[:, t], sum(W_E[:, u] for u in range(8) if D[t, u] == 1)) for t in range(8))
    assert torch.allclose(constructed_value_matrix(W_E, 3), direct)


def test_random_pairs_have_the_same_count_and_no_diagonal():
    A = random_pairs_adjacency(16, 64, torch.Generator().manual_seed(1))
    assert A.sum().item() == 64 and A.diagonal().sum().item() == 0
    B = random_pairs_adjacency(16, 64, torch.Generator().manual_seed(2))
    assert not torch.equal(A, B)


def test_orthonormal_embedding():
    W = orthonormal_embedding(40, 32, torch.Generator().manual_seed(0))
    assert torch.allclose(W.T @ W, torch.eye(32), atol=1e-5)


def test_theorem1_accuracy_rises_with_L_and_passes_095():
    model = theorem1_model(5)
    accs = [_accuracy(model, TaskConfig(m=5, L=L, omega=1.0, beta=1.0, neighborhood="all")) for L in (4, 16, 64, 256)]
    assert all(b > a for a, b in zip(accs, accs[1:])), accs
    assert accs[0] < 0.5 and accs[-1] > 0.95


def test_lemma2_constructed_is_perfect_identity_is_not():
    cfg = TaskConfig(m=5, L=64, omega=1.0, neighborhood="hamming1")
    acc_c = _accuracy(theorem1_model(5, value="constructed"), cfg)
    acc_i = _accuracy(theorem1_model(5, value="identity"), cfg)
    assert acc_c == 1.0
    assert acc_i < acc_c and acc_i < 0.1  # y never appears in the context with ω = 1
    assert np.isfinite(acc_i)


def test_constructed_value_matrix_uses_n1_within_the_neighbourhood():
    """Eq. 5.1 sums over N_1(t) = {t' : D_H(t, t') = 1} ∩ N(t): for cluster:k only flips of bits k+1..m."""
    m = 4
    D = LatentSpace(m).hamming()
    top = np.arange(16) >> (m - 1)
    for nb, keep in (("all", D == 1), ("hamming1", D == 1),
                     ("cluster:1", (D == 1) & (top[:, None] == top[None, :]))):
        A = n1_adjacency(m, nb)
        np.testing.assert_array_equal(A, keep.astype(float))
    assert n1_adjacency(m, "cluster:1").sum() == 16 * (m - 1) and n1_adjacency(m, "all").sum() == 16 * m
    W_E = torch.randn(6, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    direct = sum(torch.outer(W_E[:, t], sum(W_E[:, u] for u in range(16) if D[t, u] == 1 and top[t] == top[u]))
                 for t in range(16))
    assert torch.allclose(constructed_value_matrix(W_E, m, "cluster:1"), direct)
    assert not torch.allclose(constructed_value_matrix(W_E, m, "all"), direct)
    # the random baseline keeps the construction's number of pairs
    R = random_constructed_value_matrix(torch.eye(16, dtype=torch.float64), m, torch.Generator().manual_seed(0),
                                        "cluster:2")
    assert R.sum().item() == 16 * (m - 2) and R.diagonal().sum().item() == 0


def test_cluster_constructed_model_reaches_perfect_accuracy():
    """The cluster construction solves the cluster task at ω = 1 (the Hamming-1 one is a different model)."""
    cfg = TaskConfig(m=5, L=128, omega=1.0, beta=1.0, neighborhood="cluster:1")
    acc = _accuracy(theorem1_model(5, neighborhood="cluster:1"), cfg, n=2000)
    assert acc > 0.97
