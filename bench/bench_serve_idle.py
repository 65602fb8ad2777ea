"""Idle CPU of a served app with a browser tab open (issue 23): ``lca-tui serve`` on a tiny random
model, one headless Chromium tab (Playwright), then psutil ``cpu_percent`` of the tab's app process
over ``SECONDS`` of doing nothing. Writes ``bench/results/serve_idle.json``. A figure, not a test.

    .venv/bin/python bench/bench_serve_idle.py [--seconds 10] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--model", help="model folder (default: a tiny random Llama made on the fly)")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after the first frame before measuring")
    args = ap.parse_args()

    from browser.conftest import find_chromium, free_port, stop_group, wait_for_port
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="lca-serve-bench-"))
    model = args.model
    if model is None:
        from conftest import make_tiny_lm

        model = str(make_tiny_lm(tmp / "tiny", "llama"))
    env = {**os.environ, "LCA_TUI_DATA_DIR": str(tmp / "data"), "LCA_TUI_CONFIG_DIR": str(tmp / "cfg")}
    port = free_port()
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "lca_tui", "--model", model, "serve", "--port", str(port)],
                                  env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    load_before = os.getloadavg()
    try:
        wait_for_port(port, server, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=find_chromium(), headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            url = f"http://127.0.0.1:{port}"
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url) else r.abort())
            page.goto(url + "/")
            page.wait_for_function("() => document.body.classList.contains('-first-byte')", timeout=90_000)
            end = time.monotonic() + 90
            app = None
            while app is None and time.monotonic() < end:
                for c in psutil.Process(server.pid).children(recursive=True):
                    if "python" in c.name() and "serve" not in c.cmdline():
                        app = c
                time.sleep(0.2)
            assert app is not None, "no app process"
            page.wait_for_timeout(args.settle * 1000)  # model loaded, first probe answered
            app.cpu_percent(None)
            t0 = time.monotonic()
            page.wait_for_timeout(args.seconds * 1000)
            cpu = app.cpu_percent(None)
            measured = time.monotonic() - t0
            browser.close()
    finally:
        stop_group(server)
    result = {
        "what": "CPU % of one core used by the app process of an idle, connected browser tab",
        "cpu_percent": round(cpu, 1), "seconds": round(measured, 1), "settle_s": args.settle,
        "model": "tiny random llama" if args.model is None else args.model,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "cores": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    out = ROOT / "bench" / "results" / "serve_idle.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
