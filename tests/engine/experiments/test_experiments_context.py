"""Context mixing (the vectorised mixed sampler, misclassification against r) and context length."""

import numpy as np
import pytest
import torch

from engine import experiments as E
from engine.errors import ConfigError
from engine.experiments.context import sample_mixed
from engine.lca.latent import LatentSpace
from engine.lca.task import LCATask, TaskConfig


def _task(m=5, L=33):
    return LCATask(TaskConfig(m=m, L=L, omega=1.0, neighborhood="hamming1"))


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5, 1.0])
def test_mixed_sampler_draws_round_r_L_minus_1_tokens_from_y2(r):
    task = _task()
    x, y1, y2 = sample_mixed(task, 400, r, torch.Generator().manual_seed(0))
    L, m = task.cfg.L, task.cfg.m
    assert x.shape == (400, L) and x.dtype == torch.int64
    assert (y1 != y2).all() and int(x.min()) >= 0 and int(x.max()) < task.V
    D = LatentSpace(m).hamming()
    x_, a, b = x.numpy(), y1.numpy(), y2.numpy()
    assert (D[x_[:, -1], a] == 1).all()  # the last token comes from π(·|y1)
    k = int(round(r * (L - 1)))
    far = D[a, b] != 2                     # Hamming-1 neighbourhoods of y1, y2 are then disjoint
    assert far.sum() > 100
    ctx = x_[:, :-1]
    from_y2 = (D[ctx, b[:, None]] == 1) & (D[ctx, a[:, None]] != 1)
    from_y1 = D[ctx, a[:, None]] == 1
    assert (from_y2.sum(1)[far] == k).all()
    assert ((from_y1 | from_y2).all(1)[far]).all()


def test_mixed_sampler_r0_matches_task_distribution_and_is_seeded():
    task = LCATask(TaskConfig(m=3, L=9, omega=0.5))
    x, y1, _ = sample_mixed(task, 20000, 0.0, torch.Generator().manual_seed(1))
    # context token frequencies given y1 match p(.|y1)
    emp = np.zeros((8, 8))
    np.add.at(emp, (np.repeat(y1.numpy(), 8), x[:, :-1].numpy().ravel()), 1)
    emp /= emp.sum(1, keepdims=True)
    assert np.abs(emp - task.p).max() < 0.02
    a = sample_mixed(task, 50, 0.5, torch.Generator().manual_seed(3))
    b = sample_mixed(task, 50, 0.5, torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_mixed_sampler_rejects_bad_ratio():
    with pytest.raises(ConfigError, match="mixing ratio"):
        sample_mixed(_task(), 4, 1.5, torch.Generator())


def test_context_mixing_misclassification_rises_with_r():
    d = E.run("context-mixing", "tiny").to_dict()
    rs = list(E.grid("context-mixing", "tiny")["r"])
    assert [r["r"] for r in d["rows"]] == rs
    mis = [r["misclassified"] for r in d["rows"]]
    y2 = [r["predicts_y2"] for r in d["rows"]]
    assert all(b >= a - 0.02 for a, b in zip(mis, mis[1:])) and mis[-1] > mis[0] + 0.15
    assert y2[-1] > y2[0]
    assert all(0 <= v <= 1 for v in mis + y2)
    assert set(d["curves"]) == {"predicts != y1", "predicts y2", "Bayes != y1"}


def test_context_length_accuracy_rises_with_L_and_stays_below_bayes():
    d = E.run("context-length", "tiny").to_dict()
    Ls = list(E.grid("context-length", "tiny")["L"])
    assert [r["L"] for r in d["rows"]] == Ls
    acc = [r["accuracy"] for r in d["rows"]]
    assert all(b > a for a, b in zip(acc, acc[1:]))
    assert all(r["accuracy"] <= r["bayes"] + 0.03 for r in d["rows"])
    assert d["curves"]["trained m=3"]["x"] == Ls


def test_context_length_other_reading_one_model_at_every_L():
    """App. C.6's other reading: one model trained at train_L, scored at every L of the grid."""
    d = E.run("context-length", "tiny", overrides={"reading": "one-model"}).to_dict()
    Ls = list(E.grid("context-length", "tiny")["L"])
    assert [r["L"] for r in d["rows"]] == Ls and {r["train_L"] for r in d["rows"]} == {16}
    acc = [r["accuracy"] for r in d["rows"]]
    assert acc[-1] > acc[0] and all(r["accuracy"] <= r["bayes"] + 0.05 for r in d["rows"])
    assert "one-model" in d["notes"][0]
    with pytest.raises(ConfigError, match="reading"):
        E.run("context-length", "tiny", overrides={"reading": "both"})
