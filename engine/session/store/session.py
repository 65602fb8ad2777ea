"""One session directory: open or create it, list its runs (status and checkpoint health) and
recorded results, record new results. Every file is written atomically (``engine.atomic``); a
damaged file never stops a session from opening: it is named in ``Session.problems`` and skipped.
The folder layout is in ``engine.session.store.layout``.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from pathlib import Path

from engine.atomic import atomic_write_json, jsonable, read_jsonl
from engine.errors import UserError
from engine.session.store.checkpoint import checkpoint_header, checkpoint_step
from engine.session.store.layout import (
    KIND_ALIASES,
    KIND_DIRS,
    LAST_FILE,
    SESSION_FILE,
    is_session_dir,
    load_json,
    new_id,
    root_or_default,
    slug,
)
from engine.session.store.liveness import STALE_AFTER_S, effective_status
from engine.session.store.progress import metrics_progress
from engine.session.store.records import Item, RunInfo


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
    def open(cls, path: str | os.PathLike, create: bool = True, stale_after: float = STALE_AFTER_S) -> Session:
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
        if not is_session_dir(path):
            raise UserError(f"{path} is not an lca-tui session (no {SESSION_FILE}); "
                            "choose an empty or new folder")
        problems: list[str] = []
        meta, why = load_json(path / SESSION_FILE)
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
    def create(cls, root: str | os.PathLike | None = None, name: str | None = None) -> Session:
        """A new session folder under ``root`` (default ``default_sessions_root()``), named after
        ``name`` when given; it becomes the last-used session."""
        root = root_or_default(root).expanduser().absolute()
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
        atomic_write_json(self.path / SESSION_FILE, self._meta)

    def mark_used(self, root: str | os.PathLike | None = None) -> bool:
        """Record this session as the last used one in ``root/last.json``; False if that failed."""
        root = root_or_default(root)
        try:
            atomic_write_json(root / LAST_FILE, {"path": str(self.path.resolve()), "name": self.name,
                                                 "used": time.time()})
            return True
        except UserError:
            return False

    def _problem(self, msg: str):
        if msg not in self.problems:
            self.problems.append(msg)

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
        cfg_data, why = load_json(p / "config.json")
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
            data, why = load_json(p / "state.json")
            if why is not None or not isinstance(data, dict):
                problems.append(f"runs/{p.name}/state.json: {why or 'not a JSON object'}")
                status = "unknown"
            else:
                state = data
                status = effective_status(p, state, self.stale_after)
        has_ckpt, ckpt_meta = False, {}
        if (p / "checkpoint.safetensors").exists():
            bad, ckpt_meta = checkpoint_header(p / "checkpoint.safetensors")
            if bad:
                problems.append(f"runs/{p.name}/checkpoint.safetensors: {bad}")
            else:
                has_ckpt = True
        for msg in problems:
            self._problem(msg)

        def num(key):
            v = state.get(key)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

        def whole(v):
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        # a resume starts at the step the checkpoint holds (its header says; the state may not)
        ckpt_step = None
        if has_ckpt:
            ckpt_step = checkpoint_step(ckpt_meta)
            ckpt_step = whole(state.get("checkpoint_step")) if ckpt_step is None else ckpt_step
        # state.json is rewritten only at checkpoints; the metrics (flushed every second) are ahead
        prog = metrics_progress(p / "metrics.jsonl")
        steps_seen = [s for s in (whole(state.get("step")), prog.last_step, ckpt_step) if s is not None]
        bests = [b for b in (num("best_accuracy"), prog.best_accuracy) if b is not None]
        bayes = num("bayes_accuracy")
        return RunInfo(id=p.name, path=p, summary=summary, status=status,
                       step=max(steps_seen, default=0), steps=steps,
                       best_accuracy=max(bests, default=None),
                       bayes_accuracy=bayes if bayes is not None else prog.bayes_accuracy,
                       has_checkpoint=has_ckpt, checkpoint_step=ckpt_step,
                       config=config, updated=num("updated"), problem="; ".join(problems) or None)

    def metrics(self, run_id: str) -> list[dict]:
        """The run's metric events; damaged lines are skipped and counted in ``problems``."""
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

    def record_trace(self, trace) -> Path:
        """Record a causal trace (``Trace.to_dict()``, or a dataset trace) as ``traces/<id>.json``."""
        data = jsonable(trace)
        if not isinstance(data, dict) or not isinstance(data.get("layers") or data.get("all"), (list, dict)):
            raise UserError("a trace record needs a 'layers' list (one prompt) or an 'all' summary (a dataset)")
        return self._record("trace", data)

    def record_repair(self, data) -> Path:
        """Record a defense result as ``repairs/<id>.json``, its ``scope`` read from its shape: ``dataset``
        (the ``lca-tui repair`` JSON: ``defenses`` with their frontiers) or ``probe`` (the Repair view's
        pinned probe: ``undefended`` and ``defended`` beside one defense)."""
        data = jsonable(data)
        if not isinstance(data, dict):
            raise UserError("a repair record must be a JSON object")
        if isinstance(data.get("defenses"), list):
            scope = "dataset"
        elif isinstance(data.get("defended"), dict) and isinstance(data.get("undefended"), dict):
            scope = "probe"
        else:
            raise UserError("a repair record needs 'defenses' (a dataset result) or 'defended' and 'undefended' "
                            "(a pinned probe)")
        data.pop("kind", None)  # the session's own field
        return self._record("repair", {**data, "scope": scope})

    def pin_mirror(self, mirror) -> Path:
        """Record the inspector's hijack mirror (``MirrorTrace.to_dict()`` plus the run, the sweep
        and a screenshot) as ``mirrors/<id>.json``."""
        data = jsonable(mirror)
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list) \
                or not isinstance(data.get("hijacked"), dict):
            raise UserError("a pinned hijack mirror needs 'tokens' and 'hijacked'")
        return self._record("mirror", data)

    def record_experiment(self, result) -> Path:
        data = jsonable(result)
        if not isinstance(data, dict) or not data.get("name"):
            raise UserError("an experiment record needs a 'name'")
        return self._record("experiment", data, stem_prefix=f"{slug(data['name'])}-")

    def items(self, kind: str) -> list[Item]:
        """Recorded results of one kind (efficacy|hijack, sweep, probe|pins, experiment), oldest
        first; damaged files are skipped and named in ``problems``."""
        kind = KIND_ALIASES.get(kind)
        if kind is None:
            raise UserError(f"unknown record kind; choose one of {', '.join(KIND_DIRS)}")
        folder = self.path / KIND_DIRS[kind]
        try:
            files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        except OSError:
            return []
        out = []
        for p in files:
            data, why = load_json(p)
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
