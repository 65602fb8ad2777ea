"""The app benchmarks in one run (issues 4, 5, 10 and 13), each also runnable alone:

1. ``bench_app_training.py``: training throughput inside the app vs the headless trainer.
2. ``bench_app_latency.py``: keystroke -> redrawn top-k bars in a pseudo-terminal.
3. ``bench_app_ui.py``: time to first frame; UI key latency idle, during an ES evaluation and
   during training.
The shared harness is ``app_harness.py``.

Usage: python bench/bench_app.py [--only latency|rest|training] [--keys N] [--threads T] [--model M]
       python bench/bench_app.py --markdown RESULT.json   (the BENCHMARKS.md rows of either result)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app_latency
import bench_app_training
import bench_app_ui


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        data = json.loads(Path(sys.argv[2]).read_text())
        md = bench_app_training.training_markdown if "ratio_app_idle" in data else bench_app_latency.latency_markdown
        print(md(data))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("latency", "rest", "training"), default=None,
                    help="latency: keystroke -> bars only; training: in-app training throughput only; "
                         "rest: everything but the latency part")
    ap.add_argument("--model", default=None, help="model the app loads (default: the embedded one)")
    bench_app_latency.add_args(ap)
    bench_app_training.add_args(ap)
    args = ap.parse_args()
    if args.only in (None, "rest", "training"):
        bench_app_training.run(args)
        if args.only == "training":
            return
    if args.only in (None, "latency"):
        bench_app_latency.run(args)
        if args.only == "latency":
            return
    bench_app_ui.run(args.keys)


if __name__ == "__main__":
    main()
