"""App benchmarks (issues 4 and 5), headless (Textual's test driver), measured side by side in one run.

1. Time to first frame: a fresh process, from interpreter start to the first refresh.
2. Keystroke-to-bars latency with the embedded model vs the engine's own probe time for the same edit.
3. UI key latency while an ES evaluation runs, and while a training run trains.
4. Training throughput inside the app vs the headless trainer on the same config.

Usage: python bench/bench_app.py [--keys N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("LCA_TUI_DATA_DIR", tempfile.mkdtemp(prefix="lca-bench-data-"))
os.environ.setdefault("LCA_TUI_CONFIG_DIR", tempfile.mkdtemp(prefix="lca-bench-config-"))

TRAIN_CFG = {"m": "6", "L": "64", "d": "64", "d_a": "64", "batch_size": "256", "steps": "150",
             "eval_every": "1000", "eval_size": "512", "device": "cpu"}


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def first_frame(repeats=3) -> list[float]:
    code = ("import time, os; t0=float(os.environ['T0']); from lca_tui.app import LcaApp; import asyncio\n"
            "async def main():\n"
            "    app = LcaApp(load_model=False)\n"
            "    async with app.run_test(size=(120, 40)) as pilot:\n"
            "        while app.first_frame_s is None: await pilot.pause(0.01)\n"
            "        print(app.first_frame_s + (app.started_wall - t0))\n"
            "asyncio.run(main())\n")
    out = []
    for _ in range(repeats):
        env = {**os.environ, "T0": repr(time.time())}
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        out.append(float(res.stdout.strip().splitlines()[-1]))
    return out


async def wait_for(pilot, pred, timeout=120.0):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError
        await pilot.pause(0.005)


async def key_latencies(pilot, keys, n):
    """Time from a key event entering the app's message queue to its handler having run.

    ``pilot.press`` itself waits for the screen to settle (~200-400 ms even on an idle app), so it
    is no latency measure; instead the key is posted with a timestamp and the app's key hook
    records when the binding's action has run. The UI loop's own lag is what load adds."""
    from textual import events

    app = pilot.app
    lat = []
    for i in range(n):
        done = asyncio.Event()
        t0 = time.perf_counter()
        key = keys[i % len(keys)]

        def after(_t0=t0):
            lat.append(time.perf_counter() - _t0)
            done.set()

        app.post_message(events.Key(key, None))
        app.call_later(after)  # runs after the key message has been processed
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.05)
    return lat


async def loop_lag(seconds: float, tick: float = 0.01) -> list[float]:
    """How late a 10 ms timer fires on the UI loop: the delay any key would see before handling."""
    lags, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        await asyncio.sleep(tick)
        lags.append(time.perf_counter() - t0 - tick)
    return lags


async def app_bench(n_keys: int) -> dict:
    from lca_tui.app import LcaApp

    out = {}
    app = LcaApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.model_info is not None or app.model_error is not None, 300)
        await pilot.press("escape")
        idle = await key_latencies(pilot, ["v"], 20)
        out["ui_key_latency_idle_s"] = {"p50": statistics.median(idle), "p95": pct(idle, 0.95)}
        app.query_one("#hijack-views").active = "surprise"
        app.query_one("#prompt").focus()
        hp = app.query_one("#hijack")
        editor = app.query_one("#prompt")
        editor.text = "The Eiffel Tower is not in Chicago. " * 7 + "The Eiffel Tower is in"  # ~80 tokens
        await wait_for(pilot, lambda: hp.last_request and hp.shown_seq == hp.last_request.seq)
        await pilot.pause(0.5)
        lat, probe = [], []
        for i in range(n_keys):
            t0 = time.perf_counter()
            await pilot.press("abcdefghij"[i % 10])
            seq = hp.last_request.seq
            await wait_for(pilot, lambda: hp.shown_seq >= seq)
            lat.append(time.perf_counter() - t0)
            probe.append(hp.last_seconds)
            await pilot.pause(0.3)  # isolated edits: the leading edge of the debounce applies
        out["keystroke_to_bars_s"] = {"p50": statistics.median(lat), "p95": pct(lat, 0.95),
                                      "engine_probe_p50": statistics.median(probe),
                                      "ratio_p50": statistics.median(lat) / statistics.median(probe)}
        # UI key latency while an ES evaluation runs on the model thread
        await pilot.press("escape", "e")
        await pilot.pause(0.5)
        busy = await key_latencies(pilot, ["v"], 40)
        lag = await loop_lag(3.0)
        out["ui_key_latency_during_eval_s"] = {"p50": statistics.median(busy), "p95": pct(busy, 0.95),
                                               "loop_lag_p95": pct(lag, 0.95),
                                               "eval_still_running": hp.eval_job is not None}
        await pilot.press("c")
        await wait_for(pilot, lambda: hp.eval_job is None, 300)
        # training inside the app; UI key latency meanwhile; throughput vs headless
        await pilot.press("2")
        tp = app.query_one("#trainer")
        for k, v in TRAIN_CFG.items():
            tp.set_field(k, v)
        await pilot.pause(0.2)
        t0 = time.perf_counter()
        await pilot.press("f5")
        await pilot.pause(0.5)
        busy = await key_latencies(pilot, ["tab", "shift+tab"], 30)
        lag = await loop_lag(3.0)
        out["ui_key_latency_during_training_s"] = {"p50": statistics.median(busy), "p95": pct(busy, 0.95),
                                                   "loop_lag_p95": pct(lag, 0.95)}
        await wait_for(pilot, lambda: tp._current() is not None and tp._current().status == "completed", 600)
        st = tp._current()
        in_app = [e for e in st.train]
    # throughput: median of per-step rates reported by the trainer, app vs headless, same config
    from engine.lca.config import parse_flat
    from engine.lca.trainer import Trainer

    cfg, _ = parse_flat(TRAIN_CFG)
    tr = Trainer(cfg)
    rates = [e["samples_per_s"] for e in tr.events() if e["event"] == "train"]
    app_rate = statistics.median(e["samples_per_s"] for e in in_app[20:])
    head_rate = statistics.median(rates[20:])
    out["training_samples_per_s"] = {"in_app": app_rate, "headless": head_rate, "ratio": app_rate / head_rate}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=20)
    args = ap.parse_args()
    ff = first_frame()
    print(f"time to first frame (fresh process, headless): median {statistics.median(ff):.2f} s  "
          f"(runs: {', '.join(f'{v:.2f}' for v in ff)})", flush=True)
    res = asyncio.run(app_bench(args.keys))
    k = res["keystroke_to_bars_s"]
    print(f"keystroke -> bars: p50 {1000 * k['p50']:.0f} ms, p95 {1000 * k['p95']:.0f} ms; engine probe p50 "
          f"{1000 * k['engine_probe_p50']:.0f} ms; ratio p50 {k['ratio_p50']:.2f}x")
    for name in ("ui_key_latency_idle_s", "ui_key_latency_during_eval_s", "ui_key_latency_during_training_s"):
        v = res[name]
        lag = f", UI loop lag p95 {1000 * v['loop_lag_p95']:.0f} ms" if "loop_lag_p95" in v else ""
        print(f"{name}: p50 {1000 * v['p50']:.1f} ms, p95 {1000 * v['p95']:.1f} ms{lag}")
    t = res["training_samples_per_s"]
    print(f"training throughput: in app {t['in_app']:,.0f} samples/s, headless {t['headless']:,.0f} samples/s, "
          f"ratio {t['ratio']:.2f}")


if __name__ == "__main__":
    main()
