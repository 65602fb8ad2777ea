"""What listing a session returns: plain frozen records of sessions, runs and recorded results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    step: int  # the last step recorded: metrics.jsonl's, or state.json's when that is further
    steps: int | None  # configured
    best_accuracy: float | None  # the best eval accuracy in the metrics or the state
    bayes_accuracy: float | None
    has_checkpoint: bool  # present and sound
    checkpoint_step: int | None = None  # the step the sound checkpoint holds: where a resume starts
    config: dict | None = None
    updated: float | None = None
    problem: str | None = None

    @property
    def resumable(self) -> bool:
        """Interrupted or stopped, with a sound checkpoint short of its configured steps (a paused
        run is being trained by a live process; a dead one is ``interrupted``)."""
        at = self.checkpoint_step if self.checkpoint_step is not None else self.step
        return (self.has_checkpoint and self.config is not None and self.steps is not None
                and self.status in ("interrupted", "stopped") and at < self.steps)


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
