"""Benchmark of attribution patching (issue 31), side by side in one run on the embedded model: the
estimate of every measure of the full trace (``engine.hijack.atp``: one forward of each prompt, one
backward, the knockouts' attention recomputed) against the exact full trace (``engine.hijack.trace``:
every restore at every prompt position, six knockouts, every head), on the Figure 1 prompt
("The Eiffel Tower is not in Chicago." x 8 + "The Eiffel Tower is in"); goal >= 20x. Then their
agreement per measure family (``engine.hijack.atp_agreement``).

Usage: ``.venv/bin/python bench/bench_atp.py [--model M] [--repeats 3] [--threads N]``. Writes ``bench/results/atp.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_trace import FIG1, timed  # the trace bench's prompt and timer, shared


def main() -> int:
    from app_harness import machine, write_result

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's; 1 on shared, busy cores)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "atp.json"))
    args = ap.parse_args()

    import torch

    from engine.hijack import trace as T
    from engine.hijack.atp import atp
    from engine.hijack.atp_agreement import agreement, attention_entropy, summary_lines
    from engine.hijack.lm import load_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    lm = load_lm(args.model, device="cpu")
    pair = T.prepare(lm, "The Eiffel Tower is in", FIG1, " Paris", " Chicago")
    atp(lm, pair)  # warm-up
    atp_s, est = timed(lambda: atp(lm, pair), args.repeats)
    exact_s, exact = timed(lambda: T.trace(lm, pair), 1)
    agree = agreement(exact.to_dict(), est.to_dict(), attention_entropy(lm, pair))
    n_int = (3 * lm.n_layers * len(pair.positions) + 6 * lm.n_layers + lm.n_layers * len(exact.heads[0]))
    res = {**machine(" ".join(sys.argv)), "model": lm.name, "tokens": len(pair.ids), "blocks": lm.n_layers,
           "threads": torch.get_num_threads(), "interventions": n_int, "positions": len(pair.positions),
           "exact_s": exact_s, "atp_s": atp_s, "ratio": exact_s / atp_s, "agreement": agree,
           "clean": exact.clean.to_dict(), "hijacked": exact.hijacked.to_dict(),
           "load_before": load0, "load_after": os.getloadavg()}
    print(f"{lm.name}, {len(pair.ids)} tokens, {n_int} interventions: exact {exact_s:.2f} s, attribution "
          f"patching {atp_s:.3f} s ({exact_s / atp_s:.1f}x; goal >= 20x)")
    for line in summary_lines(agree):
        print(line)
    write_result(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
