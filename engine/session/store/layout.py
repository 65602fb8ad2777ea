"""The layout of sessions on disk: folder and file names, ids, the sessions root, tolerant reads.

Layout of a session directory::

    session.json                 {"name", "created", "updated", "notes"}
    runs/<id>/                   a training run (engine.lca.rundir: config.json, metrics.jsonl,
                                 checkpoint.safetensors, state.json)
    hijack/<id>.json             an efficacy evaluation  {"kind": "efficacy", "model", "scheme", "curve", ...}
    sweeps/<id>.json             a P(true)/P(false) vs n sweep of one record  {"kind": "sweep", ...}
    pins/<id>.json               a pinned probe  {"kind": "probe", "prompt", "top_k", "targets", "svg"?}
    mirrors/<id>.json            a pinned hijack mirror of a run (engine.lca.hijack_mirror)
                                 {"kind": "mirror", "y", "y_tilde", "r", "clean", "hijacked",
                                 "knockout", "tokens", "sweep"?, "svg"?}
    experiments/<name>-<id>.json an experiment result  {"name", "title", "rows", "curves"?, ...}
    traces/<id>.json             a causal trace  {"kind": "trace", "clean", "hijacked", "layers", "heads", ...}
                                 or a dataset trace {"kind": "trace", "all", "flipped", "heads", ...}

The sessions root (``default_sessions_root()``) holds one folder per session and ``last.json``,
the session used last. Ids sort by time and end in a random suffix.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import time
from pathlib import Path

SESSION_FILE = "session.json"
LAST_FILE = "last.json"
#: kind -> folder; the public kind names and their aliases accepted by ``Session.items``.
KIND_DIRS = {"efficacy": "hijack", "sweep": "sweeps", "probe": "pins", "experiment": "experiments",
             "trace": "traces", "mirror": "mirrors", "repair": "repairs"}
KIND_ALIASES = {"hijack": "efficacy", "efficacy": "efficacy", "sweep": "sweep", "sweeps": "sweep",
                "probe": "probe", "pin": "probe", "pins": "probe", "probes": "probe",
                "experiment": "experiment", "experiments": "experiment", "trace": "trace", "traces": "trace",
                "mirror": "mirror", "mirrors": "mirror", "repair": "repair", "repairs": "repair"}


def default_sessions_root() -> Path:
    """``<user data dir>/sessions``; ``LCA_TUI_DATA_DIR`` replaces the user data dir."""
    base = os.environ.get("LCA_TUI_DATA_DIR")
    if not base:
        import platformdirs

        base = platformdirs.user_data_dir("lca-tui")
    return Path(base).expanduser() / "sessions"


def root_or_default(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else default_sessions_root()


_ID_SEQ = itertools.count()


def new_id() -> str:
    """Time-sortable, unique id: ``20240501-120000-123456-0007a1b2c3`` (microseconds, a per-process
    counter so ids made in the same microsecond still sort and differ, and a random suffix so two
    processes do not collide)."""
    now = time.time()
    us = int((now % 1) * 1_000_000)
    seq = next(_ID_SEQ) % 10_000
    return f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{us:06d}-{seq:04d}{secrets.token_hex(3)}"


def slug(text: str, max_len: int = 48) -> str:
    s = re.sub(r"[^a-z0-9._-]+", "-", str(text).lower()).strip("-._")
    return s[:max_len].strip("-._") or "session"


def is_session_dir(path: Path) -> bool:
    return (path / SESSION_FILE).exists() or any((path / d).is_dir() for d in ("runs", *KIND_DIRS.values()))


def load_json(path: Path) -> tuple[object, str | None]:
    """(data, None) or (None, reason): a damaged file is reported, never raised."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, "missing"
    except UnicodeDecodeError:
        return None, "damaged (not UTF-8 text)"
    except json.JSONDecodeError as exc:
        return None, f"damaged ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"


def count_files(path: Path) -> tuple[int, int]:
    """(runs, recorded results) in a session folder."""
    runs = items = 0
    try:
        runs = sum(1 for p in (path / "runs").iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        pass
    for folder in KIND_DIRS.values():
        try:
            items += sum(1 for p in (path / folder).iterdir()
                         if p.suffix == ".json" and not p.name.startswith("."))
        except OSError:
            pass
    return runs, items


def activity_time(path: Path, meta_updated) -> float:
    """The latest of ``updated`` in session.json and the mtimes of its files and folders."""
    times = [float(meta_updated) if isinstance(meta_updated, (int, float)) else 0.0]
    for name in (SESSION_FILE, "runs", *KIND_DIRS.values()):
        try:
            times.append((path / name).stat().st_mtime)
        except OSError:
            pass
    return max(times)
