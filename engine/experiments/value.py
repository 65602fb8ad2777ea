"""The value matrix (Sec. 6.1): trained vs frozen W_V = I (Fig. 3a, C.1), the trained W_V swapped for
the constructed one of eq. 5.1 (Fig. C.2) and principal angles between rank-m approximations (Fig. C.3).

Jobs are (m, L, d, lr, seed) [x W_V trained/frozen]; each trains one model with AdamW. Where the grid
lists several learning rates, each cell reports the lr with the best mean accuracy over seeds (the
paper picks the better of {0.01, 0.001}).
"""

from __future__ import annotations

import math

from engine.experiments.base import (ExperimentResult, Grid, Timer, as_list, curve, lca_specs, mean_std,
                                     paired_gap, run_jobs, train)

CLAIMS = {
    "value-matrix": ("Freezing the value matrix at W_V = I lowers accuracy compared with training W_V, "
                     "most visibly at the shorter context length (Fig. 3a, C.1)."),
    "value-swap": ("Replacing the trained W_V by the constructed W_V of eq. 5.1 does not lower accuracy "
                   "significantly, unlike the random-constructed baseline (Fig. C.2)."),
    "value-angles": ("The rank-m approximation of the trained W_V has, on average, a smaller principal "
                     "angle to the constructed W_V than to the random-constructed or Gaussian ones (Fig. C.3)."),
}

_COMMON = {"omega": 0.5, "beta": 1.0, "neighborhood": "all", "weight_decay": 0.01}
_TINY = dict(d=16, steps=60, lr=(0.01,), batch_size=64, eval_size=256, device="cpu", **_COMMON)
_QUICK = dict(d=32, steps=300, lr=(0.01,), batch_size=128, eval_size=2048, device="auto", **_COMMON)
_PAPER = dict(d=(32, 64), steps=5000, lr=(0.01, 0.001), batch_size=256, eval_size=8192, device="auto",
              **_COMMON)

GRIDS = {
    "value-matrix": {
        "tiny": Grid("tiny", m=(3,), L=(16, 32), seeds=(0, 1), **_TINY),
        "quick": Grid("quick", m=(5, 7), L=(64, 128), seeds=(0, 1), **_QUICK),
        "paper": Grid("paper", m=(5, 6, 7, 8), L=(64, 128), seeds=(0, 1, 2, 3, 4), **_PAPER),
    },
    "value-swap": {
        "tiny": Grid("tiny", m=(3,), L=(16,), seeds=(0, 1), **_TINY),
        "quick": Grid("quick", m=(5, 6), L=(64,), seeds=(0, 1, 2), **_QUICK),
        "paper": Grid("paper", m=(5, 6, 7, 8), L=(64, 128), seeds=(0, 1, 2, 3, 4), **_PAPER),
    },
}
GRIDS["value-angles"] = {k: g for k, g in GRIDS["value-swap"].items()}


# ----------------------------------------------------------------------------------- jobs
def _accuracy_job(spec: dict) -> dict:
    tr = train(spec)
    ev = tr.last_eval or tr.evaluate()
    return {"accuracy": ev.accuracy, "bayes": ev.bayes_accuracy, "loss": ev.loss, "steps": tr.step}


def _value_job(spec: dict) -> dict:
    """Train with W_V free, then swap (Fig. C.2) and principal angles (Fig. C.3)."""
    import torch

    from engine.lca.analysis import value_angles_report, value_swap_report

    tr = train(spec)
    swap = value_swap_report(tr, generator=torch.Generator().manual_seed(1000 + spec["seed"]))
    ang = value_angles_report(tr.model.W_V.detach(), tr.model.W_E.detach(), spec["m"],
                              generator=torch.Generator().manual_seed(2000 + spec["seed"]))
    return {"trained": swap["trained"], "constructed": swap["constructed"],
            "random_constructed": swap["random_constructed"], "bayes": swap["bayes"],
            "angle_constructed": ang["constructed"], "angle_random": ang["random_constructed"],
            "angle_gaussian": ang["gaussian"], "k": ang["k"]}


def _cells(grid: Grid) -> list[tuple]:
    return [(m, L, d) for m in as_list(grid["m"]) for L in as_list(grid["L"]) for d in as_list(grid["d"])]


def _best_lr(results: list[tuple[dict, dict]], key: str) -> tuple[float, list[tuple[dict, dict]]]:
    """Among (spec, result) pairs of one cell, the lr whose mean ``key`` over seeds is highest."""
    by_lr: dict = {}
    for spec, res in results:
        by_lr.setdefault(spec["lr"], []).append((spec, res))
    best = max(by_lr, key=lambda lr: (mean_std([r[key] for _, r in by_lr[lr]])[0], -lr))
    return best, sorted(by_lr[best], key=lambda sr: sr[0]["seed"])


# ----------------------------------------------------------------------------------- value-matrix
def run_value_matrix(grid: Grid, progress=None, cancel=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "freeze_value": (False, True), "seed": grid["seeds"]})
    res = run_jobs(_accuracy_job, specs, jobs=jobs, progress=progress, cancel=cancel)
    pairs = list(zip(specs, res))
    rows, all_t, all_f, cell_gaps = [], [], [], []
    curves: dict = {}
    for m, L, d in _cells(grid):
        cell = [(s, r) for s, r in pairs if (s["m"], s["L"], s["d"]) == (m, L, d)]
        lr_t, tr_runs = _best_lr([p for p in cell if not p[0]["freeze_value"]], "accuracy")
        lr_f, fr_runs = _best_lr([p for p in cell if p[0]["freeze_value"]], "accuracy")
        at = [r["accuracy"] for _, r in tr_runs]
        af = [r["accuracy"] for _, r in fr_runs]
        mt, st = mean_std(at)
        mf, sf = mean_std(af)
        bayes = mean_std([r["bayes"] for _, r in tr_runs])[0]
        all_t += at
        all_f += af
        cell_gaps.append(mt - mf)
        rows.append({"m": m, "L": L, "d": d, "trained": mt, "trained_std": st, "W_V=I": mf, "W_V=I_std": sf,
                     "gap": mt - mf, "bayes": bayes, "lr_trained": lr_t, "lr_frozen": lr_f, "seeds": len(at)})
    for L in as_list(grid["L"]):
        for d in as_list(grid["d"]):
            sel = [r for r in rows if r["L"] == L and r["d"] == d]
            tag = f"L={L}" + (f" d={d}" if len(as_list(grid["d"])) > 1 else "")
            xs = [r["m"] for r in sel]
            curves[f"trained W_V {tag}"] = curve(xs, [r["trained"] for r in sel])
            curves[f"W_V=I {tag}"] = curve(xs, [r["W_V=I"] for r in sel])
            curves[f"Bayes {tag}"] = curve(xs, [r["bayes"] for r in sel])
    gap, se, n = paired_gap(all_t, all_f)
    rule = ("pairs (trained, W_V = I) share seed, data and initialisation; holds if the trained mean "
            "beats W_V = I in every (m, L, d) cell and the mean paired gap exceeds 2 standard errors; "
            "does not hold if the mean gap is below -2 SE or W_V = I wins in most cells; inconclusive otherwise")
    wins = sum(g > 0 for g in cell_gaps)
    if all(g > 0 for g in cell_gaps) and math.isfinite(se) and gap > 2 * se:
        verdict = "holds"
    elif (math.isfinite(se) and gap < -2 * se) or wins < len(cell_gaps) / 2:
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    notes = [f"mean paired gap trained - (W_V = I) = {gap:.4f} ± {se:.4f} (SE) over {n} pairs"]
    by_L = {}
    for r in rows:
        by_L.setdefault(r["L"], []).append(r["gap"])
    notes.append("mean gap by L: " + ", ".join(f"L={L}: {sum(v) / len(v):.4f}" for L, v in by_L.items()))
    return ExperimentResult("value-matrix", "Trained W_V vs W_V frozen at I", CLAIMS["value-matrix"], verdict,
                            rule, grid.to_dict(), rows, curves, t.seconds, figure="Fig. 3a, C.1", notes=notes)


# ----------------------------------------------------------------------------------- swap / angles
def _value_runs(grid: Grid, progress, cancel, jobs):
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "seed": grid["seeds"]})
    res = run_jobs(_value_job, specs, jobs=jobs, progress=progress, cancel=cancel)
    pairs = list(zip(specs, res))
    out = []
    for m, L, d in _cells(grid):
        lr, runs = _best_lr([p for p in pairs if (p[0]["m"], p[0]["L"], p[0]["d"]) == (m, L, d)], "trained")
        out.append(((m, L, d), lr, [r for _, r in runs]))
    return out


def run_value_swap(grid: Grid, progress=None, cancel=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    cells = _value_runs(grid, progress, cancel, jobs)
    rows, tr_all, co_all, ra_all = [], [], [], []
    for (m, L, d), lr, runs in cells:
        row = {"m": m, "L": L, "d": d, "lr": lr}
        for key in ("trained", "constructed", "random_constructed", "bayes"):
            mu, sd = mean_std([r[key] for r in runs])
            row[key] = mu
            if key != "bayes":
                row[key + "_std"] = sd
        row["seeds"] = len(runs)
        rows.append(row)
        tr_all += [r["trained"] for r in runs]
        co_all += [r["constructed"] for r in runs]
        ra_all += [r["random_constructed"] for r in runs]
    ratio = mean_std([c / tt if tt > 0 else float("nan") for c, tt in zip(co_all, tr_all)])[0]
    gap, se, n = paired_gap(co_all, ra_all)
    rule = ("holds if the constructed W_V keeps >= 90% of the trained accuracy on average (mean of "
            "constructed/trained over runs) and beats the random-constructed W_V by > 0.05 and > 2 SE "
            "(paired); does not hold if it keeps < 70% or does not beat random-constructed; "
            "inconclusive otherwise")
    if ratio >= 0.9 and gap > 0.05 and math.isfinite(se) and gap > 2 * se:
        verdict = "holds"
    elif ratio < 0.7 or gap <= 0:
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    curves = _curves_by_m(rows, ("trained", "constructed", "random_constructed", "bayes"))
    notes = [f"constructed keeps {ratio:.3f} of the trained accuracy on average; constructed - random-"
             f"constructed = {gap:.4f} ± {se:.4f} (SE, {n} runs)"]
    return ExperimentResult("value-swap", "Trained W_V swapped for constructed / random-constructed",
                            CLAIMS["value-swap"], verdict, rule, grid.to_dict(), rows, curves, t.seconds,
                            figure="Fig. C.2", notes=notes)


def run_value_angles(grid: Grid, progress=None, cancel=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    cells = _value_runs(grid, progress, cancel, jobs)
    rows, c_all, r_all, g_all = [], [], [], []
    for (m, L, d), lr, runs in cells:
        row = {"m": m, "L": L, "d": d, "k": m, "lr": lr}
        for key, col in (("angle_constructed", "constructed"), ("angle_random", "random_constructed"),
                         ("angle_gaussian", "gaussian")):
            mu, sd = mean_std([r[key] for r in runs])
            row[col] = mu
            row[col + "_std"] = sd
        row["trained_accuracy"] = mean_std([r["trained"] for r in runs])[0]
        row["seeds"] = len(runs)
        rows.append(row)
        c_all += [r["angle_constructed"] for r in runs]
        r_all += [r["angle_random"] for r in runs]
        g_all += [r["angle_gaussian"] for r in runs]
    g1, se1, n = paired_gap(r_all, c_all)
    g2, se2, _ = paired_gap(g_all, c_all)
    mc = mean_std(c_all)[0]
    smallest = mc < mean_std(r_all)[0] and mc < mean_std(g_all)[0]
    rule = ("angles in degrees between rank-m approximations (k = m); holds if the constructed W_V has "
            "the smallest mean angle and its paired margins to random-constructed and Gaussian both "
            "exceed 2 SE; does not hold if its mean angle is not the smallest; inconclusive otherwise")
    if smallest and all(math.isfinite(s) for s in (se1, se2)) and g1 > 2 * se1 and g2 > 2 * se2:
        verdict = "holds"
    elif not smallest:
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    curves = _curves_by_m(rows, ("constructed", "random_constructed", "gaussian"))
    notes = [f"margin random-constructed - constructed = {g1:.2f}° ± {se1:.2f}; Gaussian - constructed = "
             f"{g2:.2f}° ± {se2:.2f} (SE, {n} runs)"]
    return ExperimentResult("value-angles", "Smallest principal angle to the trained W_V (rank m)",
                            CLAIMS["value-angles"], verdict, rule, grid.to_dict(), rows, curves, t.seconds,
                            figure="Fig. C.3", notes=notes)


def _curves_by_m(rows: list[dict], keys) -> dict:
    curves = {}
    combos = sorted({(r["L"], r["d"]) for r in rows})
    for L, d in combos:
        sel = [r for r in rows if (r["L"], r["d"]) == (L, d)]
        tag = f" L={L} d={d}" if len(combos) > 1 else ""
        for key in keys:
            curves[f"{key}{tag}"] = curve([r["m"] for r in sel], [r[key] for r in sel])
    return curves
