"""What the inspector shows and how it computes it again (r / f5): one dataclass per kind of source.
``load()`` runs in the inspector's worker and returns (cfg, model, step); ``again()`` is the source a
refresh computes (a snapshot with a way to take a fresh one becomes a live source)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, eq=False)
class RunSource:
    """A run directory's ``checkpoint.safetensors``, read again on refresh."""

    path: str

    @property
    def label(self) -> str:
        return Path(self.path).name or self.path

    def load(self) -> tuple:
        from engine.lca.inspection import load_model_from_run

        return load_model_from_run(self.path)

    def again(self) -> RunSource:
        return self


@dataclass(frozen=True, eq=False)
class LiveSource:
    """A live run: ``take()`` -> (cfg, model_snapshot, step), called in the worker (it may wait for
    the training thread), again on refresh."""

    label: str
    take: Callable[[], tuple]

    def load(self) -> tuple:
        from engine.errors import UserError

        try:
            return self.take()
        except Exception as exc:  # noqa: BLE001 - e.g. the run is gone
            raise UserError(f"could not take a snapshot: {exc}") from None

    def again(self) -> LiveSource:
        return self


@dataclass(frozen=True, eq=False)
class SnapshotSource:
    """A model copy no other thread touches; ``take``, when given, is how a refresh takes a new one
    (else the same copy is analysed again)."""

    cfg: Any
    model: Any
    label: str
    step: int | None = None
    take: Callable[[], tuple] | None = None

    def load(self) -> tuple:
        return self.cfg, self.model, self.step

    def again(self) -> SnapshotSource | LiveSource:
        return LiveSource(self.label, self.take) if self.take is not None else self


Source = RunSource | LiveSource | SnapshotSource
