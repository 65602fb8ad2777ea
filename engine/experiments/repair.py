"""What undoes the hijack, over records: every defense of ``engine.hijack.defenses`` chosen on the records
at even positions and scored on those at odd positions (``engine.hijack.repair``), per (model, scheme).
The experiment ``hijack-repair`` asks it of the embedded models under a rule fixed before the run
(``judges.RULES["hijack-repair"]``).

One row per (model, scheme, defense): ES at n undefended (``es_before``) and at n = 0 (``es_zero``; the
hijack's rise is their difference), ES defended (``es_after``), the per-record drop with its 95% t CI
(``drop``, ``drop_lo``, ``drop_hi``) and sign test, the paired falls of clean and reverse accuracy with
their CIs, α and the defense's settings; the curves are each defense's frontier (ES over α, evaluation half).
"""

from __future__ import annotations

from engine.experiments.grids import Grid
from engine.experiments.jobs import Timer, current_context
from engine.experiments.results import ExperimentResult, curve
from engine.experiments.specs import SPECS
from engine.hijack.defenses import settings_text

#: every defense but none; drop-context is the ceiling (reported, not counted by the rule)
DEFENSE_NAMES = ("drop-context", "heads", "attention", "contrastive", "steer")

GRIDS = {
    "hijack-repair": {
        "tiny": Grid("tiny", models=("smollm2-135m",), schemes=("not-think",), n=3, limit=4,
                     defenses=DEFENSE_NAMES, dataset="builtin", seed=0, batch_size=8, device="cpu"),
        "quick": Grid("quick", models=("smollm2-135m", "gemma3-270m"), schemes=("not-think",), n=3, limit=24,
                      defenses=DEFENSE_NAMES, dataset="builtin", seed=0, batch_size=8, device="auto"),
        "paper": Grid("paper", models=("smollm2-135m", "gemma3-270m"), schemes=("not-think", "relation"), n=3,
                      limit=40, defenses=DEFENSE_NAMES, dataset="builtin", seed=0, batch_size=8, device="auto"),
    },
}


def repair_rows(model: str, result: dict) -> list[dict]:
    """The rows ``judge_hijack_repair`` reads, one per defense of one ``engine.hijack.repair.repair`` dict."""
    rows = []
    for d in result["defenses"]:
        clean, rev = d["clean_fall"], d["reverse_fall"]
        row = {"model": model, "scheme": result["scheme"], "defense": d["name"], "alpha": d["params"]["alpha"],
               "settings": settings_text(d["params"]) or "-", "evaluated_on": len(result["evaluation"]),
               "es_zero": d["es_zero_before"], "es_before": d["es_before"], "es_after": d["es_after"],
               "drop": d["es_drop"], "drop_lo": d["es_ci"][0], "drop_hi": d["es_ci"][1], "sign_p": d["sign_p"],
               "clean_before": d["clean_accuracy_before"], "clean_after": d["clean_accuracy_after"],
               "clean_fall": clean["mean"], "clean_fall_lo": clean["lo"], "clean_fall_hi": clean["hi"],
               "reverse_before": d["reverse_accuracy_before"], "reverse_after": d["reverse_accuracy_after"],
               "reverse_fall": rev["mean"] if rev else None, "reverse_fall_lo": rev["lo"] if rev else None,
               "reverse_fall_hi": rev["hi"] if rev else None,
               "log_p_true_change": d["log_p_true_change"]["mean"],
               "reverse_log_p_true_change": (d.get("reverse_log_p_true_change") or {}).get("mean"),
               "ties": d.get("tied_after")}
        rows.append(row)
    return rows


def _repair_job(spec: dict) -> dict:
    from engine.experiments.hijack import _lm
    from engine.hijack.counterfact import FactRecord
    from engine.hijack.repair import repair

    lm = _lm(spec["model"], spec.get("device") or "auto")
    records = [FactRecord.from_dict(r) for r in spec["records"]]
    res = repair(lm, records, spec["scheme"], spec["n"], defenses=tuple(spec["defenses"]),
                 batch_size=spec["batch_size"], ctx=current_context())
    return {"rows": repair_rows(spec["model"], res),
            "frontiers": {d["name"]: d["frontier"] for d in res["defenses"]}}


def run_hijack_repair(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    from engine.experiments.hijack import run_model_scheme_jobs

    t = Timer()
    records, res = run_model_scheme_jobs(_repair_job, grid, {"defenses": list(grid["defenses"]),
                                                             "batch_size": grid["batch_size"]}, ctx, jobs)
    rows = [row for r in res for row in r["rows"]]
    curves = {}
    for r in res:
        head = r["rows"][0] if r["rows"] else None
        for name, points in r["frontiers"].items():
            if head is not None and len(points) > 1:
                curves[f"{head['model']} {head['scheme']} {name}"] = curve([p["alpha"] for p in points],
                                                                           [p["es"] for p in points])
    notes = [f"dataset {grid['dataset']}, {len(records)} records (seed {grid['seed']}), n = {grid['n']} prepended "
             "sentences, whole-target ES as `lca-tui hijack` scores it; the built-in records are written for this "
             "project, not taken from CounterFact",
             "halves: records at even positions select (heads: the top 3 by their ablation rise at the last "
             "position; attention: the fewest blocks, by knockout rise from the highest, carrying at least half "
             "of the positive rise of logit(true) - logit(false) when the last position may not attend to the "
             "prepended tokens in that block alone (every block if no knockout raises it); steer: the middle "
             "block, v from these records; alpha: the largest ES drop among the alphas whose clean accuracy and "
             "reverse accuracy each fall by at most 0.02 on them, else the alpha whose larger fall is smallest), "
             "records at odd positions evaluate; every defense acts at every position",
             "curves: each defense's frontier, ES on the evaluation half against alpha; drop-context (the "
             "question alone) is the ceiling"]
    return SPECS["hijack-repair"].result(grid, rows, curves, t.seconds, notes=notes)
