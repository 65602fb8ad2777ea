"""Keystroke -> redrawn Trace view (issues 19 and 31), beside the probe's bars, the app as a real
terminal program in a pseudo-terminal with the embedded model (120 x 40): the Figure 1 prompt in the
Trace view, keys typed at its start (each one changes the prepended text, so each one asks for a new
estimate and trace and cancels the stale ones). Per key: key -> bars and key -> the attribution-
patching estimate on screen from an idle app; then, once the exact trace runs, a second key (the
probe keeps priority: its key -> bars), its key -> estimate on screen and key -> exact trace curves
on screen. Beside them, in this process while the app is idle: the engine's probe of the same edit,
its estimate (``engine.hijack.atp``) and its exact trace of the same prompt. The app's stages come from
its own off-by-default instrumentation (``LCA_TUI_INSTRUMENT``: ``frame`` after the bars,
``trace_frame`` after the estimate (``estimate``: true) and after the exact trace).

Usage: python bench/bench_trace_view.py [--keys N] [--threads T] [--pause S] [--out FILE]. Writes
bench/results/trace_view.json unless told otherwise.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from app_harness import RESULTS, bench_main, machine

HERE = Path(__file__).resolve().parent
CHARS = "Indeed, so "


def _bars(app, want: str, t_key: float) -> float:
    frame = app.wait(lambda ev: ev["ev"] == "frame" and ev["prompt"] == want and ev["t"] > t_key, timeout=120)
    return app.read_after(frame["t"]) - t_key


def _trace(app, want: str, t_key: float, estimate: bool) -> float:
    tf = app.wait(lambda ev: (ev["ev"] == "trace_frame" and ev["prompt"] == want and ev["t"] > t_key
                              and bool(ev.get("estimate")) == estimate), timeout=300)
    return app.read_after(tf["t"]) - t_key


def run(args) -> dict:
    import torch
    from bench_app_latency import PROMPT, open_view

    from engine.hijack import trace as T
    from engine.hijack.atp import atp
    from engine.hijack.lm import load_lm
    from engine.hijack.probe import Prober

    torch.set_num_threads(args.threads)
    lm = load_lm(args.model, device="cpu")
    prober = Prober(lm)
    load0 = os.getloadavg()
    app = open_view("trace", args.threads, args.model)
    rows = []
    try:
        typed = ""
        for i in range(args.keys):
            ch, ch2 = CHARS[(2 * i) % len(CHARS)], CHARS[(2 * i + 1) % len(CHARS)]
            typed += ch
            want = typed + PROMPT
            t_key = app.type(ch)
            key_to_bars = _bars(app, want, t_key)
            key_to_estimate = _trace(app, want, t_key, estimate=True)
            time.sleep(0.3)  # the exact trace of `want` is running now
            typed += ch2
            want2 = typed + PROMPT
            t_key2 = app.type(ch2)
            busy_bars = _bars(app, want2, t_key2)
            busy_estimate = _trace(app, want2, t_key2, estimate=True)
            key_to_trace = _trace(app, want2, t_key2, estimate=False)
            time.sleep(0.5)
            t0 = time.perf_counter()
            prober.reset()
            prober.probe(typed[:-1] + PROMPT, [" Paris", " Chicago"])
            t0 = time.perf_counter()
            prober.probe(want2, [" Paris", " Chicago"])
            probe_alone = time.perf_counter() - t0
            rec = T.prepare(lm, "The Eiffel Tower is in", want2[: -len("The Eiffel Tower is in")], " Paris", " Chicago")
            t0 = time.perf_counter()
            T.trace(lm, rec)
            trace_alone = time.perf_counter() - t0
            t0 = time.perf_counter()
            atp(lm, rec)
            atp_alone = time.perf_counter() - t0
            rows.append({"key_to_bars_s": key_to_bars, "key_to_estimate_s": key_to_estimate,
                         "key_to_bars_during_trace_s": busy_bars, "key_to_estimate_during_trace_s": busy_estimate,
                         "key_to_trace_s": key_to_trace, "probe_alone_s": probe_alone, "atp_alone_s": atp_alone,
                         "trace_alone_s": trace_alone, "prompt_tokens": len(rec.ids)})
            print(f"key {i + 1}: bars {key_to_bars * 1000:.0f} ms, estimate {key_to_estimate * 1000:.0f} ms; "
                  f"while a trace runs: bars {busy_bars * 1000:.0f} ms, estimate {busy_estimate * 1000:.0f} ms, "
                  f"exact trace {key_to_trace:.2f} s (engine alone: probe {probe_alone * 1000:.0f} ms, "
                  f"estimate {atp_alone * 1000:.0f} ms, trace {trace_alone:.2f} s)", flush=True)
            time.sleep(args.pause)
    finally:
        app.close()

    def med(key):
        return statistics.median(r[key] for r in rows)

    return {**machine(" ".join(sys.argv)), "threads": args.threads, "rows": rows,
            "median": {k: med(k) for k in rows[0]}, "load": {"start": list(load0), "end": list(os.getloadavg())}}


def markdown(res: dict) -> str:
    m = res["median"]
    if "key_to_estimate_s" not in m:  # written before the estimate (issue 19)
        return "\n".join([
            "| median over keys | key → bars | key → bars, a trace running | key → trace on screen | probe alone | "
            "trace alone |",
            "|---|---|---|---|---|---|",
            f"| {len(res['rows'])} keys, {res['rows'][0]['prompt_tokens']} tokens | {m['key_to_bars_s'] * 1000:.0f} ms | "
            f"{m['key_to_bars_during_trace_s'] * 1000:.0f} ms | {m['key_to_trace_s']:.2f} s | "
            f"{m['probe_alone_s'] * 1000:.0f} ms | {m['trace_alone_s']:.2f} s |"])
    return "\n".join([
        "| median over keys | key → bars | key → estimate | a trace running: key → bars | key → estimate | "
        "key → exact trace | probe alone | estimate alone | trace alone |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {len(res['rows'])} keys, {res['rows'][0]['prompt_tokens']} tokens | {m['key_to_bars_s'] * 1000:.0f} ms | "
        f"{m['key_to_estimate_s'] * 1000:.0f} ms | {m['key_to_bars_during_trace_s'] * 1000:.0f} ms | "
        f"{m['key_to_estimate_during_trace_s'] * 1000:.0f} ms | {m['key_to_trace_s']:.2f} s | "
        f"{m['probe_alone_s'] * 1000:.0f} ms | {m['atp_alone_s'] * 1000:.0f} ms | {m['trace_alone_s']:.2f} s |"])


def add_args(ap) -> None:
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pause", type=float, default=1.0)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    bench_main(__doc__, markdown, add_args, run, out=RESULTS / "trace_view.json")
