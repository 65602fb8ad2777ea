"""The one job protocol (engine/job_context.py): progress(done, total, partial), cancelled(), check()
raising the one Cancelled, pause() at breaks, and the quiet / part children."""

from __future__ import annotations

import pickle
import threading

import pytest

from engine.errors import Cancelled
from engine.job_context import NO_JOB, JobContext


def test_reports_cancel_and_breaks_reach_their_hooks():
    seen, breaks, stop = [], [], threading.Event()
    ctx = JobContext(lambda d, t, p: seen.append((d, t, p)), stop, lambda: breaks.append(1))
    ctx.progress(1, 4)
    ctx.progress(2, 4, "half")
    ctx.pause()
    assert seen == [(1, 4, None), (2, 4, "half")] and breaks == [1]
    assert not ctx.cancelled()
    ctx.check()
    stop.set()
    assert ctx.cancelled()
    ctx.pause()  # a cancelled job ends at once: no break work
    assert breaks == [1]
    with pytest.raises(Cancelled) as exc:
        ctx.check()
    assert exc.value.partial is None and str(exc.value) == "cancelled"


def test_quiet_and_part_share_the_cancel_and_the_breaks():
    seen, breaks, stop = [], [], threading.Event()
    ctx = JobContext(lambda d, t, p: seen.append((d, t, p)), stop, lambda: breaks.append(1))
    ctx.quiet().progress(1, 2)
    ctx.part(10, 30).progress(5, 10, "p")
    ctx.part(10, 30).part(5, 99).progress(1, 1)
    assert seen == [(15, 30, "p"), (16, 30, None)]
    ctx.quiet().pause()
    ctx.part(0, 1).pause()
    assert breaks == [1, 1]
    stop.set()
    assert ctx.quiet().cancelled() and ctx.part(0, 1).cancelled()


def test_no_job_never_cancels_and_reports_nowhere():
    NO_JOB.progress(1, 2, "x")
    NO_JOB.pause()
    NO_JOB.check()
    assert not NO_JOB.cancelled() and not NO_JOB.quiet().cancelled()


def test_cancelled_carries_its_partial_through_pickle():
    """Worker processes send exceptions back pickled: the partial result survives."""
    back = pickle.loads(pickle.dumps(Cancelled({"rows": 3})))
    assert isinstance(back, Cancelled) and back.partial == {"rows": 3}
