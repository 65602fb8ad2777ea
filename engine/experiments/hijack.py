"""Context hijacking on real language models (Sec. 3; Fig. 2, C.1, C.3, C.4).

For every model, relation id and scheme, ES(n) for n = 0..N prepended sentences
(``engine.hijack.efficacy.efficacy_curve``). Forward schemes (``not-think``, ``relation``) report the
efficacy score, the share of records with P(target_false) > P(target_true); reverse schemes report
accuracy, P(true) > P(false). Jobs are (model, relation id); each loads its model once per process.
The verdict uses an exact one-sided sign test on the records whose outcome differs between n = 0 and
n = N (pooled over relation ids). Over a large dataset the jobs are chunks of ``CHUNK_RECORDS``
records (``engine.hijack.efficacy``), each returning O(N) sums, so a sweep over the full CounterFact
keeps memory flat, streams each chunk to the job store as it finishes and resumes from it.
"""

from __future__ import annotations

from engine.errors import UserError
from engine.experiments.grids import Grid, as_list
from engine.experiments.jobs import Timer, current_context, run_jobs
from engine.experiments.results import ExperimentResult, curve
from engine.experiments.specs import SPECS
from engine.experiments.stats import sign_test_p

_SCHEMES = ("not-think", "relation", "reverse-not-think", "reverse-relation")
_RELATIONS = ("P103", "P131", "P190", "P641", "P1412")
GRIDS = {
    "hijack-curves": {
        "tiny": Grid("tiny", models=("smollm2-135m",), relations=("P190",), schemes=_SCHEMES, limit=2,
                     max_prepends=1, dataset="builtin", scoring="whole", batch_size=8, seed=0, device="cpu"),
        "quick": Grid("quick", models=("smollm2-135m",), relations=_RELATIONS, schemes=_SCHEMES, limit=None,
                      max_prepends=3, dataset="builtin", scoring="whole", batch_size=8, seed=0, device="auto"),
        "paper": Grid("paper", models=("openai-community/gpt2", "google/gemma-2b", "google/gemma-2b-it",
                                       "meta-llama/Llama-2-7b-hf"),
                      relations=_RELATIONS, schemes=_SCHEMES, limit=None, max_prepends=10,
                      dataset="azhx/counterfact", scoring="whole", batch_size=16, seed=0, device="auto"),
    },
}

_LM_CACHE: dict = {}


def _lm(name: str, device: str):
    from engine.hijack.lm import load_lm

    key = (name, device)
    if key not in _LM_CACHE:
        _LM_CACHE.clear()  # one model per process at a time
        _LM_CACHE[key] = load_lm(name, device=device)
    return _LM_CACHE[key]


def _hijack_job(spec: dict) -> dict:
    """One (model, relation id, chunk of at most ``CHUNK_RECORDS`` records) job: per scheme the chunk's
    ``tally`` (per-n sums, up/down counts), so a result never grows with the records' prompts."""
    from engine.hijack.counterfact import FactRecord
    from engine.hijack.efficacy import check_window, efficacy_curve
    from engine.hijack.efficacy_stream import tally

    lm = _lm(spec["model"], spec.get("device") or "auto")
    records = [FactRecord.from_dict(r) for r in spec["records"]]
    for scheme in spec["schemes"]:
        check_window(lm, records, scheme, spec["max_prepends"])
    ctx = current_context()
    out = {"model": spec["model"], "relation": spec["relation"], "schemes": {}}
    for scheme in spec["schemes"]:
        res = efficacy_curve(lm, records, scheme, spec["max_prepends"], scoring=spec["scoring"],
                             batch_size=spec["batch_size"], ctx=ctx, index_offset=spec.get("offset", 0))
        part = tally(res)
        out["schemes"][scheme] = {"metric": res.metric, "per_n": part["per_n"], "up": part["up"],
                                  "down": part["down"]}
    return out


def _prepare_models(models) -> None:
    """Convert embedded aliases once in this process, so parallel workers only load them."""
    from engine.hijack.lm import ALIASES, embedded_model_dir

    for name in models:
        if str(name).strip().lower() in ALIASES:
            embedded_model_dir(str(name).strip().lower())


def run_model_scheme_jobs(job, grid: Grid, extra: dict, ctx=None, jobs: int = 1) -> tuple[list, list]:
    """The LLM experiments' one shape (hijack-mechanism, hijack-repair): one job per (model, scheme)
    of the grid over the same records (``grid["dataset"]``, ``limit``, ``seed``), each spec carrying
    the records, ``n``, the device and ``extra``; the embedded models converted first, the loaded
    models dropped after. Returns (records, the jobs' results in spec order)."""
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.schemes import check_scheme

    schemes = [check_scheme(s) for s in grid["schemes"]]
    models = [str(m) for m in grid["models"]]
    records = load_counterfact(grid["dataset"], limit=grid["limit"], seed=grid["seed"])
    _prepare_models(models)
    specs = [{"model": model, "scheme": scheme, "records": [r.to_dict() for r in records], "n": grid["n"],
              **extra, "device": grid["device"]} for model in models for scheme in schemes]
    try:
        return records, run_jobs(job, specs, jobs=jobs, ctx=ctx)
    finally:
        _LM_CACHE.clear()


def run_hijack_curves(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.efficacy_stream import tally_curve
    from engine.hijack.schemes import check_scheme, is_reverse

    t = Timer()
    schemes = [check_scheme(s) for s in as_list(grid["schemes"])]
    if "custom" in schemes:
        raise UserError("hijack-curves runs the built-in schemes; use `lca-tui hijack --scheme custom` for templates")
    N = grid["max_prepends"]
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise UserError(f"max_prepends must be an integer >= 1, not {N!r}")
    models = [str(m) for m in as_list(grid["models"])]
    if not models:
        raise UserError("no models to evaluate")
    relations = [str(r) for r in as_list(grid["relations"])]
    recs = {rel: load_counterfact(grid["dataset"], relation=rel, limit=grid["limit"], seed=grid["seed"])
            for rel in relations}
    _prepare_models(models)
    from engine.hijack.efficacy_stream import CHUNK_RECORDS

    specs = [{"model": model, "relation": rel, "offset": start,
              "records": [r.to_dict() for r in recs[rel][start:start + CHUNK_RECORDS]], "schemes": schemes,
              "max_prepends": N, "scoring": grid["scoring"], "batch_size": grid["batch_size"],
              "device": grid["device"]}
             for model in models for rel in relations for start in range(0, max(len(recs[rel]), 1), CHUNK_RECORDS)]
    try:
        res = run_jobs(_hijack_job, specs, jobs=jobs, ctx=ctx)
    finally:
        _LM_CACHE.clear()

    rows, curves = [], {}
    for model in models:
        for scheme in schemes:
            pooled = [[0, 0] for _ in range(N + 1)]  # n -> [successes, count]
            k_up = k_down = 0
            for rel in relations:
                parts = [r["schemes"][scheme] for r in res if r["model"] == model and r["relation"] == rel]
                if not parts:
                    continue
                curve_ = tally_curve(parts, N)
                row = {"model": model, "scheme": scheme, "metric": parts[0]["metric"], "relation": rel,
                       "records": curve_[0].count}
                for p in curve_:
                    row[f"n={p.n}"] = p.es
                row[f"p_false@{N}"] = curve_[-1].p_false
                row[f"p_true@{N}"] = curve_[-1].p_true
                rows.append(row)
                for part in parts:
                    for n, (succ, _pt, _pf, count) in enumerate(part["per_n"]):
                        pooled[n][0] += succ
                        pooled[n][1] += count
                    k_up += part["up"]
                    k_down += part["down"]
            es = [pooled[n][0] / pooled[n][1] if pooled[n][1] else float("nan") for n in range(N + 1)]
            row = {"model": model, "scheme": scheme, "metric": "accuracy" if is_reverse(scheme) else "efficacy",
                   "relation": "all", "records": pooled[0][1]}
            for n in range(N + 1):
                row[f"n={n}"] = es[n]
            row["up"] = k_up      # records that start counting between n = 0 and n = N
            row["down"] = k_down  # records that stop counting
            row["sign_p"] = sign_test_p(k_up, k_down)
            rows.append(row)
            curves[f"{model} {scheme}"] = curve(list(range(N + 1)), es)
    notes = [f"dataset {grid['dataset']}, {grid['limit'] or 'all'} records per relation "
             f"({', '.join(relations)}), scoring {grid['scoring']}",
             "rows with relation 'all' pool the relation ids; n=k columns hold ES (forward) or accuracy (reverse); "
             "p_false/p_true: mean probabilities at the largest n; up/down: records that start/stop counting "
             "between n = 0 and the largest n; sign_p: one-sided sign test of up against down"]
    notes.append("record set: " + ", ".join(f"{rel} {len(recs[rel])}" for rel in relations)
                 + " records, fixed by the grid before the run (the verdict is never re-run with more records)")
    return SPECS["hijack-curves"].result(grid, rows, curves, t.seconds, notes=notes)
