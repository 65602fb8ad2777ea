"""Benchmark (issue 30): select + evaluate every defense on the built-in records, both embedded models:
the wall time of ``engine.hijack.repair.repair`` (what ``lca-tui repair --dataset builtin`` runs) per
model, one model after the other in this process, the model's load not counted; the scores it gives
are kept beside the time (each defense's ES before -> after, clean and reverse accuracy on the
evaluation half).

Usage: ``.venv/bin/python bench/bench_repair_select.py [--models smollm2-135m gemma3-270m] [--limit N]
[--scheme not-think] [--n 3] [--threads T]``; ``--markdown FILE`` prints the BENCHMARKS.md rows.
Writes ``bench/results/repair_select.json``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_harness import bench_main, machine

OUT = Path(__file__).parent / "results" / "repair_select.json"


def add_args(ap) -> None:
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--limit", type=int, default=None, help="records (default: all built-in records)")
    ap.add_argument("--scheme", default="not-think")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")


def run(args) -> dict:
    import gc

    import torch

    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.lm import load_lm
    from engine.hijack.repair import repair
    from engine.job_context import JobContext

    if args.threads:
        torch.set_num_threads(args.threads)
    records = load_counterfact("builtin", limit=args.limit)
    res = {**machine(" ".join(sys.argv)), "records": len(records), "scheme": args.scheme, "n": args.n,
           "batch_size": args.batch_size, "threads": torch.get_num_threads(), "load_before": os.getloadavg(),
           "models": []}
    for name in args.models:
        lm = load_lm(name, device="cpu")
        last = {"t": time.perf_counter()}

        def progress(done, total, _partial=None, last=last, name=name):
            if time.perf_counter() - last["t"] > 30:
                last["t"] = time.perf_counter()
                print(f"  {name}: {done}/{total}", file=sys.stderr, flush=True)

        t0 = time.perf_counter()
        data = repair(lm, records, args.scheme, args.n, batch_size=args.batch_size, ctx=JobContext(progress))
        seconds = time.perf_counter() - t0
        rows = [{"name": d["name"], "params": d["params"], "es_before": d["es_before"], "es_after": d["es_after"],
                 "es_ci": d["es_ci"], "clean_before": d["clean_accuracy_before"],
                 "clean_after": d["clean_accuracy_after"], "reverse_before": d["reverse_accuracy_before"],
                 "reverse_after": d["reverse_accuracy_after"]} for d in data["defenses"]]
        res["models"].append({"model": lm.name, "seconds": seconds, "selection": len(data["selection"]),
                              "evaluation": len(data["evaluation"]), "defenses": rows,
                              "load_after": os.getloadavg()})
        print(f"{lm.name}: select + evaluate on {len(records)} records in {seconds:.0f} s", file=sys.stderr)
        del lm
        gc.collect()
    res["load_after"] = os.getloadavg()
    return res


def _settings(p: dict) -> str:
    from engine.hijack.defenses import settings_text

    rest = settings_text(p, ", ").replace("|v|", "‖v‖")  # a pipe would end the markdown cell
    return f"α {p['alpha']:g}" + (f", {rest}" if rest else "")


def markdown(r: dict) -> str:
    def arrow(a, b) -> str:
        return "–" if a is None else f"{a:.3f} → {b:.3f}"

    out = [f"Measured {r['machine']['date']} UTC, {r['machine']['cpus']} cores, {r['threads']} torch thread(s), "
           f"load average {r['load_before'][0]:.2f} at the start (after: {r['load_after'][0]:.2f}). "
           f"{r['records']} built-in records, scheme {r['scheme']}, n = {r['n']}, batch {r['batch_size']}, "
           "every defense (drop-context, heads, attention, contrastive, steer) selected on the even records and "
           "scored on the odd ones. Data: `bench/results/repair_select.json`.", "",
           "| model | wall time (select + evaluate) | defense | settings chosen | ES before → after | drop, 95% CI | "
           "clean acc. | reverse acc. |",
           "|---|---|---|---|---|---|---|---|"]
    for m in r["models"]:
        for i, d in enumerate(m["defenses"]):
            head = (f"{m['model']} ({m['selection']} + {m['evaluation']} records)", f"{m['seconds']:.0f} s") \
                if i == 0 else ("", "")
            lo, hi = d["es_ci"]
            out.append(f"| {head[0]} | {head[1]} | {d['name']} | {_settings(d['params'])} | "
                       f"{arrow(d['es_before'], d['es_after'])} | {lo:+.3f} … {hi:+.3f} | "
                       f"{arrow(d['clean_before'], d['clean_after'])} | "
                       f"{arrow(d['reverse_before'], d['reverse_after'])} |")
    return "\n".join(out)


if __name__ == "__main__":
    bench_main(__doc__, markdown, add_args, run, out=OUT)
