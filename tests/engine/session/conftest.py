"""Helpers for session tests: hand-written run directories (no training) and a dead pid."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest


def write_fake_run(path, steps=20, done_steps=None, status="completed", pid=None, eval_every=5,
                   with_checkpoint=False, state_updated=None):
    """A run directory written by hand: config, metrics (train every step, eval every
    ``eval_every``), state; optionally a small valid checkpoint."""
    from engine.atomic import atomic_write_json
    from engine.lca.config import RunConfig
    from engine.lca.rundir import RunDir

    cfg = RunConfig.from_flat(dict(m=3, L=8, d=8, d_a=8, steps=steps, eval_every=eval_every, device="cpu"))
    rd = RunDir.create(path, cfg)
    done = steps if done_steps is None else done_steps
    for s in range(1, done + 1):
        rd.append({"event": "train", "step": s, "loss": 2.0 - s * 0.01, "accuracy": 0.1 + s * 0.01,
                   "samples_per_s": 1000.0})
        if s % eval_every == 0:
            rd.append({"event": "eval", "step": s, "loss": 2.0 - s * 0.02, "accuracy": 0.2 + s * 0.01,
                       "bayes_accuracy": 0.75})
    rd.close()
    if with_checkpoint:
        import torch
        from safetensors.torch import save

        blob = save({"model.W_E": torch.zeros(8, 8)}, metadata={"step": str(done)})
        (rd.path / "checkpoint.safetensors").write_bytes(blob)
    state = {"status": status, "step": done, "best_accuracy": 0.2 + done * 0.01, "bayes_accuracy": 0.75,
             "checkpoint_step": done if with_checkpoint else None,
             "updated": time.time() if state_updated is None else state_updated}
    if pid is not None:
        state["pid"] = pid
    atomic_write_json(rd.path / "state.json", state)
    return rd.path


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def sessions_root(tmp_path, monkeypatch):
    monkeypatch.setenv("LCA_TUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "sessions"


@pytest.fixture
def fake_run():
    """``fake_run(path, **kw)`` writes a run directory by hand (see ``write_fake_run``)."""
    return write_fake_run
