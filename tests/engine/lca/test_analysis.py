"""Known answers of the inspector analyses (engine/lca/analysis.py) on constructed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.errors import ConfigError
from engine.lca.analysis import (
    accuracy_vs_length,
    attention_by_cluster,
    attention_by_hamming,
    average_attention_matrix,
    embedding_geometry,
    gram_matrix,
    model_accuracy,
    principal_angles,
    rank_k_approx,
    singular_values,
    smallest_principal_angle,
    spectral_gap,
    spectral_gap_at,
    swap_value_accuracy,
    value_angles_report,
    value_swap_report,
)
from engine.lca.config import RunConfig, TrainConfig
from engine.lca.constructed import constructed_value_matrix, orthonormal_embedding, theorem1_model
from engine.lca.latent import LatentSpace
from engine.lca.model import ModelConfig, OneLayerTransformer
from engine.lca.task import LCATask, TaskConfig
from engine.lca.trainer import Trainer


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def eq52_embedding(m, a, b, b0):
    """W_E (V, V) whose Gram matrix is exactly b0 on the diagonal and -a·D_H + b off it."""
    D = LatentSpace(m).hamming().astype(np.float64)
    G = -a * D + b
    np.fill_diagonal(G, b0)
    lam, Q = np.linalg.eigh(G)
    assert lam.min() > 0, "the test's Gram matrix must be positive definite"
    return (Q * np.sqrt(lam)).T  # W_Eᵀ W_E = Q Λ Qᵀ = G


def random_model(m=3, d=8, seed=0):
    return OneLayerTransformer(2 ** m, ModelConfig(d=d, d_a=d), gen(seed))


def sample(m, L, B, seed=1, **kw):
    task = LCATask(TaskConfig(m=m, L=L, **kw))
    return task.sample(B, gen(seed))


# ----------------------------------------------------------------------------- embeddings
def test_orthonormal_embedding_gives_identity_gram_and_flat_geometry():
    W_E = orthonormal_embedding(40, 32, gen(0))
    G = gram_matrix(W_E)
    assert G.shape == (32, 32)
    np.testing.assert_allclose(G, np.eye(32), atol=1e-5)
    geo = embedding_geometry(W_E, 5)
    assert geo.a == pytest.approx(0, abs=1e-6)
    assert geo.b == pytest.approx(0, abs=1e-6)
    assert geo.b0 == pytest.approx(1, abs=1e-5)
    assert math.isnan(geo.r2)  # nothing to explain: every off-diagonal inner product is 0
    assert geo.dist.shape == geo.inner.shape == (32 * 31 // 2,)
    np.testing.assert_allclose(geo.mean_inner, [1, 0, 0, 0, 0, 0], atol=1e-5)
    # counts: V diagonal entries, then V·C(m,k)/2 unordered pairs at distance k
    assert geo.counts.tolist() == [32] + [32 * math.comb(5, k) // 2 for k in range(1, 6)]


def test_gram_is_in_token_order():
    W_E = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    np.testing.assert_allclose(gram_matrix(W_E), (W_E.T @ W_E).numpy())


@pytest.mark.parametrize("m,a,b,b0", [(4, 0.1, 0.5, 2.0), (5, 0.05, 0.2, 1.5), (3, -0.2, 0.1, 1.0)])
def test_eq52_fit_recovers_a_b_b0(m, a, b, b0):
    W_E = eq52_embedding(m, a, b, b0)
    geo = embedding_geometry(W_E, m)
    assert geo.a == pytest.approx(a, abs=1e-6)
    assert geo.b == pytest.approx(b, abs=1e-6)
    assert geo.b0 == pytest.approx(b0, abs=1e-6)
    assert geo.r2 == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(geo.mean_inner, [b0] + [-a * k + b for k in range(1, m + 1)], atol=1e-9)
    np.testing.assert_allclose(geo.fitted(), geo.mean_inner, atol=1e-9)
    np.testing.assert_allclose(geo.inner, -a * geo.dist + b, atol=1e-9)


def test_fit_r2_below_one_with_noise_and_m_mismatch_raises():
    W_E = eq52_embedding(4, 0.1, 0.5, 2.0)
    noisy = W_E + 0.05 * np.random.default_rng(0).standard_normal(W_E.shape)
    geo = embedding_geometry(noisy, 4)
    assert 0.0 < geo.r2 < 1.0
    assert geo.a == pytest.approx(0.1, abs=0.03)
    d = geo.to_dict()
    assert set(d) >= {"a", "b", "b0", "r2", "mean_inner", "counts"} and "dist" not in d
    with pytest.raises(ConfigError):
        embedding_geometry(W_E, 3)
    one = embedding_geometry(np.array([[1.0, 0.5], [0.0, 1.0]]), 1)  # m = 1: one distance only
    assert math.isnan(one.a) and one.b == pytest.approx(0.5) and one.b0 == pytest.approx(1.125)


def test_singular_values_and_spectral_gap():
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    Vt, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    s_true = np.array([9.0, 7.0, 5.0, 1.0, 0.5, 0.25])
    M = U[:, :6] @ np.diag(s_true) @ Vt
    s = singular_values(torch.tensor(M))
    np.testing.assert_allclose(s, s_true, atol=1e-9)
    # the largest s_k / s_{k+1} over k = 1..m+2 (the one definition, experiment and inspector alike)
    assert spectral_gap_at(s, 3) == (pytest.approx(5.0), 3)
    assert spectral_gap_at(s, 1) == (pytest.approx(5.0), 3)          # k <= m + 2 = 3
    assert spectral_gap(s, 1) == spectral_gap_at(s, 1)[0]
    assert spectral_gap_at([10, 9, 1, 0.9, 0.8, 0.7, 0.1], 3) == (pytest.approx(9.0), 2)  # 0.7/0.1 is k = 6 > m + 2
    assert spectral_gap_at([10, 9, 8, 1, 0.9, 0.8], 3) == (pytest.approx(8.0), 3)
    assert math.isnan(spectral_gap([5.0], 1))
    assert spectral_gap([3.0, 0.0], 1) == math.inf


# ----------------------------------------------------------------------------- value matrix
def test_rank_k_approx_is_eckart_young():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((7, 5))
    R = rank_k_approx(M, 2)
    assert np.linalg.matrix_rank(R) == 2
    s = np.linalg.svd(M, compute_uv=False)
    assert np.linalg.norm(M - R, 2) == pytest.approx(s[2])
    np.testing.assert_allclose(rank_k_approx(M, 5), M, atol=1e-12)


def test_principal_angles_known_answers():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((10, 10))
    np.testing.assert_allclose(principal_angles(A, A, 4), 0, atol=1e-5)
    assert smallest_principal_angle(A, 3.0 * A, 4) == pytest.approx(0, abs=1e-5)
    E = np.eye(10)
    P = E[:, :3] @ np.diag([3.0, 2.0, 1.0]) @ E[:, :3].T        # column space span(e1, e2, e3)
    Q = E[:, 3:6] @ np.diag([3.0, 2.0, 1.0]) @ E[:, 3:6].T      # span(e4, e5, e6)
    np.testing.assert_allclose(principal_angles(P, Q, 3), 90, atol=1e-9)
    th = np.radians(30)
    a = np.zeros((3, 1))
    a[0] = 1
    b = np.zeros((3, 1))
    b[0], b[1] = np.cos(th), np.sin(th)
    assert smallest_principal_angle(a, b, 1) == pytest.approx(30, abs=1e-9)
    angles = principal_angles(rng.standard_normal((10, 10)), A, 4)
    assert np.all(np.diff(angles) >= 0) and angles.shape == (4,)


def test_swap_with_own_value_matrix_equals_model_accuracy():
    model = random_model(m=3, d=8)
    x, y = sample(3, 12, 300)
    W_V_before = model.W_V.detach().clone()
    acc = model_accuracy(model, x, y)
    direct = (model(x).argmax(1) == y).double().mean().item()
    assert acc == pytest.approx(direct)
    assert swap_value_accuracy(model, x, y, model.W_V.detach().numpy()) == pytest.approx(acc)
    other = swap_value_accuracy(model, x, y, torch.eye(8))
    assert 0.0 <= other <= 1.0
    assert torch.equal(model.W_V.detach(), W_V_before)  # not mutated


def test_theorem1_model_constructed_swap_equals_itself():
    m = 4
    model = theorem1_model(m, generator=gen(3))
    x, y = sample(m, 32, 512, seed=4)
    rep = value_swap_report(model, m, x, y, gen(5))
    assert rep["constructed"] == pytest.approx(rep["trained"])
    assert rep["trained"] == pytest.approx(model_accuracy(model, x, y))
    assert rep["bayes"] is None and 0.0 <= rep["random_constructed"] <= 1.0
    assert value_swap_report(model, m, x, y, gen(5)) == rep  # seeded: same numbers


def test_value_swap_report_from_trainer():
    cfg = RunConfig(task=TaskConfig(m=3, L=8), model=ModelConfig(d=8, d_a=8),
                    train=TrainConfig(steps=1, batch_size=16, eval_size=128, device="cpu"))
    tr = Trainer(cfg)
    rep = value_swap_report(tr, generator=gen(0))
    assert rep["trained"] == pytest.approx(tr.evaluate().accuracy)
    assert rep["bayes"] == pytest.approx(tr.bayes_accuracy)


def test_value_angles_report():
    m = 4
    W_E = orthonormal_embedding(20, 16, gen(0)).double()
    # perturb so the rank-m subspace of the constructed matrix is unique (no ties in s)
    W_E = W_E + 0.05 * torch.randn(W_E.shape, generator=gen(1), dtype=torch.float64)
    W_c = constructed_value_matrix(W_E, m)
    rep = value_angles_report(W_c, W_E, m, gen(2))
    assert rep["k"] == m
    assert rep["constructed"] == pytest.approx(0, abs=1e-4)
    assert rep["random_constructed"] > 1.0 and rep["gaussian"] > 1.0
    assert value_angles_report(W_c, W_E, m, gen(2)) == rep


# ----------------------------------------------------------------------------- attention
def test_theorem1_attention_is_uniform():
    m, L, B = 5, 16, 64
    model = theorem1_model(m, generator=gen(0))
    x, _ = sample(m, L, B, seed=6)
    h = attention_by_hamming(model, x)
    assert h.labels == tuple(range(m + 1))
    assert h.counts.sum() == B * L
    seen = h.counts > 0
    np.testing.assert_allclose(h.mean[seen], 1 / L, atol=1e-7)
    assert np.isnan(h.mean[~seen]).all()
    assert h.mass.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(h.mass, h.counts / B / L, atol=1e-7)
    c = attention_by_cluster(model, x, 1)
    assert c.labels == ("same", "other") and c.counts.sum() == B * L
    np.testing.assert_allclose(c.mean, 1 / L, atol=1e-7)
    h2 = attention_by_hamming(model, x, include_last=False)
    assert h2.counts.sum() == B * (L - 1) and h2.counts[0] == h.counts[0] - B


def test_average_attention_matrix_uniform_model():
    m, L = 3, 10
    model = theorem1_model(m, generator=gen(0))
    x, _ = sample(m, L, 40, seed=7)
    A = average_attention_matrix(model, x)
    assert A.shape == (8, 8)
    seen = ~np.isnan(A)
    assert seen.any()
    np.testing.assert_allclose(A[seen], 1 / L, atol=1e-7)
    A_last = average_attention_matrix(model, x, last_query_only=True)
    assert (~np.isnan(A_last)).sum() <= seen.sum()
    np.testing.assert_allclose(A_last[~np.isnan(A_last)], 1 / L, atol=1e-7)


def test_attention_groupings_match_naive_loops_on_random_model():
    m, L, B = 3, 6, 7
    model = random_model(m=m, d=8, seed=11)
    x, _ = sample(m, L, B, seed=8, neighborhood="cluster:1")
    D = LatentSpace(m).hamming()
    a = model.attention_last(x).detach().double().numpy()
    full = model.attention_full(x).detach().double().numpy()
    xs = x.numpy()
    sums, cnt = np.zeros(m + 1), np.zeros(m + 1)
    csum, ccnt = np.zeros(2), np.zeros(2)
    Asum, Acnt = np.zeros((8, 8)), np.zeros((8, 8))
    for b in range(B):
        for pos in range(L):
            k = D[xs[b, pos], xs[b, -1]]
            sums[k] += a[b, pos]
            cnt[k] += 1
            g = int((xs[b, pos] >> 2) != (xs[b, -1] >> 2))
            csum[g] += a[b, pos]
            ccnt[g] += 1
            for j in range(L):
                Asum[xs[b, j], xs[b, pos]] += full[b, pos, j]
                Acnt[xs[b, j], xs[b, pos]] += 1
    h = attention_by_hamming(model, x)
    assert h.counts.tolist() == cnt.astype(int).tolist()
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(h.mean, sums / cnt, atol=1e-6)
        np.testing.assert_allclose(average_attention_matrix(model, x), Asum / Acnt, atol=1e-6)
    np.testing.assert_allclose(h.mass, sums / B, atol=1e-6)
    c = attention_by_cluster(model, x, 1)
    np.testing.assert_allclose(c.mean, csum / ccnt, atol=1e-6)
    # k_bits = m: the same cluster is the same token, i.e. Hamming distance 0
    assert attention_by_cluster(model, x, m).mean[0] == pytest.approx(h.mean[0])
    with pytest.raises(ConfigError):
        attention_by_cluster(model, x, 0)


# ----------------------------------------------------------------------------- context length
def test_accuracy_vs_length_model_and_factory_agree_and_are_seeded():
    m = 4
    model = theorem1_model(m, generator=gen(0))
    cfg = TaskConfig(m=m, omega=0.5)
    lengths = [2, 8, 32]
    curve = accuracy_vs_length(model, cfg, lengths, 300, gen(9))
    assert curve.lengths.tolist() == lengths
    assert curve.accuracy.shape == curve.bayes_accuracy.shape == (3,)
    assert np.all((curve.accuracy >= 0) & (curve.accuracy <= curve.bayes_accuracy + 0.05))
    again = accuracy_vs_length(lambda L: model, cfg, lengths, 300, gen(9))
    assert again.to_dict() == curve.to_dict()
    # same draws by hand: LCATask per L, the same generator consumed in order
    g = gen(9)
    for i, L in enumerate(lengths):
        task = LCATask(TaskConfig(m=m, omega=0.5, L=L))
        x, y = task.sample(300, g)
        assert curve.accuracy[i] == pytest.approx(model_accuracy(model, x, y))
        assert curve.bayes_accuracy[i] == pytest.approx(task.bayes_accuracy(x, y))
    assert curve.accuracy[-1] > curve.accuracy[0]  # Thm 1: longer contexts help


def test_value_reports_follow_the_task_neighbourhood():
    """Cluster runs get their own eq. 5.1 construction (N_1 = {D_H = 1} ∩ N), the angles report all m angles
    and can be taken against the run's own initial W_V."""
    from engine.lca.constructed import constructed_value_matrix

    m = 4
    W_E = torch.randn(8, 16, generator=gen(0), dtype=torch.float64)
    W_c = constructed_value_matrix(W_E, m, "cluster:1")
    rep = value_angles_report(W_c, W_E, m, gen(1), neighborhood="cluster:1", W_V_init=torch.eye(8), all_angles=True)
    assert rep["constructed"] == pytest.approx(0.0, abs=1e-5)
    assert len(rep["all"]["constructed"]) == m and rep["all"]["constructed"] == sorted(rep["all"]["constructed"])
    assert rep["gaussian"] == pytest.approx(principal_angles(W_c, torch.eye(8), m)[0])
    assert "all" not in value_angles_report(W_c, W_E, m, gen(1))
    full = value_angles_report(W_c, W_E, m, gen(1), all_angles=True)   # the Hamming-1 construction differs
    assert max(full["all"]["constructed"]) > 5.0
