"""The LCA sampler draws from the exact p(z|z*) and π(z|z*) tables; the Bayes classifier is exact."""

import numpy as np
import pytest
import torch

from engine.errors import ConfigError
from engine.lca.latent import LatentSpace
from engine.lca.task import LCATask, TaskConfig


def test_token_bits_round_trip_and_hamming():
    sp = LatentSpace(4)
    bits = sp.bits()
    assert bits.shape == (16, 4)
    assert list(bits[5]) == [0, 1, 0, 1]  # first bit most significant
    assert all(sp.token(bits[t]) == t for t in range(16))
    D = sp.hamming()
    assert D[0, 15] == 4 and D[5, 4] == 1 and D[3, 3] == 0
    assert (D == D.T).all()


@pytest.mark.parametrize("spec, size", [("all", 7), ("hamming1", 3), ("cluster:1", 3), ("cluster:2", 1)])
def test_neighbourhood_sizes(spec, size):
    mask = LatentSpace(3).neighborhood_mask(spec)
    assert not mask.diagonal().any()
    assert (mask.sum(1) == size).all()


def test_cluster_neighbourhood_shares_first_bits():
    mask = LatentSpace(3).neighborhood_mask("cluster:1")
    assert set(np.flatnonzero(mask[0])) == {1, 2, 3}
    assert set(np.flatnonzero(mask[6])) == {4, 5, 7}


@pytest.mark.parametrize("kwargs, word", [
    ({"m": 0}, "m must"), ({"m": 30}, "memory"), ({"omega": 1.5}, "omega"), ({"omega": -0.1}, "omega"),
    ({"beta": 0}, "beta"), ({"L": 0}, "L"), ({"m": 3, "neighborhood": "cluster:3"}, "empty"),
    ({"neighborhood": "ring"}, "unknown neighbourhood")])
def test_bad_task_config_is_one_clear_error(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        TaskConfig(**kwargs)


def test_exact_tables_are_distributions():
    t = LCATask(TaskConfig(m=4, omega=0.3, beta=0.7, neighborhood="hamming1"))
    assert np.allclose(t.pi.sum(1), 1) and np.allclose(t.p.sum(1), 1)
    D = t.space.hamming()
    assert (t.pi[D != 1] == 0).all()
    assert np.allclose(t.p[D != 1], 0.7 / 16)


def _frequencies(x_cols, y, V):
    """Per answer y: frequencies of tokens in the given columns, and sample counts."""
    B, C = x_cols.shape
    counts = np.zeros((V, V))
    np.add.at(counts, (np.repeat(y, C), x_cols.reshape(-1)), 1)
    n = counts.sum(1, keepdims=True)
    return counts / n, n


def _row_sampler(t: LCATask) -> LCATask:
    """The same task sampling from the row of each z* (the path for tables that are not XOR-invariant)."""
    rows = LCATask(t.cfg, sampler="rows")
    assert not rows.xor_invariant
    return rows


@pytest.mark.parametrize("spec", ["all", "hamming1", "cluster:1", "cluster:2"])
def test_every_neighbourhood_is_xor_invariant(spec):
    t = LCATask(TaskConfig(m=5, neighborhood=spec, omega=0.7))
    assert t.xor_invariant
    y, z = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    assert np.allclose(t.pi, t.pi[0][y ^ z], rtol=1e-12, atol=0)


@pytest.mark.parametrize("xor", [True, False])
@pytest.mark.parametrize("spec", ["all", "hamming1", "cluster:1", "cluster:2"])
def test_sampler_frequencies_match_exact_probabilities(spec, xor):
    cfg = TaskConfig(m=4, L=9, omega=0.6, beta=0.8, neighborhood=spec)
    t = LCATask(cfg) if xor else _row_sampler(LCATask(cfg))
    x, y = t.sample(40_000, torch.Generator().manual_seed(123))
    x, y = x.numpy(), y.numpy()
    assert np.bincount(y, minlength=16).min() > 2000  # z* uniform
    for cols, table in ((x[:, :-1], t.p), (x[:, -1:], t.pi)):
        f, n = _frequencies(cols, y, t.V)
        sigma = np.sqrt(table * (1 - table) / n) + 1e-12
        z = np.abs(f - table) / sigma
        assert z.max() < 5.5, f"{spec}: worst cell {z.max():.1f} sigma off"
        assert (f[table == 0] == 0).all()  # impossible tokens never drawn


@pytest.mark.parametrize("xor", [True, False])
def test_omega_one_never_shows_the_answer_nor_a_non_neighbour(xor):
    t = LCATask(TaskConfig(m=5, L=32, omega=1.0, neighborhood="hamming1"))
    t = t if xor else _row_sampler(t)
    x, y = t.sample(5000, torch.Generator().manual_seed(0))
    assert not (x == y[:, None]).any()
    D = torch.tensor(t.space.hamming())
    assert (D[y[:, None], x] == 1).all()


def test_a_draw_above_the_last_cumulative_value_folds_onto_a_possible_token():
    t = _row_sampler(LCATask(TaskConfig(m=4, L=3, omega=1.0, neighborhood="hamming1")))
    y = torch.tensor([0, 5, 15])
    for table in (t._cdf_p, t._cdf_pi):
        x = t._inverse_cdf(table, y, torch.ones(3, 2, dtype=torch.float64))
        assert (torch.tensor(t.pi)[y[:, None], x] > 0).all()


@pytest.mark.parametrize("spec, omega", [("all", 0.5), ("hamming1", 1.0), ("cluster:2", 0.3)])
def test_alias_tables_give_the_exact_probabilities(spec, omega):
    """On an even grid of K uniforms per bucket, the alias draw lands on each offset exactly
    ≈ K·V·p(δ) times (to the grid's resolution), and never on an impossible one."""
    t = LCATask(TaskConfig(m=5, omega=omega, neighborhood=spec))
    K = 4096
    u = ((torch.arange(32 * K, dtype=torch.float64) + 0.5) / (32 * K))[None, :]
    for table, probs in ((t._alias_p, t.p[0]), (t._alias_pi, t.pi[0])):
        freq = torch.bincount(t._alias_draw(table, u).view(-1), minlength=32).double().numpy() / (32 * K)
        assert np.abs(freq - probs).max() <= 2.0 / (32 * K)
        assert (freq[probs == 0] == 0).all()


def test_same_seed_same_batch():
    t = LCATask(TaskConfig(m=5, L=16))
    a = t.sample(64, torch.Generator().manual_seed(7))
    b = t.sample(64, torch.Generator().manual_seed(7))
    c = t.sample(64, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_bayes_log_likelihood_matches_direct_product():
    t = LCATask(TaskConfig(m=3, L=5, omega=0.4, beta=1.3, neighborhood="hamming1"))
    x, _ = t.sample(20, torch.Generator().manual_seed(1))
    ll = t.log_likelihood(x).numpy()
    for b in range(20):
        for yy in range(8):
            with np.errstate(divide="ignore"):
                direct = sum(np.log(t.p[yy, tok]) for tok in x[b, :-1].tolist()) + np.log(t.pi[yy, x[b, -1]])
            assert ll[b, yy] == pytest.approx(direct, abs=1e-9) or (direct == -np.inf and ll[b, yy] == -np.inf)


def test_bayes_is_the_ceiling_and_above_chance():
    cfg = TaskConfig(m=5, L=16, omega=0.5)
    t = LCATask(cfg)
    x, y = t.sample(4000, torch.Generator().manual_seed(3))
    acc = t.bayes_accuracy(x, y)
    assert 1 / 32 * 3 < acc < 1.0
    # A plug-in rival (count of neighbours weighted by π) cannot beat the Bayes rule here.
    counts = torch.zeros(4000, 32, dtype=torch.float64).scatter_add_(1, x, torch.ones_like(x, dtype=torch.float64))
    rival = (counts @ torch.tensor(t.pi).T).argmax(1)
    assert (rival == y).double().mean().item() <= acc + 0.01
