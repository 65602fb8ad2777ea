"""Checkpoint health without loading it: the ``safetensors`` library reads the header and checks
that the tensors' byte ranges cover the file exactly (a torn write fails), no torch, no tensor data."""

from __future__ import annotations

from pathlib import Path


def check_safetensors(path: Path) -> str | None:
    """None when the file's header is sound and its size matches the header; else the reason."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            fh.keys()
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    except SafetensorError as exc:
        why = str(exc).removeprefix("Error while deserializing header: ")
        return f"damaged ({why})"
    return None
