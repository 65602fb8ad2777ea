"""LCA benchmarks (issue 2), measured side by side in one run on this machine.

1. Sampler tokens/s: our vectorised inverse-CDF sampler vs a plain per-sample Python sampler.
2. Training samples/s: our last-query forward vs the straightforward every-position formulation
   (same losses, checked).
3. Wall-clock and samples to reach 0.98 x the Bayes accuracy (m = 5 and m = 8).

Usage: python bench/bench_lca.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time

import numpy as np
import torch

from engine.lca.config import RunConfig
from engine.lca.task import LCATask, TaskConfig
from engine.lca.trainer import Trainer


def python_sampler(task: LCATask, B: int, rng: random.Random):
    """The naive way: one sample, one position at a time, with ``random.choices``."""
    V, L = task.V, task.cfg.L
    p, pi = task.p.tolist(), task.pi.tolist()
    xs, ys = [], []
    for _ in range(B):
        y = rng.randrange(V)
        ctx = [rng.choices(range(V), weights=p[y])[0] for _ in range(L - 1)]
        ctx.append(rng.choices(range(V), weights=pi[y])[0])
        xs.append(ctx)
        ys.append(y)
    return xs, ys


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench_sampler(m=8, L=64, B=256, repeats=5):
    task = LCATask(TaskConfig(m=m, L=L))
    g = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    ours = timed(lambda: task.sample(B, g), repeats * 20)
    naive = timed(lambda: python_sampler(task, B, rng), repeats)
    tokens = B * L
    return {"ours_tokens_per_s": tokens / ours, "naive_tokens_per_s": tokens / naive, "ratio": naive / ours}


def _trainer(m, L, d, B, steps, seed=0, **kw):
    return Trainer(RunConfig.from_flat({"m": m, "L": L, "d": d, "d_a": d, "batch_size": B, "steps": steps,
                                        "eval_every": 10 ** 9, "eval_size": 256, "device": "cpu",
                                        "seed": seed, **kw}))


def bench_training(m=8, L=64, d=128, B=256, steps=30):
    ours, naive = _trainer(m, L, d, B, steps), _trainer(m, L, d, B, steps)
    naive.model.forward = naive.model.forward_full  # every position, then the last column
    ours.train_step(), naive.train_step()           # warm-up (one step each, same data)
    t_ours, t_naive, l_ours, l_naive = [], [], [], []
    for _ in range(steps):                           # interleaved: A B A B, so drift hits both
        t0 = time.perf_counter(); l_ours.append(ours.train_step()[0]); t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); l_naive.append(naive.train_step()[0]); t_naive.append(time.perf_counter() - t0)
    same = bool(np.allclose(l_ours, l_naive, rtol=1e-4, atol=1e-5))
    so, sn = statistics.median(t_ours), statistics.median(t_naive)
    return {"ours_samples_per_s": B / so, "naive_samples_per_s": B / sn, "ratio": sn / so,
            "same_losses": same, "max_loss_diff": float(np.max(np.abs(np.array(l_ours) - np.array(l_naive))))}


def time_to_bayes(m, L=64, d=64, B=256, lr=0.003, budget_s=300.0, target=0.98, eval_every=50):
    tr = _trainer(m, L, d, B, 10 ** 7, lr=lr, eval_every=eval_every, eval_size=4096)
    goal = target * tr.bayes_accuracy
    t0 = time.perf_counter()
    reached = None
    for ev in tr.events():
        if ev["event"] == "eval":
            if ev["accuracy"] >= goal:
                reached = ev
                break
            if time.perf_counter() - t0 > budget_s:
                break
    secs = time.perf_counter() - t0
    return {"m": m, "L": L, "d": d, "batch": B, "lr": lr, "bayes_accuracy": tr.bayes_accuracy, "goal": goal,
            "reached": reached is not None, "step": tr.step, "samples": tr.step * B, "seconds": secs,
            "accuracy": (reached or tr.last_eval.__dict__ if tr.last_eval else {}).get("accuracy")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats, shorter time-to-Bayes budget")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
                      f"torch {torch.__version__}"}
    out["sampler"] = bench_sampler(repeats=3 if args.quick else 5)
    print(f"sampler m=8 L=64 B=256: ours {out['sampler']['ours_tokens_per_s']:,.0f} tok/s, naive "
          f"{out['sampler']['naive_tokens_per_s']:,.0f} tok/s, ratio {out['sampler']['ratio']:.0f}x", flush=True)
    out["training"] = bench_training(steps=10 if args.quick else 30)
    t = out["training"]
    print(f"training m=8 L=64 d=128 B=256: ours {t['ours_samples_per_s']:,.0f} samples/s, every-position "
          f"{t['naive_samples_per_s']:,.0f} samples/s, ratio {t['ratio']:.1f}x, same losses: {t['same_losses']}",
          flush=True)
    budget = 60.0 if args.quick else 180.0
    out["to_bayes"] = []
    for m in (5, 8):
        r = time_to_bayes(m, budget_s=budget)
        out["to_bayes"].append(r)
        print(f"m={m}: {'reached' if r['reached'] else 'NOT reached'} 0.98 x Bayes ({r['goal']:.3f}) at step "
              f"{r['step']} = {r['samples']:,} samples in {r['seconds']:.1f} s (accuracy {r['accuracy']:.3f})", flush=True)
    if args.json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
