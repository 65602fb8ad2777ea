"""``lca-tui train``: train the eq. 4.1 model on the LCA task headless.

Every config field has a flag; the tuning flags not given come from the default recipe for the
given m and L (see ``engine.lca.config.recipe``). ``--json`` prints one JSON object a line (``eval`` events, then
``done``); otherwise a rich progress bar shows live loss and accuracy. Ctrl-C stops between steps
and leaves a valid run directory with a resumable checkpoint (``--resume DIR`` continues it).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.lca.config import RunConfig

#: Flag help, by flat config field.
_HELP = {
    "m": "number of binary latent concepts (V = 2^m tokens)",
    "L": "context length",
    "omega": "signal fraction ω of p(z|z*) = ω·π + (1-ω)·Unif",
    "beta": "temperature β of π(z|z*) ∝ exp(-D_H/β)",
    "neighborhood": "N(z*): all | hamming1 | cluster:k",
    "d": "embedding dimension",
    "d_a": "attention head dimension",
    "freeze_value": "fix W_V = I",
    "freeze_embedding": "keep the Gaussian W_E untrained",
    "uniform_attention": "fix W_K = W_Q = 0 (uniform attention)",
    "lr": "AdamW learning rate",
    "schedule": "learning-rate schedule after the warm-up: constant | cosine | wsd",
    "warmup": "linear learning-rate warm-up steps",
    "weight_decay": "AdamW weight decay",
    "beta1": "AdamW β1",
    "beta2": "AdamW β2",
    "batch_size": "samples per step",
    "steps": "optimiser steps",
    "eval_every": "evaluate every this many steps",
    "eval_size": "held-out samples",
    "train_size": "fixed training-set size (0 = fresh samples every step)",
    "seed": "random seed",
    "device": "auto | cpu | cuda | cuda:N | mps",
}


def add_config_flags(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """One flag per RunConfig field (``--d-a`` for ``d_a``); with ``defaults=False`` unset flags
    stay None so that a resume or experiment can tell them apart."""
    from engine.lca.config import RECIPE_FIELDS, RunConfig

    for name, (typ, default) in RunConfig.field_types().items():
        flag = "--" + name.replace("_", "-")
        if typ is bool:
            parser.add_argument(flag, dest=name, action="store_true", default=None,
                                help=_HELP.get(name))
        else:
            shown = ""
            if defaults:
                shown = " (default: from the recipe for m and L)" if name in RECIPE_FIELDS else f" (default: {default})"
            parser.add_argument(flag, dest=name, type=typ, default=None, metavar=name.upper(),
                                help=(_HELP.get(name, "") + shown))


def config_from_args(args) -> RunConfig:
    """The flags given, the default recipe for their m and L (``engine.lca.config.recipe``) for
    the tuning flags not given (d, d_a, lr, schedule, warmup, steps, batch size)."""
    from engine.lca.config import RunConfig, recipe_config

    given = {k: getattr(args, k) for k in RunConfig.field_types() if getattr(args, k, None) is not None}
    return recipe_config(given)


def add_parser(sub):
    p = sub.add_parser("train", help="train the one-layer transformer on the LCA task (headless)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(p)
    p.add_argument("--out", metavar="DIR", help="run directory (default: a new run in the session)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS",
                   help="seconds between checkpoints (default: 30)")
    p.add_argument("--json", action="store_true", help="one JSON object a line instead of a progress bar")
    return p


def _default_out(cfg, args) -> str:
    from engine.session.store import open_cli_session

    return str(open_cli_session(getattr(args, "session", None)).new_run_dir(cfg))


def run(args) -> int:
    import torch

    from engine.threads import Governor

    before = torch.get_num_threads()
    try:
        return _run(args, Governor())  # --threads / LCA_TUI_THREADS, else the free cores
    finally:
        torch.set_num_threads(before)


def _run(args, governor) -> int:
    from engine.lca.runner import TrainingRun

    if args.resume:
        run_ = TrainingRun.resume(args.resume, device=args.device, steps=args.steps,
                                  checkpoint_every_s=args.checkpoint_every)
    else:
        cfg = config_from_args(args)
        out = args.out or _default_out(cfg, args)
        run_ = TrainingRun.start(cfg, out, checkpoint_every_s=args.checkpoint_every)
    run_.trainer.governor = governor

    interrupted = {"n": 0}

    def on_sigint(signum, frame):
        interrupted["n"] += 1
        if interrupted["n"] > 1:
            raise KeyboardInterrupt
        run_.trainer.stop()

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        done = _run_json(run_) if args.json else _run_progress(run_)
    finally:
        signal.signal(signal.SIGINT, old)
    if done.get("status") == "diverged":
        print(f"lca-tui: the run diverged (loss became NaN/inf); checkpoint in {run_.path}", file=sys.stderr)
        return 1
    return 130 if interrupted["n"] else 0


def _run_json(run_) -> dict:
    t0 = time.perf_counter()

    def emit(ev):
        if ev["event"] == "eval":
            print(json.dumps({k: ev[k] for k in ("event", "step", "loss", "accuracy", "bayes_accuracy")}),
                  flush=True)

    done = run_.run(emit)
    out = {"event": "done", "status": done.get("status"), "accuracy": done.get("accuracy"),
           "bayes_accuracy": done.get("bayes_accuracy"), "loss": done.get("loss"),
           "step": done.get("step"), "seconds": round(time.perf_counter() - t0, 3),
           "threads": run_.trainer.governor.threads if run_.trainer.governor else None,
           "run_dir": done["run_dir"]}
    print(json.dumps(out), flush=True)
    return out


def _run_progress(run_) -> dict:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    tr = run_.trainer
    threads = f", {tr.governor.threads} thread(s)" if tr.governor else ""
    console.print(f"[bold]training[/] {tr.cfg.summary()}  on {tr.device}{threads}  →  {run_.path}")
    state = {"loss": float("nan"), "acc": float("nan"), "eval": "", "rate": 0.0}
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                  console=console, transient=False) as progress:
        task = progress.add_task("step", total=tr.cfg.train.steps, completed=tr.step, info="")

        def on_event(ev):
            kind = ev["event"]
            if kind == "train":
                state.update(loss=ev["loss"], acc=ev["accuracy"], rate=ev["samples_per_s"])
            elif kind == "eval":
                state["eval"] = (f"  eval acc {ev['accuracy']:.3f} / Bayes {ev['bayes_accuracy']:.3f}")
            elif kind == "status":
                state["eval"] = f"  [{ev['status']}]"
            progress.update(task, completed=tr.step, info=(
                f"loss {state['loss']:.4f}  acc {state['acc']:.3f}  {state['rate']:,.0f} samples/s{state['eval']}"))

        done = run_.run(on_event)
    acc, bayes = done.get("accuracy"), done.get("bayes_accuracy")
    console.print(f"[bold]{done.get('status')}[/] at step {done.get('step')}: accuracy "
                  f"{acc if acc is None else f'{acc:.4f}'} (Bayes-optimal {bayes:.4f}), loss "
                  f"{done.get('loss') if done.get('loss') is None else format(done['loss'], '.4f')}")
    console.print(f"run directory: {done['run_dir']}")
    return done
