"""A training run wired to its directory: metrics to ``metrics.jsonl``, periodic checkpoints,
resume. The CLI (``lca-tui train``) and the app's trainer panel both drive this class.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from engine.errors import UserError
from engine.lca.config import RunConfig
from engine.lca.rundir import LIVE_STATUSES, RunDir
from engine.lca.trainer import Trainer, drain

LOGGED_EVENTS = ("train", "eval", "diverged", "done")


class TrainingRun:
    """Owns one Trainer and one RunDir. ``events()`` yields the trainer's events while logging
    them and checkpointing every ``checkpoint_every_s`` seconds and when the run ends."""

    def __init__(self, trainer: Trainer, run_dir: RunDir, checkpoint_every_s: float = 30.0):
        self.trainer, self.run_dir = trainer, run_dir
        self.checkpoint_every_s = checkpoint_every_s

    @classmethod
    def start(cls, cfg: RunConfig, out: str | os.PathLike, device: str | None = None,
              checkpoint_every_s: float = 30.0) -> TrainingRun:
        trainer = Trainer(cfg, device=device)  # validates the device before anything is written
        run_dir = RunDir.create(out, cfg)
        return cls(trainer, run_dir, checkpoint_every_s)

    @classmethod
    def resume(cls, path: str | os.PathLike, device: str | None = None, steps: int | None = None,
               checkpoint_every_s: float = 30.0) -> TrainingRun:
        """Reopen a run directory at its last checkpoint; ``steps`` may extend the run."""
        run_dir = RunDir(path)
        if not (Path(path) / "config.json").exists():
            raise UserError(f"{path} is not a run directory (no config.json)")
        cfg = run_dir.config()
        if steps is not None:
            cfg = RunConfig.from_flat({**cfg.flat(), "steps": steps})
        trainer = Trainer(cfg, device=device)
        if run_dir.has_checkpoint():
            tensors, step = run_dir.load_checkpoint()
            trainer.load_state_tensors(tensors, step)
            state = run_dir.state()
            trainer.best_accuracy = state.get("best_accuracy")
        run_dir.crop_metrics(trainer.step)
        return cls(trainer, run_dir, checkpoint_every_s)

    @property
    def path(self) -> Path:
        return self.run_dir.path

    def checkpoint(self, status: str | None = None):
        self.run_dir.save_checkpoint(self.trainer, status or self.trainer.status)

    def events(self) -> Iterator[dict]:
        rd, tr = self.run_dir, self.trainer
        last_ckpt = time.monotonic()
        rd.write_state({"status": "running", "step": tr.step, "pid": os.getpid()})
        try:
            for ev in tr.events():
                if ev["event"] in LOGGED_EVENTS:
                    rd.append(ev, force_flush=ev["event"] != "train")
                if time.monotonic() - last_ckpt >= self.checkpoint_every_s and ev["event"] == "train":
                    self.checkpoint("running")
                    last_ckpt = time.monotonic()
                yield ev
        finally:
            if tr.status in LIVE_STATUSES:
                tr.status = "stopped"
            rd.close()
            self.checkpoint(tr.status)

    def run(self, callback=None) -> dict:
        return {**drain(self.events(), callback), "run_dir": str(self.path)}
