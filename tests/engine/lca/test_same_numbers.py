"""The fast engine gives the same numbers as the plain one it replaced, on fixed seeds: evaluation,
the Bayes classifier and the analyses that read the model's hidden state and attention. "Old" is a
plain reference implementation kept here (the previous last-query code and a per-sample Bayes rule)."""

import math

import numpy as np
import pytest
import torch

from engine.lca import analysis
from engine.lca.config import RunConfig
from engine.lca.model import OneLayerTransformer
from engine.lca.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class OldModel(OneLayerTransformer):
    """The previous formulation: every context column through W_K, dotted with the last query."""

    def _old_attention(self, U):
        k = U @ self.W_K.T
        q = U[:, -1] @ self.W_Q.T
        return (torch.einsum("bld,bd->bl", k, q) / math.sqrt(self.cfg.d_a)).softmax(dim=1)

    def attention_last(self, x):
        return self._old_attention(self.W_E.T[x])

    def hidden(self, x):
        U = self.W_E.T[x]
        a = self._old_attention(U)
        return torch.einsum("bl,bld->bd", a, U), a

    def forward(self, x, return_attention=False, formulation=None):
        h, a = self.hidden(x)
        logits = (h @ self.W_V.T) @ self.W_E
        return (logits, a) if return_attention else logits


def _old_bayes_accuracy(task, x, y):
    """argmax_y Π_l p(t_l|y)·π(t_L|y), one sample at a time from the exact numpy tables."""
    correct = 0
    with np.errstate(divide="ignore"):
        log_p, log_pi = np.log(task.p), np.log(task.pi)
    for xb, yb in zip(x.tolist(), y.tolist()):
        ll = log_pi[:, xb[-1]].copy()
        for t in xb[:-1]:
            ll += log_p[:, t]
        correct += int(np.argmax(ll) == yb)
    return correct / len(y)


@pytest.fixture(scope="module")
def trained():
    cfg = RunConfig.from_flat({"m": 5, "L": 48, "d": 24, "d_a": 16, "steps": 150, "eval_every": 150,
                               "batch_size": 128, "eval_size": 512, "lr": 0.01, "device": "cpu",
                               "neighborhood": "hamming1", "seed": 4})
    tr = Trainer(cfg)
    tr.run()
    old = OldModel(tr.task.V, cfg.model)
    old.load_state_dict(tr.model.state_dict())
    return tr, old


def test_evaluation_and_bayes_match_the_plain_implementation(trained):
    tr, old = trained
    new_ev = tr.evaluate()
    old_ev = tr.evaluate(model=old)
    assert new_ev.accuracy == old_ev.accuracy
    assert new_ev.loss == pytest.approx(old_ev.loss, rel=1e-6)
    assert tr.bayes_accuracy == _old_bayes_accuracy(tr.task, tr.x_eval, tr.y_eval)
    assert new_ev.accuracy > 3 / 32  # it learned something: the comparison is not between two flat models


def test_analyses_match_the_plain_implementation(trained):
    tr, old = trained
    x, y = tr.x_eval, tr.y_eval
    assert analysis.model_accuracy(tr.model, x, y) == analysis.model_accuracy(old, x, y)
    W = torch.eye(tr.model.W_V.shape[0])
    assert analysis.swap_value_accuracy(tr.model, x, y, W) == analysis.swap_value_accuracy(old, x, y, W)
    new_r, old_r = analysis.value_swap_report(tr), analysis.value_swap_report(tr.model, x=x, y=y)
    assert new_r["trained"] == old_r["trained"] and new_r["constructed"] == old_r["constructed"]
    for fn in (analysis.attention_by_hamming, lambda mdl, xx: analysis.attention_by_cluster(mdl, xx, 2)):
        a, b = fn(tr.model, x), fn(old, x)
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(a.mass, b.mass, rtol=1e-5, atol=1e-7)


def test_training_steps_match_the_plain_implementation():
    """Ten AdamW steps with the fast forward and with the old one land on the same weights."""
    cfg = RunConfig.from_flat({"m": 6, "L": 64, "d": 32, "d_a": 32, "steps": 10, "batch_size": 64,
                               "eval_size": 64, "lr": 0.003, "device": "cpu", "seed": 1})
    new, ref = Trainer(cfg), Trainer(cfg)
    ref.model.__class__ = OldModel
    for _ in range(10):
        ln, _ = new.train_step()
        lr_, _ = ref.train_step()
        assert ln == pytest.approx(lr_, rel=1e-5)
    for (n, p), (_, q) in zip(new.model.named_parameters(), ref.model.named_parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=lambda s, n=n: f"{n}: {s}")

