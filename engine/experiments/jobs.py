"""The job runner: ``run_jobs(fn, specs, jobs, progress, cancel)`` runs independent jobs (a config x
seed, a model x relation) in this process, in ``jobs`` spawned worker processes, and/or sharded over
the ranks of a ``torchrun`` launch (``engine.experiments.distributed``). Results come back in spec
order and do not depend on how the jobs were split: every job carries its own seed and runs
single-threaded on the CPU."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from engine.errors import UserError

Progress = Callable[[int, int], None]


class Cancelled(Exception):
    """Raised by ``run_jobs`` (and so by every ``run_<name>``) when ``cancel.is_set()``."""


_cancel_var: contextvars.ContextVar = contextvars.ContextVar("lca_experiment_cancel", default=None)


def current_cancel():
    """The cancel event of the job running in this process (None in worker processes)."""
    return _cancel_var.get()


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run with one intra-op torch thread (restored afterwards), so CPU numbers do not depend on
    the machine's thread count or on how jobs are spread over processes."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _worker_init():
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


def _call(fn, spec):
    with single_threaded():
        return fn(spec)


def _run_local(fn, specs: list[dict], jobs: int, progress, cancel) -> list:
    total = len(specs)
    out: list = [None] * total
    if total == 0:
        return out
    if jobs <= 1 or total == 1:
        for i, spec in enumerate(specs):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            token = _cancel_var.set(cancel)
            try:
                out[i] = _call(fn, spec)
            finally:
                _cancel_var.reset(token)
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if progress:
                progress(i + 1, total)
        return out

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    done = 0
    with ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=ctx, initializer=_worker_init) as pool:
        futures = {pool.submit(_call, fn, spec): i for i, spec in enumerate(specs)}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for f in finished:
                    out[futures[f]] = f.result()
                    done += 1
                    if progress:
                        progress(done, total)
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
        except BaseException:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out


def run_jobs(fn: Callable[[dict], Any], specs: Sequence[dict], jobs: int = 1,
             progress: Progress | None = None, cancel=None) -> list:
    """Run ``fn(spec)`` for every spec; results in spec order.

    ``fn`` must be a module-level function (worker processes import it) and its result plain
    Python data (numbers, strings, lists, dicts). ``jobs > 1`` uses a ``ProcessPoolExecutor``
    with the ``spawn`` context, one torch thread per worker. Under ``torchrun`` (``WORLD_SIZE`` > 1)
    job i runs on rank i % world and every rank receives all the results (rank 0 reports).
    A spec whose ``device`` is ``"auto"`` gets the rank's device (``cuda:LOCAL_RANK``) there.
    ``progress(done, total)`` counts this rank's jobs; ``cancel.is_set()`` stops between jobs
    (and between training steps for jobs run in this process) with ``Cancelled``.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UserError(f"--jobs must be a positive integer, not {jobs!r}")
    from engine.experiments import distributed

    specs = [dict(s) for s in specs]
    ctx = distributed.auto_init()
    if ctx is None:
        return _run_local(fn, specs, jobs, progress, cancel)
    mine = distributed.shard(len(specs), ctx.rank, ctx.world_size)
    local_specs = []
    for i in mine:
        s = specs[i]
        if s.get("device", "auto") in (None, "auto") and ctx.device is not None:
            s = {**s, "device": ctx.device}
        local_specs.append(s)
    local = _run_local(fn, local_specs, jobs, progress, cancel)
    return distributed.gather_in_order(ctx, list(zip(mine, local)), len(specs))


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0
