"""Is a run still being trained? ``interrupted`` detection for running/paused runs.

A run's ``state.json`` carries the ``pid`` of the process training it (every writer of a
running/paused state records it). The run is alive while that process is (``psutil``: Linux, macOS
and Windows alike) and started before the state was written; a dead, zombie or younger process
(the pid was reused) means the run was interrupted. A state without a pid (hand-written or from an
older version) is alive while something in the run directory changed in the last ``stale_after``
seconds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from engine.lca.rundir import LIVE_STATUSES

STALE_AFTER_S = 120.0
#: Slack between a process's recorded start time and a state it wrote (clock granularity).
_START_SLACK_S = 2.0


def pid_alive(pid, since: float | None = None) -> bool:
    """Whether ``pid`` is a live process that could have written a state at time ``since`` (a
    process started after ``since`` is a reused pid). Zombies count as dead."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        proc = psutil.Process(pid)
        try:
            if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                return False
        except psutil.AccessDenied:
            pass  # it exists, and belongs to someone else
        if since is None:
            return True
        try:
            return proc.create_time() <= since + _START_SLACK_S
        except psutil.AccessDenied:
            return True
    except psutil.NoSuchProcess:
        return False


def last_activity(run_path: Path, state: dict) -> float:
    """The latest of the state's ``updated`` and the mtimes of the run's files."""
    times = [float(state.get("updated") or 0)]
    for name in ("metrics.jsonl", "state.json", "checkpoint.safetensors"):
        try:
            times.append((run_path / name).stat().st_mtime)
        except OSError:
            pass
    return max(times)


def effective_status(run_path: Path, state: dict, stale_after: float = STALE_AFTER_S) -> str:
    """The state's status, or ``interrupted`` for a running/paused run whose process is gone."""
    status = state.get("status", "created")
    if status not in LIVE_STATUSES:
        return status
    pid = state.get("pid")
    if pid is not None:
        return status if pid_alive(pid, state.get("updated")) else "interrupted"
    return status if time.time() - last_activity(run_path, state) <= stale_after else "interrupted"
