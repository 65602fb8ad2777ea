"""Files on disk: atomic writes (a temp file in the same folder, fsync, then ``os.replace``), the
project's one JSON serialiser (``jsonable``) and tolerant JSON / JSONL readers.

A reader never sees half a file; an interrupted write leaves the old file (or none) in place.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path

from engine.errors import UserError


def jsonable(obj):
    """Plain JSON values, the one serialiser every JSON file goes through: ``to_dict()`` objects
    and dataclasses flattened, tuples to lists, numpy/torch scalars and arrays to numbers and lists,
    paths to strings, NaN/inf to None (the files are strict JSON), anything else to ``str``."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict) and not isinstance(obj, (dict, type)):
        obj = obj.to_dict()
    elif is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy / torch scalars and arrays
        try:
            return jsonable(obj.tolist())
        except (TypeError, ValueError):
            pass
    if hasattr(obj, "item") and callable(obj.item):
        try:
            return jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def dumps(obj, indent: int | None = None) -> str:
    """``obj`` as strict JSON text (through ``jsonable``; non-ASCII kept as is)."""
    return json.dumps(jsonable(obj), indent=indent, ensure_ascii=False, allow_nan=False)


_UMASK = os.umask(0o022)  # read once, at import (setting it is process-wide, so not per write)
os.umask(_UMASK)


def _file_mode(path: Path) -> int:
    """The replaced file's permissions, else what ``open()`` would give (0o666 less the umask);
    ``mkstemp`` alone would leave 0o600."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """``obj`` as strict, indented JSON (through ``jsonable``: NaN/inf become null)."""
    return atomic_write_text(path, dumps(obj, indent=2) + "\n")


def read_json(path: str | os.PathLike):
    """Read a JSON file; a missing or damaged file raises UserError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is damaged or unreadable: {exc}") from None


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Read whole JSON lines; returns (records, number of damaged lines skipped).

    A torn last line (a crash mid-append) is skipped rather than failing the whole file.
    """
    path = Path(path)
    out, bad = [], 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict):
            out.append(rec)
        else:
            bad += 1
    return out, bad
