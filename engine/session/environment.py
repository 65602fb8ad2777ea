"""What a report was made with: Python, platform, package versions, device, CPU count.

Package versions come from ``importlib.metadata`` (no imports). The device is read without
initialising CUDA where possible: torch's own answer if torch is already imported, else the NVIDIA
driver's ``/proc`` entries, else a lazy ``import torch``.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("lca-tui", "torch", "transformers", "textual", "numpy", "safetensors", "rich", "matplotlib", "psutil")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _nvidia_proc_names() -> list[str]:
    names = []
    base = Path("/proc/driver/nvidia/gpus")
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return names
    for gpu in entries:
        try:
            for line in (gpu / "information").read_text(errors="replace").splitlines():
                if line.lower().startswith("model:"):
                    names.append(line.split(":", 1)[1].strip())
                    break
        except OSError:
            continue
    return names


def device_description() -> str:
    """``cuda: <name>`` (``× n`` for several GPUs), ``mps`` or ``cpu``."""
    torch = sys.modules.get("torch")
    names: list[str] = []
    if torch is None:
        names = _nvidia_proc_names()
        if not names:
            try:
                import torch
            except Exception:  # noqa: BLE001 -- a broken torch install is "no torch" here
                torch = None
    if not names and torch is not None:
        try:
            if torch.cuda.is_available():
                names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            else:
                mps = getattr(torch.backends, "mps", None)
                if mps is not None and mps.is_available():
                    return "mps"
        except Exception:  # noqa: BLE001 -- a driver error means no device name, not a failed report
            names = []
    if not names:
        return "cpu"
    if len(set(names)) == 1:
        return f"cuda: {names[0]}" + (f" × {len(names)}" if len(names) > 1 else "")
    return "cuda: " + ", ".join(names)


def environment() -> dict:
    """A flat, JSON-able description of the machine and software."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "device": device_description(),
        "cpu_count": os.cpu_count(),
    }
