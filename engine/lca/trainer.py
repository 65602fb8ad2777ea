"""Training the eq. 4.1 model on the LCA task with AdamW and cross-entropy at the last position.

``Trainer.events()`` yields metric events between steps (``train`` every step, ``eval`` every
``eval_every`` steps and at the end, then ``done``); ``run(callback)`` consumes them (``drain`` is
the one loop every driver uses). The stop and pause events and ``request_snapshot`` are served
between steps. A NaN/inf loss ends the run with status ``diverged``. The learning rate follows
``lr_at`` (linear warm-up, then constant, cosine decay, or ``wsd``: warm-up, stable, then a linear
decay), a function of the step only, so resume needs no scheduler state. ``begin_decay()`` lets a
driver start a ``wsd`` run's decay early (the experiments do so once the validation loss stops
improving at the peak rate: training to convergence); that moved start is not kept in checkpoints.

Seeds: the initial weights use ``seed``; the training stream, the held-out set and the fixed
training set (``train_size > 0``) use their own generators derived from ``seed``, so the same seed
gives the same numbers and a resumed run (weights + optimiser + stream generator restored) equals
an uninterrupted one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.device import resolve_device
from engine.errors import ConfigError
from engine.lca.config import RunConfig
from engine.lca.model import OneLayerTransformer
from engine.lca.task import LCATask

#: Run statuses. ``interrupted`` is given by the session store to a run whose process died.
STATUSES = ("created", "running", "paused", "stopped", "completed", "diverged", "interrupted")
EVAL_CHUNK = 4096


@dataclass(frozen=True)
class EvalResult:
    loss: float
    accuracy: float
    bayes_accuracy: float


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def drain(events: Iterable[dict], callback: Callable[[dict], None] | None = None) -> dict:
    """Consume an event stream, passing each event to ``callback``; return the last event."""
    last: dict = {}
    for event in events:
        if callback is not None:
            callback(event)
        last = event
    return last


#: ``wsd``: the decay lasts this share of the steps taken before it (warm-up-stable-decay).
WSD_DECAY = 0.2


def wsd_decay_start(steps: int, warmup: int = 0) -> int:
    """The step where a ``wsd`` run of ``steps`` steps starts decaying when nothing moves it earlier:
    the stable phase takes 1 / (1 + WSD_DECAY) of the run."""
    return max(warmup, int(round(steps / (1.0 + WSD_DECAY))))


def lr_at(step: int, lr: float, steps: int, warmup: int = 0, schedule: str = "constant",
          decay_from: int | None = None) -> float:
    """Learning rate for optimiser step ``step`` (0-based): linear warm-up over ``warmup`` steps,
    then ``constant``, ``cosine`` decay to 0 at ``steps``, or ``wsd``: constant until ``decay_from``
    (default ``wsd_decay_start(steps, warmup)``), then linear to 0 at ``steps``."""
    scale = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if schedule == "cosine" and steps > warmup:
        progress = min(1.0, max(0.0, (step - warmup) / (steps - warmup)))
        scale *= 0.5 * (1.0 + math.cos(math.pi * progress))
    elif schedule == "wsd":
        start = wsd_decay_start(steps, warmup) if decay_from is None else decay_from
        if step >= start and steps > start:
            scale *= max(0.0, (steps - step) / (steps - start))
    return lr * scale


class Trainer:
    def __init__(self, cfg: RunConfig, device: str | None = None):
        self.cfg = cfg
        self.device = torch.device(resolve_device(device or cfg.train.device))
        seed = cfg.train.seed
        self.task = LCATask(cfg.task, self.device)
        init = torch.Generator().manual_seed(seed)
        self.model = OneLayerTransformer(self.task.V, cfg.model, init).to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("nothing to train: W_E, W_V and attention are all frozen")
        t = cfg.train
        kw = dict(lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=t.weight_decay)
        try:  # one fused kernel (about 3x faster than foreach on CPU); not every device has one
            self.optimizer = torch.optim.AdamW(params, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            self.optimizer = torch.optim.AdamW(params, **kw)
        self.stream = _generator(self.device, seed + 1)
        self.x_eval, self.y_eval = self.task.sample(t.eval_size, _generator(self.device, seed + 2))
        self.bayes_accuracy = self.task.bayes_accuracy(self.x_eval, self.y_eval)
        self.train_set = None
        if t.train_size > 0:
            self.train_set = self.task.sample(t.train_size, _generator(self.device, seed + 3))
        self.step = 0
        #: Where the run ends (``steps``, or earlier after ``begin_decay``) and a moved decay start.
        self.end_step = t.steps
        self.decay_from: int | None = None
        self.status = "created"
        self.last_eval: EvalResult | None = None
        self.last_eval_step = -1
        self.best_accuracy: float | None = None
        self.stop_event = threading.Event()
        self.pause_event = threading.Event()
        self._snapshot_lock = threading.Lock()
        self._snapshot_requests: list[Future] = []
        self._in_loop = False
        #: Optional ``engine.threads.Governor``: re-decides torch's thread count between steps.
        self.governor = None

    # ----------------------------------------------------------------- data
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        B = self.cfg.train.batch_size
        if self.train_set is None:
            return self.task.sample(B, self.stream)
        x, y = self.train_set
        idx = torch.randint(0, x.shape[0], (B,), generator=self.stream, device=self.device)
        return x[idx], y[idx]

    # ----------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
                 model: OneLayerTransformer | None = None) -> EvalResult:
        """Loss and accuracy on the held-out set (or on (x, y)), beside the Bayes accuracy."""
        model = model or self.model
        if x is None:
            x, y, bayes = self.x_eval, self.y_eval, self.bayes_accuracy
        else:
            bayes = self.task.bayes_accuracy(x, y)
        loss_sum, correct = 0.0, 0
        for i in range(0, x.shape[0], EVAL_CHUNK):
            logits = model(x[i:i + EVAL_CHUNK])
            yy = y[i:i + EVAL_CHUNK]
            loss_sum += F.cross_entropy(logits.float(), yy, reduction="sum").item()
            correct += (logits.argmax(1) == yy).sum().item()
        n = x.shape[0]
        return EvalResult(loss_sum / n, correct / n, bayes)

    # ----------------------------------------------------------------- loop
    def train_step(self) -> tuple[float, float]:
        t = self.cfg.train
        lr = lr_at(self.step, t.lr, self.end_step, t.warmup, t.schedule, self.decay_from)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.next_batch()
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss.item(), acc.item()

    def events(self) -> Iterator[dict]:
        """Run until ``steps`` (or stop / divergence), yielding metric events between steps."""
        with self._snapshot_lock:
            self._in_loop = True
        try:
            yield from self._loop()
        finally:
            with self._snapshot_lock:
                self._in_loop = False
            self._serve_snapshots()

    def _loop(self) -> Iterator[dict]:
        t = self.cfg.train
        self.status = "running"
        rate = None
        while self.step < self.end_step:
            self._serve_snapshots()
            if self.governor is not None:
                self.governor.tick()
            if self.stop_event.is_set():
                break
            if self.pause_event.is_set():
                self.status = "paused"
                yield {"event": "status", "status": "paused", "step": self.step}
                while self.pause_event.is_set() and not self.stop_event.is_set():
                    self._serve_snapshots()
                    time.sleep(0.05)
                self.status = "running"
                yield {"event": "status", "status": "running", "step": self.step}
                continue
            t0 = time.perf_counter()
            loss, acc = self.train_step()
            dt = max(time.perf_counter() - t0, 1e-9)
            if not math.isfinite(loss):
                self.status = "diverged"
                yield {"event": "diverged", "step": self.step + 1, "loss": loss}
                break
            self.step += 1
            inst = t.batch_size / dt
            rate = inst if rate is None else 0.9 * rate + 0.1 * inst
            yield {"event": "train", "step": self.step, "loss": loss, "accuracy": acc,
                   "samples_per_s": rate}
            if self.step % t.eval_every == 0 or self.step == self.end_step:
                yield self._eval_event()
        else:
            self.status = "completed"
        if self.status == "running":
            self.status = "stopped"
        if self.last_eval_step != self.step and self.status != "diverged":
            yield self._eval_event()
        yield self.done_event()

    # ----------------------------------------------------------------- live snapshots
    def request_snapshot(self) -> Future:
        """A Future of {"step": int, "tensors": {name: cloned CPU tensor}}: the weights after
        exactly ``step`` optimiser steps. Thread-safe: while the loop runs, the training thread
        resolves it between two steps (never during an AdamW update); otherwise at once."""
        fut: Future = Future()
        with self._snapshot_lock:
            if self._in_loop:
                self._snapshot_requests.append(fut)
                return fut
        self._resolve(fut)
        return fut

    def snapshot(self) -> dict:
        """{"step", "tensors"} now, from the calling thread (use ``request_snapshot`` from others)."""
        return {"step": self.step,
                "tensors": {n: p.detach().to("cpu", copy=True) for n, p in self.model.named_parameters()}}

    def _resolve(self, fut: Future) -> None:
        if fut.set_running_or_notify_cancel():
            try:
                fut.set_result(self.snapshot())
            except Exception as exc:  # noqa: BLE001 — handed to the requester, not lost in this thread
                fut.set_exception(exc)

    def _serve_snapshots(self) -> None:
        if not self._snapshot_requests:
            return
        with self._snapshot_lock:
            pending, self._snapshot_requests = self._snapshot_requests, []
        for fut in pending:
            self._resolve(fut)

    def _eval_event(self) -> dict:
        ev = self.evaluate()
        self.last_eval, self.last_eval_step = ev, self.step
        if self.best_accuracy is None or ev.accuracy > self.best_accuracy:
            self.best_accuracy = ev.accuracy
        return {"event": "eval", "step": self.step, "loss": ev.loss, "accuracy": ev.accuracy,
                "bayes_accuracy": ev.bayes_accuracy}

    def done_event(self) -> dict:
        ev = self.last_eval
        return {"event": "done", "status": self.status, "step": self.step,
                "accuracy": ev.accuracy if ev else None,
                "bayes_accuracy": self.bayes_accuracy,
                "loss": ev.loss if ev else None}

    def run(self, callback: Callable[[dict], None] | None = None) -> dict:
        return drain(self.events(), callback)

    @property
    def decaying(self) -> bool:
        """A ``wsd`` run past the end of its stable phase."""
        t = self.cfg.train
        return t.schedule == "wsd" and (self.decay_from is not None
                                        or self.step >= wsd_decay_start(self.end_step, t.warmup))

    def begin_decay(self) -> bool:
        """``wsd`` only: start the linear decay at the current step; the run then ends
        ``WSD_DECAY`` x step later (never past ``steps``). False when not ``wsd`` or already decaying."""
        if self.cfg.train.schedule != "wsd" or self.decaying:
            return False
        self.decay_from = self.step
        self.end_step = min(self.cfg.train.steps, self.step + max(1, int(round(WSD_DECAY * self.step))))
        return True

    def stop(self):
        self.stop_event.set()
        self.pause_event.clear()

    # ----------------------------------------------------------------- state for checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Weights, AdamW moments and the stream generator as a flat name -> tensor dict."""
        out = {f"model.{n}": p.detach().cpu().clone() for n, p in self.model.named_parameters()}
        names = {id(p): n for n, p in self.model.named_parameters()}
        for p, st in self.optimizer.state.items():
            for key, val in st.items():
                if torch.is_tensor(val):
                    out[f"optim.{names[id(p)]}.{key}"] = val.detach().cpu().clone()
        out["rng.stream"] = self.stream.get_state().clone()
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], step: int):
        with torch.no_grad():
            for n, p in self.model.named_parameters():
                p.copy_(tensors[f"model.{n}"].to(self.device))
        for n, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            st = {k.rsplit(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"optim.{n}.")}
            if st:
                self.optimizer.state[p] = {k: (v if k == "step" else v.to(self.device)) for k, v in st.items()}
        self.stream.set_state(tensors["rng.stream"])
        self.step = step
