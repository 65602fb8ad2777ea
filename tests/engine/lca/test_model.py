"""Eq. 4.1: shapes, column softmax, the last-query shortcut, frozen parts."""

import pytest
import torch

from engine.errors import ConfigError
from engine.lca.config import RunConfig
from engine.lca.model import ModelConfig, OneLayerTransformer
from engine.lca.trainer import Trainer


def _model(**kw):
    return OneLayerTransformer(32, ModelConfig(d=16, d_a=8, **kw), torch.Generator().manual_seed(0))


def test_shapes_follow_the_paper():
    m = _model()
    assert m.W_E.shape == (16, 32) and m.W_K.shape == (8, 16) and m.W_Q.shape == (8, 16)
    assert m.W_V.shape == (16, 16)
    x = torch.randint(0, 32, (5, 12), generator=torch.Generator().manual_seed(1))
    logits, a = m(x, return_attention=True)
    assert logits.shape == (5, 32) and a.shape == (5, 12)


def test_attention_columns_sum_to_one():
    m = _model()
    x = torch.randint(0, 32, (4, 10), generator=torch.Generator().manual_seed(2))
    A = m.attention_full(x)
    assert torch.allclose(A.sum(dim=1), torch.ones(4, 10), atol=1e-6)
    assert torch.allclose(m.attention_last(x), A[:, :, -1], atol=1e-6)


def test_last_query_forward_equals_full_formulation():
    m = _model()
    x = torch.randint(0, 32, (6, 20), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(m(x), m.forward_full(x), atol=1e-5)


def test_hidden_is_attention_weighted_embedding_and_logits_are_tied():
    m = _model()
    x = torch.randint(0, 32, (3, 7), generator=torch.Generator().manual_seed(4))
    h, a = m.hidden(x)
    U = m.W_E.T[x]
    assert torch.allclose(h, (a[..., None] * U).sum(1), atol=1e-6)
    assert torch.allclose(m(x), (m.W_E.T @ m.W_V @ h.T).T, atol=1e-5)


def test_uniform_attention_gives_one_over_L():
    m = _model(uniform_attention=True)
    x = torch.randint(0, 32, (2, 8), generator=torch.Generator().manual_seed(5))
    assert torch.allclose(m.attention_last(x), torch.full((2, 8), 1 / 8))


@pytest.mark.parametrize("flags, frozen", [
    ({"freeze_value": True}, {"W_V"}), ({"freeze_embedding": True}, {"W_E"}),
    ({"uniform_attention": True}, {"W_K", "W_Q"})])
def test_frozen_parts_stay_unchanged_after_training(flags, frozen):
    cfg = RunConfig.from_flat({"m": 4, "L": 8, "d": 8, "d_a": 8, "steps": 15, "eval_every": 15,
                               "batch_size": 32, "eval_size": 64, "device": "cpu", "lr": 0.05, **flags})
    tr = Trainer(cfg)
    before = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    tr.run()
    for n, p in tr.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, before[n]), n
        else:
            assert not torch.equal(p, before[n]), n
    if flags.get("freeze_value"):
        assert torch.equal(tr.model.W_V, torch.eye(8))
    if flags.get("uniform_attention"):
        assert not tr.model.W_K.any() and not tr.model.W_Q.any()


def test_bad_model_config():
    with pytest.raises(ConfigError, match="d must"):
        ModelConfig(d=0)
    with pytest.raises(ConfigError, match="nothing to train"):
        Trainer(RunConfig.from_flat({"m": 3, "L": 4, "freeze_value": True, "freeze_embedding": True,
                                     "uniform_attention": True, "device": "cpu"}))
