"""The test matrix's use of the one tolerance rule (``engine.hijack.tolerance``, DESIGN.md "Test
matrix"; ``lca-tui doctor`` applies the same), and the record of the worst differences seen.

A fast path and its plain reference run in the same dtype. In float32 they must agree to
``FP32_TOL`` = 1e-4 (probabilities, logits, logit differences, log-probabilities). In half precision
the two orders of computation round differently, so the tolerance is derived from the rounding:

    tol = C · eps(dtype) · max(1, max|logits|)

with eps = ``torch.finfo(dtype).eps`` (bfloat16 2^-7, float16 2^-10), max|logits| the largest logit of
the model's plain forward over the matrix's prompt (``scale``), and ``C`` = 4: a few roundings
of each of the ~10 matmuls, norms and softmaxes between the embedding and the logits, that can add
up across 2-3 blocks. The rule bounds logit differences; log-probabilities get 2 · tol
(|Δ log p| <= 2 · max|Δ logit|) and probabilities tol (|Δp| <= 2p(1 − p) · max|Δ logit| <= tol / 2).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from engine.hijack.tolerance import FP32 as FP32_TOL  # noqa: F401 -- re-exported: the one rule
from engine.hijack.tolerance import HALF_C as C  # noqa: F401
from engine.hijack.tolerance import tolerance  # noqa: F401

#: (path, family, dtype, attention) -> [worst diff, its tolerance]
WORST: dict[tuple[str, str, str, str], list[float]] = {}


def check(path: str, cell, diff: float, tol: float, what: str = "") -> None:
    """Record ``diff`` for ``cell`` = (family, dtype, attention) under ``path``, then assert it is within ``tol``."""
    family, dtype, attn = cell
    key = (path, family, str(dtype).replace("torch.", ""), attn)
    seen = WORST.setdefault(key, [0.0, tol])
    if not diff <= seen[0]:
        WORST[key] = [float(diff), float(tol)]
    assert diff <= tol, f"{path} {what}: fast vs plain differ by {diff:.3g} > tol {tol:.3g} ({family}, {dtype}, {attn})"


def results_file() -> Path:
    return Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / "lca-tui-matrix-worst.json"


def dump() -> Path:
    """Merge this run's worst differences into ``results_file()`` (entries of this run replace old ones)."""
    out = results_file()
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):
        old = {}
    for (path, family, dtype, attn), (diff, tol) in WORST.items():
        old[f"{path}|{family}|{dtype}|{attn}"] = {"diff": diff, "tol": tol}
    out.write_text(json.dumps(old, indent=1, sort_keys=True))
    return out
