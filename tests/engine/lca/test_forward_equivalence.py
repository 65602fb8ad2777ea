"""The fast eq. 4.1 forward equals the reference formulations: logits and the gradient of every
trainable parameter, both fast formulations (token-level and per-position), on token sequences
drawn from the LCA task for all three neighbourhoods, every freeze option, m = 2..12, L = 1..1024,
batch 1 and 512."""

from functools import cache

import pytest
import torch
import torch.nn.functional as F

from engine.lca.model import ModelConfig, OneLayerTransformer
from engine.lca.task import LCATask, TaskConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@cache
def _task(m: int, neighborhood: str) -> LCATask:
    return LCATask(TaskConfig(m=m, L=1024, neighborhood=neighborhood))


def _batch(m, L, B, neighborhood, seed):
    """B sequences of length L from D^L: the last L tokens of a length-1024 draw (the last token
    from π, the rest from p)."""
    x, y = _task(m, neighborhood).sample(B, torch.Generator().manual_seed(seed))
    return x[:, -L:].contiguous(), y


# (m, L, B, neighbourhood, freeze flag, d): each freeze option and neighbourhood several times,
# L from 1 to 1024, batch 1 and 512, both formulations chosen by ``auto`` somewhere.
CASES = [
    (2, 1, 1, "all", None, 8),
    (2, 7, 512, "hamming1", "freeze_value", 8),
    (3, 16, 512, "cluster:1", "freeze_embedding", 16),
    (4, 64, 512, "all", "uniform_attention", 16),
    (5, 1024, 1, "hamming1", None, 16),
    (6, 3, 512, "cluster:2", None, 16),
    (8, 64, 512, "all", None, 32),
    (8, 1024, 8, "cluster:3", "freeze_value", 16),
    (8, 2, 512, "hamming1", "uniform_attention", 16),
    (10, 32, 64, "hamming1", "freeze_embedding", 16),
    (12, 1, 1, "all", "uniform_attention", 16),
    (12, 1024, 4, "all", None, 16),
    (12, 16, 512, "all", "freeze_value", 16),
]


def _logits_and_grads(model, fn, x, y):
    model.zero_grad(set_to_none=True)
    logits = fn(x)
    F.cross_entropy(logits, y).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return logits.detach(), grads


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m, L, B, neighborhood, flag, d", CASES,
                         ids=[f"m{c[0]}-L{c[1]}-B{c[2]}-{c[3]}-{c[4] or 'free'}" for c in CASES])
def test_fast_forward_equals_references(m, L, B, neighborhood, flag, d, device):
    cfg = ModelConfig(d=d, d_a=d // 2 + 1, **({flag: True} if flag else {}))
    model = OneLayerTransformer(2 ** m, cfg, torch.Generator().manual_seed(m + L)).to(device)
    with torch.no_grad():  # trained models have sharper attention than the 1/d initialisation
        model.W_Q.mul_(3.0)
    x, y = _batch(m, L, B, neighborhood, seed=m * 1000 + L)
    x, y = x.to(device), y.to(device)
    ref_logits, ref_grads = _logits_and_grads(model, model.forward_reference, x, y)
    assert set(ref_grads) == {n for n, p in model.named_parameters() if p.requires_grad}
    refs = [(ref_logits, ref_grads)]
    if L <= 64:
        refs.append(_logits_and_grads(model, model.forward_full, x, y))
    for formulation, products in (("token", False), ("token", True), ("position", None), (None, None)):
        logits, grads = _logits_and_grads(model, lambda t, f=formulation, pr=products: model(t, formulation=f, products=pr),
                                          x, y)
        for r_logits, r_grads in refs:
            torch.testing.assert_close(logits, r_logits, atol=1e-5, rtol=1e-5)
            for name, g in grads.items():
                torch.testing.assert_close(g, r_grads[name], atol=1e-5, rtol=1e-5, msg=lambda s, name=name: f"{name}: {s}")
    if flag:
        frozen = {"freeze_value": {"W_V"}, "freeze_embedding": {"W_E"},
                  "uniform_attention": {"W_K", "W_Q"}}[flag]
        assert frozen.isdisjoint(grads)


def test_auto_picks_the_cheaper_formulation():
    recipe_m8 = OneLayerTransformer(256, ModelConfig(d=256, d_a=64))
    assert recipe_m8.use_vocab_products(1024) and not recipe_m8.use_vocab_products(64)
    assert not OneLayerTransformer(256, ModelConfig(d=128, d_a=128)).use_vocab_products(256)
    model = OneLayerTransformer(4096, ModelConfig(d=8, d_a=8))
    assert model.formulation(64) == "token" and model.formulation(16) == "position"
    assert OneLayerTransformer(256, ModelConfig(d=8, d_a=8)).formulation(1) == "position"


def test_per_position_attention_matches_token_mass():
    """The inspector's per-position weights sum, per token id, to the token-level attention mass."""
    model = OneLayerTransformer(32, ModelConfig(d=16, d_a=8), torch.Generator().manual_seed(0))
    x, _ = _batch(5, 40, 64, "all", seed=3)
    with torch.no_grad():
        a = model.attention_last(x)
        c = model.token_mass(x)
        per_token = torch.zeros_like(c).scatter_add_(1, x, a)
        full = model.attention_full(x)[:, :, -1]
        _, a_fwd = model(x, return_attention=True)
    torch.testing.assert_close(per_token, c, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a, full, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a_fwd, full, atol=1e-6, rtol=1e-5)
