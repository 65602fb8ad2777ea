"""Keystroke -> redrawn Repair view (issue 30), beside the probe's bars, the app as a real terminal
program in a pseudo-terminal with the embedded model (120 x 40): the Figure 1 prompt in the Repair view
with a defense chosen (``--defense``, default heads; its settings shaped on the record before the first
key), keys typed at the prompt's start (each changes the prepended text, so each asks for a new defended
probe and cancels the stale one). Per key: key -> bars (the plain probe) and key -> the defended bars and
continuations on screen. Beside them, in this process while the app is idle: the engine's probe of the
same edit and its defended probe (``engine.hijack.repair_probe.defended_probe``, the same defense and
``K_TOKENS``). The app's stages come from its own off-by-default instrumentation (``LCA_TUI_INSTRUMENT``:
``frame`` after the bars, ``repair_frame`` after the defended probe).

Usage: python bench/bench_repair_view.py [--keys N] [--defense NAME] [--threads T] [--pause S] [--out FILE].
Writes bench/results/repair_view.json unless told otherwise.
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
QUESTION = "The Eiffel Tower is in"


def _bars(app, want: str, t_key: float) -> float:
    frame = app.wait(lambda ev: ev["ev"] == "frame" and ev["prompt"] == want and ev["t"] > t_key, timeout=120)
    return app.read_after(frame["t"]) - t_key


def _repair(app, want: str, t_key: float) -> float:
    rf = app.wait(lambda ev: ev["ev"] == "repair_frame" and ev["prompt"] == want and ev["t"] > t_key, timeout=300)
    return app.read_after(rf["t"]) - t_key


def run(args) -> dict:
    import torch
    from bench_app_latency import PROMPT, open_view

    from engine.hijack.lm import load_lm
    from engine.hijack.probe import Prober
    from engine.hijack.repair_probe import defended_probe, shape_on_pair
    from lca_tui.panels.hijack.views.repair import GRIDS, K_TOKENS

    torch.set_num_threads(args.threads)
    lm = load_lm(args.model, device="cpu")
    prober = Prober(lm)
    alpha = GRIDS[args.defense][len(GRIDS[args.defense]) // 2]  # the view's default α
    defense = shape_on_pair(lm, QUESTION, PROMPT[: -len(QUESTION)], " Paris", " Chicago", args.defense, alpha)
    load0 = os.getloadavg()
    app = open_view("repair", args.threads, args.model, defense=args.defense)
    rows = []
    try:
        typed = ""
        for i in range(args.keys):
            typed += CHARS[i % len(CHARS)]
            want = typed + PROMPT
            t_key = app.type(typed[-1])
            key_to_bars = _bars(app, want, t_key)
            key_to_repair = _repair(app, want, t_key)
            time.sleep(0.5)
            prober.reset()
            prober.probe(typed[:-1] + PROMPT, [" Paris", " Chicago"])
            t0 = time.perf_counter()
            prober.probe(want, [" Paris", " Chicago"])
            probe_alone = time.perf_counter() - t0
            t0 = time.perf_counter()
            defended_probe(lm, QUESTION, want[: -len(QUESTION)], (" Paris", " Chicago"), defense, k_tokens=K_TOKENS)
            repair_alone = time.perf_counter() - t0
            rows.append({"key_to_bars_s": key_to_bars, "key_to_repair_s": key_to_repair,
                         "probe_alone_s": probe_alone, "repair_alone_s": repair_alone,
                         "prompt_tokens": len(lm.encode(want))})
            print(f"key {i + 1}: bars {key_to_bars * 1000:.0f} ms, defended bars and continuations "
                  f"{key_to_repair * 1000:.0f} ms (engine alone: probe {probe_alone * 1000:.0f} ms, "
                  f"defended probe {repair_alone * 1000:.0f} ms)", flush=True)
            time.sleep(args.pause)
    finally:
        app.close()

    def med(key):
        return statistics.median(r[key] for r in rows)

    return {**machine(" ".join(sys.argv)), "threads": args.threads, "defense": defense.to_dict(),
            "k_tokens": K_TOKENS, "rows": rows, "median": {k: med(k) for k in rows[0]},
            "load": {"start": list(load0), "end": list(os.getloadavg())}}


def markdown(res: dict) -> str:
    m = res["median"]
    d = res["defense"]
    return "\n".join([
        "| median over keys | defense | key → bars | key → defended bars and continuations | probe alone | "
        "defended probe alone |",
        "|---|---|---|---|---|---|",
        f"| {len(res['rows'])} keys, {res['rows'][0]['prompt_tokens']} tokens, {res['k_tokens']} generated | "
        f"{d['name']} α={d['params']['alpha']:g} | {m['key_to_bars_s'] * 1000:.0f} ms | "
        f"{m['key_to_repair_s'] * 1000:.0f} ms | {m['probe_alone_s'] * 1000:.0f} ms | "
        f"{m['repair_alone_s'] * 1000:.0f} ms |"])


def add_args(ap) -> None:
    ap.add_argument("--keys", type=int, default=5)
    ap.add_argument("--defense", default="heads", choices=("drop-context", "heads", "attention", "contrastive",
                                                             "steer"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pause", type=float, default=1.0)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    bench_main(__doc__, markdown, add_args, run, out=RESULTS / "repair_view.json")
