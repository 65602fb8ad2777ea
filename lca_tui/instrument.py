"""Stage timestamps for the latency benchmark (``bench/bench_app_latency.py``), off by default.

With ``LCA_TUI_INSTRUMENT=FILE`` in its environment the app appends one JSON line per stage to
FILE, each with ``ev`` and ``t`` (``time.monotonic()``, which the benchmark shares):

- ``request``: the hijack panel asks for a probe (``prompt``);
- ``probe``: the model thread ran the Prober (``t0`` its start, ``prompt``, torch ``threads``);
- ``job``: a model-thread job started or ended (``kind``, ``state``: ``start`` / ``end``);
- ``answer``: the panel drew the newest answer (``seq``, ``prompt``, ``targets``, ``top_k``,
  ``analyses``, ``engine_s``, ``t_answer`` on entry, ``reused``, ``n_tokens``);
- ``frame``: the first frame after that answer was handed to the terminal's writer thread (the
  answer's fields again, so one line says what the frame showed);
- ``trace_frame`` / ``repair_frame``: the first frame after the Trace / Repair view drew its job's answer
  (``prompt``, ``t_drawn``; ``estimate`` / ``defense`` and ``alpha``);
- ``ui``: a full layout (``_refresh_layout``) or a frame rendered (``_compositor_refresh``) on the
  main screen, with its start ``t0``; ``layout_req``: a widget asked for a full layout (``w``).
Unset (the default), every hook is one truth test of ``ENABLED``.
"""

from __future__ import annotations

import json
import os
import threading
import time

#: The file named by ``LCA_TUI_INSTRUMENT`` (``None``: instrumentation off).
PATH = os.environ.get("LCA_TUI_INSTRUMENT") or None
ENABLED = PATH is not None
_pending_trace: dict | None = None
_pending_repair: dict | None = None

_lock = threading.Lock()
_file = None
#: The answer waiting for its frame (set by ``answered``, taken by ``frame_out``).
_pending: dict | None = None


def emit(ev: str, **fields) -> None:
    """One JSON line: the event, now, and its fields (thread-safe; a no-op when off)."""
    global _file
    if not ENABLED:
        return
    line = json.dumps({"ev": ev, "t": time.monotonic(), **fields}) + "\n"
    with _lock:
        if _file is None:
            _file = open(PATH, "a", buffering=1)  # kept open for the app's life
        _file.write(line)


def answered(**fields) -> None:
    """The panel drew an answer: log it and mark the next frame as the one that carries it."""
    global _pending
    if ENABLED:
        _pending = fields
        emit("answer", **fields)


def probe_drawn(msg, t_answer: float) -> None:
    """The hijack panel drew ``msg`` (a ``ProbeAnswered``), entered at ``t_answer``."""
    if ENABLED:
        r, res = msg.request, msg.result
        answered(seq=r.seq, prompt=r.prompt, targets=list(r.targets), top_k=r.top_k, analyses=list(r.analyses),
                 engine_s=msg.seconds, t_answer=t_answer, reused=res.reused_prefix, n_tokens=len(res.token_ids))


def trace_drawn(prompt: str, estimate: bool = False) -> None:
    """The Trace view drew the trace of ``prompt`` (``estimate``: its attribution-patching estimate):
    the next frame carries it (``trace_frame``, with ``estimate``)."""
    global _pending_trace
    if ENABLED:
        _pending_trace = {"prompt": prompt, "t_drawn": time.monotonic(), "estimate": estimate}


def repair_drawn(prompt: str, defense: str, alpha: float) -> None:
    """The Repair view drew the defended probe of ``prompt``: the next frame carries it (``repair_frame``)."""
    global _pending_repair
    if ENABLED:
        _pending_repair = {"prompt": prompt, "t_drawn": time.monotonic(), "defense": defense, "alpha": alpha}


def frame_out() -> None:
    """A frame was handed to the writer thread: if an answer, a trace or a repair probe waits for it, log
    the frame."""
    global _pending, _pending_trace, _pending_repair
    if ENABLED and _pending is not None:
        fields, _pending = _pending, None
        emit("frame", **fields)
    if ENABLED and _pending_trace is not None:
        fields, _pending_trace = _pending_trace, None
        emit("trace_frame", **fields)
    if ENABLED and _pending_repair is not None:
        fields, _pending_repair = _pending_repair, None
        emit("repair_frame", **fields)


def timed(name: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, logged as a ``ui`` event named ``name`` when instrumentation is on."""
    if not ENABLED:
        return fn(*args, **kwargs)
    t0 = time.monotonic()
    try:
        return fn(*args, **kwargs)
    finally:
        emit("ui", what=name, t0=t0)


def screen_class():
    """The main screen's class: Textual's ``Screen``, or with instrumentation on a subclass that logs
    each full layout and each frame it renders as ``ui`` events."""
    from textual.screen import Screen

    if not ENABLED:
        return Screen

    class InstrumentedScreen(Screen):
        def _refresh_layout(self, *args, **kwargs):
            return timed("_refresh_layout", super()._refresh_layout, *args, **kwargs)

        def _compositor_refresh(self, *args, **kwargs):
            return timed("_compositor_refresh", super()._compositor_refresh, *args, **kwargs)

    return InstrumentedScreen
