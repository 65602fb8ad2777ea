"""Running an experiment's jobs across GPUs and nodes under ``torchrun``.

    torchrun --nproc_per_node 8 -m lca_tui experiment value-matrix --json > result.json
    torchrun --nnodes 2 --node_rank R --master_addr HOST --master_port P --nproc_per_node 8 \\
        -m lca_tui experiment embedding-dim --out result.json

``auto_init()`` looks at the ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` variables torchrun sets and,
when WORLD_SIZE > 1, initialises ``torch.distributed`` (NCCL with ``cuda:LOCAL_RANK`` when CUDA is
available, else gloo on the CPU). ``engine.experiments.jobs.run_jobs`` then gives job i to rank
i % WORLD_SIZE and gathers every result on every rank (``all_gather_object``); rank 0 prints and
writes, the other ranks stay quiet. Every job takes its seed from its own spec, never from the
rank, and runs single-threaded on the CPU, so the gathered result equals a single-process run.

Security note: ``all_gather_object`` pickles the objects it sends. That is acceptable here only
because the objects are our own in-process job results (plain numbers, strings, lists and dicts)
exchanged inside the process group torchrun set up for this launch; never point a process group at
peers you do not trust. Results written to disk are JSON, never pickle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: str | None  # "cuda:LOCAL_RANK" under NCCL; None on CPU (jobs keep their own device)


_CTX: DistContext | None = None
_OWNED = False  # we initialised the process group (and so destroy it in shutdown())


def env_world() -> tuple[int, int, int]:
    """(WORLD_SIZE, RANK, LOCAL_RANK) from the environment (1, 0, 0 outside torchrun)."""
    def num(key, default):
        try:
            return int(os.environ.get(key, default))
        except ValueError:
            return default

    return num("WORLD_SIZE", 1), num("RANK", 0), num("LOCAL_RANK", 0)


def auto_init() -> DistContext | None:
    """The distributed context: None for a single process; initialises torch.distributed on the
    first call under torchrun (WORLD_SIZE > 1); reuses a process group someone else initialised."""
    global _CTX, _OWNED
    import torch
    import torch.distributed as dist

    if _CTX is not None and dist.is_available() and dist.is_initialized():
        return _CTX
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        if world <= 1:
            return None
        backend = str(dist.get_backend())
        local = env_world()[2]
        dev = f"cuda:{torch.cuda.current_device()}" if backend == "nccl" else None
        _CTX = DistContext(rank, world, local, backend, dev)
        return _CTX
    world, rank, local = env_world()
    if world <= 1:
        return None
    if not dist.is_available():
        from engine.errors import UserError

        raise UserError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if torch.cuda.is_available():
        backend = "nccl"
        torch.cuda.set_device(local)
        dev = f"cuda:{local}"
    else:
        backend, dev = "gloo", None
    dist.init_process_group(backend=backend, init_method="env://", world_size=world, rank=rank)
    _OWNED = True
    _CTX = DistContext(rank, world, local, backend, dev)
    return _CTX


def shard(n_jobs: int, rank: int, world_size: int) -> list[int]:
    """The job indices rank ``rank`` runs: i % world_size == rank (round robin, so the ranks get
    similar mixes of cheap and expensive configs)."""
    return [i for i in range(n_jobs) if i % world_size == rank]


def is_main() -> bool:
    """True on rank 0 (and outside torchrun): the process that prints and writes."""
    return env_world()[1] == 0 if _CTX is None else _CTX.rank == 0


def gather_in_order(ctx: DistContext, pairs: list[tuple[int, object]], total: int) -> list:
    """All ranks' (job index, result) pairs -> the full result list in job order, on every rank.
    Uses ``all_gather_object`` (pickle; see the module docstring)."""
    import torch.distributed as dist

    parts: list = [None] * ctx.world_size
    dist.all_gather_object(parts, pairs)
    out: list = [None] * total
    seen = 0
    for part in parts:
        for i, res in part or []:
            out[i] = res
            seen += 1
    if seen != total:
        raise RuntimeError(f"distributed gather returned {seen} of {total} job results")
    return out


def barrier() -> None:
    import torch.distributed as dist

    if _CTX is not None and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Destroy the process group if ``auto_init`` created it."""
    global _CTX, _OWNED
    import torch.distributed as dist

    if _OWNED and dist.is_initialized():
        # Every rank waits here until rank 0 has written its result: a gloo rank that tears down
        # while its peer is still busy can abort the peer ("terminate called without an active
        # exception", seen in CI).
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
    _CTX, _OWNED = None, False
