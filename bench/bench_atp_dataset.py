"""Agreement of attribution patching with the exact trace over records (issue 31): on the built-in
records (not-think, n = 3, the first 40 after a seed-0 shuffle) and both embedded models, each record's
last-position trace (``trace(..., every_position=False)``: restore_last of the three kinds, the six
knockouts per block, every head) against its estimate (``engine.hijack.atp`` on the same pair cut to
the last position), per measure family: the median over records of the Spearman rank correlation and
of recall@5 / @10 of the exact trace's largest effects, and the largest misses over all records.
Writes bench/results/atp_dataset.json and prints the BENCHMARKS.md rows.

Usage: python bench/bench_atp_dataset.py [--models smollm2-135m gemma3-270m] [--limit 40] [--n 3]
       python bench/bench_atp_dataset.py --markdown bench/results/atp_dataset.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app_harness import machine, write_result  # noqa: E402

OUT = ROOT / "bench" / "results" / "atp_dataset.json"


def run(models, limit: int, n: int, scheme: str = "not-think") -> dict:
    import torch

    from engine.errors import UserError
    from engine.hijack.atp import atp
    from engine.hijack.atp_agreement import agreement
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.lm import load_lm
    from engine.hijack.trace import trace
    from engine.hijack.trace_dataset import record_pair

    torch.set_num_threads(1)
    out = machine(" ".join(["python bench/bench_atp_dataset.py", *sys.argv[1:]]))
    out.update({"scheme": scheme, "n": n, "limit": limit, "models": {}})
    records = load_counterfact("builtin", limit=limit, seed=0)
    for name in models:
        lm = load_lm(name, device="cpu")
        per: dict[str, dict[str, list]] = {}
        misses: dict[str, list] = {}
        skipped, t_exact, t_atp = [], 0.0, 0.0
        for rec in records:
            try:
                pair = record_pair(lm, rec, scheme, n)
            except UserError as exc:
                skipped.append({"case_id": rec.case_id, "reason": str(exc)})
                continue
            last = replace(pair, positions=pair.positions[-1:], unaligned=())
            t0 = time.perf_counter()
            exact = trace(lm, pair, every_position=False).to_dict()
            t1 = time.perf_counter()
            est = atp(lm, last).to_dict()
            t_exact, t_atp = t_exact + t1 - t0, t_atp + time.perf_counter() - t1
            for fam, a in agreement(exact, est, None, misses=1)["families"].items():
                got = per.setdefault(fam, {"spearman": [], "recall@5": [], "recall@10": []})
                for key in got:
                    if a[key] is not None:
                        got[key].append(a[key])
                for m in a["misses"]:
                    misses.setdefault(fam, []).append({"case_id": rec.case_id, **{k: m[k] for k in
                                                                                  ("component", "exact", "estimate")}})
        out["models"][name] = {
            "records": len(records) - len(skipped), "skipped": skipped,
            "exact_s": round(t_exact, 2), "atp_s": round(t_atp, 2),
            "families": {fam: {key: {"median": statistics.median(v) if v else None, "n": len(v)}
                               for key, v in got.items()} | {
                "worst": sorted(misses.get(fam, []), key=lambda m: -abs(m["exact"] - m["estimate"]))[:3]}
                for fam, got in per.items()}}
        print(f"{name}: {out['models'][name]['records']} records, exact {t_exact:.1f} s, estimate {t_atp:.1f} s",
              file=sys.stderr, flush=True)
    return out


def markdown(res: dict) -> str:
    lines = [f"Built-in records, {res['scheme']} n = {res['n']}, the first {res['limit']} after a seed-0 shuffle; "
             f"last-position trace per record; machine {res['machine']}.", ""]
    for name, m in res["models"].items():
        lines += [f"**{name}**: {m['records']} records ({len(m['skipped'])} skipped), exact {m['exact_s']} s, "
                  f"estimate {m['atp_s']} s in all.", "",
                  "| family | Spearman (median) | recall@5 | recall@10 | largest miss: record, component, exact → estimate |",
                  "|---|---|---|---|---|"]
        for fam, f in m["families"].items():
            w = f["worst"][0] if f["worst"] else None
            miss = f"{w['case_id']}, {w['component']}: {w['exact']:+.2f} → {w['estimate']:+.2f}" if w else "—"

            def med(key, f=f):
                v = f[key]["median"]
                return "—" if v is None else f"{v:.3f}"

            lines.append(f"| {fam} | {med('spearman')} | {med('recall@5')} | {med('recall@10')} | {miss} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        print(markdown(json.loads(Path(sys.argv[2]).read_text())))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    res = run(args.models, args.limit, args.n)
    write_result(args.out, res)
    print(markdown(res))


if __name__ == "__main__":
    main()
