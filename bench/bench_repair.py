"""Benchmark of the defended ES sweep (issue 30), side by side in one run on the embedded model: the ES
sweep n = 0..3 over the built-in records under each defense that runs its own forwards (``heads``,
``attention``, ``steer``: hooks for the whole sweep; ``contrastive``: the plain forwards plus every
target token's full log-probability rows) against the plain sweep (``efficacy_curve``) on the same
records, batch and scoring (whole target); goal: each defended sweep within 1.5x of the plain one.

The defenses' settings are fixed here (no selection is timed): heads L23H1, L11H5, L29H0 at α = 0 (the
top three of the tiny grid's selection), attention in every block at α = 0.1, contrastive at α = 1,
steer at the middle block at α = 1 with v from the first 4 records. The sweeps are interleaved (each repeat
times the plain one, then every defended one) and each time is the median over the repeats.

Usage: ``.venv/bin/python bench/bench_repair.py [--model M] [--limit 32] [--repeats 3] [--threads N]``.
Writes ``bench/results/repair.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_trace import timed  # the trace bench's timer, shared

N_MAX = 3
GOAL = 1.5


def main() -> int:
    from app_harness import machine, write_result

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's; 1 on shared, busy cores)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "repair.json"))
    args = ap.parse_args()

    import torch

    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.defenses import Defense, steer_vector
    from engine.hijack.efficacy import efficacy_curve
    from engine.hijack.efficacy_defended import defended_curve
    from engine.hijack.lm import load_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    lm = load_lm(args.model, device="cpu")
    records = load_counterfact("builtin", limit=args.limit)
    mid = lm.n_layers // 2
    defenses = [Defense("heads", 0.0, heads=((23, 1), (11, 5), (29, 0))),
                Defense("attention", 0.1, blocks=tuple(range(lm.n_layers))),
                Defense("contrastive", 1.0),
                Defense("steer", 1.0, blocks=(mid,), v=steer_vector(lm, records[:4], "not-think", N_MAX, mid))]

    def plain():
        return efficacy_curve(lm, records, "not-think", N_MAX, scoring="whole", batch_size=args.batch_size)

    plain()  # warm-up
    runs = [("plain", plain)] + [(d.name, lambda d=d: defended_curve(lm, records, "not-think", N_MAX, d, scoring="whole",
                                                                      batch_size=args.batch_size)) for d in defenses]
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    curves = {}
    for _ in range(args.repeats):  # interleaved: a change of load on the shared cores hits every sweep alike
        for name, fn in runs:
            s, curves[name] = timed(fn, 1)
            times[name].append(s)
    plain_s = statistics.median(times["plain"])
    base = curves["plain"]
    res = {**machine(" ".join(sys.argv)), "model": lm.name, "records": len(records), "n_max": N_MAX,
           "batch_size": args.batch_size, "threads": torch.get_num_threads(), "repeats": args.repeats,
           "goal": GOAL, "plain_s": plain_s, "plain_times": times["plain"], "plain_es": [p.es for p in base.curve],
           "defenses": []}
    print(f"{lm.name}, {len(records)} records, n = 0..{N_MAX}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads: plain sweep {plain_s:.2f} s, ES {[round(p.es, 3) for p in base.curve]}")
    for d in defenses:
        s = statistics.median(times[d.name])
        ratio = s / plain_s
        got = curves[d.name]
        res["defenses"].append({"name": d.name, "params": d.params, "seconds": s, "times": times[d.name],
                                "ratio": ratio, "es": [p.es for p in got.curve]})
        print(f"  {d.name:12s} {s:6.2f} s  {ratio:.2f}x plain (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'not met'})"
              f"  ES {[round(p.es, 3) for p in got.curve]}")
    res["load_before"], res["load_after"] = load0, os.getloadavg()
    write_result(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
