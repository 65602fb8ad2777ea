"""Messages that workers and the model thread post to the app (thread-safe ``post_message``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


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


class TrainSnapshot(Message):
    """Coalesced training progress: at most a few a second (``can_replace``)."""

    def __init__(self, run_id: str, events: list[dict], status: str) -> None:
        super().__init__()
        self.run_id, self.events, self.status = run_id, events, status

    def can_replace(self, message: Message) -> bool:
        return False  # events are deltas; the trainer panel drains its buffer instead


@dataclass
class JobState:
    job_id: int
    kind: str
    done: int = 0
    total: int = 0
    meta: dict = field(default_factory=dict)
