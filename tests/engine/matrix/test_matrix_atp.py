"""Attribution patching (``engine.hijack.atp``) in the matrix: every family in bf16 and fp16 (and in
float32 the two families ``tests/engine/hijack/test_atp.py`` leaves out), each estimate against the plain
first-order term (``test_atp.reference``: torch.autograd on a float64 copy of the same weights, its
own hooks). A half-precision run against exact arithmetic on its own weights is the cross-dtype case
(``engine.hijack.tolerance.cross_dtype_tolerance``); float32 is held to test_atp's 1e-5 · max(1, scale)."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.hijack.atp import atp
from engine.hijack.tolerance import cross_dtype_tolerance
from tests.engine.hijack.test_atp import TOL, WINDOW, _prepare, estimated, reference, taylor_grad
from tests.engine.matrix.conftest import cells
from tests.families import FAMILIES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CELLS = cells(attns="default", dtypes=("bfloat16", "float16")) + cells(
    attns="default", dtypes=("float32",), families=tuple(f for f in FAMILIES if f in ("llama2", "mistral")))


@pytest.mark.parametrize("cell", CELLS)
def test_every_estimate_is_the_first_order_term(cell, load_cell):
    lm = load_cell(cell)
    pair = _prepare(lm)
    est = atp(lm, pair, window=WINDOW)
    ref = reference(lm, copy.deepcopy(lm.model).to(torch.float64), pair, taylor_grad)
    worst = max(abs(estimated(est, k) - v) for k, v in ref.items())
    scale = max(abs(v) for v in ref.values())
    tol = TOL * max(1.0, scale) if lm.dtype == torch.float32 else cross_dtype_tolerance(lm.dtype, scale)
    assert len(ref) > 40 and all(abs(estimated(est, k)) < float("inf") for k in ref)
    assert worst <= tol, (cell, worst, tol)
