"""Verify the default training recipe (``engine.lca.config.recipe``): for every m in {5, 6, 7, 8}
and L in {64, 128}, train with the recipe (defaults otherwise) and compare the final held-out
accuracy with 0.98 x the Bayes accuracy on the same held-out set. Writes bench/results/recipe.json.

Usage: python bench/recipe.py [--m 5 6] [--L 64] [--seed 0]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import threads  # noqa: E402
from engine.atomic import atomic_write_text  # noqa: E402
from engine.lca.config import recipe_config  # noqa: E402
from engine.lca.trainer import Trainer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "recipe.json"


def verify(m: int, L: int, seed: int = 0, target: float = 0.98) -> dict:
    cfg = recipe_config({"m": m, "L": L, "seed": seed, "device": "cpu", "eval_size": 4096})
    tr = Trainer(cfg)
    goal = target * tr.bayes_accuracy
    t0 = time.perf_counter()
    first = None
    for ev in tr.events():
        if ev["event"] == "eval" and first is None and ev["accuracy"] >= goal:
            first = {"step": ev["step"], "seconds": round(time.perf_counter() - t0, 2)}
    final = tr.last_eval
    return {"m": m, "L": L, "seed": seed, "config": cfg.flat(), "bayes_accuracy": tr.bayes_accuracy,
            "goal": goal, "accuracy": final.accuracy, "ratio": final.accuracy / tr.bayes_accuracy,
            "passed": final.accuracy >= goal, "first_reached": first, "steps": tr.step,
            "seconds": round(time.perf_counter() - t0, 2)}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, nargs="+", default=[5, 6, 7, 8])
    ap.add_argument("--L", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    choice = threads.configure()
    results = []
    for m in args.m:
        for L in args.L:
            r = verify(m, L, args.seed)
            r["threads"] = choice.threads
            r["load_avg"] = [round(v, 2) for v in os.getloadavg()]
            r["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            results.append(r)
            print(f"m={m} L={L}: accuracy {r['accuracy']:.4f} / Bayes {r['bayes_accuracy']:.4f} = "
                  f"{r['ratio']:.4f} {'PASS' if r['passed'] else 'FAIL'} ({r['steps']} steps, {r['seconds']:.0f} s)",
                  flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / "lca-tui-recipe.lock", "w") as lock:  # two runs may share one file
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = json.loads(args.out.read_text())["results"] if args.out.exists() else []
        mine = {(r["m"], r["L"]) for r in results}
        merged = sorted([r for r in old if (r["m"], r["L"]) not in mine] + results, key=lambda r: (r["m"], r["L"]))
        out = {"updated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "all_passed": all(r["passed"] for r in merged), "results": merged}
        atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    print(f"results: {args.out}")
    return results


if __name__ == "__main__":
    main()
