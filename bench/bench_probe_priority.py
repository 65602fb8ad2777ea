"""Does the probe keep priority while an ES evaluation runs (issue 22)? The app as a real terminal
program in a pseudo-terminal (120 x 40) with the embedded model and the Figure 1 prompt: isolated
keys typed at the end of the prompt, first with the model thread idle, then while the hijack panel's
ES evaluation (``e``, restarted whenever it ends) runs on the same model thread. Per key:
keystroke -> redrawn bars, how long the probe waited for the model thread (request -> probe start),
and the probe itself. The app's stages come from its own off-by-default instrumentation
(``LCA_TUI_INSTRUMENT``). A causal trace's share is measured by ``bench_trace_view.py``.

Usage: python bench/bench_probe_priority.py [--keys N] [--threads T] [--pause S]. Writes
bench/results/probe_priority.json.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from app_harness import RESULTS, PtyApp, bench_main, machine, pct

HERE = Path(__file__).resolve().parent
CHARS = " Paris, the capital of France and"


def _key(app, before: str, ch: str) -> dict:
    want = before + ch
    t_key = app.type(ch)
    frame = app.wait(lambda ev: ev["ev"] == "frame" and ev["prompt"] == want and ev["t"] > t_key, timeout=300)
    t_seen = app.read_after(frame["t"])
    evs = app.events()
    req = [ev for ev in evs if ev["ev"] == "request" and ev["prompt"] == want and ev["t"] > t_key]
    probe = [ev for ev in evs if ev["ev"] == "probe" and ev["prompt"] == want and ev["t0"] > t_key]
    jobs = [ev for ev in evs if ev["ev"] == "job" and ev["t"] <= t_key]
    running = bool(jobs) and jobs[-1]["state"] == "start"
    return {"key": ch, "key_to_bars_s": t_seen - t_key, "job_running": running,
            "request_to_probe_start_s": probe[-1]["t0"] - req[0]["t"] if probe and req else None,
            "probe_s": frame["engine_s"], "n_tokens": frame["n_tokens"]}


def run(args) -> dict:
    from bench_app_latency import PROMPT

    load0 = os.getloadavg()
    os.environ["LCA_BENCH_JOB"] = "efficacy"
    if args.model:
        os.environ["LCA_BENCH_MODEL"] = args.model
    app = PtyApp(str(HERE / "bench_app_latency.py"), threads=args.threads)
    idle, busy = [], []
    text = PROMPT
    try:
        app.wait(lambda ev: ev["ev"] == "ready", timeout=900)
        time.sleep(1.0)
        for phase, rows in (("idle", idle), ("busy", busy)):
            if phase == "busy":  # leave the editor, start the evaluation (e), back to the editor (i)
                app.type("\x1b")
                time.sleep(0.5)
                t_e = app.type("e")
                app.wait(lambda ev, t=t_e: ev["ev"] == "job" and ev["kind"] == "efficacy"
                         and ev["state"] == "start" and ev["t"] > t, timeout=60)
                app.type("i")
                time.sleep(1.0)
            for i in range(args.keys):
                ch = CHARS[i % len(CHARS)]
                rows.append(_key(app, text, ch))
                text += ch
                r = rows[-1]
                print(f"{phase} key {i + 1}: bars {r['key_to_bars_s'] * 1000:.0f} ms, waited "
                      f"{(r['request_to_probe_start_s'] or 0) * 1000:.0f} ms, probe {r['probe_s'] * 1000:.0f} ms, "
                      f"job running {r['job_running']}", flush=True)
                time.sleep(args.pause)
    finally:
        app.close()

    def summary(rows):
        lat = [r["key_to_bars_s"] for r in rows]
        waits = [r["request_to_probe_start_s"] for r in rows if r["request_to_probe_start_s"] is not None]
        return {"keys": len(rows), "job_running_keys": sum(r["job_running"] for r in rows),
                "key_to_bars_p50_s": statistics.median(lat), "key_to_bars_p95_s": pct(lat, 0.95),
                "wait_p50_s": statistics.median(waits), "wait_max_s": max(waits),
                "probe_p50_s": statistics.median(r["probe_s"] for r in rows)}

    return {**machine(" ".join(sys.argv)), "threads": args.threads, "model": args.model or "smollm2-135m (embedded)",
            "idle": summary(idle), "evaluation_running": summary(busy), "rows": {"idle": idle, "busy": busy},
            "load": {"start": list(load0), "end": list(os.getloadavg())}}


def markdown(res: dict) -> str:
    ms = lambda v: f"{1000 * v:.0f} ms"  # noqa: E731
    lines = ["| model thread | keys | key → bars p50 / p95 | the probe waited p50 / max | probe p50 |",
             "|---|---|---|---|---|"]
    for name, label in (("idle", "idle"), ("evaluation_running", "an ES evaluation running")):
        s = res[name]
        keys = f"{s['keys']}" + (f" ({s['job_running_keys']} with the job running)" if name != "idle" else "")
        lines.append(f"| {label} | {keys} | {ms(s['key_to_bars_p50_s'])} / {ms(s['key_to_bars_p95_s'])} | "
                     f"{ms(s['wait_p50_s'])} / {ms(s['wait_max_s'])} | {ms(s['probe_p50_s'])} |")
    la = res["load"]
    lines.append("")
    lines.append(f"Measured {res['machine']['date']} with `{res['command']}`, model {res['model']}, torch threads {res['threads']}; "
                 f"load average (1 min) {la['start'][0]:.2f} at the start, {la['end'][0]:.2f} at the end.")
    return "\n".join(lines)


def add_args(ap) -> None:
    ap.add_argument("--keys", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pause", type=float, default=0.8)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    bench_main(__doc__, markdown, add_args, run, out=RESULTS / "probe_priority.json")
