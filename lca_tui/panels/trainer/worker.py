"""The training thread's body: runs the loop and posts messages; it touches no UI state."""

from __future__ import annotations

import time
from pathlib import Path

from lca_tui.messages import SNAPSHOT_HZ, RunFinished, RunStarted, TrainSnapshot


def train(post, run_id: str, path: Path, resume: bool, cfg, share=1) -> None:
    """Run (or resume) one training run, posting ``RunStarted``, ``TrainSnapshot``s (at most
    ``SNAPSHOT_HZ`` a second) and ``RunFinished`` through ``post``. Its torch threads are its
    ``share`` of the free cores (``engine.threads``), re-decided as the load changes, so training
    and the model thread do not oversubscribe the cores."""
    from engine.errors import describe
    from engine.lca.runner import TrainingRun
    from engine.threads import Governor

    status, error = "error", None
    try:
        run = TrainingRun.resume(path) if resume else TrainingRun.start(cfg, path)
        tr = run.trainer
        tr.governor = Governor(share=share)
        post(RunStarted(run_id, run, tr.bayes_accuracy, tr.cfg.train.batch_size, tr.step, resume))
        events, last = [], time.monotonic()
        for ev in run.events():
            events.append(ev)
            now = time.monotonic()
            if now - last >= 1.0 / SNAPSHOT_HZ or ev["event"] != "train":
                post(TrainSnapshot(run_id, events, tr.status))
                events, last = [], now
        if events:
            post(TrainSnapshot(run_id, events, tr.status))
        status = tr.status
    except Exception as exc:  # noqa: BLE001 - shown inline, the app keeps running
        error = describe(exc)
    finally:
        post(RunFinished(run_id, status, error))
