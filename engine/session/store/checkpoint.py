"""Checkpoint health without loading it: the ``safetensors`` library reads the header and checks
that the tensors' byte ranges cover the file exactly (a torn write fails), no torch, no tensor data.
The header's metadata names the step the checkpoint holds (the step a resume starts from)."""

from __future__ import annotations

from pathlib import Path


def checkpoint_header(path: Path) -> tuple[str | None, dict[str, str]]:
    """(None, the header's metadata) when the file is sound; else (the reason, {})."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            fh.keys()
            return None, dict(fh.metadata() or {})
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})", {}
    except SafetensorError as exc:
        why = str(exc).removeprefix("Error while deserializing header: ")
        return f"damaged ({why})", {}


def check_safetensors(path: Path) -> str | None:
    """None when the file's header is sound and its size matches the header; else the reason."""
    return checkpoint_header(path)[0]


def checkpoint_step(meta: dict[str, str]) -> int | None:
    """The step a checkpoint's metadata names (``RunDir.save_checkpoint`` writes it), or None."""
    try:
        step = int(meta.get("step", ""))
    except ValueError:
        return None
    return step if step >= 0 else None
