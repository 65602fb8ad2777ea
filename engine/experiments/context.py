"""The context (Sec. 5.5): contexts mixing two outputs (Fig. C.5, the synthetic twin of context
hijacking) and accuracy against the context length beside the Bayes-optimal accuracy (Fig. C.6).

``sample_mixed(task, n, r, generator)`` draws contexts for two outputs y1 != y2: round(r·(L-1)) of
the L-1 context tokens come from p(·|y2), the rest from p(·|y1), at uniformly random positions; the
last token comes from π(·|y1). Vectorised: one ``searchsorted`` per source over the whole batch.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ConfigError
from engine.experiments.base import (ExperimentResult, Grid, Timer, as_list, curve, lca_specs, mean_std,
                                     run_jobs, spearman, train)

CLAIMS = {
    "context-mixing": ("Mixing into the context tokens drawn for another output y2 makes the trained transformer "
                       "misclassify, more often as the share of such tokens grows: the synthetic analogue of "
                       "context hijacking (Sec. 5.5, App. C.5)."),
    "context-length": ("Longer contexts of i.i.d. samples separate the conditional distributions better, so "
                       "the trained transformer's accuracy rises with the context length L (App. C.6), "
                       "bounded by the Bayes-optimal accuracy."),
}

_COMMON = {"omega": 0.5, "beta": 1.0, "neighborhood": "all", "weight_decay": 0.01}
_R = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
GRIDS = {
    "context-mixing": {
        "tiny": Grid("tiny", m=3, L=16, d=8, r=(0.0, 0.25, 0.5, 0.75, 1.0), n=512, seeds=(0,), steps=80,
                     lr=(0.01,), batch_size=64, eval_size=256, device="cpu", **_COMMON),
        "quick": Grid("quick", m=5, L=64, d=32, r=_R, n=2048, seeds=(0, 1), steps=300, lr=(0.01,),
                      batch_size=128, eval_size=2048, device="auto", **_COMMON),
        "paper": Grid("paper", m=(5, 6, 7, 8), L=(64, 128), d=64, r=_R, n=8192, seeds=(0, 1, 2), steps=5000,
                      lr=(0.01, 0.001), batch_size=256, eval_size=8192, device="auto", **_COMMON),
    },
    "context-length": {
        "tiny": Grid("tiny", m=3, L=(4, 16, 64), d=8, seeds=(0,), steps=80, lr=(0.01,), batch_size=64,
                     eval_size=512, device="cpu", **_COMMON),
        "quick": Grid("quick", m=5, L=(8, 16, 32, 64, 128), d=32, seeds=(0, 1), steps=300, lr=(0.01,),
                      batch_size=128, eval_size=2048, device="auto", **_COMMON),
        "paper": Grid("paper", m=(5, 6, 7, 8), L=(8, 16, 32, 64, 128, 256), d=64, seeds=(0, 1, 2), steps=5000,
                      lr=(0.01, 0.001), batch_size=256, eval_size=8192, device="auto", **_COMMON),
    },
}


# ----------------------------------------------------------------------------------- sampler
def sample_mixed(task, n: int, r: float, generator):
    """(x, y1, y2) for ``task`` (an ``LCATask``): x (n, L) int64, y1 != y2 (n,) uniform pairs.

    Of the L-1 context tokens, k = round(r·(L-1)) come from p(·|y2) and L-1-k from p(·|y1), at
    positions drawn uniformly per sample; the last token comes from π(·|y1). r = 0 is the task's
    own distribution for y1. Tensors live on the generator's device.
    """
    import torch

    if not (isinstance(r, (int, float)) and 0.0 <= float(r) <= 1.0):
        raise ConfigError(f"the mixing ratio r must lie in [0, 1], got {r!r}")
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    dev = generator.device
    V, L = task.V, task.cfg.L
    if V < 2:
        raise ConfigError("mixing needs at least two tokens")
    cdf_p = torch.tensor(np.cumsum(task.p, axis=1), dtype=torch.float64, device=dev)
    cdf_pi = torch.tensor(np.cumsum(task.pi, axis=1), dtype=torch.float64, device=dev)
    y1 = torch.randint(0, V, (n,), generator=generator, device=dev)
    y2 = (y1 + torch.randint(1, V, (n,), generator=generator, device=dev)) % V   # uniform over the others
    u = torch.rand((n, L), generator=generator, device=dev, dtype=torch.float64)
    x = torch.empty((n, L), dtype=torch.int64, device=dev)
    if L > 1:
        k = int(round(float(r) * (L - 1)))
        ctx = u[:, :-1].contiguous()
        from1 = torch.searchsorted(cdf_p[y1], ctx, right=True)
        from2 = torch.searchsorted(cdf_p[y2], ctx, right=True)
        keys = torch.rand((n, L - 1), generator=generator, device=dev)
        rank = keys.argsort(dim=1).argsort(dim=1)          # a uniform random permutation per row
        x[:, :-1] = torch.where(rank < k, from2, from1)
    x[:, -1:] = torch.searchsorted(cdf_pi[y1], u[:, -1:].contiguous(), right=True)
    x.clamp_(max=V - 1)
    return x, y1, y2


# ----------------------------------------------------------------------------------- context-mixing
def _mixing_job(spec: dict) -> dict:
    import torch

    tr = train(spec)
    ev = tr.last_eval or tr.evaluate()
    task, model = tr.task, tr.model
    gen = torch.Generator(device=tr.device).manual_seed(50_000 + spec["seed"])
    out = {"accuracy": ev.accuracy, "bayes": ev.bayes_accuracy, "r": [], "mis": [], "to_y2": [],
           "bayes_mis": [], "bayes_to_y2": []}
    with torch.no_grad():
        for r in spec["r"]:
            x, y1, y2 = sample_mixed(task, spec["n"], float(r), gen)
            pred = torch.cat([model(x[i:i + 4096]).argmax(1) for i in range(0, x.shape[0], 4096)])
            bp = task.bayes_predict(x)
            out["r"].append(float(r))
            out["mis"].append((pred != y1).double().mean().item())
            out["to_y2"].append((pred == y2).double().mean().item())
            out["bayes_mis"].append((bp != y1).double().mean().item())
            out["bayes_to_y2"].append((bp == y2).double().mean().item())
    return out


def run_context_mixing(grid: Grid, progress=None, cancel=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    rs = [float(v) for v in as_list(grid["r"])]
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "seed": grid["seeds"]}, fixed={"r": rs, "n": grid["n"]})
    res = run_jobs(_mixing_job, specs, jobs=jobs, progress=progress, cancel=cancel)
    pairs = list(zip(specs, res))
    rows, curves, checks = [], {}, []
    cells = [(m, L, d) for m in as_list(grid["m"]) for L in as_list(grid["L"]) for d in as_list(grid["d"])]
    for m, L, d in cells:
        by_lr: dict = {}
        for s, r in pairs:
            if (s["m"], s["L"], s["d"]) == (m, L, d):
                by_lr.setdefault(s["lr"], []).append(r)
        lr = max(by_lr, key=lambda v: (mean_std([r["accuracy"] for r in by_lr[v]])[0], -v))
        runs = by_lr[lr]
        mis = []
        y2s = []
        for j, r in enumerate(rs):
            mu, sd = mean_std([x["mis"][j] for x in runs])
            y2 = mean_std([x["to_y2"][j] for x in runs])[0]
            mis.append(mu)
            y2s.append(y2)
            rows.append({"m": m, "L": L, "d": d, "r": r, "y2_tokens": int(round(r * (L - 1))),
                         "misclassified": mu, "misclassified_std": sd, "predicts_y2": y2,
                         "bayes_misclassified": mean_std([x["bayes_mis"][j] for x in runs])[0],
                         "bayes_predicts_y2": mean_std([x["bayes_to_y2"][j] for x in runs])[0],
                         "lr": lr, "seeds": len(runs)})
        tag = "" if len(cells) == 1 else f" m={m} L={L} d={d}"
        sel = [row for row in rows if (row["m"], row["L"], row["d"]) == (m, L, d)]
        curves[f"predicts != y1{tag}"] = curve(rs, mis)
        curves[f"predicts y2{tag}"] = curve(rs, y2s)
        curves[f"Bayes != y1{tag}"] = curve(rs, [row["bayes_misclassified"] for row in sel])
        checks.append((spearman(rs, mis), mis[0], mis[-1], spearman(rs, y2s)))
    rule = ("per configuration (seeds averaged): holds if the misclassification rate (prediction != y1) rises "
            "with r (Spearman >= 0.9), rises by >= 0.2 from the smallest to the largest r, and the rate of "
            "predicting y2 also rises (Spearman >= 0.9); does not hold if misclassification at the largest r "
            "is not above that at the smallest; inconclusive otherwise")
    if any(not (hi > lo) for _, lo, hi, _ in checks):
        verdict = "does not hold"
    elif all(rho >= 0.9 and hi - lo >= 0.2 and rho2 >= 0.9 for rho, lo, hi, rho2 in checks):
        verdict = "holds"
    else:
        verdict = "inconclusive"
    notes = ["the model is trained on clean contexts; mixed contexts are only used for evaluation",
             "Bayes columns: the clean task's Bayes classifier applied to the mixed contexts"]
    return ExperimentResult("context-mixing", "Contexts mixing two outputs: misclassification against r",
                            CLAIMS["context-mixing"], verdict, rule, grid.to_dict(), rows, curves, t.seconds,
                            figure="App. C.5 (Sec. 5.5)", notes=notes)


# ----------------------------------------------------------------------------------- context-length
def _length_job(spec: dict) -> dict:
    tr = train(spec)
    ev = tr.last_eval or tr.evaluate()
    return {"accuracy": ev.accuracy, "bayes": ev.bayes_accuracy, "loss": ev.loss}


def run_context_length(grid: Grid, progress=None, cancel=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "seed": grid["seeds"]})
    res = run_jobs(_length_job, specs, jobs=jobs, progress=progress, cancel=cancel)
    pairs = list(zip(specs, res))
    Ls = [int(v) for v in as_list(grid["L"])]
    rows, curves, checks = [], {}, []
    tol = 0.02
    for m in as_list(grid["m"]):
        for d in as_list(grid["d"]):
            accs, bays = [], []
            for L in Ls:
                by_lr: dict = {}
                for s, r in pairs:
                    if (s["m"], s["L"], s["d"]) == (m, L, d):
                        by_lr.setdefault(s["lr"], []).append(r)
                lr = max(by_lr, key=lambda v: (mean_std([r["accuracy"] for r in by_lr[v]])[0], -v))
                runs = by_lr[lr]
                mu, sd = mean_std([r["accuracy"] for r in runs])
                b = mean_std([r["bayes"] for r in runs])[0]
                rows.append({"m": m, "d": d, "L": L, "accuracy": mu, "accuracy_std": sd, "bayes": b,
                             "bayes_gap": b - mu, "lr": lr, "seeds": len(runs)})
                accs.append(mu)
                bays.append(b)
            tag = f"m={m}" + (f" d={d}" if len(as_list(grid["d"])) > 1 else "")
            curves[f"trained {tag}"] = curve(Ls, accs)
            curves[f"Bayes {tag}"] = curve(Ls, bays)
            checks.append((spearman(Ls, accs), accs[0], accs[-1], max(a - b for a, b in zip(accs, bays))))
    rule = (f"per (m, d), seeds averaged: holds if accuracy rises with L (Spearman >= 0.9), gains >= 0.05 "
            f"from the shortest to the longest L, and never exceeds the Bayes accuracy by more than {tol}; "
            f"does not hold if accuracy at the longest L is not above the shortest, or exceeds Bayes by more "
            f"than {tol}; inconclusive otherwise")
    if any(not (hi > lo) or over > tol for _, lo, hi, over in checks):
        verdict = "does not hold"
    elif all(rho >= 0.9 and hi - lo >= 0.05 for rho, lo, hi, _ in checks):
        verdict = "holds"
    else:
        verdict = "inconclusive"
    return ExperimentResult("context-length", "Accuracy against context length, beside Bayes",
                            CLAIMS["context-length"], verdict, rule, grid.to_dict(), rows, curves, t.seconds,
                            figure="App. C.6",
                            notes=["one model trained per L (the same steps for every L)"])
