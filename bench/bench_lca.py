"""LCA engine benchmark (issues 2 and 10), every ratio measured side by side in one run.

1. Sampler tokens/s: one shared table of offsets z ⊕ z* (now) vs one inverse-CDF row per z* (before).
2. Training samples/s at m = 8, L = 64, d = d_a = 128, batch 256, end to end (sampling, forward,
   backward, AdamW): the exact token-level forward (now) vs the last-query formulation with the row
   sampler (before, ``forward_reference``) vs every position (``forward_full``). Steps interleaved.
3. Time and samples to 0.98 x the Bayes accuracy, default recipe, m = 5 and m = 8 (L = 64).
4. Samples/s idle vs with one competing busy process: automatic thread choice, and two fixed
   threads (torch's default here) for comparison.

Writes bench/results/lca.json; ``--markdown`` also rewrites the LCA section of BENCHMARKS.md from it.
Usage: python bench/bench_lca.py [--quick] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import threads  # noqa: E402
from engine.atomic import atomic_write_text  # noqa: E402
from engine.lca.config import recipe_config  # noqa: E402
from engine.lca.task import LCATask, TaskConfig  # noqa: E402
from engine.lca.trainer import Trainer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "lca.json"
SHAPE = {"m": 8, "L": 64, "d": 128, "d_a": 128, "batch_size": 256}


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _median_time(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench_sampler(repeats: int) -> dict:
    cfg = TaskConfig(m=8, L=64)
    new, rows = LCATask(cfg), LCATask(cfg, sampler="rows")
    g = torch.Generator().manual_seed(0)
    t_new, t_rows = [], []
    for _ in range(repeats):  # interleaved
        t_new.append(_median_time(lambda: new.sample(256, g), 5))
        t_rows.append(_median_time(lambda: rows.sample(256, g), 5))
    tokens = 256 * 64
    a, b = statistics.median(t_new), statistics.median(t_rows)
    return {"now_tokens_per_s": tokens / a, "before_tokens_per_s": tokens / b, "ratio": b / a}


def _trainer(seed=0, **kw) -> Trainer:
    flat = {**SHAPE, "steps": 10 ** 6, "eval_every": 10 ** 6, "eval_size": 256, "device": "cpu", "seed": seed,
            "lr": 0.003, **kw}
    return Trainer(recipe_config(flat))


def bench_training(steps: int) -> dict:
    now, before, full = _trainer(), _trainer(), _trainer()
    for tr in (before, full):  # the previous sampler and formulations
        tr.task = LCATask(tr.cfg.task, sampler="rows")
    before.model.forward = before.model.forward_reference
    full.model.forward = full.model.forward_full
    x, y = now.task.sample(256, torch.Generator().manual_seed(9))
    with torch.no_grad():
        diff = (now.model(x) - now.model.forward_reference(x)).abs().max().item()
    runs = {"now": now, "before": before, "every_position": full}
    times = {k: [] for k in runs}
    for tr in runs.values():
        tr.train_step()                                   # warm-up
    for _ in range(steps):                                # interleaved: drift hits all three
        for name, tr in runs.items():
            t0 = time.perf_counter()
            tr.train_step()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {f"{k}_samples_per_s": 256 / v for k, v in med.items()}
    out.update(ratio_vs_before=med["before"] / med["now"], ratio_vs_every_position=med["every_position"] / med["now"],
               max_logit_diff_vs_reference=diff)
    return out


def forward_macs(B=256, L=64, d=128, d_a=128, V=256) -> dict:
    """Multiply-adds of one forward at the benchmark shape (arithmetic, not measured): the
    previous last-query formulation vs the token-level one (per-sample path)."""
    before = B * L * d * d_a + B * d * d_a + B * L * d_a + B * L * d + B * d * d + B * d * V
    now = 2 * B * d * d_a + B * d * V + B * V * d + B * d * d + B * d * V
    return {"before": before, "now": now, "ratio": before / now}


def step_profile(steps: int) -> dict:
    """Where a step of the new engine goes: sampling vs forward + backward + AdamW."""
    tr = _trainer()
    tr.train_step()
    sample = _median_time(lambda: tr.task.sample(256, tr.stream), steps)
    step = _median_time(tr.train_step, steps)
    return {"step_ms": step * 1e3, "sampling_ms": sample * 1e3, "sampling_share": sample / step}


def time_to_bayes(m: int, L: int = 64, target: float = 0.98) -> dict:
    cfg = recipe_config({"m": m, "L": L, "eval_size": 4096, "device": "cpu"})
    t_setup = time.perf_counter()
    tr = Trainer(cfg)
    setup = time.perf_counter() - t_setup
    goal = target * tr.bayes_accuracy
    t0 = time.perf_counter()
    reached = None
    for ev in tr.events():
        if ev["event"] == "eval" and reached is None and ev["accuracy"] >= goal:
            reached = {"step": ev["step"], "seconds": time.perf_counter() - t0, "accuracy": ev["accuracy"]}
            break
    total = time.perf_counter() - t0
    t = cfg.train
    return {"m": m, "L": L, "d": cfg.model.d, "d_a": cfg.model.d_a, "batch": t.batch_size, "lr": t.lr,
            "schedule": t.schedule, "warmup": t.warmup, "steps_budget": t.steps, "eval_every": t.eval_every,
            "bayes_accuracy": tr.bayes_accuracy, "goal": goal, "reached": reached is not None,
            "step": reached["step"] if reached else tr.step,
            "samples": (reached["step"] if reached else tr.step) * t.batch_size,
            "seconds": reached["seconds"] if reached else total, "setup_seconds": setup,
            "accuracy": reached["accuracy"] if reached else (tr.last_eval.accuracy if tr.last_eval else None),
            "threads": torch.get_num_threads()}


def _throughput(tr: Trainer, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tr.train_step()
        n += 1
    return n * tr.cfg.train.batch_size / (time.perf_counter() - t0)


def bench_contention(seconds: float) -> dict:
    """Samples/s of the new engine, idle vs with one other process spinning on a core."""
    tr = _trainer()
    tr.train_step()
    out = {}
    idle_choice = threads.configure()
    out["idle_threads"] = idle_choice.threads
    out["idle_load"] = load()
    idle = [_throughput(tr, seconds)]
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        busy_choice = threads.configure()
        out["busy_threads"] = busy_choice.threads
        out["busy_measured_elsewhere"] = round(busy_choice.busy_elsewhere, 2)
        out["busy_auto_samples_per_s"] = _throughput(tr, seconds)
        threads.apply(2)
        out["busy_two_threads_samples_per_s"] = _throughput(tr, seconds)
        out["busy_load"] = load()
    finally:
        spin.kill()
        spin.wait()
    time.sleep(1.0)
    threads.apply(idle_choice.threads)
    idle.append(_throughput(tr, seconds))
    out["idle_samples_per_s"] = statistics.mean(idle)
    out["ratio_auto"] = out["busy_auto_samples_per_s"] / out["idle_samples_per_s"]
    out["ratio_two_threads"] = out["busy_two_threads_samples_per_s"] / out["idle_samples_per_s"]
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {len(threads.allowed_cpus())} cores, torch {torch.__version__}, Python {platform.python_version()}"


# ----------------------------------------------------------------------------- BENCHMARKS.md
def _n(v, digits=0):
    return f"{v:,.{digits}f}"


def render_markdown(r: dict) -> str:
    t, s, c, p = r["training"], r["sampler"], r["contention"], r["profile"]
    lines = [
        "## LCA engine — `bench/bench_lca.py` (issues 2 and 10)",
        "",
        f"Measured {r['date']} on {r['machine']}; load average {r['load_start']} at the start, "
        f"{r['load_end']} at the end ("
        + ("nearly idle" if max(r["load_start"][0], r["load_end"][0]) < 2 else "other work shared the machine: not idle")
        + "). "
        f"{r['threads']} torch thread(s) (automatic choice) unless noted. Data: `bench/results/lca.json`.",
        "",
        "| what (m = 8, L = 64, d = d_a = 128, batch 256) | now | before | ratio | goal |",
        "|---|---|---|---|---|",
        f"| training samples/s end to end (sampling, forward, backward, AdamW): exact token-level forward vs "
        f"the last-query formulation with the row sampler (both with fused AdamW) | {_n(t['now_samples_per_s'])} | "
        f"{_n(t['before_samples_per_s'])} | **{t['ratio_vs_before']:.1f}x** | ≥ 8x "
        f"{'✓' if t['ratio_vs_before'] >= 8 else '✗'} |",
        f"| training samples/s: vs the every-position formulation | {_n(t['now_samples_per_s'])} | "
        f"{_n(t['every_position_samples_per_s'])} | **{t['ratio_vs_every_position']:.1f}x** | |",
        f"| sampler tokens/s: one alias table of offsets z ⊕ z* vs one inverse-CDF row per z* | "
        f"{_n(s['now_tokens_per_s'])} | {_n(s['before_tokens_per_s'])} | **{s['ratio']:.1f}x** | |",
        "",
        f"Same logits as the reference formulation: max |Δ| = {t['max_logit_diff_vs_reference']:.1e}. "
        f"A step of the new engine takes {p['step_ms']:.1f} ms, of which sampling {p['sampling_ms']:.2f} ms "
        f"({100 * p['sampling_share']:.0f}%). The forward's arithmetic at this shape is "
        f"{forward_macs()['before'] / 1e6:.0f} M multiply-adds before vs {forward_macs()['now'] / 1e6:.0f} M now "
        f"(**{forward_macs()['ratio']:.1f}x**): the 8x goal is above what the reformulation removes here; what "
        "is left (W_Eᵀ W_V h, the token scores, h = W_E c) is dense products that every formulation needs. "
        "The ratio moves with the load (earlier runs: the git history of bench/results/lca.json).",
        "",
        "Time and samples to reach 0.98 × the Bayes accuracy with the default recipe (held-out set of 4096, "
        "ω = 0.5, β = 1, N = all; wall time of training and evaluations, after set-up):",
        "",
        "| m | L | recipe | Bayes | target | reached at | samples | wall | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in r["to_bayes"]:
        where = f"step {b['step']:,}" if b["reached"] else f"not reached in {b['steps_budget']:,} steps ({b['accuracy']:.3f})"
        goal = (f"≤ 60 s {'✓' if b['reached'] and b['seconds'] <= 60 else '✗'}" if b["m"] == 8 else "")
        lines.append(f"| {b['m']} | {b['L']} | d = {b['d']}, lr {b['lr']:g} {b['schedule']} (warm-up {b['warmup']}), "
                     f"batch {b['batch']} | {b['bayes_accuracy']:.3f} | {b['goal']:.3f} | {where} | "
                     f"{b['samples']:,} | {b['seconds']:.1f} s | {goal} |")
    lines += [
        "",
        "Sharing the cores: samples/s of the new engine idle vs while one other process spins on a core "
        f"(load {c['busy_load']}).",
        "",
        "| threads | idle | one busy process | ratio | goal |",
        "|---|---|---|---|---|",
        f"| automatic (`engine.threads`: {c['idle_threads']} idle, {c['busy_threads']} with the busy process, "
        f"which it measured as {c['busy_measured_elsewhere']} busy cores) | {_n(c['idle_samples_per_s'])} | "
        f"{_n(c['busy_auto_samples_per_s'])} | **{c['ratio_auto']:.2f}x** | ≥ 0.4x "
        f"{'✓' if c['ratio_auto'] >= 0.4 else '✗'} |",
        f"| 2 fixed (torch's default here) | {_n(c['idle_samples_per_s'])} (auto) | "
        f"{_n(c['busy_two_threads_samples_per_s'])} | {c['ratio_two_threads']:.2f}x | |",
        "",
    ]
    return "\n".join(lines)


def update_benchmarks_md(section: str, path: Path = ROOT / "BENCHMARKS.md", heading: str = "## LCA ") -> None:
    """Replace the section starting with ``heading`` (up to the next ``## ``) with ``section``; a missing
    section is appended."""
    text = path.read_text()
    if heading not in text:
        atomic_write_text(path, text.rstrip() + "\n\n" + section.rstrip() + "\n")
        return
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    end = len(text) if end < 0 else end + 1
    atomic_write_text(path, text[:start] + section.rstrip() + "\n\n" + text[end:])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (numbers noisier)")
    ap.add_argument("--markdown", action="store_true", help="also rewrite the LCA section of BENCHMARKS.md")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--render", action="store_true", help="only rewrite BENCHMARKS.md from the saved results")
    args = ap.parse_args(argv)
    if args.render:
        update_benchmarks_md(render_markdown(json.loads(args.out.read_text())))
        return {}
    q = args.quick
    r = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
         "load_start": load()}
    r["threads"] = threads.configure().threads
    r["sampler"] = bench_sampler(5 if q else 20)
    print(f"sampler: now {_n(r['sampler']['now_tokens_per_s'])} tok/s, before "
          f"{_n(r['sampler']['before_tokens_per_s'])} tok/s, {r['sampler']['ratio']:.1f}x", flush=True)
    r["training"] = t = bench_training(10 if q else 40)
    print(f"training: now {_n(t['now_samples_per_s'])}, before {_n(t['before_samples_per_s'])}, every-position "
          f"{_n(t['every_position_samples_per_s'])} samples/s: {t['ratio_vs_before']:.1f}x, "
          f"{t['ratio_vs_every_position']:.1f}x", flush=True)
    r["profile"] = step_profile(10 if q else 40)
    r["to_bayes"] = []
    for m in (5, 8):
        threads.configure()
        b = time_to_bayes(m)
        r["to_bayes"].append(b)
        print(f"m={m}: {'reached' if b['reached'] else 'NOT reached'} {b['goal']:.3f} at step {b['step']} "
              f"({b['samples']:,} samples) in {b['seconds']:.1f} s", flush=True)
    r["contention"] = c = bench_contention(3.0 if q else 8.0)
    print(f"contention: idle {_n(c['idle_samples_per_s'])}, busy auto ({c['busy_threads']} thr) "
          f"{_n(c['busy_auto_samples_per_s'])} = {c['ratio_auto']:.2f}x, busy 2 threads "
          f"{_n(c['busy_two_threads_samples_per_s'])} = {c['ratio_two_threads']:.2f}x", flush=True)
    r["load_end"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(r, indent=2) + "\n")
    print(f"results: {args.out}")
    if args.markdown:
        update_benchmarks_md(render_markdown(r))
        print("BENCHMARKS.md updated")
    return r


if __name__ == "__main__":
    main()
