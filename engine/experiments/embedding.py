"""Embeddings (Sec. 5.3, 6.2): trained vs frozen W_E across d (Fig. C.4), the geometry
⟨W_E(t), W_E(t')⟩ against Hamming distance (Fig. 3b, C.5, C.6; eq. 5.2 and Thm 3) and the spectrum
of the trained W_E (Fig. C.9-C.12; Lemma 5).

Every job trains one model (config x seed); the Gaussian initial W_E of the same seed is kept as the
untrained baseline where it helps to read the numbers.
"""

from __future__ import annotations

import numpy as np

from engine.experiments.grids import Grid, as_list
from engine.experiments.jobs import Timer
from engine.experiments.results import ExperimentResult, curve
from engine.experiments.specs import SPECS
from engine.experiments.stats import mean_std
from engine.experiments.training import (
    PAPER_TRAIN,
    accuracy_job,
    best_lr,
    lca_specs,
    make_trainer,
    run_trainer,
    scores,
    train_pairs,
)

_COMMON = {"omega": 0.5, "beta": 1.0, "neighborhood": "all", "weight_decay": 0.01}
_TINY = dict(steps=80, lr=(0.01,), batch_size=64, eval_size=256, device="cpu", **_COMMON)
_QUICK = dict(lr=(0.01,), batch_size=128, eval_size=2048, device="auto", **_COMMON)
_PAPER = {**PAPER_TRAIN, **_COMMON}

GRIDS = {
    # d/V in {1/8, 1/4, 1/2, 1, 2, 4, 8}, 5 seeds, the orthonormal frozen W_E control at d = V (issue 20)
    "embedding-dim": {
        "tiny": Grid("tiny", m=3, L=16, d=(4, 8, 16), seeds=(0, 1), **_TINY),
        "quick": Grid("quick", m=4, L=32, d=(2, 4, 8, 16, 32, 64, 128), seeds=(0, 1, 2, 3, 4), steps=3000,
                      eval_every=100, patience=5, schedule="wsd", warmup=50, **_QUICK),
        # d/V per m: m = 5 runs d = 4..256, m = 6 runs d = 8..512 (d not in {V/8, .., 8V} for an m is skipped)
        "paper": Grid("paper", m=(5, 6), L=64, d=(4, 8, 16, 32, 64, 128, 256, 512), seeds=(0, 1, 2, 3, 4),
                      **{**_PAPER, "steps": ((5, 15000), (6, 15000))}),
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


def _cells(grid: Grid) -> list[tuple]:
    return [(m, L, d) for m in as_list(grid["m"]) for L in as_list(grid["L"]) for d in as_list(grid["d"])]


def _patience(spec: dict) -> int:
    return int(spec.get("patience", 0) or 0)


_NOTE_HELD_OUT = ("accuracy on a held-out test set; the lr of each cell is chosen on a separate validation set")


# ----------------------------------------------------------------------------------- embedding-dim
def orthonormal_embedding(V: int, seed: int):
    """A (V, V) W_E with orthonormal columns (QR of a seeded Gaussian, signs fixed): the Theorem 1
    embedding, the frozen control of Fig. C.4 at d = V."""
    import torch

    g = torch.Generator().manual_seed(70_000 + int(seed))
    q, r = torch.linalg.qr(torch.randn(V, V, generator=g, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


def _dim_cells(grid: Grid) -> list[tuple]:
    """The (m, L, d) cells of embedding-dim: d/V within [1/8, 8] for each m."""
    return [(m, L, d) for m, L, d in _cells(grid) if 2 ** m <= 8 * d and d <= 8 * 2 ** m]


def _dim_job(spec: dict) -> dict:
    """One embedding-dim run: ``accuracy_job``, or with ``orthonormal`` the W_E frozen at an orthonormal
    matrix (d = V) instead of its Gaussian initialisation (kept apart in the model cache)."""
    if not spec.get("orthonormal"):
        return accuracy_job(spec)
    import torch

    tr = make_trainer(spec)
    V = tr.model.W_E.shape[1]
    if tr.model.W_E.shape[0] != V:
        raise ValueError("the orthonormal W_E control needs d = V")
    with torch.no_grad():
        tr.model.W_E.copy_(orthonormal_embedding(V, spec["seed"]).to(tr.model.W_E.device))
    run_trainer(tr, _patience(spec), cache_tag="orthonormal W_E")
    return scores(tr)


def run_embedding_dim(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    axes = {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
            "freeze_embedding": (False, True), "seed": grid["seeds"]}
    cells = _dim_cells(grid)
    specs = [s for s in lca_specs(grid, axes) if (s["m"], s["L"], s["d"]) in cells]
    for m in as_list(grid["m"]):
        if 2 ** m in as_list(grid["d"]):     # the orthonormal frozen control at d = V
            specs += lca_specs(grid, {**axes, "m": [m], "d": [2 ** m], "freeze_embedding": [True]},
                               fixed={"orthonormal": True})
    pairs = train_pairs(_dim_job, specs, grid, jobs, ctx)
    rows, curves = [], {}
    for m, L, d in cells:
        V = 2 ** m
        cell = [p for p in pairs if _key(p[0]) == (m, L, d)]
        lr_t, rt = best_lr([p for p in cell if not p[0]["freeze_embedding"]])
        lr_f, rf = best_lr([p for p in cell if p[0]["freeze_embedding"] and not p[0].get("orthonormal")])
        at, af = [r["accuracy"] for r in rt], [r["accuracy"] for r in rf]
        mt, st = mean_std(at)
        mf, sf = mean_std(af)
        regime = "d < V" if d < V else ("d > V" if d > V else "d = V")
        row = {"m": m, "V": V, "L": L, "d": d, "d/V": d / V, "regime": regime, "trained_W_E": mt,
               "trained_std": st, "frozen_W_E": mf, "frozen_std": sf, "gap": mt - mf,
               "bayes": mean_std([r["bayes"] for r in rt])[0], "lr_trained": lr_t, "lr_frozen": lr_f,
               "seeds": len(at), "converged_trained": f"{sum(r['converged'] for r in rt)}/{len(rt)}",
               "converged_frozen": f"{sum(r['converged'] for r in rf)}/{len(rf)}",
               "steps_trained": mean_std([r["steps"] for r in rt])[0],
               "steps_frozen": mean_std([r["steps"] for r in rf])[0],
               "trained_runs": at, "frozen_runs": af}
        ro = [p for p in cell if p[0].get("orthonormal")]
        if ro:
            lr_o, ro_runs = best_lr(ro)
            row.update({"orthonormal_W_E": mean_std([r["accuracy"] for r in ro_runs])[0], "lr_orthonormal": lr_o,
                        "converged_orthonormal": f"{sum(r['converged'] for r in ro_runs)}/{len(ro_runs)}",
                        "orthonormal_runs": [r["accuracy"] for r in ro_runs]})
        rows.append(row)
    for m in as_list(grid["m"]):
        for L in as_list(grid["L"]):
            sel = [r for r in rows if r["m"] == m and r["L"] == L]
            tag = f"m={m}" + (f" L={L}" if len(as_list(grid["L"])) > 1 else "")
            xs = [r["d"] for r in sel]
            curves[f"trained W_E {tag}"] = curve(xs, [r["trained_W_E"] for r in sel])
            curves[f"frozen W_E {tag}"] = curve(xs, [r["frozen_W_E"] for r in sel])
            curves[f"Bayes {tag}"] = curve(xs, [r["bayes"] for r in sel])
    return SPECS["embedding-dim"].result(grid, rows, curves, t.seconds, notes=[
        _NOTE_HELD_OUT, "converged_*: runs of that arm that met the plateau rule (or reached 0.98 x Bayes) / all; "
        "steps_*: mean steps trained", "orthonormal_W_E (d = V only): W_E frozen at an orthonormal matrix, "
        "the Theorem 1 embedding, beside the frozen Gaussian one"])


# ----------------------------------------------------------------------------------- geometry
def _means_fit(mean_inner) -> tuple[float, float, float]:
    """Least-squares line through the per-distance means for k = 1..m: (a, b, R²) with mean ≈ -a·k + b."""
    from engine.experiments.stats import line_fit

    y = list(mean_inner[1:])
    slope, icept, r2 = line_fit(list(range(1, len(y) + 1)), y)
    return -slope, icept, r2


def _geometry_job(spec: dict) -> dict:
    from engine.lca.analysis import embedding_geometry

    tr = make_trainer(spec)
    W0 = tr.model.W_E.detach().clone()
    run_trainer(tr, _patience(spec))
    out = scores(tr)
    for tag, W in (("trained", tr.model.W_E.detach()), ("init", W0)):
        g = embedding_geometry(W, spec["m"])
        out[tag] = {"mean_inner": [float(v) for v in g.mean_inner], "a": g.a, "b": g.b, "b0": g.b0,
                    "r2_pairs": g.r2}
    return out


def geometry_rows(pairs, cells, label_of=lambda frozen: "W_V = I" if frozen else "W_V trained") -> list[dict]:
    """One row per (cell, W_V trained / W_V = I / Gaussian init) from (spec, geometry-job result) pairs."""
    rows = []
    statuses = sorted({bool(s.get("freeze_value", False)) for s, _ in pairs})
    for m, L, d in cells:
        for frozen in statuses:
            cell = [p for p in pairs if _key(p[0]) == (m, L, d) and bool(p[0].get("freeze_value", False)) == frozen]
            if not cell:
                continue
            lr, runs = best_lr(cell)
            variants = [(label_of(frozen), "trained")]
            if frozen == statuses[0]:
                variants.append(("Gaussian init", "init"))
            for label, key in variants:
                mi = np.nanmean(np.asarray([r[key]["mean_inner"] for r in runs], dtype=np.float64), axis=0)
                a, b, r2m = _means_fit(mi)
                row = {"m": m, "L": L, "d": d, "W_E": label,
                       "a_pairs": mean_std([r[key]["a"] for r in runs])[0],
                       "b_pairs": mean_std([r[key]["b"] for r in runs])[0],
                       "b0": float(mi[0]),
                       "r2_pairs": mean_std([r[key]["r2_pairs"] for r in runs])[0],
                       "a_means": a, "b_means": b, "r2_means": r2m,
                       "accuracy": mean_std([r["accuracy"] for r in runs])[0] if key == "trained" else None,
                       "lr": lr, "seeds": len(runs),
                       "r2_pairs_runs": [r[key]["r2_pairs"] for r in runs]}
                for k, v in enumerate(mi):
                    row[f"k={k}"] = float(v)
                rows.append(row)
    return rows


def geometry_curves(rows: list[dict]) -> dict:
    curves = {}
    multi = len({(r["m"], r["L"], r["d"]) for r in rows}) > 1
    for row in rows:
        m = row["m"]
        tag = row["W_E"] + (f" m={m} L={row['L']} d={row['d']}" if multi else "")
        ks = list(range(m + 1))
        curves[f"{tag} mean"] = curve(ks, [row[f"k={k}"] for k in ks])
        curves[f"{tag} fit"] = curve(ks, [row["b0"]] + [-row["a_pairs"] * k + row["b_pairs"] for k in ks[1:]])
    return curves


def run_embedding_geometry(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "freeze_value": (False, True), "seed": grid["seeds"]})
    rows = geometry_rows(train_pairs(_geometry_job, specs, grid, jobs, ctx), _cells(grid))
    notes = ["a_pairs, b_pairs, r2_pairs: the eq. 5.2 line fitted over every pair t != t' (seed means); "
             "a_means, r2_means: the same line through the per-distance means; b0 (= k=0): mean squared norm",
             "Gaussian init rows: the untrained W_E of the same seeds (a ≈ 0 expected)", _NOTE_HELD_OUT]
    return SPECS["embedding-geometry"].result(grid, rows, geometry_curves(rows), t.seconds, notes=notes)


# ----------------------------------------------------------------------------------- spectrum
def _gap_stat(s, m: int) -> tuple[float, int]:
    """The spectral gap and where it sits (``engine.lca.analysis.spectral_gap_at``)."""
    from engine.lca.analysis import spectral_gap_at

    return spectral_gap_at(s, m)


def _spectrum_job(spec: dict) -> dict:
    from engine.lca.analysis import singular_values

    tr = make_trainer(spec)
    W0 = tr.model.W_E.detach().clone()
    run_trainer(tr, _patience(spec))
    out = scores(tr)
    out.update({"s": [float(v) for v in singular_values(tr.model.W_E.detach())],
                "s_init": [float(v) for v in singular_values(W0)]})
    return out


def _energy(s, k: int) -> float:
    s2 = np.asarray(s, dtype=np.float64) ** 2
    return float(s2[:k].sum() / s2.sum()) if s2.sum() > 0 else float("nan")


def run_spectrum(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    t = Timer()
    specs = lca_specs(grid, {"m": grid["m"], "L": grid["L"], "d": grid["d"], "lr": grid["lr"],
                             "seed": grid["seeds"]})
    pairs = train_pairs(_spectrum_job, specs, grid, jobs, ctx)
    rows, curves = [], {}
    for m, L, d in _cells(grid):
        lr, runs = best_lr([p for p in pairs if _key(p[0]) == (m, L, d)])
        gaps = [_gap_stat(r["s"], m) for r in runs]
        gaps0 = [_gap_stat(r["s_init"], m) for r in runs]
        s_mean = np.mean(np.asarray([np.asarray(r["s"]) / r["s"][0] for r in runs]), axis=0)
        s0_mean = np.mean(np.asarray([np.asarray(r["s_init"]) / r["s_init"][0] for r in runs]), axis=0)
        ks = [k for _, k in gaps]
        row = {"m": m, "V": 2 ** m, "L": L, "d": d, "gap": mean_std([x for x, _ in gaps])[0],
               "gap_at_k": max(set(ks), key=ks.count), "gap_init": mean_std([x for x, _ in gaps0])[0],
               "top_m+2_energy": mean_std([_energy(r["s"], m + 2) for r in runs])[0],
               "top_m+2_energy_init": mean_std([_energy(r["s_init"], m + 2) for r in runs])[0],
               "accuracy": mean_std([r["accuracy"] for r in runs])[0], "lr": lr, "seeds": len(runs),
               "gap_runs": [x for x, _ in gaps], "gap_init_runs": [x for x, _ in gaps0], "gap_at_k_runs": ks}
        for i in range(min(len(s_mean), m + 4)):
            row[f"s{i + 1}/s1"] = float(s_mean[i])
        rows.append(row)
        tag = f" L={L}" if len(as_list(grid["L"])) > 1 else ""
        idx = list(range(1, len(s_mean) + 1))
        curves[f"trained m={m} d={d}{tag}"] = curve(idx, s_mean)
        curves[f"init m={m} d={d}{tag}"] = curve(idx, s0_mean)
    return SPECS["spectrum"].result(grid, rows, curves, t.seconds,
                                   notes=["s_i/s1: singular values of W_E divided by the largest (seed mean)",
                                          "top_m+2_energy: share of Σ s_i² in the top m + 2 values",
                                          "gap_at_k: the most common k of the gap over seeds"])
