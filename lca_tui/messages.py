"""Every message of the app: the one way workers and panels talk to the UI.

Workers (the model thread, training threads, inspector / report / experiment workers) never touch
the DOM and never assign app state: they ``post_message`` (thread-safe) to the widget that asked,
and Textual delivers it on the UI thread. Messages bubble, so a panel handles what is addressed to
it and the app sees the rest (status bar, job count). Panels ask the app for shared services
(the model thread, the session) by posting the request messages at the bottom of this file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from engine.hijack.jobs import ModelJob

_JOB_IDS = itertools.count(1)


def new_job_id() -> int:
    """A model-thread job id, unique in this process (the requester knows it before the job runs)."""
    return next(_JOB_IDS)


# ----------------------------------------------------------------------------- model thread -> UI
@dataclass(frozen=True)
class ProbeRequest:
    """What the hijack panel wants probed. ``seq`` grows with every edit; answers to older
    requests are dropped by the panel."""

    seq: int
    prompt: str
    targets: tuple[str, ...] = ()
    top_k: int = 10
    #: The optional read-outs wanted (names from ``engine.hijack.probe.ANALYSES``).
    analyses: tuple[str, ...] = ()


@dataclass(eq=False)
class ModelLoading(Message):
    text: str


@dataclass(eq=False)
class ModelLoaded(Message):
    info: dict


@dataclass(eq=False)
class ModelLoadFailed(Message):
    name: str
    error: str
    kept: str | None


@dataclass(eq=False)
class ProbeAnswered(Message):
    """The model thread's answer to a ProbeRequest: an engine ``ProbeResult`` or an error."""

    request: ProbeRequest
    result: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(eq=False)
class JobProgress(Message):
    job_id: int
    kind: str
    done: int
    total: int
    partial: Any = None


@dataclass(eq=False)
class JobFinished(Message):
    job_id: int
    kind: str
    result: Any = None
    error: str | None = None
    cancelled: bool = False
    meta: dict | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.meta = self.meta or {}


# ----------------------------------------------------------------------------- training thread -> UI
@dataclass(eq=False)
class RunStarted(Message):
    """A training thread built its run: the handle (pause/stop events, snapshots) for the UI."""

    run_id: str
    run: Any
    bayes: float | None
    batch_size: int
    step: int
    resumed: bool


@dataclass(eq=False)
class TrainSnapshot(Message):
    """Training progress since the previous snapshot: the run's new events (deltas) and its
    status. The training thread posts at most ``SNAPSHOT_HZ`` a second; if the UI falls behind,
    a waiting snapshot is merged into the next one of the same run (``can_replace``), so the
    queue never holds more than one per run and no event is lost."""

    run_id: str
    events: list[dict]
    status: str

    def can_replace(self, message: Message) -> bool:
        # Textual asks the older message (self) whether the newer pending one may supersede it.
        if isinstance(message, TrainSnapshot) and message.run_id == self.run_id:
            message.events[:0] = self.events  # the newer one carries both deltas, in order
            return True
        return False


@dataclass(eq=False)
class RunFinished(Message):
    run_id: str
    status: str
    error: str | None = None


SNAPSHOT_HZ = 4.0


# ----------------------------------------------------------------------------- other workers -> UI
@dataclass(eq=False)
class Inspected(Message):
    """The inspector worker's answer: an ``InspectionReport`` or an error sentence. Bubbles to the
    app after the inspector panel has drawn it."""

    seq: int
    label: str
    step: int | None
    cfg: Any
    report: Any = None
    error: str | None = None
    model: Any = None  # the model inspected (a CPU copy), for the hijack mirror


@dataclass(eq=False)
class ReportWritten(Message):
    path: Any = None
    error: str | None = None


@dataclass(eq=False)
class ExperimentProgress(Message):
    name: str
    done: int
    total: int


@dataclass(eq=False)
class ExperimentDone(Message):
    name: str
    result: dict | None = None
    error: str | None = None


# ----------------------------------------------------------------------------- panels -> app
@dataclass(eq=False)
class ProbeWanted(Message):
    """A panel asks the model thread for a probe; the answer comes back to ``reply_to``."""

    request: ProbeRequest
    reply_to: Any


@dataclass(eq=False)
class ModelJobWanted(Message):
    """A panel asks for a named job on the model thread (``engine.hijack.jobs.ModelJob``: a function of
    ``engine/hijack/jobs.py`` and its arguments); progress and the result come back to ``reply_to`` as
    JobProgress / JobFinished carrying ``job_id``, which is given here, before the job runs, and
    ``meta``, the asker's own notes on the request."""

    job: ModelJob
    reply_to: Any
    meta: dict | None = None
    job_id: int = field(default_factory=new_job_id, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.meta = self.meta or {}

    @property
    def kind(self) -> str:
        return self.job.kind


@dataclass(eq=False)
class CancelModelJob(Message):
    """Cancel a model-thread job, queued or running (``job_id`` None: every job)."""

    job_id: int | None


@dataclass(eq=False)
class RecordResult(Message):
    """Keep a result and write it into the session. ``RecordResult.of(record)`` carries a typed
    record (``lca_tui.records``: ``Evaluation``, ``Sweep``, ``PinnedTrace``), which the app saves by
    its type; the untyped form ``RecordResult(kind, engine_result, meta)`` still works (``record``
    types it by ``kind``: efficacy, sweep, trace)."""

    kind: str
    result: Any
    meta: dict | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.meta = self.meta or {}

    @classmethod
    def of(cls, record, meta: dict | None = None) -> RecordResult:
        return cls(record.KIND, record, meta)

    @property
    def record(self):
        """The typed record (None for a kind no record type has)."""
        from lca_tui.records import typed

        return typed(self.kind, self.result, self.meta)


@dataclass(eq=False)
class PinProbe(Message):
    """Record the hijack panel's probe (``data``) in the session, with a screenshot of the screen."""

    data: dict


@dataclass(eq=False)
class PinMirror(Message):
    """Record the inspector's hijack mirror (``data``: trace and sweep) in the session, with a
    screenshot of the screen."""

    data: dict


@dataclass(eq=False)
class InspectRun(Message):
    """Show a trainer run in the inspector: ``trainer`` is the live run's Trainer (its snapshot is
    taken on the training thread between steps), None for a finished run (its checkpoint)."""

    run_id: str
    path: Any
    trainer: Any = None
