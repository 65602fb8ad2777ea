"""The job runner: ``run_jobs(fn, specs, jobs, ctx)`` runs independent jobs (a config x
seed, a model x relation) on an executor (``engine.experiments.executors``: this process, ``jobs``
spawned worker processes, one process per GPU, a Slurm array), and/or sharded over the ranks of a
``torchrun`` launch (``engine.experiments.distributed``). Inside ``with sweep(store=JobStore(...))``
every finished job is written to the job store (``engine.jobstore``) and read back instead of rerun.
Results come back in spec order and do not depend on how the jobs were split: every job carries its
own seed and runs single-threaded on the CPU."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import UserError
from engine.job_context import NO_JOB, JobContext

_context_var: contextvars.ContextVar = contextvars.ContextVar("lca_experiment_job", default=NO_JOB)


def current_context() -> JobContext:
    """The context of the job running in this process: the sweep's cancel, no progress of its own
    (``run_jobs`` counts jobs); ``NO_JOB`` in worker processes."""
    return _context_var.get()


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


@contextlib.contextmanager
def _job_context(ctx: JobContext) -> Iterator[None]:
    token = _context_var.set(ctx.quiet())
    try:
        with single_threaded():
            yield
    finally:
        _context_var.reset(token)


class JobsFailed(UserError):
    """Some jobs raised (or their worker kept dying); the others finished and are in the store.
    ``failures`` holds (spec, message) per failed job."""

    def __init__(self, fn, failures: list[tuple[dict, str]], total: int):
        from engine.jobstore import canonical, fn_name

        self.failures = failures
        lines = [f"{len(failures)} of {total} jobs of {fn_name(fn)} failed (the others finished; "
                 "run the command again to retry only these):"]
        lines += [f"  spec {canonical(spec)}: {msg}" for spec, msg in failures[:5]]
        if len(failures) > 5:
            lines.append(f"  ... and {len(failures) - 5} more")
        super().__init__("\n".join(lines))


@dataclass
class Sweep:
    """How the ``run_jobs`` calls inside ``with sweep(...)`` run: the job store, the executor, and
    what they did (``resumed``: jobs read from the store; ``ran``: jobs run; ``stats``: one
    ``PoolStats`` per ``run_jobs`` call)."""

    store: Any = None  # engine.jobstore.JobStore or None
    executor: str = "local"  # local | gpus | slurm
    gpus: tuple[str, ...] = ()
    slurm: dict = field(default_factory=dict)  # engine.experiments.executors.Slurm fields
    schedule: str = "dynamic"
    resumed: int = 0
    ran: int = 0
    total: int = 0
    stats: list = field(default_factory=list)


_sweep_var: contextvars.ContextVar = contextvars.ContextVar("lca_sweep", default=None)


@contextlib.contextmanager
def sweep(**settings) -> Iterator[Sweep]:
    """Run the ``run_jobs`` calls of this block with these ``Sweep`` settings (a store, an executor)."""
    sw = Sweep(**settings)
    token = _sweep_var.set(sw)
    try:
        yield sw
    finally:
        _sweep_var.reset(token)


def current_sweep() -> Sweep | None:
    return _sweep_var.get()


#: Spec fields whose product estimates a job's cost (longest jobs start first).
COST_KEYS = ("steps", "m", "d", "n", "L", "T", "n_records", "max_prepends", "limit", "epochs")


def estimate_cost(spec: dict) -> float:
    """A rough cost of a job from its size fields (``COST_KEYS``; a list counts its length): only the
    order matters, to start the longest jobs first."""
    cost = 1.0
    for k in COST_KEYS:
        v = spec.get(k)
        if isinstance(v, (list, tuple)):
            v = len(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            cost *= float(v) + 1.0
    records = spec.get("records")
    if isinstance(records, (list, tuple)):
        cost *= len(records) + 1.0
    return cost


def make_executor(sw: Sweep, jobs: int):
    """The executor a sweep's settings ask for (``--jobs``, ``--gpus``, ``--executor slurm``)."""
    from engine.experiments import executors as X

    if sw.executor == "slurm":
        return X.Slurm(**sw.slurm)
    if sw.executor == "gpus" or sw.gpus:
        if not sw.gpus:
            raise UserError("--gpus found no GPU (CUDA_VISIBLE_DEVICES / nvidia-smi list none)")
        return X.LocalPool(len(sw.gpus), env=[{"CUDA_VISIBLE_DEVICES": str(g)} for g in sw.gpus],
                           schedule=sw.schedule)
    if jobs <= 1:
        return X.InProcess(set_context=_job_context)
    return X.LocalPool(jobs, schedule=sw.schedule)


def _run_local(fn, specs: list[dict], jobs: int, ctx: JobContext, cost=None) -> list:
    """Read finished jobs from the sweep's store, run the rest on its executor (longest first)."""
    sw = current_sweep() or Sweep()
    store = sw.store
    total = len(specs)
    out: list = [None] * total
    if total == 0:
        return out
    ctx.check()
    todo = []
    for i, spec in enumerate(specs):
        hit, res = store.get(fn, spec) if store is not None else (False, None)
        if hit:
            out[i] = res
        else:
            todo.append(i)
    resumed = total - len(todo)
    sw.resumed += resumed
    sw.total += total
    state = {"done": resumed}
    if resumed:
        ctx.progress(resumed, total)
    estimate = cost or estimate_cost
    order = sorted(todo, key=lambda i: -estimate(specs[i]))  # stable: equal costs keep spec order
    failures: list[tuple[int, str, bool]] = []

    def done(i, res):
        out[i] = res
        sw.ran += 1
        state["done"] += 1
        ctx.progress(state["done"], total)

    def failed(i, msg, user):
        failures.append((i, msg, user))

    executor = make_executor(sw, jobs)
    sw.stats.append(executor.run(fn, [(i, specs[i]) for i in order], store, done, failed, ctx))
    ctx.check()
    if failures:
        msgs = {m for _, m, _ in failures}
        if all(u for _, _, u in failures) and len(msgs) == 1:  # one user mistake, the same in every job
            raise UserError(msgs.pop())
        raise JobsFailed(fn, [(specs[i], m) for i, m, _ in sorted(failures)], total)
    return out


def run_jobs(fn: Callable[[dict], Any], specs: Sequence[dict], jobs: int = 1,
             ctx: JobContext | None = None, cost: Callable[[dict], float] | None = None) -> list:
    """Run ``fn(spec)`` for every spec; results in spec order.

    ``fn`` must be a module-level function (worker processes import it) and its result plain
    Python data (numbers, strings, lists, dicts). Inside ``with sweep(store=...)`` finished jobs are
    read from the job store (``engine.jobstore``) and every job that finishes is written there at
    once; the executor (``engine.experiments.executors``) comes from the sweep too: ``jobs > 1``
    spawned worker processes (one torch thread each), one per GPU, or a Slurm array. The jobs not in
    the store start longest first (``cost(spec)``, default ``estimate_cost``), each on whichever worker
    is free. A job that raises is reported with its spec (``JobsFailed``) after the others finish.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) job i runs on rank i % world (through the same store, so a
    relaunch resumes) and every rank receives all the results (rank 0 reports); a spec whose
    ``device`` is ``"auto"`` gets the rank's device (``cuda:LOCAL_RANK``) there.
    ``ctx.progress(done, total)`` counts this rank's jobs, those from the store first; a cancel stops
    between jobs (and between training steps for jobs run in this process: ``current_context()``)
    with ``Cancelled``.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UserError(f"--jobs must be a positive integer, not {jobs!r}")
    from engine.experiments import distributed

    specs = [dict(s) for s in specs]
    ctx = ctx or NO_JOB
    dist = distributed.auto_init()
    if dist is None:
        return _run_local(fn, specs, jobs, ctx, cost)
    mine = distributed.shard(len(specs), dist.rank, dist.world_size)
    local_specs = []
    for i in mine:
        s = specs[i]
        if s.get("device", "auto") in (None, "auto") and dist.device is not None:
            s = {**s, "device": dist.device}
        local_specs.append(s)
    local = _run_local(fn, local_specs, jobs, ctx, cost)
    return distributed.gather_in_order(dist, list(zip(mine, local)), len(specs))


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0
