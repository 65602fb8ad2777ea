"""What the app keeps of the user's work, one type per kind: the engine's result and what the
session needs beside it. A panel posts one in ``RecordResult.of(record)``; the app saves it into the
session by its type (``LcaApp.save_record``, a ``functools.singledispatchmethod``): a new kind is a
class here and one handler there. ``KIND`` is the name ``app.results`` and the messages keep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, eq=False)
class Evaluation:
    """An ES evaluation over the built-in records (an engine ``EfficacyResult``) → the session's hijack/."""

    KIND: ClassVar[str] = "efficacy"
    result: Any
    relation: str | None = None  # the record's relation when the records were narrowed to it

    @classmethod
    def from_meta(cls, result, meta: dict) -> Evaluation:
        return cls(result, meta.get("relation"))


@dataclass(frozen=True, eq=False)
class Sweep:
    """P(true), P(false) against n for one record (its ``EfficacyResult``) → the session's sweeps/."""

    KIND: ClassVar[str] = "sweep"
    result: Any
    record: Any  # the CounterFact record swept

    @classmethod
    def from_meta(cls, result, meta: dict) -> Sweep:
        return cls(result, meta["record"])


@dataclass(frozen=True, eq=False)
class PinnedTrace:
    """A trace the user pinned (an engine ``Trace``) → the session's traces/."""

    KIND: ClassVar[str] = "trace"
    result: Any

    @classmethod
    def from_meta(cls, result, meta: dict) -> PinnedTrace:
        return cls(result)


@dataclass(frozen=True, eq=False)
class PinnedRepair:
    """A defended probe the user pinned in the Repair view (an engine ``RepairProbe``) → the session's
    repair records (``Session.record_repair``)."""

    KIND: ClassVar[str] = "repair"
    result: Any

    @classmethod
    def from_meta(cls, result, meta: dict) -> PinnedRepair:
        return cls(result)


Record = Evaluation | Sweep | PinnedTrace | PinnedRepair
#: A record's type by its kind: how ``RecordResult(kind, result, meta)``, the untyped form, is typed.
KINDS: dict[str, type] = {k.KIND: k for k in (Evaluation, Sweep, PinnedTrace, PinnedRepair)}


def typed(kind: str, result, meta: dict) -> Record | None:
    """``result`` if it is a record already, else the record of that kind (None: no type has it)."""
    if isinstance(result, tuple(KINDS.values())):
        return result
    klass = KINDS.get(kind)
    return klass.from_meta(result, meta) if klass is not None else None
