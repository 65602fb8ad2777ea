"""The flags every sweep command shares (``experiment``, ``hijack``): the job store and the executor.

    --store DIR          finished jobs are kept here and read back on a rerun (default: the user cache
                         folder, or LCA_TUI_STORE; ``--store none`` keeps nothing)
    --jobs N             N worker processes on this machine
    --gpus all|0,1       one worker process per GPU, pinned with CUDA_VISIBLE_DEVICES
    --executor slurm     a Slurm job array through submitit (--slurm-partition, --slurm-time,
                         --slurm-gpus, --slurm-parallelism); the store must be on shared disk
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def add_sweep_flags(p) -> None:
    """The store and executor flags (``--jobs`` stays with each command)."""
    g = p.add_argument_group("sweep: job store and executor")
    g.add_argument("--store", metavar="DIR", default=None,
                   help="job store: finished jobs are written here and a rerun takes them instead of running "
                        "them again (default: LCA_TUI_STORE or the user cache folder; `none`: no store)")
    g.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local processes (default) or a Slurm job array through submitit")
    g.add_argument("--gpus", metavar="all|0,1", default=None,
                   help="one worker process per GPU, each pinned with CUDA_VISIBLE_DEVICES")
    g.add_argument("--slurm-partition", metavar="P", default=None, help="Slurm partition")
    g.add_argument("--slurm-time", type=int, metavar="MIN", default=60, help="time limit per task, minutes")
    g.add_argument("--slurm-gpus", type=int, metavar="G", default=0, help="GPUs per task")
    g.add_argument("--slurm-cpus", type=int, metavar="C", default=1, help="CPU cores per task")
    g.add_argument("--slurm-parallelism", type=int, metavar="K", default=None,
                   help="array tasks running at once (default: Slurm's)")


def parse_gpus(text: str | None) -> tuple[str, ...]:
    """``--gpus``: "all" -> the visible GPUs (CUDA_VISIBLE_DEVICES, else every device torch sees)."""
    from engine.errors import UserError

    if text is None:
        return ()
    if text.strip().lower() == "all":
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            ids = tuple(v.strip() for v in visible.split(",") if v.strip())
            if not ids:
                raise UserError("--gpus all: CUDA_VISIBLE_DEVICES lists no GPU")
            return ids
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UserError("--gpus all: no CUDA GPU is visible")
        return tuple(str(i) for i in range(n))
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts) or len(set(parts)) != len(parts):
        raise UserError(f"--gpus takes all or distinct GPU numbers like 0,1, not {text!r}")
    return tuple(parts)


def _slurm_settings(args, store) -> dict:
    from engine.errors import UserError

    if store is None:
        raise UserError("--executor slurm needs a job store on shared disk: --store DIR")
    for flag in ("slurm_time", "slurm_cpus"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1")
    return {"folder": str(store.root / "slurm-logs"), "partition": args.slurm_partition,
            "time_min": args.slurm_time, "gpus_per_task": max(0, args.slurm_gpus), "cpus_per_task": args.slurm_cpus,
            "parallelism": args.slurm_parallelism,
            "cluster": os.environ.get("LCA_TUI_SUBMITIT_CLUSTER", "slurm")}  # "local": submitit's local executor


def eta_text(done: int, total: int, done_at_start: int, elapsed: float) -> str:
    """The time left at the rate of the work done in this run (work read from the store excluded)."""
    ran = done - done_at_start
    if ran <= 0 or elapsed <= 0:
        return "?"
    left = (total - done) * elapsed / ran
    m, s = divmod(int(round(left)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _warn(line: str) -> None:
    print(f"lca-tui: {line}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def open_sweep(args, quiet: bool = False) -> Iterator:
    """The ``Sweep`` of these flags for the ``run_jobs`` calls of the block; on the way out, one line
    on stderr: how many jobs came from the store."""
    from engine.errors import UserError
    from engine.experiments.jobs import sweep
    from engine.jobstore import open_store

    store = open_store(args.store, warn=_warn)
    gpus = parse_gpus(args.gpus)
    if args.executor == "slurm" and gpus:
        raise UserError("--gpus is for local workers; with --executor slurm use --slurm-gpus")
    settings = {"store": store, "gpus": gpus, "executor": "gpus" if gpus else args.executor}
    if args.executor == "slurm":
        settings["slurm"] = _slurm_settings(args, store)
    with sweep(**settings) as sw:
        try:
            yield sw
        finally:
            if not quiet and store is not None and sw.total:
                _warn(f"took {sw.resumed} of {sw.total} jobs from the store {store.root} "
                      f"(ran {sw.ran})")
