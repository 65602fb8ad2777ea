"""Benchmark of the hijack engine on the embedded models, measured side by side in one run.

(a) probe after appending one character to an ~80-token prompt: cached probe vs a full recompute
    (goal >= 4x) and vs one cached single-token forward of the same model (goal within 1.5x);
(b) ES sweep n = 0..5 over the built-in CounterFact set: records x n per second of the
    prefix-shared batched sweep vs the naive loop scoring one prompt and one target at a time
    (goal >= 8x), with identical ES.
Each model named by ``--model`` (default: smollm2-135m, then gemma3-270m, a sliding-window model whose
probes reuse the prefix cache inside its 512-token window) gets both.

Usage: ``.venv/bin/python bench/bench_hijack.py [--model M ...] [--repeats 7] [--limit K] [--naive-limit K]
[--batch-size B] [--probe-only]``. Medians over repeats; torch's thread count is left at its default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = ("The Eiffel Tower is located in the city of Paris, which is the capital of France and one of "
          "the most visited cities in the world. Every year millions of tourists come from all over the "
          "globe to see its famous landmarks, its museums and its small cafes along the river, and to "
          "walk in its parks and gardens in the spring. Do not think of Chicago. The Eiffel Tower is in")
TARGETS = [" Paris", " Chicago"]


def median_time(fn, repeats: int, setup=None) -> float:
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_probe(lm, repeats: int) -> list[tuple[str, str, str]]:
    import torch
    from transformers import DynamicCache

    from engine.hijack.probe import Prober

    prober = Prober(lm)
    n_tokens = len(lm.encode(PROMPT))
    prober.probe(PROMPT, TARGETS)  # warm-up
    state = {"text": PROMPT}

    def prime():  # the cache holds the previous prompt, as in the live panel
        state["text"] = PROMPT + " P"
        prober.probe(state["text"], TARGETS)

    letters = iter("aristotle" * 100)
    t_cached = median_time(lambda: prober.probe(state["text"] + next(letters), TARGETS), repeats, prime)

    def reset():
        prober.reset()

    t_full = median_time(lambda: prober.probe(PROMPT + " Pa", TARGETS), repeats, reset)

    from engine.hijack.kv import cache_kwarg

    ids = torch.tensor([lm.encode(PROMPT)])
    with torch.inference_mode():
        cache = DynamicCache()
        lm.model(ids[:, :-1], use_cache=True, **{cache_kwarg(lm): cache})
        kv = [(layer.keys, layer.values) for layer in cache.layers]

    def single():
        with torch.inference_mode():
            lm.model(ids[:, -1:], use_cache=True, **{cache_kwarg(lm): DynamicCache(ddp_cache_data=kv)})

    t_single = median_time(single, repeats)
    prober.reset()
    prober.probe(PROMPT + " P", TARGETS)
    reused = prober.probe(PROMPT + " Pa", TARGETS).reused_prefix  # what the timed cached probes reused
    return [
        (f"probe, +1 char, cached ({n_tokens}-token prompt)", f"{t_cached * 1e3:.1f} ms",
         f"{reused} tokens served from the cache"),
        ("probe, full recompute", f"{t_full * 1e3:.1f} ms",
         f"{t_full / t_cached:.1f}x slower than cached (goal >= 4x)"),
        ("one cached single-token forward", f"{t_single * 1e3:.1f} ms",
         f"cached probe = {t_cached / t_single:.2f}x of it (goal <= 1.5x)"),
    ]


def bench_sweep(lm, limit, batch_size: int, naive_limit) -> list[tuple[str, str, str]]:
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.efficacy import efficacy_curve, naive_efficacy_curve

    records = load_counterfact("builtin", limit=limit)
    n_max = 5
    t0 = time.perf_counter()
    fast = efficacy_curve(lm, records, "not-think", n_max, batch_size=batch_size)
    t_fast = time.perf_counter() - t0
    naive_records = records[:naive_limit] if naive_limit else records
    t0 = time.perf_counter()
    slow = naive_efficacy_curve(lm, naive_records, "not-think", n_max)
    t_slow = time.perf_counter() - t0
    rate_fast = len(records) * (n_max + 1) / t_fast
    rate_slow = len(naive_records) * (n_max + 1) / t_slow
    if naive_limit:
        ref = efficacy_curve(lm, naive_records, "not-think", n_max, batch_size=batch_size)
        same = [p.es for p in ref.curve] == [p.es for p in slow.curve]
    else:
        same = [p.es for p in fast.curve] == [p.es for p in slow.curve]
    es = " ".join(f"{p.es:.3f}" for p in fast.curve)
    return [
        (f"ES sweep n=0..5, shared+batched ({len(records)} records, batch {batch_size})",
         f"{rate_fast:.1f} rec*n/s", f"ES(n) = {es}"),
        (f"ES sweep n=0..5, naive ({len(naive_records)} records)", f"{rate_slow:.1f} rec*n/s",
         f"shared is {rate_fast / rate_slow:.1f}x faster (goal >= 8x); identical ES: {same}"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="alias, HF id or folder (repeatable; default: both embedded)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--limit", type=int, default=None, help="records of the built-in set (default: all)")
    ap.add_argument("--naive-limit", type=int, default=None, help="run the naive loop on the first K only")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--probe-only", action="store_true", help="skip the ES sweep (a)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: the GPU figures (bench/device_check.sh)")
    args = ap.parse_args()

    import gc

    import torch

    from engine.hijack.lm import load_lm

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in args.model or ["smollm2-135m", "gemma3-270m"]:
        lm = load_lm(name, device=args.device, progress=lambda m: print(m, file=sys.stderr))
        window = "none" if lm.kv_limit is None else lm.kv_limit
        show([("model", f"{lm.name} ({lm.n_layers} layers, sliding window {window}, {lm.device}, "
                        f"{torch.get_num_threads()} threads)", "")])
        show(bench_probe(lm, args.repeats))
        if not args.probe_only:
            show(bench_sweep(lm, args.limit, args.batch_size, args.naive_limit))
        del lm
        gc.collect()
    return 0


def show(rows) -> None:
    for name, value, note in rows:
        print(f"{name:<62}  {value:>14}  {note}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
