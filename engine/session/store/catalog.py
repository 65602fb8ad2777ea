"""Finding sessions under the sessions root: list them, the last used one, one by name or path,
and the session a headless command records into."""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import UserError
from engine.session.store.layout import (
    LAST_FILE,
    SESSION_FILE,
    activity_time,
    count_files,
    is_session_dir,
    load_json,
    root_or_default,
)
from engine.session.store.records import SessionInfo
from engine.session.store.session import Session


def list_sessions(root: str | os.PathLike | None = None) -> list[SessionInfo]:
    """Every session folder under ``root`` (default: ``default_sessions_root()``), most recently
    active first. Damaged ``session.json`` files are listed with their ``problem``."""
    root = root_or_default(root)
    try:
        children = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    out = []
    for path in children:
        if not is_session_dir(path):
            continue
        meta, why = load_json(path / SESSION_FILE)
        problem = None
        if why is not None or not isinstance(meta, dict):
            problem = f"{SESSION_FILE}: {why or 'not a JSON object'}"
            meta = {}
        runs, items = count_files(path)
        out.append(SessionInfo(path=path, name=str(meta.get("name") or path.name),
                               created=meta.get("created"), updated=activity_time(path, meta.get("updated")),
                               notes=str(meta.get("notes") or ""), runs=runs, items=items, problem=problem))
    out.sort(key=lambda s: (s.updated or 0.0, s.path.name), reverse=True)
    return out


def last_session(root: str | os.PathLike | None = None) -> Path | None:
    """The session used last (``root/last.json``), else the most recently active one, else None."""
    root = root_or_default(root)
    data, _ = load_json(root / LAST_FILE)
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        p = Path(data["path"])
        if not p.is_absolute():
            p = root / p
        if p.is_dir() and is_session_dir(p):
            return p
    sessions = list_sessions(root)
    return sessions[0].path if sessions else None


def find_session(ref: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A session given as a path, a folder name under ``root`` or a session name; UserError if
    there is none (or the name is ambiguous)."""
    root = root_or_default(root)
    p = Path(ref).expanduser()
    if p.is_dir():
        if not is_session_dir(p):
            raise UserError(f"{p} is not an lca-tui session (no {SESSION_FILE})")
        return p
    if p.exists():
        raise UserError(f"{p} is a file, not a session directory")
    ref = str(ref)
    if "/" not in ref and os.sep not in ref:
        cand = root / ref
        if cand.is_dir() and is_session_dir(cand):
            return cand
        hits = [s.path for s in list_sessions(root) if s.name == ref]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UserError(f"{len(hits)} sessions are named {ref!r}; give the folder instead: "
                            + ", ".join(h.name for h in hits))
    raise UserError(f"no session {ref!r}: not a directory, nor a session name under {root}")


def open_cli_session(session: str | os.PathLike | None = None,
                     root: str | os.PathLike | None = None) -> Session:
    """The session a headless command records into, marked as the last used one.

    ``session`` (the ``--session`` option): an existing session folder, a session name under the
    root, or a new folder to create. Without it: the last used session, else a new one.
    """
    root = root_or_default(root)
    if session:
        ref = Path(session).expanduser()
        if ref.exists() or "/" in str(session) or os.sep in str(session):
            s = Session.open(ref, create=True)
        else:
            try:
                s = Session.open(find_session(str(session), root), create=False)
            except UserError:
                s = Session.open(ref, create=True)
    else:
        last = last_session(root)
        s = Session.open(last, create=False) if last is not None else Session.create(root)
    s.mark_used(root)
    return s
