"""Embedding experiments on their tiny grids: trained vs frozen W_E, geometry, spectrum."""

import numpy as np

from engine import experiments as E
from engine.experiments.embedding import _gap_stat, _means_fit


def test_embedding_dim_covers_both_sides_of_V():
    d = E.run("embedding-dim", "tiny").to_dict()
    regimes = [r["regime"] for r in d["rows"]]
    assert regimes == ["d < V", "d = V", "d > V"]
    for r in d["rows"]:
        assert 0 <= r["frozen_W_E"] <= 1 and 0 <= r["trained_W_E"] <= 1
        assert r["gap"] == r["trained_W_E"] - r["frozen_W_E"]
        assert r["converged_trained"].endswith("/2") and r["converged_frozen"].endswith("/2")
        assert ("orthonormal_runs" in r) == (r["d"] == r["V"])      # the orthonormal control at d = V only
    assert d["curves"]["trained W_E m=3"]["x"] == [4, 8, 16]
    (dv,) = [r for r in d["rows"] if r["d"] == r["V"]]
    assert len(dv["orthonormal_runs"]) == 2 and dv["orthonormal_runs"] != dv["frozen_runs"]


def test_orthonormal_embedding_and_its_frozen_run():
    import torch

    from engine.experiments.embedding import _dim_job, orthonormal_embedding

    Q = orthonormal_embedding(8, 0).double()
    assert torch.allclose(Q.T @ Q, torch.eye(8, dtype=torch.float64), atol=1e-6)
    assert not torch.equal(orthonormal_embedding(8, 1), orthonormal_embedding(8, 0))
    spec = {"m": 3, "L": 8, "d": 8, "lr": 0.01, "seed": 0, "steps": 5, "batch_size": 16, "eval_size": 64,
            "freeze_embedding": True, "orthonormal": True, "device": "cpu"}
    assert 0 <= _dim_job(spec)["accuracy"] <= 1
    import pytest

    with pytest.raises(ValueError, match="d = V"):
        _dim_job({**spec, "d": 4})


def test_orthonormal_runs_are_kept_apart_in_the_model_cache(tmp_path, monkeypatch):
    from engine.experiments.training import _cache_path, make_trainer

    monkeypatch.setenv("LCA_TUI_TRAIN_CACHE", str(tmp_path))
    tr = make_trainer({"m": 3, "L": 8, "d": 8, "lr": 0.01, "seed": 0, "steps": 5, "freeze_embedding": True})
    assert _cache_path(tr, 0) != _cache_path(tr, 0, "orthonormal W_E") and _cache_path(tr, 0) == _cache_path(tr, 0)


def test_embedding_geometry_rows_and_fit():
    d = E.run("embedding-geometry", "tiny").to_dict()
    labels = [r["W_E"] for r in d["rows"]]
    assert labels == ["W_V trained", "Gaussian init", "W_V = I"]
    m = E.grid("embedding-geometry", "tiny")["m"]
    for r in d["rows"]:
        assert [f"k={k}" in r for k in range(m + 1)] == [True] * (m + 1)
        assert r["b0"] == r["k=0"] > 0
    assert len(d["curves"]["W_V = I mean"]["y"]) == m + 1


def test_means_fit_recovers_a_line():
    a, b, r2 = _means_fit([5.0, 3.0, 1.0, -1.0, -3.0])
    assert a == np.float64(2.0) or abs(a - 2.0) < 1e-9
    assert abs(b - 5.0) < 1e-9 and abs(r2 - 1.0) < 1e-12


def test_spectrum_shape_and_gap_statistic():
    d = E.run("spectrum", "tiny").to_dict()
    (row,) = d["rows"]
    s = [row[f"s{i}/s1"] for i in range(1, 7)]
    assert s[0] == 1.0 and all(x >= y for x, y in zip(s, s[1:]))
    assert row["gap"] >= 1.0 and row["gap_init"] >= 1.0
    assert _gap_stat([10, 9, 8, 1, 0.9, 0.8], 3) == (8.0, 3)
    assert _gap_stat([10, 9, 1, 0.9, 0.8, 0.7, 0.1], 3) == (9.0, 2)  # k <= m + 2 only: 0.7/0.1 is k = 6
