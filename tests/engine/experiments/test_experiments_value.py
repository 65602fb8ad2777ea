"""Value-matrix experiments on their tiny grids: shapes, ranges and the W_V = I gap."""

import pytest

from engine import experiments as E


def test_value_matrix_trained_beats_identity():
    d = E.run("value-matrix", "tiny").to_dict()
    g = E.grid("value-matrix", "tiny")
    assert len(d["rows"]) == len(g["m"]) * len(g["L"])
    for r in d["rows"]:
        assert {"trained", "trained_std", "W_V=I", "W_V=I_std", "bayes", "gap", "seeds"} <= set(r)
        assert r["seeds"] == len(g["seeds"])
        assert 0 <= r["W_V=I"] < r["trained"] <= r["bayes"] + 0.05
    assert d["verdict"] == "holds"
    assert any(k.startswith("trained W_V") for k in d["curves"])


@pytest.fixture(scope="module")
def swap():
    return E.run("value-swap", "tiny").to_dict()


def test_value_swap_shape(swap):
    (row,) = swap["rows"]
    for key in ("trained", "constructed", "random_constructed", "bayes"):
        assert 0.0 <= row[key] <= 1.0
    assert row["constructed"] > row["random_constructed"]
    assert swap["verdict"] in ("holds", "does not hold", "inconclusive")


def test_value_angles_shape():
    d = E.run("value-angles", "tiny").to_dict()
    (row,) = d["rows"]
    assert row["k"] == row["m"]
    for key in ("constructed", "random_constructed", "gaussian"):
        assert 0.0 <= row[key] <= 90.0
    assert set(d["curves"]) == {"constructed", "random_constructed", "gaussian"}


def test_swap_and_angles_share_the_same_trained_models(swap):
    d = E.run("value-angles", "tiny").to_dict()
    assert d["rows"][0]["trained_accuracy"] == swap["rows"][0]["trained"]
