"""Training throughput inside the app (issue 10): the trainer panel's run (a thread worker posting
messages, its Governor's share of the cores) vs the headless trainer (``lca-tui train``'s loop) on
the recipe config for m = 6, L = 64: (a) app idle (model loaded, model thread idle), (b) while the
hijack panel runs an ES evaluation on the model thread. Written to bench/results/app_training.json.

Usage: python bench/bench_app_training.py [--train-steps N] [--rounds R] [--model M] [--train-out F]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile

from app_harness import RESULTS, bench_main, machine, pct, quiet_wait, wait_for, write_result

TRAIN_STEPS = 300  # steps timed per phase, of the recipe run (m = 6, L = 64: 1500 steps), then stopped
TRAIN_SKIP = 20    # first steps left out (allocation, thread start-up)


def step_rates(events) -> list[float]:
    """Per-step samples/s from the trainer's train events. The trainer reports an exponential
    average (rate_k = 0.9 rate_{k-1} + 0.1 B/dt_k); inverting it gives each step's own B/dt_k."""
    ema = [e["samples_per_s"] for e in events if e["event"] == "train"]
    return ema[:1] + [(r - 0.9 * prev) / 0.1 for prev, r in zip(ema, ema[1:])]


def _summary(events, load0, threads) -> dict:
    rates = step_rates(events)[TRAIN_SKIP:TRAIN_STEPS]
    return {"samples_per_s_median": statistics.median(rates), "steps_timed": len(rates),
            "p25": pct(rates, 0.25), "p75": pct(rates, 0.75), "torch_threads": threads,
            "load_average": {"before": list(load0), "after": list(os.getloadavg())}}


def headless_training(cfg) -> dict:
    """``lca-tui train``'s loop (TrainingRun + Governor() in the calling thread), stopped after
    TRAIN_STEPS steps."""
    import torch

    from engine.lca.runner import TrainingRun
    from engine.threads import Governor

    before, load0 = torch.get_num_threads(), os.getloadavg()
    run = TrainingRun.start(cfg, tempfile.mkdtemp(prefix="lca-bench-headless-") + "/run")
    run.trainer.governor = gov = Governor()
    events = []
    try:
        for ev in run.events():
            events.append(ev)
            if run.trainer.step >= TRAIN_STEPS:
                run.trainer.stop()
    finally:
        torch.set_num_threads(before)
    return _summary(events, load0, gov.threads)


async def app_training(model: str | None, rounds: int) -> dict:
    """Rounds of four phases, interleaved so that each app number has headless neighbours measured
    under the same load: H, (a) the run started from the trainer panel's form (m = 6, L = 64, device
    cpu typed in, every tuning field left on the recipe) with the model loaded and idle, H, (b) the
    same while the hijack panel's ES evaluation runs on the model thread. H is the headless loop in
    this process's main thread, which blocks the app's event loop meanwhile (as if it were not there)."""
    from engine.lca.config import recipe_config
    from lca_tui.app import LcaApp

    cfg = recipe_config({"m": 6, "L": 64, "device": "cpu"})
    phases = {"headless": [], "app_idle": [], "app_during_es_eval": []}
    app = LcaApp(model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.model_info is not None or app.model_error is not None, 600)
        if app.model_error:
            raise RuntimeError(app.model_error)
        await pilot.press("escape", "2")
        tp = app.query_one("#trainer")
        for k, v in {"m": "6", "L": "64", "device": "cpu"}.items():
            tp.set_field(k, v)
        await pilot.pause(0.3)
        assert tp.config == cfg, "the form left the recipe"
        hp = app.query_one("#hijack")

        async def in_app():
            await quiet_wait(lambda: not app.model_host.busy or hp.eval_job is not None, 60)
            load0 = os.getloadavg()
            tp.action_start()  # F5
            await quiet_wait(lambda: tp._current() is not None and tp._current().run is not None, 120)
            st = tp._current()
            tr = st.run.trainer
            await quiet_wait(lambda: tr.step >= TRAIN_STEPS)
            threads = tr.governor.threads
            model_job = app.model_host.running_job
            tr.stop()
            await quiet_wait(lambda: st.status in ("stopped", "completed"), 120)
            await asyncio.sleep(0.5)  # the last snapshot
            return {**_summary(list(st.train), load0, threads), "model_thread_job_at_end": model_job,
                    "model_thread_share": app.model_host.share}

        for _ in range(rounds):
            phases["headless"].append(headless_training(cfg))
            phases["app_idle"].append(await in_app())
            phases["headless"].append(headless_training(cfg))
            await app.run_action("panel('hijack')")
            hp.action_evaluate()  # e: ES vs n over the built-in records, on the model thread
            await quiet_wait(lambda: hp.eval_job is not None and app.model_host.running_job is not None, 120)
            await app.run_action("panel('trainer')")
            res = await in_app()
            res["es_eval_still_running"] = hp.eval_job is not None
            phases["app_during_es_eval"].append(res)
            hp.action_cancel()  # c
            await quiet_wait(lambda: hp.eval_job is None, 300)
        phases["headless"].append(headless_training(cfg))
    return phases


def training_bench(model: str | None = None, rounds: int = 3) -> dict:
    from engine.lca.config import recipe_config

    cfg = recipe_config({"m": 6, "L": 64, "device": "cpu"})
    res = {"what": "training samples/s (median of per-step batch/dt) in the app's trainer panel vs the headless "
                   "trainer loop, same config, interleaved H A H B ... H in one process",
           "config": cfg.flat(), "steps_timed_per_phase": TRAIN_STEPS - TRAIN_SKIP, "skip_first": TRAIN_SKIP,
           "rounds": rounds, "model": model or "smollm2-135m (embedded)",
           "threads_env": os.environ.get("LCA_TUI_THREADS")}
    res["phases"] = ph = asyncio.run(app_training(model, rounds))
    rate = lambda r: r["samples_per_s_median"]  # noqa: E731
    head = ph["headless"]  # H_0 A_0 H_1 B_0 H_2 A_1 H_3 B_1 ... H_2r
    ra = [rate(a) / statistics.mean([rate(head[2 * i]), rate(head[2 * i + 1])]) for i, a in enumerate(ph["app_idle"])]
    rb = [rate(b) / statistics.mean([rate(head[2 * i + 1]), rate(head[2 * i + 2])])
          for i, b in enumerate(ph["app_during_es_eval"])]
    res["ratios_app_idle"], res["ratios_app_during_es_eval"] = ra, rb
    res["ratio_app_idle"], res["ratio_app_during_es_eval"] = statistics.median(ra), statistics.median(rb)
    for k in ph:
        res[f"{k}_median_samples_per_s"] = statistics.median(rate(r) for r in ph[k])
    res["goal_app_idle"] = 0.9
    return res


def training_markdown(res: dict) -> str:
    """The BENCHMARKS.md rows for in-app training throughput, from its JSON."""
    ph, c = res["phases"], res["config"]
    loads = lambda rs: f"{min(r['load_average']['before'][0] for r in rs):.1f}–{max(r['load_average']['after'][0] for r in rs):.1f}"  # noqa: E731
    thr = lambda rs: "/".join(sorted({str(r["torch_threads"]) for r in rs}))  # noqa: E731
    rr = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    b_all = all(r.get("es_eval_still_running") for r in ph["app_during_es_eval"])
    lines = [
        f"Measured {res['machine']['date']} with `{res['command']}` (data: `bench/results/app_training.json`). "
        f"Recipe config for m = {c['m']}, L = {c['L']} (d = {c['d']}, d_a = {c['d_a']}, batch {c['batch_size']}, "
        f"lr {c['lr']:g} {c['schedule']}), typed into the trainer form as m, L and device only (the form must "
        f"equal `recipe_config`); {res['steps_timed_per_phase']} steps timed per phase after {res['skip_first']}; "
        f"samples/s = median over steps of batch / step time. {res['rounds']} rounds of H, (a), H, (b), then H, in "
        f"one process; each app phase is divided by the mean of its two headless neighbours (H = `lca-tui train`'s "
        f"loop in the main thread, the app's event loop blocked meanwhile).",
        "",
        "| phase | samples/s (median of phases) | torch threads | load (1 min) | in-app / headless per round | median | goal |",
        "|---|---|---|---|---|---|---|",
        f"| headless | {res['headless_median_samples_per_s']:,.0f} | {thr(ph['headless'])} | {loads(ph['headless'])} | | | |",
        f"| (a) in the app, model loaded, model thread idle | {res['app_idle_median_samples_per_s']:,.0f} "
        f"| {thr(ph['app_idle'])} | {loads(ph['app_idle'])} | {rr(res['ratios_app_idle'])} "
        f"| **{res['ratio_app_idle']:.2f}x** | ≥ 0.9x {'✓' if res['ratio_app_idle'] >= 0.9 else '✗'} |",
        f"| (b) in the app while the hijack panel's ES evaluation runs on the model thread"
        f"{'' if b_all else ' (it ended early in some rounds)'} | {res['app_during_es_eval_median_samples_per_s']:,.0f} "
        f"| {thr(ph['app_during_es_eval'])} | {loads(ph['app_during_es_eval'])} | {rr(res['ratios_app_during_es_eval'])} "
        f"| **{res['ratio_app_during_es_eval']:.2f}x** | |",
    ]
    return "\n".join(lines)


def run(args) -> None:
    global TRAIN_STEPS
    TRAIN_STEPS = max(args.train_steps, TRAIN_SKIP + 5)
    tres = training_bench(args.model, args.rounds)
    tres.update(machine("python bench/bench_app_training.py " + " ".join(sys.argv[1:])))
    for k in ("headless", "app_idle", "app_during_es_eval"):
        print(f"{k}: " + ", ".join(f"{r['samples_per_s_median']:,.0f} ({r['torch_threads']} thr, load "
                                    f"{r['load_average']['before'][0]:.1f})" for r in tres["phases"][k]), flush=True)
    print(f"in-app / headless: (a) idle {tres['ratio_app_idle']:.2f}x {tres['ratios_app_idle']} (goal >= 0.9), "
          f"(b) during an ES evaluation {tres['ratio_app_during_es_eval']:.2f}x {tres['ratios_app_during_es_eval']}")
    write_result(args.train_out, tres)


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--train-steps", type=int, default=300, help="training steps timed per phase")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of headless / in-app phases")
    ap.add_argument("--train-out", default=str(RESULTS / "app_training.json"))


def main() -> None:
    bench_main(__doc__, training_markdown, add_args, run)


if __name__ == "__main__":
    main()
