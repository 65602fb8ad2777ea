"""Device and dtype choice: CUDA (bf16 where supported) when present, else MPS, else CPU (fp32)."""

from __future__ import annotations

from engine.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> str:
    """Map ``auto|cpu|cuda|cuda:N|mps`` to a concrete torch device string, or raise ConfigError."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    base = name.split(":", 1)[0]
    if base not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r}: choose one of auto, cpu, cuda, cuda:N, mps")
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if base == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("device 'mps' asked for, but MPS is not available on this machine")
    return name


def resolve_dtype(name: str, device: str):
    """``auto`` gives bf16 on a CUDA device that supports it, fp16 on other CUDA, fp32 elsewhere."""
    import torch

    name = (name or "auto").strip().lower()
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in table:
        raise ConfigError(f"unknown dtype {name!r}: choose auto, float32, bfloat16 or float16")
    return table[name]
