"""Attention selects the last token's cluster (Sec. 5.4, 6.3; Fig. 3c, C.7, C.8).

Data with the cluster neighbourhood N(z*) = {z : first k bits equal those of z*} \\ {z*} (k = 1, 2):
π only draws tokens of y's cluster, the uniform noise draws anywhere, and the last token t_L is in
y's cluster. After training, the last query's attention weight per key position is compared between
keys in t_L's cluster and keys in other clusters (t_L's own position left out); the untrained model
of the same seed is the baseline. The V x V map of Fig. 3c (mean weight of query token t on key
token t', last query only) is summarised by its mean over same-cluster vs other-cluster pairs.
"""

from __future__ import annotations

import math

import numpy as np

from engine.experiments.grids import Grid, as_list
from engine.experiments.jobs import Timer
from engine.experiments.results import ExperimentResult, curve
from engine.experiments.specs import SPECS
from engine.experiments.stats import mean_std
from engine.experiments.training import PAPER_TRAIN, best_lr, lca_specs, make_trainer, run_trainer, scores, train_pairs

_COMMON = {"omega": 0.5, "beta": 1.0, "weight_decay": 0.01}
GRIDS = {
    "attention-cluster": {
        "tiny": Grid("tiny", m=3, k=(1,), L=16, d=8, seeds=(0,), steps=80, lr=(0.01,), batch_size=64,
                     eval_size=256, map_samples=128, device="cpu", **_COMMON),
        "quick": Grid("quick", m=6, k=(1, 2), L=64, d=32, seeds=(0, 1), steps=400, lr=(0.01,), batch_size=128,
                      eval_size=2048, map_samples=512, device="auto", **_COMMON),
        "paper": Grid("paper", m=8, k=(1, 2), L=(64, 128), d=64, seeds=(0, 1, 2), map_samples=2048,
                      **{**PAPER_TRAIN, **_COMMON}),
    },
}


def _summaries(model, x, m: int, k: int, map_samples: int) -> dict:
    from engine.lca.analysis import attention_by_cluster, attention_by_hamming, average_attention_matrix

    L = x.shape[1]
    c = attention_by_cluster(model, x, k, include_last=False)
    h = attention_by_hamming(model, x, include_last=False)
    A = average_attention_matrix(model, x[:map_samples], last_query_only=True)
    V = 2 ** m
    top = np.arange(V) >> (m - k)
    same = (top[:, None] == top[None, :]) & ~np.eye(V, dtype=bool)
    other = top[:, None] != top[None, :]
    return {"same": float(c.mean[0]) * L, "other": float(c.mean[1]) * L, "mass_same": float(c.mass[0]),
            "by_hamming": [float(v) * L for v in h.mean],
            "map_same": float(np.nanmean(np.where(same, A, np.nan))),
            "map_other": float(np.nanmean(np.where(other, A, np.nan)))}


def _cluster_job(spec: dict) -> dict:
    import copy

    tr = make_trainer(spec)
    init = copy.deepcopy(tr.model)
    run_trainer(tr, int(spec.get("patience", 0) or 0))
    out = scores(tr)
    from engine.experiments.training import held_out_test_set

    x, _ = held_out_test_set(tr)
    m, k = spec["m"], spec["k"]
    out.update({"trained": _summaries(tr.model, x, m, k, spec["map_samples"]),
                "init": _summaries(init, x, m, k, spec["map_samples"])})
    return out


def run_attention_cluster(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    specs = lca_specs(grid, {"m": grid["m"], "k": grid["k"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "seed": grid["seeds"]}, fixed={"map_samples": grid["map_samples"]})
    for s in specs:
        s["neighborhood"] = f"cluster:{s['k']}"
    pairs = train_pairs(_cluster_job, specs, grid, jobs, ctx)
    rows, curves = [], {}
    cells = [(m, k, L, d) for m in as_list(grid["m"]) for k in as_list(grid["k"]) for L in as_list(grid["L"])
             for d in as_list(grid["d"])]
    for m, k, L, d in cells:
        cell = [p for p in pairs if (p[0]["m"], p[0]["k"], p[0]["L"], p[0]["d"]) == (m, k, L, d)]
        lr, runs = best_lr(cell)
        run_ratios = [r["trained"]["same"] / r["trained"]["other"] for r in runs]
        mr = [r["trained"]["map_same"] / r["trained"]["map_other"] for r in runs]
        row = {"m": m, "k": k, "L": L, "d": d, "lr": lr}
        for key in ("same", "other", "mass_same", "map_same", "map_other"):
            row[key] = mean_std([r["trained"][key] for r in runs])[0]
        row["ratio"], row["ratio_std"] = mean_std(run_ratios)
        row["map_ratio"] = mean_std(mr)[0]
        row["ratio_init"] = mean_std([r["init"]["same"] / r["init"]["other"] for r in runs])[0]
        row["mass_same_init"] = mean_std([r["init"]["mass_same"] for r in runs])[0]
        row["accuracy"] = mean_std([r["accuracy"] for r in runs])[0]
        row["bayes"] = mean_std([r["bayes"] for r in runs])[0]
        row["seeds"] = len(runs)
        row["ratio_runs"] = run_ratios
        rows.append(row)
        hm = np.nanmean(np.asarray([r["trained"]["by_hamming"] for r in runs], dtype=np.float64), axis=0)
        tag = f"k={k}" + (f" m={m} L={L} d={d}" if len(cells) > len(as_list(grid["k"])) else "")
        curves[f"trained {tag}"] = curve(list(range(len(hm))), hm)
        h0 = np.nanmean(np.asarray([r["init"]["by_hamming"] for r in runs], dtype=np.float64), axis=0)
        curves[f"init {tag}"] = curve(list(range(len(h0))), h0)
    notes = ["same/other: L x mean weight per key position (uniform attention = 1); mass_same: total weight "
             "on same-cluster keys; *_init: the untrained model of the same seed",
             "curves: L x mean weight by Hamming distance between key token and t_L"]
    if any(not math.isfinite(x) for r in rows for x in r["ratio_runs"]):
        notes.append("some ratios are undefined (no other-cluster keys in the samples)")
    notes.append("attention measured on the held-out test set; the lr is chosen on the validation set")
    return SPECS["attention-cluster"].result(grid, rows, curves, t.seconds, notes=notes)
