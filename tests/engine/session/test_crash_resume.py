"""A training process killed with SIGKILL: the session shows the run as interrupted, and resuming
it from its last checkpoint gives continuous metrics and the configured step count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.session.store import Session

ROOT = Path(__file__).resolve().parents[3]
STEPS = 1500

TRAIN = f"""
import sys, time
from engine.lca.config import RunConfig
from engine.lca.runner import TrainingRun
cfg = RunConfig.from_flat(dict(m=3, L=8, d=8, d_a=8, steps={STEPS}, eval_every=100, batch_size=32,
                               eval_size=256, device="cpu"))
run = TrainingRun.start(cfg, sys.argv[1], device="cpu", checkpoint_every_s=0.2)
for ev in run.events():
    if ev["event"] == "train":
        if ev["step"] == 1:
            print("started", flush=True)
        time.sleep(0.003)  # keep the run going for several seconds whatever the machine
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_run_is_interrupted_and_resumes_continuously(tmp_path):
    from engine.lca.runner import TrainingRun

    session = Session.create(tmp_path / "root", "crash")
    from engine.lca.config import RunConfig

    run_dir = session.new_run_dir(RunConfig.from_flat(dict(m=3, L=8)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(run_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "started", proc.stderr.read()
        time.sleep(2.0)
        assert proc.poll() is None, "the run finished before it could be killed; raise STEPS"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # reopened: interrupted, resumable, metrics ahead of (or at) the last checkpoint
    reopened = Session.open(session.path)
    (info,) = reopened.runs()
    assert info.status == "interrupted"
    assert info.has_checkpoint and info.resumable
    ckpt = info.checkpoint_step
    assert 0 < ckpt < STEPS
    before = [m["step"] for m in reopened.metrics(info.id) if m["event"] == "train"]
    assert before == list(range(1, len(before) + 1))  # whole lines only (a torn tail is skipped)
    # a kill -9 loses only unflushed metric lines; they must never end before the checkpoint,
    # or the resumed curve (cropped at the checkpoint) has a gap
    assert before[-1] >= ckpt, (f"metrics end at step {before[-1]} but the checkpoint is at step {ckpt}: "
                                "RunDir.save_checkpoint must flush metrics.jsonl before writing the checkpoint")

    # resumed in this process to the end
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        final = TrainingRun.resume(info.path, device="cpu").run()
    finally:
        torch.set_num_threads(threads)
    assert final["status"] == "completed" and final["step"] == STEPS

    recs = Session.open(session.path).metrics(info.id)
    train = [m["step"] for m in recs if m["event"] == "train"]
    assert train == list(range(1, STEPS + 1))  # no gaps, no duplicates after the crop
    evals = [m["step"] for m in recs if m["event"] == "eval"]
    assert evals == sorted(set(evals)) and evals[-1] == STEPS
    assert set(range(100, STEPS + 1, 100)) <= set(evals)
    assert [m["event"] for m in recs].count("done") == 1
    done = Session.open(session.path).runs()[0]
    assert (done.status, done.step, done.steps) == ("completed", STEPS, STEPS)
