"""The Figure 1 causal trace on the embedded model three ways (issue 28): float32 with the knockouts
keeping position 0 (the attention sink, now the default), float32 with position 0 masked too (the
definition before issue 28: SmolLM2 adds no BOS, so position 0 is the first prepended token), and
bfloat16 (the CUDA default) with the sink kept. Writes bench/results/fig1_dtypes.json and prints the
BENCHMARKS.md rows: how far bf16 is from float32 per measure against ``cross_dtype_tolerance``, and how
the knockouts moved when the sink stayed visible.

Usage: python bench/fig1_dtypes.py [--model M] [--n 8] [--out FILE]
       python bench/fig1_dtypes.py --markdown bench/results/fig1_dtypes.json
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app_harness import bench_main, machine  # noqa: E402

OUT = ROOT / "bench" / "results" / "fig1_dtypes.json"
PROMPT, SENTENCE, TRUE, FALSE = "The Eiffel Tower is in", "The Eiffel Tower is not in Chicago. ", " Paris", " Chicago"
RUNS = (("float32", False), ("float32", True), ("bfloat16", False))
CURVES = ("restore_last", "restore_attn_last", "restore_mlp_last", "knockout", "knockout_window",
          "knockout_mentions", "knockout_mentions_window", "knockout_rest", "knockout_rest_window")


def add_args(ap) -> None:
    ap.add_argument("--n", type=int, default=8, help="prepended sentences (Figure 1: 8)")


def run(args) -> dict:
    import torch

    from engine.atomic import jsonable
    from engine.hijack import trace as T
    from engine.hijack.lm import load_lm

    torch.set_num_threads(1)
    out = machine(" ".join(["python bench/fig1_dtypes.py", *sys.argv[1:]]))
    out["runs"] = {}
    for dtype, sink in RUNS:
        lm = load_lm(args.model, device="cpu", dtype=dtype)
        pair = T.prepare(lm, PROMPT, SENTENCE * args.n, TRUE, FALSE)
        t0 = time.perf_counter()
        d = jsonable(T.trace(lm, pair, knock_sink=sink).to_dict())
        d.pop("heads")  # kept: what the tables read (the per-block measures), not the heat maps
        for entry in d["layers"]:
            entry.pop("restore")
        d["seconds"] = round(time.perf_counter() - t0, 2)
        out["runs"][f"{dtype}{' sink masked' if sink else ''}"] = d
        print(f"{dtype} knock_sink={sink}: {d['seconds']} s", file=sys.stderr, flush=True)
    return out


def markdown(res: dict) -> str:
    from engine.hijack.tolerance import cross_dtype_tolerance

    runs = res["runs"]
    f32, old, bf = runs["float32"], runs["float32 sink masked"], runs["bfloat16"]
    n = len(f32["layers"])
    lines = [f"Figure 1 prompt, {f32['model']}, {len(f32['ids'])} tokens; machine {res['machine']}; "
             f"trace seconds: " + ", ".join(f"{k} {v['seconds']}" for k, v in runs.items()), "",
             "| | clean P(true) | clean P(false) | clean ld | hijacked P(true) | hijacked P(false) | hijacked ld |",
             "|---|---|---|---|---|---|---|"]
    for name, d in (("float32", f32), ("bfloat16", bf)):
        c, h = d["clean"], d["hijacked"]
        lines.append(f"| {name} | {c['p_true']:.4f} | {c['p_false']:.4f} | {c['logit_diff']:+.3f} | {h['p_true']:.4f} "
                     f"| {h['p_false']:.4f} | {h['logit_diff']:+.3f} |")
    scale = max(abs(e[k]["logit_diff"]) for e in f32["layers"] for k in CURVES)
    tol = cross_dtype_tolerance("bfloat16", scale)
    lines += ["", f"bf16 against float32, largest difference over the {n} blocks (tolerance "
              f"cross_dtype_tolerance = {tol:.3f} logits at max|logit_diff| {scale:.2f}):", "",
              "| measure | logit_diff | P(true) | P(false) |", "|---|---|---|---|"]
    for k in CURVES:
        diffs = [max(abs(a[k][f] - b[k][f]) for a, b in zip(f32["layers"], bf["layers"]))
                 for f in ("logit_diff", "p_true", "p_false")]
        lines.append(f"| {k} | {diffs[0]:.3f} | {diffs[1]:.4f} | {diffs[2]:.4f} |")
    lines += ["", "The sink: logit_diff per block, float32, position 0 kept (now) / masked (before issue 28):", "",
              "| block | knockout | knockout_window | knockout_rest_window | knockout_mentions_window |",
              "|---|---|---|---|---|"]
    for i in range(n):
        a, b = f32["layers"][i], old["layers"][i]
        lines.append(f"| {i} | " + " | ".join(f"{a[k]['logit_diff']:+.2f} / {b[k]['logit_diff']:+.2f}"
                                             for k in ("knockout", "knockout_window", "knockout_rest_window",
                                                       "knockout_mentions_window")) + " |")
    moved = {k: max(abs(a[k]["logit_diff"] - b[k]["logit_diff"]) for a, b in zip(f32["layers"], old["layers"]))
             for k in ("knockout", "knockout_window", "knockout_rest_window", "knockout_mentions_window")}
    lines += ["", "Largest move from keeping the sink: " + ", ".join(f"{k} {v:.2f}" for k, v in moved.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    bench_main(__doc__, markdown, add_args, run, out=OUT)
