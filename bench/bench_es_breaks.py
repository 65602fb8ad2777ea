"""How often an ES evaluation lets a waiting probe in (issue 22): the embedded model, the built-in
records of the Eiffel Tower's relation (P131), the relation scheme, n = 0..5, scored with 8, 4 and 2
rows per forward. Per batch size: the evaluation's wall time and the gaps between two of its breaks
(``progress`` calls: where the app's model thread answers a waiting probe), longest and median.
Chooses ``engine.hijack.jobs.APP_ES_BATCH_CPU``.

Usage: python bench/bench_es_breaks.py [--threads T] [--repeats R]. Writes bench/results/es_breaks.json.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from app_harness import RESULTS, bench_main, machine, write_result

HERE = Path(__file__).resolve().parent


def run(args) -> None:
    import torch

    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.efficacy import efficacy_curve
    from engine.hijack.lm import load_lm
    from engine.hijack.schemes import scheme_records
    from engine.job_context import JobContext

    torch.set_num_threads(args.threads)
    lm = load_lm(args.model, device="cpu")
    recs = load_counterfact("builtin")
    records, _ = scheme_records(recs, "relation", next(r for r in recs if r.subject == "The Eiffel Tower"))
    load0 = os.getloadavg()
    rows = []
    for _ in range(args.repeats):
        for batch in (8, 4, 2):
            breaks = [time.perf_counter()]
            efficacy_curve(lm, records, "relation", 5, batch_size=batch,
                           ctx=JobContext(pause=lambda b=breaks: b.append(time.perf_counter())))
            gaps = [b - a for a, b in zip(breaks, breaks[1:])]
            rows.append({"batch_size": batch, "wall_s": breaks[-1] - breaks[0], "longest_gap_s": max(gaps),
                         "median_gap_s": statistics.median(gaps), "breaks": len(gaps)})
            print(rows[-1], flush=True)
    res = {**machine(" ".join(sys.argv)), "threads": args.threads, "records": len(records), "rows": rows,
           "load": {"start": list(load0), "end": list(os.getloadavg())}}
    write_result(RESULTS / "es_breaks.json", res)
    print(markdown(res))


def markdown(res: dict) -> str:
    lines = ["| rows per forward | ES evaluation wall (median) | longest gap between breaks (max) | median gap |",
             "|---|---|---|---|"]
    for batch in (8, 4, 2):
        rs = [r for r in res["rows"] if r["batch_size"] == batch]
        lines.append(f"| {batch} | {statistics.median(r['wall_s'] for r in rs):.2f} s | "
                     f"{max(r['longest_gap_s'] for r in rs):.2f} s | "
                     f"{statistics.median(r['median_gap_s'] for r in rs):.3f} s |")
    la = res["load"]
    lines += ["", f"Measured {res['machine']['date']} with `{res['command']}` ({res['records']} records, "
              f"{len(res['rows']) // 3} repeats, torch threads {res['threads']}); load average (1 min) "
              f"{la['start'][0]:.2f} at the start, {la['end'][0]:.2f} at the end."]
    return "\n".join(lines)


def add_args(ap) -> None:
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    bench_main(__doc__, markdown, add_args, run)
