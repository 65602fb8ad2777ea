"""The context (Sec. 5.5): contexts mixing two outputs (Fig. C.5, the synthetic twin of context
hijacking) and accuracy against the context length beside the Bayes-optimal accuracy (Fig. C.6).

``sample_mixed(task, n, r, generator)`` draws contexts for two outputs y1 != y2: round(r·(L-1)) of
the L-1 context tokens come from p(·|y2), the rest from p(·|y1), at uniformly random positions; the
last token comes from π(·|y1). The contexts themselves come from ``LCATask.sample_mixed`` (also
used by ``engine.lca.hijack_mirror``); this draws the uniform pairs (y1, y2) first.
"""

from __future__ import annotations

from engine.errors import ConfigError
from engine.experiments.grids import Grid, as_list
from engine.experiments.jobs import Timer
from engine.experiments.results import ExperimentResult, curve
from engine.experiments.specs import SPECS
from engine.experiments.stats import mean_std
from engine.experiments.training import PAPER_TRAIN, accuracy_job, best_lr, lca_specs, scores, train, train_pairs

_COMMON = {"omega": 0.5, "beta": 1.0, "neighborhood": "all", "weight_decay": 0.01}
_R = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
GRIDS = {
    "context-mixing": {
        "tiny": Grid("tiny", m=3, L=16, d=8, r=(0.0, 0.25, 0.5, 0.75, 1.0), n=512, seeds=(0,), steps=80,
                     lr=(0.01,), batch_size=64, eval_size=256, device="cpu", **_COMMON),
        "quick": Grid("quick", m=5, L=64, d=32, r=_R, n=2048, seeds=(0, 1), steps=300, lr=(0.01,),
                      batch_size=128, eval_size=2048, device="auto", **_COMMON),
        "paper": Grid("paper", m=(5, 6, 7, 8), L=(64, 128), d=64, r=_R, n=8192, seeds=(0, 1, 2),
                      **{**PAPER_TRAIN, **_COMMON}),
    },
    "context-length": {
        "tiny": Grid("tiny", m=3, L=(4, 16, 64), d=8, seeds=(0,), steps=80, lr=(0.01,), batch_size=64,
                     eval_size=512, device="cpu", reading="per-L", train_L=16, **_COMMON),
        "quick": Grid("quick", m=5, L=(8, 16, 32, 64, 128), d=32, seeds=(0, 1), steps=300, lr=(0.01,),
                      batch_size=128, eval_size=2048, device="auto", reading="per-L", train_L=64, **_COMMON),
        "paper": Grid("paper", m=(5, 8), L=(8, 16, 32, 64, 128, 256), d=64, seeds=(0, 1, 2), reading="per-L",
                      train_L=64, **{**PAPER_TRAIN, **_COMMON}),
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
    V = task.V
    if V < 2:
        raise ConfigError("mixing needs at least two tokens")
    y1 = torch.randint(0, V, (n,), generator=generator, device=dev)
    y2 = (y1 + torch.randint(1, V, (n,), generator=generator, device=dev)) % V   # uniform over the others
    x, _ = task.sample_mixed(y1, y2, float(r), generator)
    return x, y1, y2


# ----------------------------------------------------------------------------------- context-mixing
def _mixing_job(spec: dict) -> dict:
    import torch

    tr = train(spec)
    task, model = tr.task, tr.model
    gen = torch.Generator(device=tr.device).manual_seed(50_000 + spec["seed"])
    out = scores(tr)
    out.update({"r": [], "mis": [], "to_y2": [], "bayes_mis": [], "bayes_to_y2": []})
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


def run_context_mixing(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    rs = [float(v) for v in as_list(grid["r"])]
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "seed": grid["seeds"]}, fixed={"r": rs, "n": grid["n"]})
    pairs = train_pairs(_mixing_job, specs, grid, jobs, ctx)
    rows, curves = [], {}
    cells = [(m, L, d) for m in as_list(grid["m"]) for L in as_list(grid["L"]) for d in as_list(grid["d"])]
    for m, L, d in cells:
        lr, runs = best_lr([(s, r) for s, r in pairs if (s["m"], s["L"], s["d"]) == (m, L, d)])
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
                         "lr": lr, "seeds": len(runs), "mis_runs": [x["mis"][j] for x in runs],
                         "bayes_mis_runs": [x["bayes_mis"][j] for x in runs]})
        tag = "" if len(cells) == 1 else f" m={m} L={L} d={d}"
        sel = [row for row in rows if (row["m"], row["L"], row["d"]) == (m, L, d)]
        curves[f"predicts != y1{tag}"] = curve(rs, mis)
        curves[f"predicts y2{tag}"] = curve(rs, y2s)
        curves[f"Bayes != y1{tag}"] = curve(rs, [row["bayes_misclassified"] for row in sel])
    notes = ["the model is trained on clean contexts; mixed contexts are only used for evaluation",
             "Bayes columns: the clean task's Bayes classifier applied to the mixed contexts"]
    return SPECS["context-mixing"].result(grid, rows, curves, t.seconds, notes=notes)


# ----------------------------------------------------------------------------------- context-length
READINGS = ("per-L", "one-model")


def _one_model_job(spec: dict) -> dict:
    """Train one model at L = ``train_L``, then score it at every L of ``lengths`` (eq. 4.1 has no
    positional terms, so the same weights run on any L) on test samples of that L, beside Bayes."""
    from dataclasses import replace

    import torch

    from engine.experiments.training import TEST_SEED
    from engine.lca.task import LCATask

    tr = train(spec)
    out = scores(tr)
    acc, bayes = [], []
    for L in spec["lengths"]:
        task = LCATask(replace(tr.cfg.task, L=int(L)), tr.device)
        g = torch.Generator(device=tr.device).manual_seed(TEST_SEED + 1000 * int(L) + spec["seed"])
        x, y = task.sample(tr.cfg.train.eval_size, g)
        ev = tr.evaluate(x, y)
        acc.append(ev.accuracy)
        bayes.append(task.bayes_accuracy(x, y))
    out.update({"by_L_accuracy": acc, "by_L_bayes": bayes})
    return out


def run_context_length(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    """App. C.6. Reading ``per-L`` (the default): one model trained per context length L, each scored
    at its own L. Reading ``one-model`` (``--set reading=one-model``): one model per (m, d, seed)
    trained at L = ``train_L`` and scored at every L of the grid."""
    t = Timer()
    reading = grid["reading"] if "reading" in grid else "per-L"
    if reading not in READINGS:
        raise ConfigError(f"reading must be one of {', '.join(READINGS)}, got {reading!r}")
    Ls = [int(v) for v in as_list(grid["L"])]
    rows, curves = [], {}
    if reading == "per-L":
        specs = lca_specs(grid, {"m": grid["m"], "L": Ls, "d": grid["d"], "lr": grid["lr"], "seed": grid["seeds"]})
        pairs = train_pairs(accuracy_job, specs, grid, jobs, ctx)
        for m in as_list(grid["m"]):
            for d in as_list(grid["d"]):
                for L in Ls:
                    lr, runs = best_lr([(s, r) for s, r in pairs if (s["m"], s["L"], s["d"]) == (m, L, d)])
                    accs = [r["accuracy"] for r in runs]
                    mu, sd = mean_std(accs)
                    b = mean_std([r["bayes"] for r in runs])[0]
                    rows.append({"m": m, "d": d, "L": L, "accuracy": mu, "accuracy_std": sd, "bayes": b,
                                 "bayes_gap": b - mu, "lr": lr, "seeds": len(runs),
                                 "converged": f"{sum(r['converged'] for r in runs)}/{len(runs)}",
                                 "accuracy_runs": accs, "bayes_runs": [r["bayes"] for r in runs]})
    else:
        train_L = int(grid["train_L"])
        specs = lca_specs(grid, {"m": grid["m"], "d": grid["d"], "lr": grid["lr"], "seed": grid["seeds"]},
                          fixed={"L": train_L, "lengths": Ls})
        pairs = train_pairs(_one_model_job, specs, grid, jobs, ctx)
        for m in as_list(grid["m"]):
            for d in as_list(grid["d"]):
                lr, runs = best_lr([(s, r) for s, r in pairs if (s["m"], s["d"]) == (m, d)])
                for j, L in enumerate(Ls):
                    accs = [r["by_L_accuracy"][j] for r in runs]
                    mu, sd = mean_std(accs)
                    b = mean_std([r["by_L_bayes"][j] for r in runs])[0]
                    rows.append({"m": m, "d": d, "L": L, "train_L": train_L, "accuracy": mu, "accuracy_std": sd,
                                 "bayes": b, "bayes_gap": b - mu, "lr": lr, "seeds": len(runs),
                                 "accuracy_runs": accs, "bayes_runs": [r["by_L_bayes"][j] for r in runs]})
    for m in as_list(grid["m"]):
        for d in as_list(grid["d"]):
            sel = [r for r in rows if r["m"] == m and r["d"] == d]
            tag = f"m={m}" + (f" d={d}" if len(as_list(grid["d"])) > 1 else "")
            curves[f"trained {tag}"] = curve(Ls, [r["accuracy"] for r in sel])
            curves[f"Bayes {tag}"] = curve(Ls, [r["bayes"] for r in sel])
    note = ("reading per-L: one model trained per L (same recipe for every L), scored at its own L; the "
            "other reading of App. C.6 is `--set reading=one-model` (one model trained at train_L, scored "
            "at every L)" if reading == "per-L" else
            f"reading one-model: one model per (m, d, seed) trained at L = {grid['train_L']} and scored at "
            "every L; the other reading is `--set reading=per-L`")
    return SPECS["context-length"].result(grid, rows, curves, t.seconds,
                                   notes=[note, "accuracy on held-out test sets; lr chosen on a validation set"])
