"""The LCA model (eq. 4.1) in the matrix's dtypes: the trainer's normal path (``Trainer.train_step``
through ``OneLayerTransformer.forward``) against the plain reference forward (``forward_reference``:
every key through W_K, then the last query), logits and the gradient of every trainable parameter.

The trainer builds its model in float32 only (``RunConfig`` has no dtype), so it runs a few AdamW
steps in float32; in bfloat16 and float16 the same model, cast, compares every fast formulation with
the reference in that dtype (no attention implementation: the model is plain matmuls)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.lca.config import RunConfig
from engine.lca.model import ModelConfig, OneLayerTransformer
from engine.lca.trainer import Trainer
from tests.engine.matrix.conftest import dtype_skip
from tests.engine.matrix.tolerance import check, tolerance

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FORMULATIONS = (("token", False), ("token", True), ("position", None), (None, None))


def _logits_and_grads(model, fn, x, y):
    model.zero_grad(set_to_none=True)
    logits = fn(x)
    F.cross_entropy(logits.float(), y).backward()
    return logits.detach().float(), {n: p.grad.float() for n, p in model.named_parameters() if p.requires_grad}


def _worst(model, x, y, dtype, cell, what):
    ref_logits, ref_grads = _logits_and_grads(model, model.forward_reference, x, y)
    tol = tolerance(dtype, float(ref_logits.abs().max()))
    for formulation, products in FORMULATIONS:
        logits, grads = _logits_and_grads(model, lambda t, f=formulation, p=products: model(t, formulation=f,
                                                                                            products=p), x, y)
        check("lca", cell, float((logits - ref_logits).abs().max()), tol, f"{what} logits {formulation}")
        for name, g in grads.items():  # gradients: the same rule at the reference gradient's scale
            g_tol = tolerance(dtype, float(ref_grads[name].abs().max()))
            g_tol = g_tol if dtype != torch.float32 else 1e-4 * max(1.0, float(ref_grads[name].abs().max()))
            check("lca", cell, float((g - ref_grads[name]).abs().max()), g_tol, f"{what} grad {name} {formulation}")


def test_trainer_steps_in_float32_equal_the_reference_forward():
    cfg = RunConfig.from_flat({"m": 5, "L": 32, "d": 32, "d_a": 16, "lr": 0.01, "batch_size": 64, "steps": 3,
                               "eval_every": 3, "eval_size": 256, "device": "cpu", "seed": 0})
    tr = Trainer(cfg)
    cell = ("lca-trainer", torch.float32, "-")
    for step in range(3):
        x, y = tr.next_batch()
        _worst(tr.model, x, y, torch.float32, cell, f"step {step}")
        loss, _ = tr.train_step()
        assert torch.isfinite(torch.tensor(loss))
    x, y = tr.next_batch()
    _worst(tr.model, x, y, torch.float32, cell, "after 3 steps")


@pytest.mark.parametrize("dtype", [pytest.param(d, marks=[pytest.mark.skip(reason=dtype_skip(d))] if dtype_skip(d) else [])
                                   for d in ("bfloat16", "float16")])
def test_model_in_half_precision_equals_the_reference_forward(dtype):
    dt = getattr(torch, dtype)
    model = OneLayerTransformer(32, ModelConfig(d=32, d_a=16), torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.W_Q.mul_(3.0)  # sharper attention, as a trained model has
    model = model.to(dt)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, 32, (64, 32), generator=g), torch.randint(0, 32, (64,), generator=g)
    _worst(model, x, y, dt, ("lca-model", dt, "-"), dtype)
