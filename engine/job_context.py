"""One job protocol: what a long engine job (an efficacy sweep, a trace, a dataset trace, an
experiment's jobs) is handed to report progress, notice a cancel and leave room for other work.

    ctx.progress(done, total, partial=None)  how far it is (in its own unit: prompts, records, jobs)
                                             and, where it has one, the result so far
    ctx.cancelled() -> bool                  the job was asked to stop
    ctx.check()                              raise ``engine.errors.Cancelled`` when it was
    ctx.pause()                              a break between two forwards, no hook installed: the
                                             asker's hook runs there (the app's model thread answers
                                             a waiting probe), unless the job is cancelled

A cancelled job raises ``Cancelled``; ``Cancelled.partial`` carries what it had finished where that
means something (an ``EfficacyResult`` flagged ``cancelled``). Every cancellable function takes
``ctx: JobContext | None``; None is ``NO_JOB``, the context that reports nowhere and never cancels.
A function that runs another and reports its progress itself hands it ``ctx.quiet()``; one that counts
another's progress into its own hands it ``ctx.part(base, total)``. ETAs are the reader's business
(``lca_tui.commands.sweep_options.eta_text``), from the rate of the work done in this run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from engine.errors import Cancelled

#: ``progress(done, total, partial)``: the one shape of a progress report.
Progress = Callable[[int, int, Any], None]


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class JobContext:
    """See the module docstring. ``progress`` receives every report, ``cancel`` (a
    ``threading.Event`` or anything with ``is_set()``) is the job's own cancel, ``pause`` runs at each
    break between forwards."""

    __slots__ = ("_cancel", "_pause", "_progress")

    def __init__(self, progress: Progress | None = None, cancel: CancelFlag | None = None,
                 pause: Callable[[], None] | None = None):
        self._progress, self._cancel, self._pause = progress, cancel, pause

    def progress(self, done: int, total: int, partial: Any = None) -> None:
        if self._progress is not None:
            self._progress(done, total, partial)

    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def check(self) -> None:
        if self.cancelled():
            raise Cancelled()

    def pause(self) -> None:
        if self._pause is not None and not self.cancelled():
            self._pause()

    def quiet(self) -> JobContext:
        """The same cancel and breaks, no progress: for a part whose caller reports for it."""
        return JobContext(None, self._cancel, self._pause)

    def part(self, base: int, total: int) -> JobContext:
        """The same cancel and breaks; a part's ``progress(done, _, partial)`` reported as
        ``(base + done, total, partial)`` of this job."""
        return JobContext(lambda done, _total, partial: self.progress(base + done, total, partial),
                          self._cancel, self._pause)


#: The context of a call that nobody watches: no progress, no cancel, no breaks.
NO_JOB = JobContext()

