"""How far two computations of the same number on the same model may differ: the fast causal trace
(shared keys/values, batched rows) against one full forward per intervention, or the direct
attribution's pieces against the logit difference they sum to. ``lca-tui doctor`` and the tests use
the same rule.

- float32 (and float64): ``FP32`` = 1e-4 absolute, on probabilities and on logits alike (the fast and
  the plain path differ only in summation order; measured ≤ 2e-5 on SmolLM2-135M).
- bfloat16 / float16: ``HALF_C · eps(dtype) · scale``, where ``scale`` is the largest |logit| of the run
  (floored at 1) and ``eps`` is the dtype's machine epsilon (bf16 2^-7, fp16 2^-10). Every block
  rounds its output to the dtype, so two orders of the same sums drift apart by a few ulps of the
  largest logits. ``HALF_C`` = 4: on SmolLM2-135M in bf16 on a CPU (the Figure 1 prompt, the
  last-position restores and the knockouts of every block) the fast trace and the plain forwards
  differ by 1.4 · eps · max|logit| (0.19 logits at max|logit| 17.75), so 4 leaves a margin of about
  three; the old fixed 0.5 logits of ``device_check.device_check`` is about the same at that scale.
"""

from __future__ import annotations

FP32 = 1e-4
HALF_C = 4.0


def tolerance(dtype, scale: float) -> float:
    """The largest allowed difference for a run in ``dtype`` (a torch dtype or its name) whose logits
    reach ``scale`` in absolute value (module doc)."""
    import torch

    if isinstance(dtype, str):
        name = dtype.strip().lower().removeprefix("torch.")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "half": torch.float16,
                 "fp32": torch.float32, "float": torch.float32}.get(name) or getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"tolerance: not a floating-point dtype: {dtype!r}")
    if dtype in (torch.float32, torch.float64):
        return FP32
    scale = abs(float(scale))
    if scale != scale or scale == float("inf"):  # NaN / inf: no finite bound holds
        raise ValueError(f"tolerance: the scale must be finite, not {scale}")
    return HALF_C * torch.finfo(dtype).eps * max(scale, 1.0)


#: bf16/fp16 against float32 (``device_check.device_check``, the Figure 1 check): the half-precision model's
#: weights are rounded too, so it is a slightly different function, not a reordering of the same sums.
#: Measured (issue 28, CPU): SmolLM2-135M's Figure 1 last-position trace 0.19 logits at max|logit_diff|
#: 7.5 (3.3 · eps · scale); the tiny random Llama of the tests 0.13 at 1.4 (12 · eps · scale).
CROSS_C = 24.0


def cross_dtype_tolerance(dtype, scale: float) -> float:
    """The largest allowed difference between a run in ``dtype`` and the same model in float32 whose
    numbers reach ``scale`` in absolute value: ``CROSS_C · eps(dtype) · max(scale, 1)``; ``FP32`` for a
    float32 run."""
    if tolerance(dtype, 1.0) == FP32:
        return FP32
    return tolerance(dtype, scale) / HALF_C * CROSS_C

