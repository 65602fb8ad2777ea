"""Every message of the app: the one way workers and panels talk to the UI.

Workers (the model thread, training threads, inspector / report / experiment workers) never touch
the DOM and never assign app state: they ``post_message`` (thread-safe) to the widget that asked,
and Textual delivers it on the UI thread. Messages bubble, so a panel handles what is addressed to
it and the app sees the rest (status bar, job count). Panels ask the app for shared services
(the model thread, the session) by posting the request messages at the bottom of this file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.message import Message

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
    surprise: bool = False
    logit_lens: bool = False
    attention: bool = False


class ModelLoading(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ModelLoaded(Message):
    def __init__(self, info: dict) -> None:
        super().__init__()
        self.info = info


class ModelLoadFailed(Message):
    def __init__(self, name: str, error: str, kept: str | None) -> None:
        super().__init__()
        self.name, self.error, self.kept = name, error, kept


class ProbeAnswered(Message):
    """The model thread's answer to a ProbeRequest: an engine ``ProbeResult`` or an error."""

    def __init__(self, request: ProbeRequest, result: Any = None, error: str | None = None,
                 seconds: float = 0.0) -> None:
        super().__init__()
        self.request, self.result, self.error, self.seconds = request, result, error, seconds


class JobProgress(Message):
    def __init__(self, job_id: int, kind: str, done: int, total: int, partial: Any = None) -> None:
        super().__init__()
        self.job_id, self.kind, self.done, self.total, self.partial = job_id, kind, done, total, partial


class JobFinished(Message):
    def __init__(self, job_id: int, kind: str, result: Any = None, error: str | None = None,
                 cancelled: bool = False, meta: dict | None = None) -> None:
        super().__init__()
        self.job_id, self.kind, self.result, self.error = job_id, kind, result, error
        self.cancelled, self.meta = cancelled, meta or {}


# ----------------------------------------------------------------------------- training thread -> UI
class RunStarted(Message):
    """A training thread built its run: the handle (pause/stop events, snapshots) for the UI."""

    def __init__(self, run_id: str, run: Any, bayes: float | None, batch_size: int, step: int,
                 resumed: bool) -> None:
        super().__init__()
        self.run_id, self.run, self.bayes, self.batch_size = run_id, run, bayes, batch_size
        self.step, self.resumed = step, resumed


class TrainSnapshot(Message):
    """Training progress since the previous snapshot: the run's new events (deltas) and its
    status. The training thread posts at most ``SNAPSHOT_HZ`` a second; if the UI falls behind,
    a waiting snapshot is merged into the next one of the same run (``can_replace``), so the
    queue never holds more than one per run and no event is lost."""

    def __init__(self, run_id: str, events: list[dict], status: str) -> None:
        super().__init__()
        self.run_id, self.events, self.status = run_id, events, status

    def can_replace(self, message: Message) -> bool:
        # Textual asks the older message (self) whether the newer pending one may supersede it.
        if isinstance(message, TrainSnapshot) and message.run_id == self.run_id:
            message.events[:0] = self.events  # the newer one carries both deltas, in order
            return True
        return False


class RunFinished(Message):
    def __init__(self, run_id: str, status: str, error: str | None = None) -> None:
        super().__init__()
        self.run_id, self.status, self.error = run_id, status, error


SNAPSHOT_HZ = 4.0


# ----------------------------------------------------------------------------- other workers -> UI
class Inspected(Message):
    """The inspector worker's answer: an ``InspectionReport`` or an error sentence. Bubbles to the
    app after the inspector panel has drawn it."""

    def __init__(self, seq: int, label: str, step: int | None, cfg: Any, report: Any = None,
                 error: str | None = None) -> None:
        super().__init__()
        self.seq, self.label, self.step, self.cfg = seq, label, step, cfg
        self.report, self.error = report, error


class ReportWritten(Message):
    def __init__(self, path: Any = None, error: str | None = None) -> None:
        super().__init__()
        self.path, self.error = path, error


class ExperimentProgress(Message):
    def __init__(self, name: str, done: int, total: int) -> None:
        super().__init__()
        self.name, self.done, self.total = name, done, total


class ExperimentDone(Message):
    def __init__(self, name: str, result: dict | None = None, error: str | None = None) -> None:
        super().__init__()
        self.name, self.result, self.error = name, result, error


# ----------------------------------------------------------------------------- panels -> app
class ProbeWanted(Message):
    """A panel asks the model thread for a probe; the answer comes back to ``reply_to``."""

    def __init__(self, request: ProbeRequest, reply_to: Any) -> None:
        super().__init__()
        self.request, self.reply_to = request, reply_to


class ModelJobWanted(Message):
    """A panel asks for ``fn(host, job_id)`` on the model thread (the job watches
    ``host.cancel_event``); progress and the result come back to ``reply_to`` as JobProgress /
    JobFinished carrying ``job_id``."""

    def __init__(self, kind: str, fn: Callable, reply_to: Any, meta: dict | None = None) -> None:
        super().__init__()
        self.kind, self.fn, self.reply_to, self.meta = kind, fn, reply_to, meta or {}
        self.job_id = new_job_id()


class CancelModelJob(Message):
    """Cancel a model-thread job, queued or running (``job_id`` None: every job)."""

    def __init__(self, job_id: int | None) -> None:
        super().__init__()
        self.job_id = job_id


class RecordResult(Message):
    """Keep a result and write it into the session (kind: efficacy, sweep, probe)."""

    def __init__(self, kind: str, result: Any, meta: dict | None = None) -> None:
        super().__init__()
        self.kind, self.result, self.meta = kind, result, meta or {}


class PinProbe(Message):
    """Record the hijack panel's probe (``data``) in the session, with a screenshot of the screen."""

    def __init__(self, data: dict) -> None:
        super().__init__()
        self.data = data


class InspectRun(Message):
    """Show a trainer run in the inspector: ``trainer`` is the live run's Trainer (its snapshot is
    taken on the training thread between steps), None for a finished run (its checkpoint)."""

    def __init__(self, run_id: str, path: Any, trainer: Any = None) -> None:
        super().__init__()
        self.run_id, self.path, self.trainer = run_id, path, trainer
