"""Theorem 1 and Lemma 2 on their tiny grids: the constructed models against L (no training)."""

import pytest

from engine import experiments as E


@pytest.fixture(scope="module")
def theorem1():
    return E.run("theorem1", "tiny").to_dict()


def test_theorem1_shape(theorem1):
    g = E.grid("theorem1", "tiny")
    assert theorem1["name"] == "theorem1" and theorem1["grid"]["level"] == "tiny"
    assert len(theorem1["rows"]) == len(g["m"]) * len(g["L"])
    assert set(theorem1["rows"][0]) >= {"m", "L", "constructed", "identity", "bayes", "seeds"}
    for m in g["m"]:
        c = theorem1["curves"][f"m={m} constructed W_V"]
        assert c["x"] == list(g["L"]) and len(c["y"]) == len(g["L"])


def test_theorem1_constructed_model_gains_accuracy_with_L(theorem1):
    for m in E.grid("theorem1", "tiny")["m"]:
        acc = [r["constructed"] for r in theorem1["rows"] if r["m"] == m]
        assert all(b >= a for a, b in zip(acc, acc[1:])), acc
        assert acc[-1] >= 0.99 and acc[0] < 0.5
    assert theorem1["verdict"] == "holds"


def test_lemma2_gap_constructed_perfect_identity_not():
    d = E.run("lemma2", "tiny").to_dict()
    long = [r for r in d["rows"] if r["bayes"] == 1.0]
    assert long, "the tiny grid must reach contexts where Bayes is perfect"
    assert all(r["constructed"] == 1.0 for r in long)
    assert all(r["identity"] < 1.0 for r in d["rows"])
    assert d["verdict"] == "holds"
