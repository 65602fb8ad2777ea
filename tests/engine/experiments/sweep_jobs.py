"""Job functions for the sweep fault tests (importable by spawned workers and submitit tasks).

Each job appends ``start <i> <pid>`` and ``end <i> <pid>`` lines to ``spec["log"]`` (one ``write`` on an
``O_APPEND`` file, so lines from several processes never interleave) and returns plain data,
including a NaN and a float that only survives an exact round trip."""

import os
import signal
import time


def _log(path, line):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def logged_job(spec):
    i = spec["i"]
    _log(spec["log"], f"start {i} {os.getpid()}")
    marker = spec.get("kill_marker")
    if spec.get("always_kill") or (marker and not os.path.exists(marker)):  # the first attempt dies mid-job, as if OOM-killed
        if marker:
            open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(spec.get("sleep", 0.0))
    if spec.get("raise"):
        raise ValueError(f"job {i} was told to fail")
    _log(spec["log"], f"end {i} {os.getpid()}")
    return {"i": i, "sq": i * i, "third": i / 3, "nan": float("nan"), "env": os.environ.get("CUDA_VISIBLE_DEVICES")}


def counts(log):
    """(starts, ends): job index -> how many times it started / finished, from the log."""
    starts, ends = {}, {}
    if not os.path.exists(log):
        return starts, ends
    for line in open(log).read().splitlines():
        kind, i, _ = line.split()
        d = starts if kind == "start" else ends
        d[int(i)] = d.get(int(i), 0) + 1
    return starts, ends


if __name__ == "__main__":  # the sweep the SIGKILL test kills: python sweep_jobs.py STORE LOG N JOBS
    import sys

    from sweep_jobs import logged_job as job  # by its module name, not __main__ (the store's key names it)

    from engine.experiments.jobs import run_jobs, sweep
    from engine.jobstore import JobStore

    store, log, n, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with sweep(store=JobStore(store)) as sw:
        out = run_jobs(job, [{"i": i, "log": log, "sleep": 0.3} for i in range(n)], jobs=jobs)
    print(f"resumed {sw.resumed} ran {sw.ran} sum {sum(r['sq'] for r in out)}", flush=True)
