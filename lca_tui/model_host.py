"""The one thread that owns the language model.

Probes arrive through a slot of size one (the newest request wins) and are debounced on both edges:
an edit that comes after the model has been idle for ``debounce`` seconds is served at once (so a
single keystroke costs one probe, not one probe plus a wait); during bursts of typing a request is
served once no newer one has come for ``debounce`` seconds. Long jobs (model loads, efficacy
evaluations, sweeps, traces) queue up; while one runs it serves a pending probe between its
forwards, with the same leading edge, so typing keeps getting answers. Results go back as messages
to whoever asked (``reply_to``, a widget: ``post_message`` is thread-safe), else through ``post``.
The model is never touched from another thread. After a model load the newest probe is served
again, so the asker sees the new model.

Jobs are named (``engine.hijack.jobs.ModelJob``: a module-level ``fn(lm, ctx, *args)``); the host runs
each with the loaded model and a ``JobContext`` (``engine.job_context``) of its own: ``progress`` goes to
whoever asked as ``JobProgress``, ``pause`` is ``serve_probe``, and the cancel is the job's own event,
created when it is queued: a cancel pressed while the job still waits behind another is kept, and the
job then finishes at once as cancelled. A job that raises ``Cancelled`` finishes as cancelled with
the exception's ``partial`` as its result.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from engine.errors import Cancelled
from engine.job_context import JobContext
from lca_tui import instrument
from lca_tui.messages import (
    JobFinished,
    JobProgress,
    ModelLoaded,
    ModelLoadFailed,
    ModelLoading,
    ProbeAnswered,
    ProbeRequest,
    new_job_id,
)

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
        self._probe_end = 0.0  # when the last probe ended (the leading edge inside jobs)
        self._jobs: queue.Queue = queue.Queue()
        self._wake = threading.Condition()
        self._cancels: dict[int, threading.Event] = {}
        self._last_probe: tuple[ProbeRequest, Any] | None = None
        self._probing = False
        self._stop = threading.Event()
        self.running_job: str | None = None
        self._loads = 0  # load jobs queued or running
        #: Threads of this process that run torch at the same time as this one (training runs);
        #: the app keeps it current and the model thread takes its share (engine.threads.plan).
        self.share = 1
        self._applied_share: int | None = None
        self._thread = threading.Thread(target=self._loop, name="lca-model", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- API (any thread)
    def request_probe(self, request: ProbeRequest, reply_to: Any = None) -> None:
        with self._wake:
            self._pending, self._pending_at = (request, reply_to), time.monotonic()
            self._wake.notify()

    def load(self, name: str | None, device: str = "auto", dtype: str = "auto") -> int:
        with self._wake:
            self._loads += 1
        return self._queue("load", lambda ctx: self._load(name, device, dtype))

    def submit(self, job, meta: dict | None = None, job_id: int | None = None, reply_to: Any = None) -> int:
        """Queue a named job (``engine.hijack.jobs.ModelJob``) to run on the model thread as
        ``job.fn(lm, ctx, *job.args, **job.kwargs)``; its return value (or error, or cancel) is posted
        as ``JobFinished`` to ``reply_to``, its progress as ``JobProgress``."""
        return self._queue(job.kind, lambda ctx: job.run(self.lm, ctx), meta, job_id, reply_to)

    def _queue(self, kind: str, run: Callable[[JobContext], Any], meta: dict | None = None,
               job_id: int | None = None, reply_to: Any = None) -> int:
        job_id = new_job_id() if job_id is None else job_id  # the one counter: ids never collide
        with self._wake:
            self._cancels[job_id] = threading.Event()
            self._jobs.put((job_id, kind, run, meta or {}, reply_to))
            self._wake.notify()
        return job_id

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job (queued or running), or every job when ``job_id`` is None."""
        with self._wake:
            events = list(self._cancels.values()) if job_id is None else [self._cancels.get(job_id)]
        for ev in events:
            if ev is not None:
                ev.set()

    def close(self) -> None:
        self._stop.set()
        self.cancel()
        with self._wake:
            self._wake.notify()

    @property
    def probing(self) -> bool:
        """A probe is waiting or running (the UI keeps its periodic repaints off meanwhile)."""
        return self._pending is not None or self._probing

    def serves_at_once(self) -> bool:
        """Whether a probe asked for now starts at once (asked before ``request_probe``): a model is
        loaded, the model thread is idle, and it has been for the debounce time (the leading edge)."""
        return (self.prober is not None and self.running_job is None and not self.probing
                and time.monotonic() - self._idle_since >= self.debounce)

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
            if self._applied_share != self.share:
                self._apply_share()
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

    def _apply_share(self) -> None:
        """Set this thread's torch threads to its share of the cores (the last of ``plan``)."""
        share = self.share
        try:
            from engine.threads import apply, plan

            apply(plan(max(1, share))[-1])
        except Exception:  # noqa: BLE001 - thread tuning must never stop the model thread
            traceback.print_exc()
        self._applied_share = share

    def _reply(self, reply_to, msg) -> None:
        (reply_to.post_message if reply_to is not None else self.post)(msg)

    def _run_job(self, job_id: int, kind: str, run, meta: dict, reply_to=None) -> None:
        with self._wake:
            cancel = self._cancels.get(job_id) or threading.Event()
        if cancel.is_set() or self._stop.is_set():  # cancelled while it waited in the queue
            with self._wake:
                self._cancels.pop(job_id, None)
                self._loads -= kind == "load"
            self._reply(reply_to, JobFinished(job_id, kind, cancelled=True, meta=meta))
            return
        self.running_job = kind
        ctx = JobContext(lambda done, total, partial: self._reply(reply_to, JobProgress(job_id, kind, done, total,
                                                                                         partial)),
                         cancel, self.serve_probe)
        instrument.emit("job", kind=kind, state="start")
        try:
            result = run(ctx)
        except Cancelled as exc:
            self._reply(reply_to, JobFinished(job_id, kind, result=exc.partial, cancelled=True, meta=meta))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a crash
            from engine.errors import UserError, describe

            msg = describe(exc)
            if not isinstance(exc, UserError):
                traceback.print_exc()
            self._reply(reply_to, JobFinished(job_id, kind, error=msg, meta=meta))
        else:
            cancelled = bool(getattr(result, "cancelled", False)) or cancel.is_set()
            self._reply(reply_to, JobFinished(job_id, kind, result=result, cancelled=cancelled, meta=meta))
        finally:
            with self._wake:
                self._cancels.pop(job_id, None)
            self.running_job = None
            self._idle_since = time.monotonic()
            instrument.emit("job", kind=kind, state="end")

    def serve_probe(self, force: bool = False) -> None:
        """Answer the pending probe (jobs call this between their forwards): at once when it is the
        first request after a quiet spell (it came ``debounce`` seconds or more after the last probe
        ended: the leading edge, as on an idle model thread), else once its debounce time has passed
        (or ``force``)."""
        with self._wake:
            pending = self._pending
            if pending is None:
                return
            leading = self._pending_at - self._probe_end >= self.debounce
            if not (force or leading or time.monotonic() - self._pending_at >= self.debounce):
                return
            self._pending, self._probing = None, True  # never seen as neither pending nor running
        req, reply_to = pending
        self._last_probe = pending
        if self.prober is None:  # answered after the load; an error only if no load is coming
            self._probing = False
            if not self._loads:
                self._reply(reply_to, ProbeAnswered(req, error="no model is loaded yet"))
            return
        t0, t0_mono = time.perf_counter(), time.monotonic()
        try:
            res = self.prober.probe(req.prompt, list(req.targets), top_k=req.top_k, analyses=req.analyses)
            if instrument.ENABLED:
                import torch

                instrument.emit("probe", t0=t0_mono, prompt=req.prompt, threads=torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001
            from engine.errors import describe

            self._reply(reply_to, ProbeAnswered(req, error=describe(exc)))
            self._idle_since = time.monotonic()
            return
        finally:
            self._probing = False
            self._probe_end = time.monotonic()
        self._reply(reply_to, ProbeAnswered(req, result=res, seconds=time.perf_counter() - t0))
        self._idle_since = time.monotonic()

    def _load(self, name, device, dtype) -> dict:
        try:
            info = self._load_now(name, device, dtype)
            with self._wake:  # the newest probe again, answered by the new model
                if self._pending is None and self._last_probe is not None:
                    self._pending, self._pending_at = self._last_probe, 0.0
            return info
        finally:
            with self._wake:
                self._loads -= 1

    def _load_now(self, name, device, dtype) -> dict:
        from engine.errors import UserError, describe
        from engine.hijack.lm import load_lm
        from engine.hijack.probe import Prober

        self.post(ModelLoading(f"loading {name or 'the embedded default model'}…"))
        try:
            lm = load_lm(name, device=device, dtype=dtype,
                         progress=lambda text: self.post(ModelLoading(text)))
        except Exception as exc:  # noqa: BLE001
            err = describe(exc)
            self.post(ModelLoadFailed(name or "default", err, self.lm.name if self.lm else None))
            raise UserError(err) from None
        self.lm, self.prober = lm, Prober(lm)
        info = model_info(lm)
        self.post(ModelLoaded(info))
        return info


def model_info(lm) -> dict:
    return {"name": lm.name, "device": str(lm.device), "dtype": str(lm.dtype).replace("torch.", ""),
            "n_layers": lm.n_layers, "max_length": lm.max_length}
