"""Executors: where a sweep's jobs run, behind one interface (``engine.experiments.jobs.run_jobs`` picks
one from the sweep's settings and the job store sits under all of them).

    executor.run(fn, tasks, store, done, failed, ctx) -> PoolStats

``tasks`` is a list of ``(index, spec)`` in the order to start them (longest first); ``done(index,
result)`` and ``failed(index, message, user_error)`` are called as jobs end, in the calling thread;
a cancel of ``ctx`` (``engine.job_context``) raises ``Cancelled`` between jobs.

- ``InProcess``: this process, one job after another (``--jobs 1``; the job sees the cancel through
  ``jobs.current_context()``).
- ``LocalPool``: ``n`` spawned worker processes on this machine (``--jobs N``); with ``env`` per worker
  it is the per-GPU executor (``--gpus 0,1``: worker k sees only ``CUDA_VISIBLE_DEVICES=gpus[k]``).
  Scheduling is dynamic: the next job goes to whichever worker is free (``schedule="round-robin"``
  gives job i to worker i % n instead, kept to measure the difference). A worker that dies mid-job
  (killed, out of memory) is replaced and its job runs again on a free worker, up to
  ``MAX_ATTEMPTS`` times. Workers write their finished jobs to the store themselves and die with the
  parent (Linux ``PR_SET_PDEATHSIG``), so a killed sweep loses at most the jobs in flight.
- ``Slurm``: a Slurm job array through submitit (``--executor slurm``); each array task runs one job and
  writes its entry to the store, which must be on disk every node sees: that is how results come back.
  Slurm hands the next task to whichever slot is free. Tested with submitit's local executor
  (``cluster="local"``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.errors import Cancelled, UserError, describe
from engine.job_context import JobContext

#: How many times a job is started before a worker death on it counts as the job's failure.
MAX_ATTEMPTS = 3
SCHEDULES = ("dynamic", "round-robin")


@dataclass
class PoolStats:
    """What a run of the executor cost: wall time, workers, busy seconds, restarts."""

    workers: int = 1
    wall_s: float = 0.0
    busy_s: float = 0.0
    restarts: int = 0
    per_worker_busy: list[float] = field(default_factory=list)

    @property
    def idle_s(self) -> float:
        """Worker-seconds without a job between the pool's start and its end."""
        return max(0.0, self.workers * self.wall_s - self.busy_s)


def _thread_limits() -> None:
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the process that started it dies (no orphans)."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def run_one(fn, spec: dict, store, worker: str):
    """Run one job single-threaded and store it; the result as the store reads it back."""
    t0 = time.perf_counter()
    result = fn(spec)
    if store is not None:
        result = store.put(fn, spec, result, time.perf_counter() - t0, worker)
    return result


def _failure(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
    return describe(exc) + where


def _worker_main(conn, store_root, code, name) -> None:
    _die_with_parent()
    _thread_limits()
    from engine.jobstore import JobStore

    store = JobStore(store_root, code=code) if store_root else None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        i, fn, spec = msg
        t0 = time.perf_counter()
        try:
            res = run_one(fn, spec, store, f"{name} pid {os.getpid()}")
            reply = ("ok", i, res, time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001 -- every failure goes back to the parent with the job
            reply = ("err", i, _failure(exc), isinstance(exc, UserError))
        try:
            conn.send(reply)
        except (OSError, EOFError):
            return


class InProcess:
    """Jobs one after another in this process (each job sees the cancel: ``jobs.current_context()``)."""

    workers = 1

    def __init__(self, set_context: Callable | None = None):
        self._set_context = set_context  # a context manager factory: the job's context (jobs.current_context)

    def run(self, fn, tasks, store, done, failed, ctx: JobContext) -> PoolStats:
        t0 = time.perf_counter()
        busy = 0.0
        for i, spec in tasks:
            if ctx.cancelled():
                raise Cancelled()
            t1 = time.perf_counter()
            scope = self._set_context(ctx) if self._set_context else contextlib.nullcontext()
            try:
                with scope:
                    res = fn(spec)
                if ctx.cancelled():  # a job that saw the cancel may be partial
                    raise Cancelled()
                if store is not None:
                    res = store.put(fn, spec, res, time.perf_counter() - t1, f"pid {os.getpid()}")
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                if isinstance(exc, Cancelled) or ctx.cancelled():
                    raise
                failed(i, _failure(exc), isinstance(exc, UserError))
                continue
            finally:
                busy += time.perf_counter() - t1
            done(i, res)
        return PoolStats(1, time.perf_counter() - t0, busy, 0, [busy])


@contextlib.contextmanager
def _environ(extra: dict[str, str]):
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalPool:
    """``n`` spawned worker processes, dynamic (or round-robin) scheduling; see the module docstring."""

    def __init__(self, n: int, env: Sequence[dict[str, str]] | None = None, schedule: str = "dynamic"):
        if schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {schedule!r}: choose {' or '.join(SCHEDULES)}")
        self.workers = int(n)
        self.env = list(env) if env else [{} for _ in range(self.workers)]
        self.schedule = schedule

    def run(self, fn, tasks, store, done, failed, ctx: JobContext) -> PoolStats:
        import multiprocessing as mp
        from multiprocessing.connection import wait

        spawn = mp.get_context("spawn")
        n = min(self.workers, len(tasks))
        stats = PoolStats(n, per_worker_busy=[0.0] * n)
        if n == 0:
            return stats
        root = str(store.root) if store is not None else None
        code = store.code if store is not None else None
        specs = dict(tasks)
        if self.schedule == "dynamic":
            shared = deque(i for i, _ in tasks)
            queues = [shared] * n
        else:  # job i (in spec order) to worker i % n, fixed in advance
            order = sorted(specs)
            queues = [deque(order[k::n]) for k in range(n)]
        attempts = dict.fromkeys(specs, 0)
        procs: list = [None] * n
        conns: list = [None] * n
        current: list = [None] * n  # (job index, start time) per worker

        def start(k):
            parent, child = spawn.Pipe()
            with _environ(self.env[k % len(self.env)]):
                p = spawn.Process(target=_worker_main, args=(child, root, code, f"worker {k}"), daemon=True)
                p.start()
            child.close()
            procs[k], conns[k] = p, parent

        def pending() -> bool:
            return any(queues[k] for k in range(n)) or any(c is not None for c in current)

        t0 = time.perf_counter()
        try:
            for k in range(n):
                start(k)
            while pending():
                for k in range(n):
                    if current[k] is None and queues[k]:
                        i = queues[k].popleft()
                        try:
                            conns[k].send((i, fn, specs[i]))
                        except (OSError, EOFError):  # the worker died while idle: replace it, keep the job
                            queues[k].appendleft(i)
                            procs[k].join(timeout=1)
                            stats.restarts += 1
                            start(k)
                            continue
                        attempts[i] += 1
                        current[k] = (i, time.perf_counter())
                busy_conns = [conns[k] for k in range(n) if current[k] is not None]
                wait(busy_conns + [procs[k].sentinel for k in range(n) if current[k] is not None], timeout=0.2)
                for k in range(n):
                    if current[k] is None:
                        continue
                    i, t1 = current[k]
                    msg = None
                    try:
                        if conns[k].poll():
                            msg = conns[k].recv()
                    except (EOFError, OSError):
                        msg = None
                    if msg is not None:
                        current[k] = None
                        dt = time.perf_counter() - t1
                        stats.busy_s += dt
                        stats.per_worker_busy[k] += dt
                        if msg[0] == "ok":
                            done(i, msg[2])
                        else:
                            failed(i, msg[2], msg[3])
                    elif not procs[k].is_alive():
                        current[k] = None
                        dt = time.perf_counter() - t1
                        stats.busy_s += dt
                        stats.per_worker_busy[k] += dt
                        code_ = procs[k].exitcode
                        if attempts[i] < MAX_ATTEMPTS:
                            queues[k].appendleft(i)  # dynamic: the next free worker takes it
                        else:
                            failed(i, f"its worker process died {attempts[i]} times (last exit code {code_})",
                                   False)
                        stats.restarts += 1
                        start(k)
                if ctx.cancelled():
                    raise Cancelled()
        finally:
            for k in range(n):
                if conns[k] is not None:
                    with contextlib.suppress(OSError, ValueError):
                        conns[k].send(None)
            for k in range(n):
                p = procs[k]
                if p is None:
                    continue
                if current[k] is not None:  # cancelled or interrupted mid-job: do not wait for it
                    p.kill()
                p.join(timeout=10)
                if p.is_alive():
                    p.kill()
                    p.join()
                with contextlib.suppress(OSError):
                    conns[k].close()
            stats.wall_s = time.perf_counter() - t0
        return stats


def _remote_job(fn, spec, store_root, code):
    """One Slurm array task: run the job, write it to the store (shared disk); returns its key."""
    from engine.jobstore import JobStore

    _thread_limits()
    store = JobStore(store_root, code=code)
    run_one(fn, spec, store, f"slurm {os.environ.get('SLURM_JOB_ID', 'local')} on {os.uname().nodename}")
    return store.key(fn, spec)


def _remote_error(exc: BaseException) -> str:
    """The job's own exception line out of submitit's FailedJobError text (its traceback and log paths)."""
    import re

    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines()
             if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", ln.strip())]
    return lines[-1] if lines else describe(exc)


@dataclass
class Slurm:
    """A Slurm job array through submitit; the store (on shared disk) carries the results back.

    ``cluster="local"`` runs the same path through submitit's local executor (the tests)."""

    folder: str
    partition: str | None = None
    time_min: int = 60
    gpus_per_task: int = 0
    cpus_per_task: int = 1
    parallelism: int | None = None
    cluster: str | None = "slurm"
    poll_s: float = 1.0

    @property
    def workers(self) -> int:
        return self.parallelism or 0

    def run(self, fn, tasks, store, done, failed, ctx: JobContext) -> PoolStats:
        try:
            import submitit
        except ImportError:
            raise UserError("--executor slurm needs submitit (pip install submitit)") from None
        if store is None:
            raise UserError("--executor slurm needs a job store on shared disk (--store DIR)")
        t0 = time.perf_counter()
        ex = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        params = {"timeout_min": int(self.time_min), "cpus_per_task": int(self.cpus_per_task),
                  "slurm_partition": self.partition, "slurm_array_parallelism": self.parallelism,
                  "name": "lca-tui"}
        if self.gpus_per_task:
            params["gpus_per_node"] = int(self.gpus_per_task)
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        todo = list(tasks)
        attempts: dict[int, int] = {i: 0 for i, _ in todo}
        stats = PoolStats(self.parallelism or len(todo))
        while todo:
            for i, _ in todo:
                attempts[i] += 1
            try:
                jobs = ex.map_array(_remote_job, [fn] * len(todo), [s for _, s in todo],
                                    [str(store.root)] * len(todo), [store.code] * len(todo))
            except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:  # no sbatch, refused
                raise UserError(f"could not submit the Slurm job array: {describe(exc)}") from None
            running = dict(zip(jobs, todo))
            again = []
            try:
                while running:
                    for job in [j for j in running if j.done()]:
                        i, spec = running.pop(job)
                        try:
                            job.result()
                        except submitit.core.utils.UncompletedJobError as exc:  # killed, timed out, node lost
                            if attempts[i] < MAX_ATTEMPTS:
                                again.append((i, spec))
                            else:
                                failed(i, f"its Slurm task never completed: {exc}", False)
                            continue
                        except Exception as exc:  # noqa: BLE001 -- the job raised: reported with its spec
                            failed(i, _remote_error(exc), False)
                            continue
                        hit, res = store.get(fn, spec)
                        if hit:
                            done(i, res)
                        else:
                            failed(i, "its Slurm task ended without a store entry (is --store on shared disk?)",
                                   False)
                    if ctx.cancelled():
                        raise Cancelled()
                    if running:
                        time.sleep(self.poll_s)
            except BaseException:
                for job in running:
                    with contextlib.suppress(Exception):  # best effort: the jobs may have ended already
                        job.cancel(check=False)
                raise
            stats.restarts += len(again)
            todo = again
        stats.wall_s = time.perf_counter() - t0
        return stats
