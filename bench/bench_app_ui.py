"""UI benchmarks (issues 4 and 5): time to first frame (a fresh process, interpreter start to the
first refresh, headless) and UI key latency while idle, while an ES evaluation runs and while a
training run trains (headless, Pilot).

Usage: python bench/bench_app_ui.py [--keys N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

from app_harness import key_latencies, loop_lag, pct, wait_for

TRAIN_CFG = {"m": "6", "L": "64", "d": "64", "d_a": "64", "batch_size": "256", "steps": "150",
             "eval_every": "1000", "eval_size": "512", "device": "cpu"}


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


async def app_bench(n_keys: int) -> dict:
    from lca_tui.app import LcaApp

    out = {}
    app = LcaApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.model_info is not None or app.model_error is not None, 300)
        await pilot.press("escape")
        hp = app.query_one("#hijack")
        idle = await key_latencies(pilot, ["v"], 20)
        out["ui_key_latency_idle_s"] = {"p50": statistics.median(idle), "p95": pct(idle, 0.95)}
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
        await pilot.press("f5")
        await pilot.pause(0.5)
        busy = await key_latencies(pilot, ["tab", "shift+tab"], 30)
        lag = await loop_lag(3.0)
        out["ui_key_latency_during_training_s"] = {"p50": statistics.median(busy), "p95": pct(busy, 0.95),
                                                   "loop_lag_p95": pct(lag, 0.95)}
        await wait_for(pilot, lambda: tp._current() is not None and tp._current().status == "completed", 600)
    return out


def run(n_keys: int) -> None:
    ff = first_frame()
    print(f"time to first frame (fresh process, headless): median {statistics.median(ff):.2f} s  "
          f"(runs: {', '.join(f'{v:.2f}' for v in ff)})", flush=True)
    res = asyncio.run(app_bench(n_keys))
    for name in ("ui_key_latency_idle_s", "ui_key_latency_during_eval_s", "ui_key_latency_during_training_s"):
        v = res[name]
        lag = f", UI loop lag p95 {1000 * v['loop_lag_p95']:.0f} ms" if "loop_lag_p95" in v else ""
        print(f"{name}: p50 {1000 * v['p50']:.1f} ms, p95 {1000 * v['p95']:.1f} ms{lag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=20, help="keys timed per phase")
    run(ap.parse_args().keys)


if __name__ == "__main__":
    main()
