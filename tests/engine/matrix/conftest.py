"""The test matrix: family x dtype x attention implementation cells, each a loaded tiny model
(``tests.families``), loaded once per run; the worst differences go to a JSON (``tolerance.dump``)."""

from __future__ import annotations

import functools

import pytest

from tests.families import FAMILIES

DTYPES = ("float32", "bfloat16", "float16")
ATTNS = ("eager", "sdpa")
NO_SDPA = {"gemma2": "Gemma-2's attention soft-capping has no sdpa kernel: transformers refuses to load it with sdpa"}


@functools.cache
def dtype_skip(dtype: str) -> str | None:
    """Why this torch cannot run ``dtype`` on the CPU (None: it can): half-precision matmuls,
    softmax and sdpa are tried once."""
    import torch

    dt = getattr(torch, dtype)
    try:
        a = torch.ones((4, 8), dtype=dt)
        q = torch.ones((1, 2, 4, 8), dtype=dt)
        ok = (a @ a.T).dtype == dt and torch.nn.functional.scaled_dot_product_attention(q, q, q).dtype == dt
        ok = ok and torch.softmax(a, -1).dtype == dt
    except RuntimeError as exc:
        return f"{dtype} on this CPU torch {torch.__version__}: {exc}"
    return None if ok else f"{dtype} matmuls on this CPU torch {torch.__version__} return another dtype"


def cells(attns=ATTNS, dtypes=DTYPES, families=tuple(FAMILIES)):
    """pytest params (family, dtype, attention), the impossible ones skipped with the reason;
    ``attns="default"``: each family's ``default_attn`` only."""
    out = []
    for family in families:
        for dtype in dtypes:
            for attn in ([default_attn(family)] if attns == "default" else attns):
                reason = NO_SDPA[family] if attn == "sdpa" and family in NO_SDPA else dtype_skip(dtype)
                marks = [pytest.mark.skip(reason=reason)] if reason else []
                out.append(pytest.param((family, dtype, attn), id=f"{family}-{dtype}-{attn}", marks=marks))
    return out


def default_attn(family: str) -> str:
    """The attention a family loads with by default here (sdpa, eager where sdpa cannot run)."""
    return "eager" if family in NO_SDPA else "sdpa"


@pytest.fixture(scope="session", autouse=True)
def _dump_worst():
    yield
    from tests.engine.matrix import tolerance

    if tolerance.WORST:
        tolerance.dump()


_SCALES: dict = {}


def logit_scale(lm, text: str) -> float:
    """max|logits| of the model's plain forward over ``text`` (every position): the tolerance's scale."""
    import torch

    key = (id(lm), text)
    if key not in _SCALES:
        with torch.inference_mode():
            logits = lm.model(torch.tensor([lm.encode(text)])).logits
        _SCALES[key] = float(logits.float().abs().max())
    return _SCALES[key]
