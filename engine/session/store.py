"""Sessions: a directory that records everything a user produced, so it survives crashes and can be
exported as a report.

Layout of a session directory::

    session.json                 {"name", "created", "updated", "notes"}
    runs/<id>/                   a training run (engine.lca.rundir: config.json, metrics.jsonl,
                                 checkpoint.safetensors, state.json)
    hijack/<id>.json             an efficacy evaluation  {"kind": "efficacy", "model", "scheme", "curve", ...}
    sweeps/<id>.json             a P(true)/P(false) vs n sweep of one record  {"kind": "sweep", ...}
    pins/<id>.json               a pinned probe  {"kind": "probe", "prompt", "top_k", "targets", "svg"?}
    experiments/<name>-<id>.json an experiment result  {"name", "title", "rows", "curves"?, ...}

The sessions root (``default_sessions_root()``) holds one folder per session and ``last.json``,
the session used last. Every file is written atomically; ids sort by time and end in a random
suffix. A damaged file never stops a session from opening: it is named in ``Session.problems``
and skipped.

A run whose ``state.json`` says running/paused is *interrupted* when the process that trains it is
gone: its ``pid`` (when the state has one) is dead or now belongs to a younger process; without a
pid, no process holds its ``metrics.jsonl`` open (Linux ``/proc``); where neither can be checked,
when nothing in the run directory changed for ``stale_after`` seconds.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from engine.errors import UserError
from engine.atomic import atomic_write_json

SESSION_FILE = "session.json"
LAST_FILE = "last.json"
#: kind -> folder; the public kind names and their aliases accepted by ``Session.items``.
KIND_DIRS = {"efficacy": "hijack", "sweep": "sweeps", "probe": "pins", "experiment": "experiments"}
_KIND_ALIASES = {"hijack": "efficacy", "efficacy": "efficacy", "sweep": "sweep", "sweeps": "sweep",
                 "probe": "probe", "pin": "probe", "pins": "probe", "probes": "probe",
                 "experiment": "experiment", "experiments": "experiment"}
LIVE_STATUSES = ("running", "paused")
STALE_AFTER_S = 120.0


# ------------------------------------------------------------------------------------ helpers
def default_sessions_root() -> Path:
    """``<user data dir>/sessions``; ``LCA_TUI_DATA_DIR`` replaces the user data dir."""
    base = os.environ.get("LCA_TUI_DATA_DIR")
    if not base:
        import platformdirs

        base = platformdirs.user_data_dir("lca-tui")
    return Path(base).expanduser() / "sessions"


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


def jsonable(obj):
    """Plain JSON values: dataclasses/``to_dict`` objects flattened, tuples to lists, numpy
    scalars to numbers, NaN/inf to None (the files are strict JSON)."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict) and not isinstance(obj, dict):
        obj = obj.to_dict()
    elif is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        try:
            return jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return jsonable(obj.tolist())
    return str(obj)


def _load_json(path: Path) -> tuple[object, str | None]:
    """(data, None) or (None, reason)."""
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


def check_safetensors(path: Path) -> str | None:
    """None when the file's header is sound and its size matches the header; else the reason.
    Reads only the header (no torch import, no tensor data)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                return "damaged (truncated header)"
            n = int.from_bytes(raw, "little")
            if n <= 0 or n > min(size - 8, 100_000_000):
                return "damaged (bad header length)"
            header = json.loads(fh.read(n).decode("utf-8"))
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "damaged (bad header)"
    if not isinstance(header, dict):
        return "damaged (bad header)"
    end = 0
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        try:
            start, stop = meta["data_offsets"]
            end = max(end, int(stop))
            if not 0 <= int(start) <= int(stop):
                return "damaged (bad tensor offsets)"
        except (KeyError, TypeError, ValueError):
            return "damaged (bad tensor entry)"
    if 8 + n + end != size:
        return f"damaged (size {size} bytes, header expects {8 + n + end})"
    return None


# ------------------------------------------------------------------------------------ liveness
def _proc_start_time(pid: int) -> float | None:
    """Start time (epoch seconds) of a process from Linux /proc, None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[0]
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid, since: float | None = None) -> bool:
    """Whether ``pid`` is a live process that could have written a state at time ``since`` (a
    process started after ``since`` is a reused pid). Zombies count as dead."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    except OSError:
        return False
    if _proc_state(pid) in ("Z", "X"):
        return False
    if since is not None:
        started = _proc_start_time(pid)
        if started is not None and started > since + 2.0:
            return False
    return True


def file_held_open(path: Path) -> bool | None:
    """Whether some process (readable by us) has ``path`` open; None where /proc is unavailable."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    try:
        target = str(path.resolve())
    except OSError:
        return None
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") == target:
                    return True
            except OSError:
                continue
    return False


def _last_activity(run_path: Path, state: dict) -> float:
    times = [float(state.get("updated") or 0)]
    for name in ("metrics.jsonl", "state.json", "checkpoint.safetensors"):
        try:
            times.append((run_path / name).stat().st_mtime)
        except OSError:
            pass
    return max(times)


def effective_status(run_path: Path, state: dict, stale_after: float = STALE_AFTER_S) -> str:
    """The state's status, or ``interrupted`` for a running/paused run whose process is gone."""
    status = state.get("status", "created")
    if status not in LIVE_STATUSES:
        return status
    pid = state.get("pid")
    if pid is not None:
        return status if pid_alive(pid, state.get("updated")) else "interrupted"
    held = file_held_open(run_path / "metrics.jsonl")
    if held is not None:
        return status if held else "interrupted"
    return status if time.time() - _last_activity(run_path, state) <= stale_after else "interrupted"


# ------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class SessionInfo:
    path: Path
    name: str
    created: float | None
    updated: float | None
    notes: str
    runs: int
    items: int
    problem: str | None = None


@dataclass(frozen=True)
class RunInfo:
    id: str
    path: Path
    summary: str
    status: str  # created, running, paused, stopped, completed, diverged, interrupted, unknown
    step: int
    steps: int | None  # configured
    best_accuracy: float | None
    bayes_accuracy: float | None
    has_checkpoint: bool  # present and sound
    checkpoint_step: int | None = None
    config: dict | None = None
    updated: float | None = None
    problem: str | None = None

    @property
    def resumable(self) -> bool:
        """Interrupted, stopped or paused short of its configured steps, with a sound checkpoint."""
        return (self.has_checkpoint and self.config is not None and self.steps is not None
                and self.status in ("interrupted", "stopped", "paused") and self.step < self.steps)


@dataclass(frozen=True)
class Item:
    """One recorded result file (efficacy evaluation, sweep, pinned probe, experiment)."""

    id: str
    kind: str
    path: Path
    data: dict = field(repr=False)

    @property
    def created(self) -> float | None:
        return self.data.get("created")


def _count_files(path: Path) -> tuple[int, int]:
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


def _is_session_dir(path: Path) -> bool:
    return (path / SESSION_FILE).exists() or any((path / d).is_dir() for d in ("runs", *KIND_DIRS.values()))


def _activity_time(path: Path, meta_updated) -> float:
    times = [float(meta_updated) if isinstance(meta_updated, (int, float)) else 0.0]
    for name in (SESSION_FILE, "runs", *KIND_DIRS.values()):
        try:
            times.append((path / name).stat().st_mtime)
        except OSError:
            pass
    return max(times)


def list_sessions(root: str | os.PathLike | None = None) -> list[SessionInfo]:
    """Every session folder under ``root`` (default: ``default_sessions_root()``), most recently
    active first. Damaged ``session.json`` files are listed with their ``problem``."""
    root = Path(root) if root is not None else default_sessions_root()
    try:
        children = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    out = []
    for path in children:
        if not _is_session_dir(path):
            continue
        meta, why = _load_json(path / SESSION_FILE)
        problem = None
        if why is not None or not isinstance(meta, dict):
            problem = f"{SESSION_FILE}: {why or 'not a JSON object'}"
            meta = {}
        runs, items = _count_files(path)
        out.append(SessionInfo(path=path, name=str(meta.get("name") or path.name),
                               created=meta.get("created"), updated=_activity_time(path, meta.get("updated")),
                               notes=str(meta.get("notes") or ""), runs=runs, items=items, problem=problem))
    out.sort(key=lambda s: (s.updated or 0.0, s.path.name), reverse=True)
    return out


def last_session(root: str | os.PathLike | None = None) -> Path | None:
    """The session used last (``root/last.json``), else the most recently active one, else None."""
    root = Path(root) if root is not None else default_sessions_root()
    data, _ = _load_json(root / LAST_FILE)
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        p = Path(data["path"])
        if not p.is_absolute():
            p = root / p
        if p.is_dir() and _is_session_dir(p):
            return p
    sessions = list_sessions(root)
    return sessions[0].path if sessions else None


def find_session(ref: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A session given as a path, a folder name under ``root`` or a session name; UserError if
    there is none (or the name is ambiguous)."""
    root = Path(root) if root is not None else default_sessions_root()
    p = Path(ref).expanduser()
    if p.is_dir():
        if not _is_session_dir(p):
            raise UserError(f"{p} is not an lca-tui session (no {SESSION_FILE})")
        return p
    if p.exists():
        raise UserError(f"{p} is a file, not a session directory")
    ref = str(ref)
    if "/" not in ref and os.sep not in ref:
        cand = root / ref
        if cand.is_dir() and _is_session_dir(cand):
            return cand
        hits = [s.path for s in list_sessions(root) if s.name == ref]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UserError(f"{len(hits)} sessions are named {ref!r}; give the folder instead: "
                            + ", ".join(h.name for h in hits))
    raise UserError(f"no session {ref!r}: not a directory, nor a session name under {root}")


def open_cli_session(session: str | os.PathLike | None = None,
                     root: str | os.PathLike | None = None) -> "Session":
    """The session a headless command records into, marked as the last used one.

    ``session`` (the ``--session`` option): an existing session folder, a session name under the
    root, or a new folder to create. Without it: the last used session, else a new one.
    """
    root = Path(root) if root is not None else default_sessions_root()
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


# ------------------------------------------------------------------------------------ session
class Session:
    """One session directory. Open with ``Session.open(path)`` or make one with
    ``Session.create(root, name)``; ``problems`` lists the damaged files met so far (by name)."""

    def __init__(self, path: Path, meta: dict, problems: list[str], stale_after: float = STALE_AFTER_S):
        self.path = path
        self._meta = meta
        self.problems: list[str] = problems
        self.stale_after = stale_after
        self._meta_damaged = any(p.startswith(SESSION_FILE) for p in problems)

    # -------------------------------------------------------------- open / create
    @classmethod
    def open(cls, path: str | os.PathLike, create: bool = True, stale_after: float = STALE_AFTER_S) -> "Session":
        """Open the session at ``path``; with ``create`` a missing (or empty) folder becomes a new
        session. Damaged files inside are listed in ``problems``; this never raises for them."""
        path = Path(path).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise UserError(f"{path} is a file, not a session directory")
        fresh = not path.exists() or (path.is_dir() and not any(path.iterdir()))
        if fresh:
            if not create:
                raise UserError(f"no session at {path}")
            now = time.time()
            meta = {"name": path.name or "session", "created": now, "updated": now, "notes": ""}
            atomic_write_json(path / SESSION_FILE, meta)
            return cls(path, meta, [], stale_after)
        if not _is_session_dir(path):
            raise UserError(f"{path} is not an lca-tui session (no {SESSION_FILE}); "
                            "choose an empty or new folder")
        problems: list[str] = []
        meta, why = _load_json(path / SESSION_FILE)
        if why is not None or not isinstance(meta, dict):
            problems.append(f"{SESSION_FILE}: {why or 'not a JSON object'}")
            meta = {}
        try:
            st = path.stat().st_mtime
        except OSError:
            st = None
        meta = {"name": str(meta.get("name") or path.name), "created": meta.get("created", st),
                "updated": meta.get("updated", st), "notes": str(meta.get("notes") or ""),
                **{k: v for k, v in meta.items() if k not in ("name", "created", "updated", "notes")}}
        session = cls(path, meta, problems, stale_after)
        session.scan()
        return session

    @classmethod
    def create(cls, root: str | os.PathLike | None = None, name: str | None = None) -> "Session":
        """A new session folder under ``root`` (default ``default_sessions_root()``), named after
        ``name`` when given; it becomes the last-used session."""
        root = (Path(root) if root is not None else default_sessions_root()).expanduser().absolute()
        sid = new_id()
        if name:
            folder = slug(name)
            if (root / folder).exists():
                folder = f"{folder}-{secrets.token_hex(2)}"
        else:
            folder = sid
        path = root / folder
        now = time.time()
        meta = {"name": name or folder, "created": now, "updated": now, "notes": ""}
        atomic_write_json(path / SESSION_FILE, meta)
        session = cls(path, meta, [])
        session.mark_used(root)
        return session

    # -------------------------------------------------------------- metadata
    @property
    def name(self) -> str:
        return self._meta["name"]

    @property
    def created(self) -> float | None:
        return self._meta.get("created")

    @property
    def updated(self) -> float | None:
        return self._meta.get("updated")

    @property
    def notes(self) -> str:
        return self._meta.get("notes", "")

    def set_notes(self, notes: str):
        self._meta["notes"] = str(notes)
        self.touch()

    def rename(self, name: str):
        if not str(name).strip():
            raise UserError("a session name cannot be empty")
        self._meta["name"] = str(name).strip()
        self.touch()

    def touch(self):
        """Record ``updated`` in session.json. A damaged session.json is kept beside as
        ``session.json.damaged`` and replaced."""
        if self._meta_damaged:
            try:
                os.replace(self.path / SESSION_FILE, self.path / (SESSION_FILE + ".damaged"))
            except OSError:
                pass
            self._meta_damaged = False
        self._meta["updated"] = time.time()
        atomic_write_json(self.path / SESSION_FILE, jsonable(self._meta))

    def mark_used(self, root: str | os.PathLike | None = None) -> bool:
        """Record this session as the last used one in ``root/last.json``; False if that failed."""
        root = Path(root) if root is not None else default_sessions_root()
        try:
            atomic_write_json(root / LAST_FILE, {"path": str(self.path.resolve()), "name": self.name,
                                                 "used": time.time()})
            return True
        except UserError:
            return False

    def info(self) -> SessionInfo:
        runs, items = _count_files(self.path)
        return SessionInfo(self.path, self.name, self.created, _activity_time(self.path, self.updated),
                           self.notes, runs, items, None)

    def _problem(self, msg: str):
        if msg not in self.problems:
            self.problems.append(msg)

    def _rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.path))
        except ValueError:
            return str(p)

    def scan(self) -> list[str]:
        """Check every file once (JSON parses, checkpoint headers); returns ``problems``."""
        self.runs()
        for kind in KIND_DIRS:
            self.items(kind)
        return self.problems

    # -------------------------------------------------------------- runs
    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    def new_run_dir(self, cfg) -> Path:
        """A fresh, not yet existing ``runs/<id>`` path for ``TrainingRun.start(cfg, path)``."""
        from engine.lca.rundir import new_run_id

        self.runs_dir.mkdir(parents=True, exist_ok=True)
        while True:
            path = self.runs_dir / new_run_id(cfg)
            if not path.exists():
                break
        self.touch()
        return path

    def run_path(self, run_id: str) -> Path:
        p = self.runs_dir / run_id
        if run_id in ("", ".", "..") or "/" in run_id or not (p / "config.json").exists():
            raise UserError(f"no run {run_id!r} in session {self.name}")
        return p

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first, with its status (``interrupted`` detected) and checkpoint health."""
        try:
            dirs = sorted(p for p in self.runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return []
        return [self._run_info(p) for p in dirs]

    def run(self, run_id: str) -> RunInfo:
        return self._run_info(self.run_path(run_id))

    def _run_info(self, p: Path) -> RunInfo:
        problems = []
        cfg_data, why = _load_json(p / "config.json")
        summary, steps, config = "(no config)", None, None
        if why is not None:
            problems.append(f"runs/{p.name}/config.json: {why}")
        else:
            try:
                from engine.lca.config import RunConfig

                rc = RunConfig.from_dict(cfg_data)
                summary, steps, config = rc.summary(), rc.train.steps, rc.to_dict()
            except UserError as exc:
                problems.append(f"runs/{p.name}/config.json: invalid ({exc})")
                summary = "(invalid config)"
        state, status = {}, "created"
        if (p / "state.json").exists():
            data, why = _load_json(p / "state.json")
            if why is not None or not isinstance(data, dict):
                problems.append(f"runs/{p.name}/state.json: {why or 'not a JSON object'}")
                status = "unknown"
            else:
                state = data
                status = effective_status(p, state, self.stale_after)
        has_ckpt = False
        if (p / "checkpoint.safetensors").exists():
            bad = check_safetensors(p / "checkpoint.safetensors")
            if bad:
                problems.append(f"runs/{p.name}/checkpoint.safetensors: {bad}")
            else:
                has_ckpt = True
        for msg in problems:
            self._problem(msg)

        def num(key):
            v = state.get(key)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

        step = state.get("step", 0)
        ckpt_step = state.get("checkpoint_step")
        return RunInfo(id=p.name, path=p, summary=summary, status=status,
                       step=step if isinstance(step, int) else 0, steps=steps,
                       best_accuracy=num("best_accuracy"), bayes_accuracy=num("bayes_accuracy"),
                       has_checkpoint=has_ckpt, checkpoint_step=ckpt_step if isinstance(ckpt_step, int) else None,
                       config=config, updated=num("updated"), problem="; ".join(problems) or None)

    def metrics(self, run_id: str) -> list[dict]:
        """The run's metric events; damaged lines are skipped and counted in ``problems``."""
        from engine.atomic import read_jsonl

        recs, bad = read_jsonl(self.run_path(run_id) / "metrics.jsonl")
        if bad:
            self._problem(f"runs/{run_id}/metrics.jsonl: {bad} damaged line{'s' if bad != 1 else ''} skipped")
        return recs

    # -------------------------------------------------------------- results
    def _record(self, kind: str, data, stem_prefix: str = "") -> Path:
        data = jsonable(data)
        if not isinstance(data, dict):
            raise UserError(f"a {kind} record must be a JSON object")
        rid = new_id()
        data = {**data, "kind": kind, "id": rid, "created": time.time()}
        folder = self.path / KIND_DIRS[kind]
        path = folder / f"{stem_prefix}{rid}.json"
        atomic_write_json(path, data)
        self.touch()
        return path

    def record_hijack(self, result) -> Path:
        """Record an efficacy evaluation (``EfficacyResult`` or its ``to_dict()`` plus extras such
        as ``dataset`` and ``relation``) as ``hijack/<id>.json``."""
        data = jsonable(result)
        if not isinstance(data, dict) or not isinstance(data.get("curve"), list):
            raise UserError("an efficacy record needs a 'curve' list of points")
        data.setdefault("metric", "efficacy")
        return self._record("efficacy", data)

    def record_sweep(self, sweep) -> Path:
        data = jsonable(sweep)
        if not isinstance(data, dict) or not isinstance(data.get("points"), list):
            raise UserError("a sweep record needs a 'points' list")
        return self._record("sweep", data)

    def pin_probe(self, probe) -> Path:
        data = jsonable(probe)
        if not isinstance(data, dict) or "prompt" not in data:
            raise UserError("a pinned probe needs a 'prompt'")
        return self._record("probe", data)

    def record_experiment(self, result) -> Path:
        data = jsonable(result)
        if not isinstance(data, dict) or not data.get("name"):
            raise UserError("an experiment record needs a 'name'")
        return self._record("experiment", data, stem_prefix=f"{slug(data['name'])}-")

    def items(self, kind: str) -> list[Item]:
        """Recorded results of one kind (efficacy|hijack, sweep, probe|pins, experiment), oldest
        first; damaged files are skipped and named in ``problems``."""
        kind = _KIND_ALIASES.get(kind)
        if kind is None:
            raise UserError(f"unknown record kind; choose one of {', '.join(KIND_DIRS)}")
        folder = self.path / KIND_DIRS[kind]
        try:
            files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        except OSError:
            return []
        out = []
        for p in files:
            data, why = _load_json(p)
            if why is None and not isinstance(data, dict):
                why = "not a JSON object"
            if why is not None:
                self._problem(f"{KIND_DIRS[kind]}/{p.name}: {why}")
                continue
            out.append(Item(id=str(data.get("id") or p.stem), kind=kind, path=p, data=data))
        out.sort(key=lambda it: (it.created if isinstance(it.created, (int, float)) else 0.0, it.id))
        return out

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r}, name={self.name!r})"
