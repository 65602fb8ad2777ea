"""Benchmark of the causal trace (issue 19), measured side by side in one run on the embedded model.

(a) One last-position trace of the Figure 1 prompt ("The Eiffel Tower is not in Chicago." x 8 + "The
    Eiffel Tower is in", 78 tokens): restore_last and the knockout of every prepended token at every
    block. Ours (``engine.hijack.device_check.last_position``: the hijacked keys/values shared, every
    intervention one row of one single-token forward) against the plain loop (one full forward per
    intervention, ``engine.hijack.trace_reference``; goal >= 15x) and against the same loop written
    with nnsight (``--nnsight DIR``: a folder nnsight is installed in, for the bench only), with the
    largest difference between the numbers.
(b) The full trace of the same prompt (restores at every prompt position, six knockouts, every head).
(c) The dataset trace: records per second over built-in records (not-think, n = 5, the curves'
    trace: last position only) and the cost of one record against one ES sweep point (one prompt
    of one record scored by ``efficacy_curve``).

Usage: ``.venv/bin/python bench/bench_trace.py [--model M] [--repeats 3] [--records 8] [--nnsight DIR]``.
Writes ``bench/results/trace.json``; ``--markdown`` prints the BENCHMARKS.md section from the results.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIG1 = "The Eiffel Tower is not in Chicago. " * 8


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def worst(a: dict, b: dict) -> float:
    return max(max(abs(x.p_true - y.p_true), abs(x.p_false - y.p_false), abs(x.logit_diff - y.logit_diff))
               for key in a for x, y in zip(a[key], b[key]))


def nnsight_loop(lm, pair, window: int):
    """restore_last and the all-prepended knockout at every block as an nnsight user writes them: one
    ``model.trace`` per intervention, the clean states saved in a first trace."""
    import nnsight
    import torch

    from engine.hijack.knockouts import knock_keys, knock_layers
    from engine.hijack.trace import measures

    model = nnsight.LanguageModel(lm.model, tokenizer=lm.tokenizer)
    ids, clean_ids = torch.tensor([list(pair.ids)]), torch.tensor([list(pair.clean_ids)])
    n_layers, n = lm.n_layers, len(pair.ids)
    saved = []
    with torch.inference_mode():
        with model.trace(clean_ids):
            for layer in range(n_layers):
                saved.append(model.model.layers[layer].output[0, -1].save())
        out = {"restore_last": [], "all": []}
        for layer in range(n_layers):
            with model.trace(ids):
                model.model.layers[layer].output[0, -1] = saved[layer]
                logits = model.lm_head.output[0, -1].save()
            out["restore_last"].append(measures(logits[None], pair.true_id, pair.false_id)[0])
        allowed = torch.ones((n, n), dtype=torch.bool).tril()
        allowed[n - 1, knock_keys(pair, "all")] = False
        for layer in range(n_layers):
            blocks = list(knock_layers(layer, "all", window, n_layers))
            with model.trace(ids):
                for b in blocks:
                    args, kwargs = model.model.layers[b].self_attn.inputs
                    kwargs["attention_mask"] = allowed[None, None]
                    model.model.layers[b].self_attn.inputs = (args, kwargs)
                logits = model.lm_head.output[0, -1].save()
            out["all"].append(measures(logits[None], pair.true_id, pair.false_id)[0])
    return out


def markdown(res: dict, view: dict | None = None, view64: dict | None = None) -> str:
    """The BENCHMARKS.md section from ``trace.json`` (and ``trace_view.json``, its 64-row run)."""
    lp, ds = res["last_position"], res["dataset"]
    lines = [f"Measured {res['machine']['date']} UTC, {res['machine']['cpus']} cores, {res['threads']} torch threads, "
             f"load average {res['load']['start'][0]:.2f} at the start, {res['load']['end'][0]:.2f} at the end. "
             f"Model {res['model']}, the Figure 1 prompt ({res['tokens']} tokens, {res['blocks']} blocks). "
             "Data: `bench/results/trace.json`.", "",
             "| what | ours | other | ratio | goal | numbers |", "|---|---|---|---|---|---|",
             f"| last-position trace: restore_last + knockout at every block ({res['interventions']} interventions) "
             f"vs the plain loop (one full forward each) | {lp['ours_s']:.3f} s | {lp['plain_s']:.2f} s | "
             f"**{lp['ratio']:.1f}x** | ≥ 15x {'✓' if lp['ratio'] >= 15 else '✗'} | max abs diff {lp['max_abs_diff']:.1e} |"]
    if "nnsight_s" in lp:
        lines.append(f"| the same vs the loop written with nnsight {lp['nnsight_version']} (one `model.trace` per "
                     f"intervention) | {lp['ours_s']:.3f} s | {lp['nnsight_s']:.2f} s | **{lp['nnsight_ratio']:.1f}x** | "
                     f"| max abs diff {lp['nnsight_max_abs_diff']:.1e} |")
    lines += [f"| the full trace ({res['full_trace_rows']} interventions: restores at every prompt position, six "
              f"knockouts and every head at every block) | {res['full_trace_s']:.2f} s | | | | |",
              f"| dataset trace, {ds['records']} built-in records, not-think n = 5 (last position, heads included) | "
              f"{ds['records_per_s']:.2f} records/s | one ES sweep point {ds['es_point_s'] * 1000:.0f} ms | one record = "
              f"**{ds['record_vs_es_point']:.0f}** ES points | | |"]
    if res.get("chunks"):
        lines += ["", "| rows per batched forward (the trace above) | whole trace | longest gap between two chances to "
                  "answer a probe | median gap |", "|---|---|---|---|"]
        lines += [f"| {c['rows']} | {c['trace_s']:.2f} s | {c['max_gap_s']:.3f} s | {c['median_gap_s']:.3f} s |"
                  for c in res["chunks"]]
    if view:
        m = view["median"]
        lines += ["", f"The Trace view (`bench/bench_trace_view.py`, {view['machine']['date']} UTC, load "
                  f"{view['load']['start'][0]:.2f}): keys typed at the start of the Figure 1 prompt in the app (120 x 40), "
                  "medians over keys. Data: `bench/results/trace_view.json`.", "",
                  "| rows per batched forward | key → bars | key → bars while a trace runs | key → trace on screen | "
                  "probe alone | trace alone |", "|---|---|---|---|---|---|"]
        for label, v in (("64 (before)", view64), ("16 (the app's)", view)):
            if v:
                m = v["median"]
                lines.append(f"| {label} | {m['key_to_bars_s'] * 1000:.0f} ms | {m['key_to_bars_during_trace_s'] * 1000:.0f}"
                             f" ms | {m['key_to_trace_s']:.2f} s | {m['probe_alone_s'] * 1000:.0f} ms | "
                             f"{m['trace_alone_s']:.2f} s |")
    return "\n".join(lines)


def main() -> int:
    from app_harness import machine, write_result

    if sys.argv[1:2] == ["--markdown"]:
        import json

        def read(name):
            path = Path(__file__).parent / "results" / name
            return json.loads(path.read_text()) if path.is_file() else None

        print(markdown(read("trace.json"), read("trace_view.json"), read("trace_view_chunk64.json")))
        return 0

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--records", type=int, default=8)
    ap.add_argument("--nnsight", metavar="DIR", help="a folder with nnsight installed (pip install --target DIR)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "trace.json"))
    args = ap.parse_args()

    import torch

    from engine.experiments.mechanism import trace_all
    from engine.hijack import device_check as D
    from engine.hijack import trace as T
    from engine.hijack import trace_reference as R
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.efficacy import efficacy_curve
    from engine.hijack.lm import load_lm
    from engine.job_context import JobContext

    load0 = os.getloadavg()
    lm = load_lm(args.model, device="cpu")
    pair = T.prepare(lm, "The Eiffel Tower is in", FIG1, " Paris", " Chicago")
    window = min(T.DEFAULT_WINDOW, lm.n_layers)
    D.last_position(lm, pair)  # warm-up
    fast_s, fast = timed(lambda: D.last_position(lm, pair, window=window), args.repeats)
    plain_s, plain = timed(lambda: R.last_position_trace(lm, pair, window, variants=("all",)), 1)
    res = {**machine(" ".join(sys.argv)), "model": lm.name, "tokens": len(pair.ids), "blocks": lm.n_layers,
           "threads": torch.get_num_threads(), "interventions": 2 * lm.n_layers,
           "last_position": {"ours_s": fast_s, "plain_s": plain_s, "ratio": plain_s / fast_s,
                             "max_abs_diff": worst(fast, plain)}}
    print(f"(a) {len(pair.ids)} tokens, {2 * lm.n_layers} interventions: ours {fast_s:.3f} s, plain loop "
          f"{plain_s:.2f} s ({plain_s / fast_s:.1f}x), max |diff| {worst(fast, plain):.2e}")
    if args.nnsight:
        sys.path.insert(0, args.nnsight)
        import nnsight

        nnsight_loop(lm, pair, window)  # warm-up (nnsight compiles the trace bodies)
        nn_s, nn = timed(lambda: nnsight_loop(lm, pair, window), 1)
        res["last_position"].update({"nnsight_s": nn_s, "nnsight_ratio": nn_s / fast_s,
                                     "nnsight_version": nnsight.__version__, "nnsight_max_abs_diff": worst(fast, nn)})
        print(f"    nnsight {nnsight.__version__} loop {nn_s:.2f} s ({nn_s / fast_s:.1f}x ours), "
              f"max |diff| {worst(fast, nn):.2e}")
    full_s, full = timed(lambda: T.trace(lm, pair), 1)
    res["full_trace_s"] = full_s
    res["full_trace_rows"] = (3 * lm.n_layers * len(pair.positions) + len(T.KNOCKOUTS) * lm.n_layers
                              + lm.n_layers * len(full.heads[0]))
    print(f"(b) full trace ({res['full_trace_rows']} interventions, {len(pair.positions)} prompt positions): "
          f"{full_s:.2f} s")
    records = load_counterfact("builtin", limit=args.records, seed=0)
    ds_s, (traced, _) = timed(lambda: trace_all(lm, records, "not-think", 5), 1)
    es_s, _ = timed(lambda: efficacy_curve(lm, records, "not-think", 5), 1)
    per_point = es_s / (len(records) * 6)
    res["dataset"] = {"records": len(records), "traced": len(traced), "seconds": ds_s,
                      "records_per_s": len(traced) / ds_s, "es_sweep_s": es_s, "es_point_s": per_point,
                      "record_vs_es_point": (ds_s / len(traced)) / per_point}
    print(f"(c) dataset trace: {len(traced) / ds_s:.2f} records/s; one record costs "
          f"{(ds_s / len(traced)) / per_point:.0f} ES sweep points ({per_point * 1000:.0f} ms each)")
    chunks = []
    for chunk in (64, 32, 16, 8):  # (d) the longest wait a probe has while the app's trace runs
        stamps = []
        t0 = time.perf_counter()
        T.trace(lm, pair, chunk=chunk, ctx=JobContext(pause=lambda s=stamps: s.append(time.perf_counter())))
        total = time.perf_counter() - t0
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        chunks.append({"rows": chunk, "trace_s": total, "max_gap_s": max(gaps), "median_gap_s": statistics.median(gaps)})
        print(f"(d) {chunk} rows per forward: trace {total:.2f} s, longest gap between probe chances {max(gaps):.3f} s")
    res["chunks"] = chunks
    res["load"] = {"start": list(load0), "end": list(os.getloadavg())}
    write_result(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
