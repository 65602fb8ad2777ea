"""CounterFact records (Meng et al., 2022), the data behind the hijacking experiments of Sec. 3.

A record is a tuple (prompt p with subject s, relation r, target_true o*, target_false o_); the
efficacy score counts records with Pr[o_ | context] > Pr[o* | context] (Fig. 2).

Sources accepted by :func:`load_counterfact`:

- ``"builtin"``: the small set of real facts shipped in ``engine/hijack/data`` (ROME schema);
- a local ``.json`` (a list of records), ``.jsonl`` or ``.parquet`` file;
- a Hugging Face dataset id, e.g. ``azhx/counterfact`` or ``NeelNanda/counterfact-tracing``.

Two record schemas, detected per record:

- ROME: ``{case_id, requested_rewrite: {prompt, subject, relation_id, target_true: {str},
  target_new: {str}}}`` (``target_new`` is the false target);
- flat: ``{prompt, subject, relation_id, target_true, target_false}``, where the prompt is either
  a template with ``{}`` or already filled in (it is then turned back into a template by replacing
  the first occurrence of the subject with ``{}``).

Targets are stored without surrounding whitespace (NeelNanda's set writes " Paris"); the prompt is
stripped too, so the probe's leading-space rule applies uniformly. Record indices in error
messages count from 0.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from engine.errors import UserError

BUILTIN = "builtin"
BUILTIN_FILE = "counterfact_builtin.json"
FILE_SUFFIXES = (".json", ".jsonl", ".parquet")
_HUB_HINT = "pass a local counterfact.json (ROME schema) or use the built-in set"


@dataclass(frozen=True)
class FactRecord:
    """One CounterFact fact; ``prompt`` is the ROME template with ``{}`` for the subject."""

    case_id: int
    subject: str
    prompt: str
    relation_id: str
    target_true: str
    target_false: str

    @property
    def text(self) -> str:
        """The prompt with the subject filled in (``str.replace``, so other braces are safe)."""
        return self.prompt.replace("{}", self.subject)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FactRecord:
        """Inverse of :meth:`to_dict`; a missing field raises UserError naming it."""
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise UserError(f"A fact record is missing the field(s) {', '.join(missing)}.")
        return cls(case_id=int(data["case_id"]), subject=str(data["subject"]),
                   prompt=str(data["prompt"]), relation_id=str(data["relation_id"]),
                   target_true=str(data["target_true"]), target_false=str(data["target_false"]))


# ---------------------------------------------------------------------------------------------
# public entry point


def load_counterfact(source: str = BUILTIN, relation: str | list[str] | None = None,
                     limit: int | None = None, seed: int | None = None) -> list[FactRecord]:
    """Load records, keep those with the given relation id(s), shuffle with ``seed``, take ``limit``.

    ``relation`` is one id, a comma-separated string or a list ("P190", "P17,P19").
    Every failure is a :class:`UserError` with one sentence.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UserError(f"The record limit must be a positive integer, not {limit!r}.")
    records, origin = _load_source(source)
    records = filter_relation(records, relation, origin)
    if seed is not None:
        random.Random(seed).shuffle(records)
    return records[:limit] if limit is not None else records


def filter_relation(records: list[FactRecord], relation: str | Iterable[str] | None,
                    origin: str = "the records") -> list[FactRecord]:
    """Keep records whose relation id is in ``relation`` (None keeps all; order preserved)."""
    wanted = _relation_set(relation)
    if not wanted:
        return list(records)
    kept = [r for r in records if r.relation_id in wanted]
    if not kept:
        raise UserError(
            f"No records with relation {', '.join(sorted(wanted, key=_rel_key))} in {origin}; "
            f"the relation ids there are {', '.join(relation_ids(records))}.")
    return kept


def relation_ids(records: Iterable[FactRecord]) -> list[str]:
    """Distinct relation ids, in numeric order (P17 before P103)."""
    return sorted({r.relation_id for r in records}, key=_rel_key)


def records_from_rows(rows: Iterable[Any], origin: str = "the data") -> list[FactRecord]:
    """Parse raw rows in either schema; the first bad row raises UserError naming ``origin``."""
    records = [_parse_row(row, i, origin) for i, row in enumerate(rows)]
    if not records:
        raise UserError(f"{_cap(origin)} holds no CounterFact records.")
    return records


# ---------------------------------------------------------------------------------------------
# sources


def _load_source(source: str) -> tuple[list[FactRecord], str]:
    source = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(source, str) or not source.strip():
        raise UserError("The CounterFact source is empty; use 'builtin', a file path or a dataset id.")
    source = source.strip()
    if source.lower() == BUILTIN:
        return list(_builtin_records()), "the built-in set"
    path = Path(source).expanduser()
    if _looks_like_path(source, path):
        return records_from_rows(_read_file(path), str(path)), str(path)
    return records_from_rows(_load_hub(source), f"dataset '{source}'"), f"dataset '{source}'"


@lru_cache(maxsize=1)
def _builtin_records() -> tuple[FactRecord, ...]:
    text = resources.files("engine.hijack.data").joinpath(BUILTIN_FILE).read_text(encoding="utf-8")
    return tuple(records_from_rows(json.loads(text), "the built-in set"))


def _looks_like_path(source: str, path: Path) -> bool:
    return (path.exists() or path.suffix.lower() in FILE_SUFFIXES
            or source.startswith((".", "/", "~", "\\")))


def _read_file(path: Path) -> list[Any]:
    if not path.exists():
        raise UserError(f"CounterFact file not found: {path}.")
    if path.is_dir():
        raise UserError(f"{path} is a directory; pass a .json, .jsonl or .parquet file.")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix not in (".json", ".jsonl"):
        raise UserError(f"Cannot read {path}: expected a .json, .jsonl or .parquet file.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"Cannot read {path}: {exc}.") from exc
    if suffix == ".jsonl":
        return _parse_jsonl(text, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON lines saved as .json
            return _parse_jsonl(text, path)
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}).") from exc
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise UserError(f"{path} must hold a JSON list of CounterFact records.")
    return data


def _parse_jsonl(text: str, path: Path) -> list[Any]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: line {lineno} is not valid JSON ({exc.msg}).") from exc
    return rows


def _read_parquet(path: Path) -> list[Any]:
    try:
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise UserError(f"Cannot read the parquet file {path} ({type(exc).__name__}: {exc}).") from exc


def _load_hub(dataset_id: str) -> list[Any]:
    try:
        import datasets

        return list(datasets.load_dataset(dataset_id, split="train"))
    except Exception as exc:  # offline, unknown id, gated repo: all the same to the user
        raise UserError(
            f"Could not load the dataset '{dataset_id}' from the Hugging Face hub "
            f"({type(exc).__name__}; offline or unknown id?): {_HUB_HINT}.") from exc


# ---------------------------------------------------------------------------------------------
# parsing


def _parse_row(row: Any, i: int, origin: str) -> FactRecord:
    if not isinstance(row, Mapping):
        raise _bad(origin, i, "is not an object")
    if "requested_rewrite" in row:  # ROME schema
        rw = ("requested_rewrite",)
        subject = _text(row, i, origin, *rw, "subject")
        prompt = _text(row, i, origin, *rw, "prompt")
        relation = _text(row, i, origin, *rw, "relation_id")
        true = _text(row, i, origin, *rw, "target_true", "str")
        false = _text(row, i, origin, *rw, "target_new", "str")
    else:  # flat schema
        subject = _text(row, i, origin, "subject")
        prompt = _text(row, i, origin, "prompt")
        relation = _text(row, i, origin, "relation_id")
        true = _target(row, i, origin, "target_true")
        false = _target(row, i, origin, "target_false")
        prompt = _flat_template(row, prompt, subject)
    subject = subject.strip()
    return FactRecord(case_id=_case_id(row, i), subject=subject,
                      prompt=_template(prompt.strip(), subject, i, origin),
                      relation_id=relation.strip().upper(),
                      target_true=true.strip(), target_false=false.strip())


def _text(row: Mapping, i: int, origin: str, *path: str) -> str:
    cur: Any = row
    for key in path:
        if not isinstance(cur, Mapping) or cur.get(key) is None:
            raise _bad(origin, i, f"is missing '{'.'.join(path)}'")
        cur = cur[key]
    if not isinstance(cur, str) or not cur.strip():
        raise _bad(origin, i, f"has an empty or non-text '{'.'.join(path)}'")
    return cur


def _target(row: Mapping, i: int, origin: str, key: str) -> str:
    """A flat target: a string, or a ROME-style ``{"str": ...}`` object."""
    if isinstance(row.get(key), Mapping):
        return _text(row, i, origin, key, "str")
    return _text(row, i, origin, key)


def _flat_template(row: Mapping, prompt: str, subject: str) -> str:
    """NeelNanda's rows also carry the template in ``relation``; prefer it when it matches."""
    rel = row.get("relation")
    if ("{}" not in prompt and isinstance(rel, str) and "{}" in rel
            and rel.replace("{}", subject).strip() == prompt.strip()):
        return rel
    return prompt


def _template(prompt: str, subject: str, i: int, origin: str) -> str:
    if "{}" in prompt:
        return prompt
    if subject in prompt:
        return prompt.replace(subject, "{}", 1)
    raise _bad(origin, i, f"has a prompt with neither '{{}}' nor its subject '{subject}'")


def _case_id(row: Mapping, i: int) -> int:
    value = row.get("case_id")
    if isinstance(value, bool):
        return i
    try:
        return int(value)
    except (TypeError, ValueError):
        return i


def _bad(origin: str, i: int, what: str) -> UserError:
    return UserError(f"Malformed CounterFact data in {origin}: record {i} (counting from 0) {what}.")


def _relation_set(relation: str | Iterable[str] | None) -> set[str]:
    if relation is None:
        return set()
    items = relation.split(",") if isinstance(relation, str) else list(relation)
    return {str(r).strip().upper() for r in items if str(r).strip()}


def _rel_key(rid: str) -> tuple[int, str]:
    m = re.fullmatch(r"P(\d+)", rid)
    return (int(m.group(1)), rid) if m else (1 << 30, rid)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]
