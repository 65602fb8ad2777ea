"""The one thread that owns the language model.

Probes arrive through a slot of size one (the newest request wins) and are debounced on both edges:
an edit that comes after the model has been idle for ``debounce`` seconds is served at once (so a
single keystroke costs one probe, not one probe plus a wait); during bursts of typing a request is
served once no newer one has come for ``debounce`` seconds. Long jobs (model loads, efficacy
evaluations, sweeps) queue up; while one runs it serves a pending probe between its batches, so
typing keeps getting answers. Results go back as messages through ``post`` (thread-safe). The model
is never touched from another thread.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import traceback
from typing import Any, Callable

from lca_tui.messages import (JobFinished, JobProgress, ModelLoaded, ModelLoadFailed, ModelLoading,
                              ProbeAnswered, ProbeRequest)

DEBOUNCE_S = 0.15


class ModelHost:
    def __init__(self, post: Callable[[Any], None], debounce: float = DEBOUNCE_S):
        self.post = post
        self.debounce = debounce
        self.lm = None
        self.prober = None
        self._pending: ProbeRequest | None = None
        self._pending_at = 0.0
        self._idle_since = 0.0
        self._jobs: queue.Queue = queue.Queue()
        self._wake = threading.Condition()
        self._cancel = threading.Event()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self.running_job: str | None = None
        self._thread = threading.Thread(target=self._loop, name="lca-model", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- API (any thread)
    def request_probe(self, request: ProbeRequest) -> None:
        with self._wake:
            self._pending, self._pending_at = request, time.monotonic()
            self._wake.notify()

    def load(self, name: str | None, device: str = "auto", dtype: str = "auto") -> int:
        return self.submit("load", lambda job_id: self._load(name, device, dtype))

    def submit(self, kind: str, fn: Callable[[int], Any], meta: dict | None = None) -> int:
        """Queue ``fn(job_id)`` to run on the model thread; its return value (or error) is posted
        as ``JobFinished``. Jobs may call ``self.progress`` and ``self.serve_probe``."""
        job_id = next(self._ids)
        self._jobs.put((job_id, kind, fn, meta or {}))
        with self._wake:
            self._wake.notify()
        return job_id

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        self._stop.set()
        self._cancel.set()
        with self._wake:
            self._wake.notify()

    @property
    def cancel_event(self) -> threading.Event:
        return self._cancel

    @property
    def busy(self) -> bool:
        return self.running_job is not None

    # ---------------------------------------------------------------- model thread
    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._stop.is_set() and self._pending is None and self._jobs.empty():
                    self._wake.wait(0.5)
            if self._stop.is_set():
                return
            if self._pending is not None:
                now = time.monotonic()
                leading = now - self._idle_since >= self.debounce and self._pending_at >= self._idle_since
                wait = 0.0 if leading else self._pending_at + self.debounce - now
                if wait > 0 and self._jobs.empty():
                    time.sleep(min(wait, 0.05))
                    continue
                if wait <= 0:
                    self.serve_probe(force=True)
                    continue
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                continue
            self._run_job(*job)

    def _run_job(self, job_id: int, kind: str, fn, meta: dict) -> None:
        self._cancel.clear()
        self.running_job = kind
        try:
            result = fn(job_id)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a crash
            from engine.errors import UserError

            msg = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, UserError):
                traceback.print_exc()
            self.post(JobFinished(job_id, kind, error=msg, meta=meta))
        else:
            cancelled = bool(getattr(result, "cancelled", False))
            self.post(JobFinished(job_id, kind, result=result, cancelled=cancelled, meta=meta))
        finally:
            self.running_job = None
            self._idle_since = time.monotonic()

    def progress(self, job_id: int, kind: str, done: int, total: int, partial: Any = None) -> None:
        self.post(JobProgress(job_id, kind, done, total, partial))

    def serve_probe(self, force: bool = False) -> None:
        """Answer the pending probe if its debounce time has passed (or ``force``)."""
        with self._wake:
            req = self._pending
            if req is None or (not force and time.monotonic() - self._pending_at < self.debounce):
                return
            self._pending = None
        if self.prober is None:
            self.post(ProbeAnswered(req, error="no model is loaded yet"))
            return
        t0 = time.perf_counter()
        try:
            res = self.prober.probe(req.prompt, list(req.targets), top_k=req.top_k, surprise=req.surprise,
                                    logit_lens=req.logit_lens, attention=req.attention)
        except Exception as exc:  # noqa: BLE001
            from engine.errors import UserError

            self.post(ProbeAnswered(req, error=str(exc) if isinstance(exc, UserError)
                                    else f"{type(exc).__name__}: {exc}"))
            self._idle_since = time.monotonic()
            return
        self.post(ProbeAnswered(req, result=res, seconds=time.perf_counter() - t0))
        self._idle_since = time.monotonic()

    def _load(self, name, device, dtype) -> dict:
        from engine.errors import UserError
        from engine.hijack.lm import load_lm
        from engine.hijack.probe import Prober

        self.post(ModelLoading(f"loading {name or 'the embedded default model'}…"))
        try:
            lm = load_lm(name, device=device, dtype=dtype,
                         progress=lambda text: self.post(ModelLoading(text)))
        except Exception as exc:  # noqa: BLE001
            err = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            self.post(ModelLoadFailed(name or "default", err, self.lm.name if self.lm else None))
            raise UserError(err) from None
        self.lm, self.prober = lm, Prober(lm)
        info = model_info(lm)
        self.post(ModelLoaded(info))
        return info


def model_info(lm) -> dict:
    return {"name": lm.name, "device": str(lm.device), "dtype": str(lm.dtype).replace("torch.", ""),
            "n_layers": lm.n_layers, "max_length": lm.max_length}
