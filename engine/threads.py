"""How many threads torch may use: the cores this process may run on, less the cores other
processes keep busy, unless ``--threads N`` / ``LCA_TUI_THREADS`` says otherwise.

Why: torch's OpenMP threads wait for each other at every parallel region, so when another busy
process takes one of two cores, a two-thread step waits for the descheduled thread again and
again (about 30x slower on this project's 2-core machine); one thread on the free core does not.

- ``choose()`` decides (``ThreadChoice``); ``configure()`` decides and applies it to the calling
  thread. torch's thread count is per OS thread (OpenMP ICV), so each worker applies its own.
- ``plan(n_workers)`` splits the choice between threads of one process that run torch at the same
  time (the app's training thread and model thread), each at least 1: ``apply(plan(2)[i])`` at
  the start of worker i keeps them from oversubscribing the cores.
- ``Governor`` re-decides every few seconds between training steps, as the load changes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import ConfigError

ENV_VAR = "LCA_TUI_THREADS"

__all__ = ["ENV_VAR", "ThreadChoice", "allowed_cpus", "busy_elsewhere", "choose", "configure", "plan",
           "apply", "Governor", "parse_threads"]


@dataclass(frozen=True)
class ThreadChoice:
    threads: int          # torch threads for this process
    cores: int            # cores this process may run on
    busy_elsewhere: float  # cores kept busy by other processes (measured), 0 when not measured
    source: str           # "flag", "env" or "auto"

    def to_dict(self) -> dict:
        return {"threads": self.threads, "cores": self.cores,
                "busy_elsewhere": round(self.busy_elsewhere, 2), "source": self.source}


def parse_threads(value, origin: str = "--threads") -> int:
    """A positive integer thread count, or ConfigError naming where the bad value came from."""
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1 or str(value).strip().lstrip("+") != str(n):
        raise ConfigError(f"{origin} must be a positive integer, got {value!r}", field="threads")
    return n


def allowed_cpus() -> list[int]:
    """CPU ids this process may run on (its affinity mask), or all of them where that is unknown."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        import psutil

        try:
            return sorted(psutil.Process().cpu_affinity())
        except (AttributeError, psutil.Error):
            return list(range(os.cpu_count() or 1))


def _cgroup_quota() -> float | None:
    """Cores allowed by a cgroup v2 CPU quota (containers), None when unlimited or unknown."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else max(float(quota) / float(period), 1.0)


def _cores() -> int:
    n = len(allowed_cpus())
    quota = _cgroup_quota()
    return max(1, min(n, int(quota)) if quota else n)


class _LoadProbe:
    """Busy cores of other processes since the last reading: busy time of the allowed CPUs minus
    this process's own CPU time, over the wall time between two readings."""

    def __init__(self):
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process()
        self._cpus = allowed_cpus()
        self._last = self._read()

    def _read(self):
        per_cpu = self._psutil.cpu_times(percpu=True)
        busy = 0.0
        for i in self._cpus:
            if i < len(per_cpu):
                t = per_cpu[i]
                busy += sum(t) - t.idle - getattr(t, "iowait", 0.0)
        own = sum(self._proc.cpu_times()[:2])
        return time.monotonic(), busy, own

    def busy_elsewhere(self) -> float:
        wall0, busy0, own0 = self._last
        self._last = now = self._read()
        wall = now[0] - wall0
        if wall <= 0:
            return 0.0
        return max(0.0, ((now[1] - busy0) - (now[2] - own0)) / wall)


def busy_elsewhere(interval: float = 0.25) -> float:
    """Cores kept busy by other processes, measured over ``interval`` seconds."""
    probe = _LoadProbe()
    time.sleep(interval)
    return probe.busy_elsewhere()


def _auto_threads(cores: int, busy: float) -> int:
    # A core counts as taken once another process keeps it busy 60% of the time: a thread there
    # would make every parallel region wait for it.
    return max(1, min(cores, int(cores - busy + 0.4)))


def choose(requested: int | str | None = None, interval: float = 0.25) -> ThreadChoice:
    """The thread count: ``requested`` (the --threads flag) if given, else $LCA_TUI_THREADS,
    else the allowed cores less the cores other processes keep busy (at least 1)."""
    cores = _cores()
    if requested is not None:
        return ThreadChoice(parse_threads(requested), cores, 0.0, "flag")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return ThreadChoice(parse_threads(env, ENV_VAR), cores, 0.0, "env")
    busy = busy_elsewhere(interval) if cores > 1 else 0.0
    return ThreadChoice(_auto_threads(cores, busy), cores, busy, "auto")


def apply(n: int) -> None:
    """Set torch's thread count for the calling thread (and the threads it starts later)."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def configure(requested: int | str | None = None) -> ThreadChoice:
    """``choose`` and ``apply`` in the calling thread; returns the choice."""
    choice = choose(requested)
    apply(choice.threads)
    return choice


def plan(n_workers: int, requested: int | str | None = None, choice: ThreadChoice | None = None) -> list[int]:
    """Thread counts for ``n_workers`` threads of this process that run torch at the same time:
    the chosen total split as evenly as possible, each at least 1 (so more workers than threads
    means one each)."""
    if n_workers < 1:
        raise ValueError("n_workers must be >= 1")
    total = (choice or choose(requested)).threads
    if total <= n_workers:
        return [1] * n_workers
    base, extra = divmod(total, n_workers)
    return [base + (i < extra) for i in range(n_workers)]


class Governor:
    """Sets, and re-decides between steps, the torch thread count of the thread that calls
    ``tick`` (the training thread: ``Trainer.governor`` ticks between steps, so it may be built in
    any thread). The total is the automatic choice, re-measured every ``period_s`` seconds, or a
    fixed request (flag or env), never re-measured. ``share`` divides the total among the torch
    workers of this process that run at the same time: a number, or a function read at every tick
    (the app counts the model thread only while it is busy, so an idle app trains like the CLI)."""

    def __init__(self, requested: int | str | None = None, period_s: float = 5.0,
                 share: int | Callable[[], int] = 1):
        self.period_s = period_s
        fixed_share = max(1, int(share)) if not callable(share) else 1
        self._share = share if callable(share) else (lambda: fixed_share)
        self.choice = choose(requested)
        self.fixed = self.choice.source != "auto"
        self.share = self._current_share()
        self.threads = self._mine()
        self._probe = None if self.fixed else _LoadProbe()
        self._next = time.monotonic() + period_s
        self._applied_in: int | None = None
        self.changes = 0

    def _current_share(self) -> int:
        return max(1, int(self._share()))

    def _mine(self) -> int:
        return plan(self.share, choice=self.choice)[0]

    def tick(self) -> int:
        if self._applied_in != threading.get_ident():
            apply(self.threads)
            self._applied_in = threading.get_ident()
        share = self._current_share()
        due = not self.fixed and time.monotonic() >= self._next
        if share == self.share and not due:
            return self.threads
        self.share = share
        if due:
            self._next = time.monotonic() + self.period_s
            cores = _cores()
            busy = self._probe.busy_elsewhere()
            self.choice = ThreadChoice(_auto_threads(cores, busy), cores, busy, "auto")
        n = self._mine()
        if n != self.threads:
            self.threads, self.changes = n, self.changes + 1
            apply(n)
        return n
