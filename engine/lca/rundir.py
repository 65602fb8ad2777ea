"""One training run on disk: ``config.json``, ``metrics.jsonl``, ``checkpoint.safetensors``,
``state.json``.

Metrics are appended as whole JSON lines and flushed at least once a second, so a kill -9 loses
at most about a second of them. The checkpoint (weights, AdamW moments, the data-stream generator)
and every JSON file are written atomically. Resuming crops metrics past the checkpoint's step so
that the curve stays continuous.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from engine.atomic import atomic_write_bytes, atomic_write_json, read_json, read_jsonl
from engine.errors import UserError
from engine.lca.config import RunConfig

#: The statuses of a run whose process is (or should be) alive and training.
LIVE_STATUSES = ("running", "paused")

CONFIG, METRICS, CHECKPOINT, STATE = "config.json", "metrics.jsonl", "checkpoint.safetensors", "state.json"


def new_run_id(cfg: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-m{cfg.task.m}-L{cfg.task.L}-{secrets.token_hex(2)}"


class RunDir:
    def __init__(self, path: str | os.PathLike, flush_interval: float = 1.0):
        self.path = Path(path)
        self.flush_interval = flush_interval
        self._fh = None
        self._last_flush = 0.0

    # ---------------------------------------------------------------- create / open
    @classmethod
    def create(cls, path: str | os.PathLike, cfg: RunConfig) -> RunDir:
        rd = cls(path)
        if (rd.path / CONFIG).exists():
            raise UserError(f"{rd.path} already holds a run; choose another --out or resume it")
        atomic_write_json(rd.path / CONFIG, cfg.to_dict())
        rd.write_state({"status": "created", "step": 0})
        return rd

    def config(self) -> RunConfig:
        return RunConfig.from_dict(read_json(self.path / CONFIG))

    def state(self) -> dict:
        p = self.path / STATE
        return read_json(p) if p.exists() else {"status": "created", "step": 0}

    def write_state(self, state: dict):
        atomic_write_json(self.path / STATE, {**state, "updated": time.time()})

    # ---------------------------------------------------------------- metrics
    def append(self, event: dict, force_flush: bool = False):
        if self._fh is None:
            self._fh = open(self.path / METRICS, "a", encoding="utf-8")
        self._fh.write(json.dumps(event, allow_nan=True) + "\n")
        now = time.monotonic()
        if force_flush or now - self._last_flush >= self.flush_interval:
            self.flush()
            self._last_flush = now

    def flush(self):
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self):
        if self._fh is not None:
            self.flush()
            self._fh.close()
            self._fh = None

    def metrics(self) -> list[dict]:
        return read_jsonl(self.path / METRICS)[0]

    def crop_metrics(self, step: int):
        """Drop metric lines past ``step`` (written after the checkpoint a resume starts from)."""
        self.close()
        recs = [r for r in self.metrics() if r.get("step", 0) <= step]
        text = "".join(json.dumps(r) + "\n" for r in recs)
        atomic_write_bytes(self.path / METRICS, text.encode("utf-8"))

    # ---------------------------------------------------------------- checkpoint
    def save_checkpoint(self, trainer, status: str):
        from safetensors.torch import save

        self.flush()  # metrics on disk first, so they never lag behind the checkpoint
        blob = save(trainer.state_tensors(), metadata={"step": str(trainer.step), "status": status})
        atomic_write_bytes(self.path / CHECKPOINT, blob)
        self.write_state({"status": status, "step": trainer.step,
                          "best_accuracy": trainer.best_accuracy,
                          "bayes_accuracy": trainer.bayes_accuracy,
                          "checkpoint_step": trainer.step,
                          **({"pid": os.getpid()} if status in LIVE_STATUSES else {})})

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT).exists()

    def load_checkpoint(self) -> tuple[dict, int]:
        from safetensors import safe_open
        from safetensors.torch import load

        p = self.path / CHECKPOINT
        try:
            data = p.read_bytes()
            tensors = load(data)
            with safe_open(str(p), framework="pt") as fh:
                meta = fh.metadata() or {}
            return tensors, int(meta.get("step", 0))
        except FileNotFoundError:
            raise UserError(f"{p} does not exist: nothing to resume") from None
        except Exception as exc:  # noqa: BLE001 -- safetensors raises its own error types for damaged files
            raise UserError(f"checkpoint {p} is damaged: {exc}") from None
