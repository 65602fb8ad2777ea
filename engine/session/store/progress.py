"""A run's progress as its ``metrics.jsonl`` records it: the last step and the best eval accuracy.

``state.json`` is rewritten only at checkpoints (every 30 s), so it lags a live run and a crashed
one; the metrics are flushed at least once a second. Calling again is cheap: the result is cached
per file and only the bytes appended since the last call are read (the trainer only appends; a
resume's crop replaces the file atomically, a new inode, which is read afresh). A last line without
its newline (a trainer mid-append, or a crash) is left out until it is whole; a damaged whole line
is skipped (``Session.metrics`` counts those).
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

#: Events whose ``step`` is a step the trainer completed (``diverged`` names the failed one).
STEP_EVENTS = ("train", "eval", "done")
_TAIL = 64  # bytes before the read offset checked again: a file rewritten in place is read afresh


@dataclass(frozen=True)
class MetricsProgress:
    last_step: int | None = None  # the highest step of a train, eval or done event
    best_accuracy: float | None = None  # the highest eval accuracy
    bayes_accuracy: float | None = None  # the last eval's Bayes accuracy


@dataclass(frozen=True)
class _Entry:
    key: tuple  # (device, inode, size, mtime_ns) of the file when it was read
    offset: int  # bytes folded: whole lines only
    tail: bytes  # the last bytes before ``offset``
    progress: MetricsProgress


_cache: dict[Path, _Entry] = {}
_lock = threading.Lock()


def _finite(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _fold(p: MetricsProgress, data: bytes) -> MetricsProgress:
    """``p`` with the whole lines in ``data`` folded in."""
    last, best, bayes = p.last_step, p.best_accuracy, p.bayes_accuracy
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:  # damaged (JSONDecodeError and UnicodeDecodeError are ValueErrors)
            continue
        if not isinstance(rec, dict):
            continue
        event, step = rec.get("event"), rec.get("step")
        if event in STEP_EVENTS and isinstance(step, int) and not isinstance(step, bool):
            last = step if last is None else max(last, step)
        if event == "eval":
            acc = _finite(rec.get("accuracy"))
            if acc is not None:
                best = acc if best is None else max(best, acc)
            b = _finite(rec.get("bayes_accuracy"))
            bayes = bayes if b is None else b
    return MetricsProgress(last, best, bayes)


def _read_from(path: Path, start: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read()


def metrics_progress(path: str | os.PathLike) -> MetricsProgress:
    """The progress ``path`` (a ``metrics.jsonl``) records; empty for a missing or unreadable file."""
    path = Path(path)
    with _lock:
        try:
            st = path.stat()
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            entry = _cache.get(path)
            if entry is not None and entry.key == key:
                return entry.progress
            progress, offset, tail = MetricsProgress(), 0, b""
            if entry is not None and entry.key[:2] == key[:2] and st.st_size >= entry.offset:
                progress, offset, tail = entry.progress, entry.offset, entry.tail  # appended to
            data = _read_from(path, offset - len(tail))
            if not data.startswith(tail):  # rewritten in place: read it all
                progress, offset, tail = MetricsProgress(), 0, b""
                data = _read_from(path, 0)
        except OSError:
            _cache.pop(path, None)
            return MetricsProgress()
        data = data[len(tail):]
        end = data.rfind(b"\n") + 1  # whole lines only: a torn last line waits for its newline
        progress = _fold(progress, data[:end])
        tail = (tail + data[max(0, end - _TAIL):end])[-_TAIL:]
        _cache[path] = _Entry(key, offset + end, tail, progress)
        return progress
