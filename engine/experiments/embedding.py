"""Embeddings (Sec. 5.3, 6.2): trained vs frozen W_E across d (Fig. C.4), the geometry
⟨W_E(t), W_E(t')⟩ against Hamming distance (Fig. 3b, C.5, C.6; eq. 5.2 and Thm 3) and the spectrum
of the trained W_E (Fig. C.9-C.12; Lemma 5).

Every job trains one model (config x seed); the Gaussian initial W_E of the same seed is kept as the
untrained baseline where it helps to read the numbers.
"""

from __future__ import annotations

import math

import numpy as np

from engine.experiments.base import (ExperimentResult, Grid, Timer, as_list, curve, lca_specs, make_trainer,
                                     mean_std, paired_gap, run_jobs, run_trainer)

CLAIMS = {
    "embedding-dim": ("Embedding training is needed when the dimension is below the vocabulary size (d < V); "
                      "when d > V the embeddings can stay frozen at their Gaussian initialisation (Fig. C.4)."),
    "embedding-geometry": ("In the under-parameterised regime the mean inner product of two trained embeddings "
                           "falls linearly with their Hamming distance, with a larger value b_0 > b on the "
                           "diagonal (eq. 5.2, Fig. 3b, C.5); with W_V = I the relation is mostly linear "
                           "(Thm 3, Fig. C.6)."),
    "spectrum": ("The trained embedding matrix is approximately low rank: its spectrum shows a gap between "
                 "the top (about m to m + 2) singular values and the rest (Lemma 5, Fig. C.9-C.12)."),
}

_COMMON = {"omega": 0.5, "beta": 1.0, "neighborhood": "all", "weight_decay": 0.01}
_TINY = dict(steps=80, lr=(0.01,), batch_size=64, eval_size=256, device="cpu", **_COMMON)
_QUICK = dict(lr=(0.01,), batch_size=128, eval_size=2048, device="auto", **_COMMON)
_PAPER = dict(steps=5000, lr=(0.01, 0.001), batch_size=256, eval_size=8192, device="auto", **_COMMON)

GRIDS = {
    "embedding-dim": {
        "tiny": Grid("tiny", m=3, L=16, d=(4, 16), seeds=(0,), **_TINY),
        "quick": Grid("quick", m=5, L=64, d=(8, 16, 64, 128), seeds=(0, 1), steps=300, **_QUICK),
        "paper": Grid("paper", m=(6, 8), L=64, d=(16, 32, 64, 128, 256, 512, 1024), seeds=(0, 1, 2),
                      **_PAPER),
    },
    "embedding-geometry": {
        "tiny": Grid("tiny", m=3, L=16, d=4, seeds=(0,), **_TINY),
        "quick": Grid("quick", m=6, L=64, d=16, seeds=(0, 1), steps=500, **_QUICK),
        "paper": Grid("paper", m=8, L=(64, 128), d=(32, 64), seeds=(0, 1, 2), **_PAPER),
    },
    "spectrum": {
        "tiny": Grid("tiny", m=3, L=16, d=6, seeds=(0,), **_TINY),
        "quick": Grid("quick", m=(7, 8), L=64, d=(32, 64), seeds=(0,), steps=300, **_QUICK),
        "paper": Grid("paper", m=(7, 8), L=(64, 128), d=(32, 64), seeds=(0, 1, 2), **_PAPER),
    },
}


def _key(spec: dict, names=("m", "L", "d")) -> tuple:
    return tuple(spec[n] for n in names)


def _best(pairs: list[tuple[dict, dict]], key: str = "accuracy") -> tuple[float, list[dict]]:
    by_lr: dict = {}
    for s, r in pairs:
        by_lr.setdefault(s["lr"], []).append((s, r))
    lr = max(by_lr, key=lambda v: (mean_std([r[key] for _, r in by_lr[v]])[0], -v))
    return lr, [r for _, r in sorted(by_lr[lr], key=lambda sr: sr[0]["seed"])]


def _cells(grid: Grid) -> list[tuple]:
    return [(m, L, d) for m in as_list(grid["m"]) for L in as_list(grid["L"]) for d in as_list(grid["d"])]


# ----------------------------------------------------------------------------------- embedding-dim
def _accuracy_job(spec: dict) -> dict:
    tr = run_trainer(make_trainer(spec))
    ev = tr.last_eval or tr.evaluate()
    return {"accuracy": ev.accuracy, "bayes": ev.bayes_accuracy}


def run_embedding_dim(grid: Grid, progress=None, cancel=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "freeze_embedding": (False, True), "seed": grid["seeds"]})
    res = run_jobs(_accuracy_job, specs, jobs=jobs, progress=progress, cancel=cancel)
    pairs = list(zip(specs, res))
    rows, curves = [], {}
    below_t, below_f, above_t, above_f = [], [], [], []
    for m, L, d in _cells(grid):
        V = 2 ** m
        cell = [p for p in pairs if _key(p[0]) == (m, L, d)]
        lr_t, rt = _best([p for p in cell if not p[0]["freeze_embedding"]])
        lr_f, rf = _best([p for p in cell if p[0]["freeze_embedding"]])
        at, af = [r["accuracy"] for r in rt], [r["accuracy"] for r in rf]
        mt, st = mean_std(at)
        mf, sf = mean_std(af)
        regime = "d < V" if d < V else ("d > V" if d > V else "d = V")
        if d < V:
            below_t += at
            below_f += af
        elif d > V:
            above_t += at
            above_f += af
        rows.append({"m": m, "V": V, "L": L, "d": d, "regime": regime, "trained_W_E": mt, "trained_std": st,
                     "frozen_W_E": mf, "frozen_std": sf, "gap": mt - mf,
                     "bayes": mean_std([r["bayes"] for r in rt])[0], "lr_trained": lr_t, "lr_frozen": lr_f,
                     "seeds": len(at)})
    for m in as_list(grid["m"]):
        for L in as_list(grid["L"]):
            sel = [r for r in rows if r["m"] == m and r["L"] == L]
            tag = f"m={m}" + (f" L={L}" if len(as_list(grid["L"])) > 1 else "")
            xs = [r["d"] for r in sel]
            curves[f"trained W_E {tag}"] = curve(xs, [r["trained_W_E"] for r in sel])
            curves[f"frozen W_E {tag}"] = curve(xs, [r["frozen_W_E"] for r in sel])
            curves[f"Bayes {tag}"] = curve(xs, [r["bayes"] for r in sel])
    gb, seb, nb = paired_gap(below_t, below_f)
    ga, sea, na = paired_gap(above_t, above_f)
    rule = ("gap = trained - frozen W_E accuracy, paired by seed; holds if the mean gap for d < V is "
            "> 0.05 and > 2 SE while the mean gap for d > V is < min(0.05, half the d < V gap); does not "
            "hold if the d < V gap is <= 0.02 or the d > V gap is at least the d < V gap; inconclusive "
            "otherwise (also when the grid lacks d on either side of V)")
    if nb == 0 or na == 0:
        verdict = "inconclusive"
    elif gb > 0.05 and math.isfinite(seb) and gb > 2 * seb and ga < min(0.05, gb / 2):
        verdict = "holds"
    elif gb <= 0.02 or ga >= gb:
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    notes = [f"mean gap d < V: {gb:.4f} ± {seb:.4f} (SE, {nb} pairs); d > V: {ga:.4f} ± {sea:.4f} ({na} pairs)"]
    return ExperimentResult("embedding-dim", "Trained vs frozen W_E across d", CLAIMS["embedding-dim"], verdict,
                            rule, grid.to_dict(), rows, curves, t.seconds, figure="Fig. C.4", notes=notes)


# ----------------------------------------------------------------------------------- geometry
def _means_fit(mean_inner) -> tuple[float, float, float]:
    """Least-squares line through the per-distance means for k = 1..m: (a, b, R²) with mean ≈ -a·k + b."""
    y = np.asarray(mean_inner[1:], dtype=np.float64)
    k = np.arange(1, len(y) + 1, dtype=np.float64)
    ok = np.isfinite(y)
    k, y = k[ok], y[ok]
    if len(y) < 2:
        return float("nan"), float("nan"), float("nan")
    slope, icept = np.polyfit(k, y, 1)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - (slope * k + icept)) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return float(-slope), float(icept), r2


def _geometry_job(spec: dict) -> dict:
    from engine.lca.analysis import embedding_geometry

    tr = make_trainer(spec)
    W0 = tr.model.W_E.detach().clone()
    run_trainer(tr)
    ev = tr.last_eval or tr.evaluate()
    out = {"accuracy": ev.accuracy, "bayes": ev.bayes_accuracy}
    for tag, W in (("trained", tr.model.W_E.detach()), ("init", W0)):
        g = embedding_geometry(W, spec["m"])
        out[tag] = {"mean_inner": [float(v) for v in g.mean_inner], "a": g.a, "b": g.b, "b0": g.b0,
                    "r2_pairs": g.r2}
    return out


def run_embedding_geometry(grid: Grid, progress=None, cancel=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "freeze_value": (False, True), "seed": grid["seeds"]})
    res = run_jobs(_geometry_job, specs, jobs=jobs, progress=progress, cancel=cancel)
    pairs = list(zip(specs, res))
    rows, curves = [], {}
    checks = []
    multi = len(_cells(grid)) > 1
    for m, L, d in _cells(grid):
        for frozen in (False, True):
            cell = [p for p in pairs if _key(p[0]) == (m, L, d) and p[0]["freeze_value"] == frozen]
            lr, runs = _best(cell)
            variants = [("W_V trained" if not frozen else "W_V = I", "trained")]
            if not frozen:
                variants.append(("Gaussian init", "init"))
            for label, key in variants:
                mi = np.nanmean(np.asarray([r[key]["mean_inner"] for r in runs], dtype=np.float64), axis=0)
                a, b, r2m = _means_fit(mi)
                b0 = float(mi[0])
                row = {"m": m, "L": L, "d": d, "W_E": label, "a": a, "b": b, "b0": b0,
                       "b0>b": bool(b0 > b), "r2_means": r2m,
                       "r2_pairs": mean_std([r[key]["r2_pairs"] for r in runs])[0],
                       "accuracy": mean_std([r["accuracy"] for r in runs])[0] if key == "trained" else None,
                       "lr": lr, "seeds": len(runs)}
                for k, v in enumerate(mi):
                    row[f"k={k}"] = float(v)
                rows.append(row)
                tag = label + (f" m={m} L={L} d={d}" if multi else "")
                ks = list(range(len(mi)))
                curves[f"{tag} mean"] = curve(ks, mi)
                fit = [b0] + [-a * k + b for k in ks[1:]]
                curves[f"{tag} fit"] = curve(ks, fit)
                if key == "trained":
                    checks.append((frozen, a, b, b0, r2m))
    rule = ("per configuration, a line -a·k + b is fitted to the mean inner product at Hamming distance "
            "k = 1..m (seeds averaged); holds if with W_V trained a > 0, b_0 > b and R² >= 0.9, and with "
            "W_V = I a > 0 and R² >= 0.9; does not hold if a <= 0 in any configuration (no decrease "
            "with distance); inconclusive otherwise")
    if any(not (a > 0) for _, a, _, _, _ in checks):
        verdict = "does not hold"
    elif all((r2 >= 0.9) and (frozen or b0 > b) for frozen, a, b, b0, r2 in checks):
        verdict = "holds"
    else:
        verdict = "inconclusive"
    notes = ["b0 is the mean squared norm (k = 0); a, b and R² come from the per-distance means; "
             "r2_pairs is the R² of the eq. 5.2 fit over every pair (noisier)",
             "Gaussian init rows: the untrained W_E of the same seeds, for comparison (a ≈ 0 expected)"]
    return ExperimentResult("embedding-geometry", "Mean ⟨W_E(t), W_E(t')⟩ against Hamming distance",
                            CLAIMS["embedding-geometry"], verdict, rule, grid.to_dict(), rows, curves,
                            t.seconds, figure="Fig. 3b, C.5, C.6", notes=notes)


# ----------------------------------------------------------------------------------- spectrum
def _gap_stat(s, m: int) -> tuple[float, int]:
    """The largest ratio s_k / s_{k+1} over k = 1..m+2 (1-based, s_1 >= s_2 >= ...; Lemma 5 bounds the
    rank of eq. 5.2 embeddings by m + 2) and the k attaining it."""
    s = np.sort(np.asarray(s, dtype=np.float64))[::-1]
    best, at = float("nan"), 0
    for k in range(1, m + 3):
        if k < len(s) and s[k] > 0:
            g = float(s[k - 1] / s[k])
            if not (best >= g):
                best, at = g, k
    return best, at


def _spectrum_job(spec: dict) -> dict:
    from engine.lca.analysis import singular_values

    tr = make_trainer(spec)
    W0 = tr.model.W_E.detach().clone()
    run_trainer(tr)
    ev = tr.last_eval or tr.evaluate()
    return {"accuracy": ev.accuracy, "bayes": ev.bayes_accuracy,
            "s": [float(v) for v in singular_values(tr.model.W_E.detach())],
            "s_init": [float(v) for v in singular_values(W0)]}


def _energy(s, k: int) -> float:
    s2 = np.asarray(s, dtype=np.float64) ** 2
    return float(s2[:k].sum() / s2.sum()) if s2.sum() > 0 else float("nan")


def run_spectrum(grid: Grid, progress=None, cancel=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "seed": grid["seeds"]})
    res = run_jobs(_spectrum_job, specs, jobs=jobs, progress=progress, cancel=cancel)
    pairs = list(zip(specs, res))
    rows, curves, checks = [], {}, []
    for m, L, d in _cells(grid):
        lr, runs = _best([p for p in pairs if _key(p[0]) == (m, L, d)])
        gaps = [_gap_stat(r["s"], m) for r in runs]
        gaps0 = [_gap_stat(r["s_init"], m) for r in runs]
        g, _ = mean_std([x for x, _ in gaps])
        g0, _ = mean_std([x for x, _ in gaps0])
        s_mean = np.mean(np.asarray([np.asarray(r["s"]) / r["s"][0] for r in runs]), axis=0)
        s0_mean = np.mean(np.asarray([np.asarray(r["s_init"]) / r["s_init"][0] for r in runs]), axis=0)
        row = {"m": m, "V": 2 ** m, "L": L, "d": d, "gap": g, "gap_at_k": gaps[0][1], "gap_init": g0,
               "top_m+2_energy": mean_std([_energy(r["s"], m + 2) for r in runs])[0],
               "top_m+2_energy_init": mean_std([_energy(r["s_init"], m + 2) for r in runs])[0],
               "accuracy": mean_std([r["accuracy"] for r in runs])[0], "lr": lr, "seeds": len(runs)}
        for i in range(min(len(s_mean), m + 4)):
            row[f"s{i + 1}/s1"] = float(s_mean[i])
        rows.append(row)
        checks.append((g, g0))
        idx = list(range(1, len(s_mean) + 1))
        curves[f"trained m={m} d={d}" + (f" L={L}" if len(as_list(grid["L"])) > 1 else "")] = curve(idx, s_mean)
        curves[f"init m={m} d={d}" + (f" L={L}" if len(as_list(grid["L"])) > 1 else "")] = curve(idx, s0_mean)
    rule = ("gap = max over k = 1..m+2 of s_k / s_{k+1} (seeds averaged); holds if in every "
            "(m, d) the trained gap is >= 1.5 and >= 1.5 x the gap of the Gaussian initial W_E; does not "
            "hold if in some (m, d) the trained gap is not above the initial one; inconclusive otherwise")
    if any(not (g > g0) for g, g0 in checks):
        verdict = "does not hold"
    elif all(g >= 1.5 and g >= 1.5 * g0 for g, g0 in checks):
        verdict = "holds"
    else:
        verdict = "inconclusive"
    return ExperimentResult("spectrum", "Singular values of the trained W_E", CLAIMS["spectrum"], verdict, rule,
                            grid.to_dict(), rows, curves, t.seconds, figure="Fig. C.9-C.12",
                            notes=["s_i/s1: singular values of W_E divided by the largest (seed mean)",
                                   "top_m+2_energy: share of Σ s_i² in the top m + 2 values"])
