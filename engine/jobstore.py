"""The job store: one JSON file per finished job, keyed by the job's function, its canonical spec and
the version of the code that computes results, so a sweep that is run again reads what it already
finished instead of running it again (``engine.experiments.jobs.run_jobs`` puts and gets; so can any
other sweep: ``store.get(fn, spec)`` / ``store.put(fn, spec, result)``).

    <root>/<key[:2]>/<key>.json   {"format", "key", "fn", "code", "spec", "result", "seconds", "worker"}

``key`` = sha256 of the canonical JSON of {"fn", "spec", "code"} (sorted keys, tuples as lists).
``code`` = ``code_version()``: a hash of every ``engine/**/*.py`` source file (or ``LCA_TUI_CODE_VERSION``),
so an edit anywhere in the engine makes old entries foreign instead of silently reused.
Entries are written atomically (``engine.atomic``): a reader never sees half of one. An entry that does
not parse (truncated on disk), or whose key, function, code or spec differs from the lookup (foreign),
is never trusted: ``get`` returns None, the entry is named in ``rejected`` (and through ``warn``) and the
job runs again, its new entry replacing the bad one.

Results are stored losslessly: floats keep every bit (Python's ``repr``), NaN and infinities become
``{"$float": "nan"}`` (the files stay strict JSON), tuples become lists; ``put`` returns the result as
``get`` will read it, so a resumed sweep and an uninterrupted one see the same values.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.atomic import atomic_write_text
from engine.errors import UserError

FORMAT = "lca-tui-job/1"
_ENGINE = Path(__file__).resolve().parent
_CODE: str | None = None


def code_version() -> str:
    """A short hash of the engine's Python sources (``LCA_TUI_CODE_VERSION`` overrides): the part of the
    key that changes whenever the code that computes results may have changed."""
    global _CODE
    env = os.environ.get("LCA_TUI_CODE_VERSION")
    if env:
        return env
    if _CODE is None:
        h = hashlib.sha256()
        for path in sorted(_ENGINE.rglob("*.py")):
            h.update(path.relative_to(_ENGINE).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
        _CODE = h.hexdigest()[:16]
    return _CODE


def _plain(obj):
    """Plain JSON values, losslessly: non-finite floats tagged, tuples as lists, numpy/torch scalars
    and arrays through ``tolist()``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$float": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return _plain(obj.tolist())
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _plain(obj.to_dict())
    raise TypeError(f"a job result must be plain data, not {type(obj).__name__}")


def _unplain(obj: dict):
    if len(obj) == 1 and "$float" in obj:
        return float(obj["$float"])
    return obj


def encode(obj, indent: int | None = None) -> str:
    return json.dumps(_plain(obj), sort_keys=indent is None, indent=indent, ensure_ascii=False, allow_nan=False)


def decode(text: str):
    return json.loads(text, object_hook=_unplain)


def canonical(spec) -> str:
    """The spec as one canonical JSON line (sorted keys, no spaces): equal specs, equal text."""
    return json.dumps(_plain(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def fn_name(fn) -> str:
    """``module:qualname`` of a job function (what the key and the entry name)."""
    if isinstance(fn, str):
        return fn
    return f"{fn.__module__}:{fn.__qualname__}"


def default_root() -> Path:
    """``LCA_TUI_STORE``, else ``<user cache dir>/lca-tui/jobs``."""
    env = os.environ.get("LCA_TUI_STORE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lca-tui")) / "jobs"


@dataclass
class JobStore:
    """A folder of finished jobs (see the module docstring). ``warn(line)`` hears of every rejected entry."""

    root: Path
    code: str = ""
    warn: Callable[[str], None] | None = None
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    hits: int = 0  # entries ``get`` found (jobs taken from the store)

    def __post_init__(self):
        self.root = Path(self.root).expanduser()
        if not self.code:
            self.code = code_version()
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"--store {self.root} is not a folder")

    def key(self, fn, spec) -> str:
        text = canonical({"code": self.code, "fn": fn_name(fn), "spec": spec})
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _reject(self, path: Path, why: str) -> None:
        self.rejected.append((str(path), why))
        if self.warn is not None:
            self.warn(f"store entry {path} is {why}; its job runs again")

    def entry(self, fn, spec) -> dict | None:
        """The whole entry of a finished job (None when absent, damaged or foreign)."""
        key = self.key(fn, spec)
        path = self.path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self._reject(path, f"unreadable ({exc})")
            return None
        try:
            entry = decode(text)
        except ValueError:
            self._reject(path, "damaged (not whole JSON: truncated?)")
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT or "result" not in entry:
            self._reject(path, "foreign (not a job entry of this format)")
            return None
        for part, want in (("key", key), ("fn", fn_name(fn)), ("code", self.code)):
            if entry.get(part) != want:
                self._reject(path, f"foreign (its {part} is {entry.get(part)!r}, expected {want!r})")
                return None
        if canonical(entry.get("spec")) != canonical(spec):
            self._reject(path, "foreign (its spec differs from the job's)")
            return None
        return entry

    def get(self, fn, spec):
        """``(True, result)`` of a finished job, else ``(False, None)``."""
        entry = self.entry(fn, spec)
        if entry is None:
            return False, None
        self.hits += 1
        return True, entry["result"]

    def put(self, fn, spec, result, seconds: float = 0.0, worker: str = "") -> object:
        """Write the job's entry atomically; returns the result as ``get`` reads it back."""
        key = self.key(fn, spec)
        text = encode({"format": FORMAT, "key": key, "fn": fn_name(fn), "code": self.code, "spec": spec,
                       "result": result, "seconds": round(float(seconds), 6), "worker": worker}, indent=1)
        atomic_write_text(self.path(key), text + "\n")
        return decode(text)["result"]

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.is_dir() else 0


def open_store(where: str | os.PathLike | None, warn: Callable[[str], None] | None = None) -> JobStore | None:
    """``--store`` as given: None or "" -> the default folder, "none" / "off" -> no store."""
    if where is not None and str(where).strip().lower() in ("none", "off"):
        return None
    root = default_root() if where in (None, "") else Path(where)
    return JobStore(root, warn=warn)
