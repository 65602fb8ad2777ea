"""Training helpers shared by the experiments: job specs -> RunConfig -> trained Trainer, the one
accuracy job, and the one best-learning-rate rule.

Held-out data. Every trained model is scored on two held-out sets drawn from the task: the trainer's
own evaluation set (seed + 2), used as the **validation** set (the convergence check and the choice of
the learning rate), and a separate **test** set (seed ``TEST_SEED + seed``) whose accuracy is the one
reported. So the lr picked per cell never sees the numbers it is reported with.

Convergence. With ``patience`` > 0 in the spec, a run has converged once its validation loss has not
improved by more than ``CONVERGE_RTOL`` (relative) for ``patience`` consecutive evaluations (every
``eval_every`` steps). Under the ``wsd`` schedule (the paper grids) that is checked while the learning
rate is at its peak; the run then anneals (linear decay over ``WSD_DECAY`` x the steps so far) and
stops; without a plateau it decays over the last part of its step cap (``steps``). Under the other
schedules the plateau stops the run. Each job reports how it ended (``converged``: True when the
plateau rule fired or when validation accuracy reached ``0.98 x`` the Bayes accuracy on the same set).

Shared trained models. When the environment variable ``LCA_TUI_TRAIN_CACHE`` names a folder, every
trained model's weights are kept there (safetensors, keyed by a hash of its full RunConfig minus the
device, and the patience); a later job with the same configuration loads them instead of training
again. The experiments of the paper grid share most of their models (value-matrix, value-swap,
value-angles, geometry, spectrum, context-mixing), so the whole grid trains each model once. Results
do not depend on the cache: a job that finds the weights continues exactly as if it had trained them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.errors import UserError
from engine.experiments.grids import Grid, as_list
from engine.experiments.jobs import current_context, run_jobs
from engine.experiments.stats import mean_std
from engine.job_context import NO_JOB

#: Seed offset of the test set (the validation set is the trainer's, seed + 2).
TEST_SEED = 9_000_000
#: Relative improvement of the validation loss below which an evaluation counts as "no progress".
CONVERGE_RTOL = 1e-3
#: How a grid with several learning rates trains them (``train_pairs``).
LR_SELECT = ("all", "race")
#: A run whose validation accuracy reaches this share of the Bayes accuracy counts as converged.
BAYES_SHARE = 0.98

#: The training recipe of every ``--paper`` grid: the paper's AdamW learning rates {0.01, 0.001}, raced
#: per cell on the first seed's validation accuracy (``train_pairs``), batch 256, a 100-step linear
#: warm-up, then ``wsd``: the peak rate until the validation loss (scored every 100 steps) has not
#: improved by 0.1% for 5 evaluations (converged), a linear decay over a fifth of the steps so far, stop;
#: a run that never plateaus decays over the last sixth of its step cap, which grows with m.
PAPER_TRAIN = dict(steps=((5, 5000), (6, 6000), (7, 6000), (8, 6000)), lr=(0.01, 0.001), lr_select="race",
                   batch_size=256, eval_size=4096, eval_every=100, patience=5, schedule="wsd", warmup=100,
                   weight_decay=0.01, device="auto")


def lca_config(spec: Mapping[str, Any]):
    """A RunConfig from the RunConfig fields present in a job spec (others are ignored)."""
    from engine.lca.config import RunConfig

    known = RunConfig.field_types()
    flat = {k: v for k, v in spec.items() if k in known}
    if "d" in flat and "d_a" not in flat:
        flat["d_a"] = flat["d"]
    if "steps" in flat and "eval_every" not in flat:
        flat["eval_every"] = flat["steps"]
    return RunConfig.from_flat(flat)


def make_trainer(spec: Mapping[str, Any]):
    """A Trainer for a job spec (weights initialised from the spec's seed, not yet trained)."""
    from engine.lca.trainer import Trainer

    return Trainer(lca_config(spec))


def _cache_path(tr, patience: int, tag: str = ""):
    import hashlib
    import json
    import os
    from pathlib import Path

    root = os.environ.get("LCA_TUI_TRAIN_CACHE")
    if not root:
        return None
    cfg = tr.cfg.to_dict()
    cfg.get("train", {}).pop("device", None)
    keyed = {"cfg": cfg, "patience": patience, **({"tag": tag} if tag else {})}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:32]
    return Path(root) / f"{key}.safetensors"


def _load_cached(tr, path) -> bool:
    import json

    import torch
    from safetensors import safe_open

    if path is None or not path.is_file():
        return False
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    with torch.no_grad():
        for n, p in tr.model.named_parameters():
            p.copy_(tensors[n].to(p.device, p.dtype))
    info = json.loads(meta.get("info", "{}"))
    tr.step = int(info.get("step", tr.cfg.train.steps))
    tr.plateau = bool(info.get("plateau", False))
    tr.last_eval = None
    return True


def _store_cached(tr, path) -> None:
    import json
    import os

    from safetensors.torch import save_file

    if path is None or tr.status == "diverged" or (tr.status == "stopped" and not tr.plateau):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({n: p.detach().cpu().contiguous() for n, p in tr.model.named_parameters()}, str(tmp),
              metadata={"info": json.dumps({"step": tr.step, "plateau": bool(tr.plateau)})})
    os.replace(tmp, path)


def run_trainer(tr, patience: int = 0, cache_tag: str = ""):
    """Train to the end (or to the validation-loss plateau when ``patience`` > 0, see the module
    docstring); stops between steps when the in-process cancel event is set. With
    ``LCA_TUI_TRAIN_CACHE`` set, an identical earlier run's weights are loaded instead; ``cache_tag``
    keeps apart runs whose RunConfig is the same but whose initial weights were changed by hand."""
    path = _cache_path(tr, patience, cache_tag)
    if _load_cached(tr, path):
        return tr
    ctx = current_context()
    state = {"best": float("inf"), "stale": 0}

    wsd = tr.cfg.train.schedule == "wsd"

    def on_event(ev):
        if ctx.cancelled():
            tr.stop()
        if (patience > 0 and not tr.plateau and ev.get("event") == "eval" and ev.get("step", 0) < tr.end_step
                and not (wsd and tr.decaying)):
            loss = ev["loss"]
            if loss < state["best"] * (1.0 - CONVERGE_RTOL):
                state["best"], state["stale"] = loss, 0
            else:
                state["stale"] += 1
                if state["stale"] >= patience:
                    tr.plateau = True
                    if not (wsd and tr.begin_decay()):   # wsd: converged at the peak rate -> anneal
                        tr.stop()

    tr.plateau = False
    tr.run(on_event)
    _store_cached(tr, path)
    return tr


def train(spec: Mapping[str, Any]):
    """Train one eq. 4.1 model for a job spec and return the Trainer (evaluated at the end)."""
    return run_trainer(make_trainer(spec), int(spec.get("patience", 0) or 0))


def held_out_test_set(tr, n: int | None = None):
    """The test set of a trained job: ``n`` (default: the eval size) samples, seed TEST_SEED + seed."""
    import torch

    n = n or tr.cfg.train.eval_size
    g = torch.Generator(device=tr.device).manual_seed(TEST_SEED + tr.cfg.train.seed)
    return tr.task.sample(n, g)


def scores(tr) -> dict:
    """Validation and test accuracy of a trained Trainer, the Bayes accuracy on each, and how the
    run ended: {"val_accuracy", "val_bayes", "accuracy", "bayes", "loss", "steps", "converged"}."""
    val = tr.last_eval or tr.evaluate()
    x, y = held_out_test_set(tr)
    test = tr.evaluate(x, y)
    converged = bool(getattr(tr, "plateau", False)) or val.accuracy >= BAYES_SHARE * val.bayes_accuracy
    return {"val_accuracy": val.accuracy, "val_bayes": val.bayes_accuracy, "accuracy": test.accuracy,
            "bayes": test.bayes_accuracy, "loss": test.loss, "steps": tr.step, "converged": converged}


def accuracy_job(spec: dict) -> dict:
    """Train one model; its validation/test scores (``scores``). The one accuracy job."""
    return scores(train(spec))


def lca_specs(grid: Grid, axes: Mapping[str, Sequence], fixed: Mapping[str, Any] | None = None,
              base_keys: Sequence[str] = ("omega", "beta", "neighborhood", "d", "d_a", "batch_size",
                                          "steps", "eval_size", "eval_every", "weight_decay", "device",
                                          "patience", "warmup", "schedule")) -> list[dict]:
    """The cartesian product of ``axes`` (name -> values) plus the grid's scalar settings named in
    ``base_keys`` (when present) and ``fixed``. Axis order = nesting order (last varies fastest)."""
    import itertools

    base = {k: grid[k] for k in base_keys if k in grid}
    base.update(fixed or {})
    names = list(axes)
    out = []
    for combo in itertools.product(*(as_list(axes[n]) for n in names)):
        spec = {**base, **dict(zip(names, combo))}
        if isinstance(spec.get("steps"), (list, tuple)):      # ((m, steps), ...): a budget per m
            spec["steps"] = steps_for(spec["steps"], spec["m"])
        out.append(spec)
    return out


def steps_for(table, m: int) -> int:
    """The step budget for m from ((m, steps), ...) (the nearest listed m below, else the first)."""
    pairs = sorted((int(a), int(b)) for a, b in table)
    below = [st for mm, st in pairs if mm <= m]
    return below[-1] if below else pairs[0][1]


def best_lr(pairs: Sequence[tuple[dict, dict]], key: str = "val_accuracy") -> tuple[float, list[dict]]:
    """Among (spec, result) pairs of one cell, the learning rate whose mean **validation** ``key``
    over the seeds every lr has run is highest (ties: the smaller lr), and that lr's results in seed
    order. The reported (test) numbers are never used to choose. After an lr race (``train_pairs``)
    the losing lrs have only the first seed, so the choice is the race's."""
    by_lr: dict = {}
    for spec, res in pairs:
        by_lr.setdefault(spec["lr"], []).append((spec, res))
    if not by_lr:
        raise ValueError("best_lr needs at least one run")
    common = set.intersection(*({s["seed"] for s, _ in runs} for runs in by_lr.values()))

    def score(v):
        vals = [r[key] for s, r in by_lr[v] if not common or s["seed"] in common]
        return (mean_std(vals)[0], -v)

    lr = max(by_lr, key=score)
    return lr, [r for _, r in sorted(by_lr[lr], key=lambda sr: sr[0]["seed"])]


def train_pairs(fn: Callable[[dict], dict], specs: Sequence[dict], grid: Grid, jobs: int = 1,
                ctx=None) -> list[tuple[dict, dict]]:
    """Run ``fn`` (a training job returning ``scores``) on the specs; (spec, result) pairs in spec order.

    With ``lr_select = "race"`` in the grid and several learning rates, the lr of each cell (the
    specs equal up to lr and seed) is raced on its first seed: every lr trains that seed, the one
    with the best **validation** accuracy (ties: the smaller lr) wins, and only the winner trains the
    other seeds; the losers' first-seed runs stay in the pairs. Otherwise every spec runs
    (``lr_select = "all"``, the default). ``best_lr`` on the pairs gives the race's choice either way.
    ``ctx.progress`` counts the jobs of the race and its followers as one sweep.
    """
    specs = [dict(s) for s in specs]
    lrs = {s.get("lr") for s in specs}
    mode = grid["lr_select"] if "lr_select" in grid else "all"
    if mode not in LR_SELECT:
        raise UserError(f"lr_select must be one of {', '.join(LR_SELECT)}, got {mode!r}")
    if mode != "race" or len(lrs) < 2:
        return list(zip(specs, run_jobs(fn, specs, jobs=jobs, ctx=ctx)))
    import json

    cells = [json.dumps({k: v for k, v in s.items() if k not in ("lr", "seed")}, sort_keys=True, default=str)
             for s in specs]
    first: dict = {}
    for c, s in zip(cells, specs):
        first[c] = min(first.get(c, s["seed"]), s["seed"])
    lead = [i for i, s in enumerate(specs) if s["seed"] == first[cells[i]]]
    rest_per_lr = sum(1 for i, s in enumerate(specs) if s["seed"] != first[cells[i]]) // len(lrs)
    total = len(lead) + rest_per_lr

    ctx = ctx or NO_JOB
    res1 = run_jobs(fn, [specs[i] for i in lead], jobs=jobs, ctx=ctx.part(0, total))
    winner: dict = {}
    for i, r in zip(lead, res1):
        c, lr = cells[i], specs[i]["lr"]
        if c not in winner or (r["val_accuracy"], -lr) > winner[c][0]:
            winner[c] = ((r["val_accuracy"], -lr), lr)
    follow = [i for i, s in enumerate(specs) if s["seed"] != first[cells[i]] and s["lr"] == winner[cells[i]][1]]
    res2 = run_jobs(fn, [specs[i] for i in follow], jobs=jobs, ctx=ctx.part(len(lead), total))
    out = dict(zip(lead, res1))
    out.update(zip(follow, res2))
    return [(specs[i], out[i]) for i in sorted(out)]


def select(pairs: Sequence[tuple[dict, dict]], **match) -> list[tuple[dict, dict]]:
    """The (spec, result) pairs whose spec has every ``match`` item."""
    return [(s, r) for s, r in pairs if all(s.get(k) == v for k, v in match.items())]
