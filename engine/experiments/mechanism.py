"""Where the hijack happens, over records: the causal trace of every record (``engine.hijack.trace``)
summarised as mean curves per block with 95% CIs (all records, and the flipped ones: P(false) >
P(true) at the last position of the hijacked prompt), and the heads that carry it chosen on one half
of the records and ablated on the other (ES with the top k heads zero-ablated at the last position
against none, with a paired sign test). The experiment ``hijack-mechanism`` asks it of the embedded
models under a rule fixed before the run (``judges.RULES["hijack-mechanism"]``).

Halves: records at even positions choose, records at odd positions evaluate. Head score: the mean
rise of ``logit_diff`` (true − false) when the head is ablated alone (a head that pushes towards the
false target scores high).

Beside it (``held_out_heads_atp``, the dataset trace's ``heads_atp``): the same heads ranked by the
attribution-patching estimate of that rise (``engine.hijack.atp``: one forward of each prompt and one
backward per even record, instead of a forward per head) and their top k ablated on the same odd
records, with the exact ranking's ES beside: does the cheap ranking pick heads that matter as much?
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import UserError
from engine.experiments.grids import Grid
from engine.experiments.jobs import Timer, current_context
from engine.experiments.results import ExperimentResult, curve
from engine.experiments.specs import SPECS
from engine.experiments.stats import mean_ci, sign_test_p
from engine.hijack import measures
from engine.hijack.measures import NAMES
from engine.job_context import NO_JOB, JobContext

TOP_K = (1, 3, 10)


def _layer_measures(trace) -> dict[str, list]:
    """measure name -> per block ``Measure`` of one trace (``engine.hijack.measures``)."""
    return {name: trace.curve(name) for name in NAMES}


def _ci(values) -> dict:
    e = mean_ci("", values)
    return {"mean": e.value, "lo": e.lo, "hi": e.hi, "n": e.n}


def summarise(traces: Sequence) -> dict:
    """Mean curves with 95% t CIs per block of every measure's ``logit_diff``, ``p_true`` and
    ``p_false``, plus the clean and hijacked means and the drop ``clean − hijacked``."""
    if not traces:
        return {"records": 0}
    n_layers = traces[0].n_layers
    per = [_layer_measures(t) for t in traces]
    out = {"records": len(traces)}
    for key in ("clean", "hijacked"):
        out[key] = {f: _ci([getattr(getattr(t, key), f) for t in traces]) for f in ("p_true", "p_false", "logit_diff")}
    out["drop"] = _ci([t.clean.logit_diff - t.hijacked.logit_diff for t in traces])
    out["es_clean"] = sum(t.clean.flipped for t in traces) / len(traces)
    out["es_hijacked"] = sum(t.hijacked.flipped for t in traces) / len(traces)
    curves = {}
    for name in NAMES:
        curves[name] = {f: [_ci([getattr(p[name][layer], f) for p in per]) for layer in range(n_layers)]
                        for f in ("logit_diff", "p_true", "p_false")}
    out["layers"] = curves
    heads = [[_ci([t.heads[layer][h].logit_diff - t.hijacked.logit_diff for t in traces])
              for h in range(len(traces[0].heads[layer]))] for layer in range(n_layers)] if traces[0].heads[0] else []
    out["head_ablation_rise"] = heads
    out["head_dla"] = [[_ci([t.dla["heads"][layer][h] for t in traces]) for h in range(len(traces[0].dla["heads"][0]))]
                       for layer in range(n_layers)]
    return out


def rank_heads(traces: Sequence) -> list[tuple[int, int, float]]:
    """(layer, head, mean rise of logit_diff when ablated) for every head, highest first."""
    if not traces or not traces[0].heads[0]:
        return []
    scores = []
    for layer, row in enumerate(traces[0].heads):
        for h in range(len(row)):
            rise = [t.heads[layer][h].logit_diff - t.hijacked.logit_diff for t in traces]
            scores.append((layer, h, sum(rise) / len(rise)))
    return sorted(scores, key=lambda s: -s[2])


def held_out_heads(lm, traces: Sequence, top_k: Sequence[int] = TOP_K) -> dict:
    """Heads chosen on the even records, their joint ablation evaluated on the odd ones (module doc)."""
    choose, evaluate = traces[0::2], traces[1::2]
    ranking = rank_heads(choose)
    if not ranking or not evaluate:
        return {"chosen_on": len(choose), "evaluated_on": len(evaluate), "ranking": [], "ablation": []}
    return {"chosen_on": len(choose), "evaluated_on": len(evaluate),
            "ranking": [{"layer": layer, "head": h, "rise": s} for layer, h, s in ranking[:max(top_k)]],
            "ablation": _held_out_ablation(lm, evaluate, ranking, top_k)}


def _held_out_ablation(lm, evaluate: Sequence, ranking, top_k: Sequence[int]) -> list[dict]:
    """ES on the ``evaluate`` traces with none and with the top k heads of ``ranking`` ablated jointly."""
    from engine.hijack.trace import ablate_heads

    ks = [k for k in top_k if k <= len(ranking)]
    sets = [[]] + [[(layer, h) for layer, h, _ in ranking[:k]] for k in ks]
    rows = [ablate_heads(lm, t.pair, sets) for t in evaluate]
    ablation = []
    base = [r[0] for r in rows]
    for i, k in enumerate([0] + ks):
        got = [r[i] for r in rows]
        up = sum(g.logit_diff > b.logit_diff for g, b in zip(got, base))
        down = sum(g.logit_diff < b.logit_diff for g, b in zip(got, base))
        flipped_before = sum(b.flipped for b in base)
        flipped_after = sum(g.flipped for g in got)
        ablation.append({"k": k, "heads": [list(h) for h in sets[i]], "es": flipped_after / len(got),
                         "es_none": flipped_before / len(got),
                         "rise": _ci([g.logit_diff - b.logit_diff for g, b in zip(got, base)]),
                         "up": up, "down": down, "sign_p": sign_test_p(up, down)})
    return ablation


def held_out_heads_atp(lm, traces: Sequence, exact: dict | None = None, top_k: Sequence[int] = TOP_K) -> dict:
    """The heads ranked by the attribution-patching estimate of their ablation rise on the even records,
    against the exact ranking (``rank_heads`` of the same traces): ``spearman`` over every head's
    score, ``overlap@k`` (the share of the exact top k among the estimate's), and their top k ablated
    on the odd records (``ablation``, as ``held_out_heads``'s, each with ``es_exact``: the exact
    ranking's ES at that k, from ``exact``, ``held_out_heads``' result, where given). A model the
    estimate cannot handle gives ``{"error": ...}``."""
    from engine.hijack.atp import atp
    from engine.hijack.atp_agreement import spearman

    choose, evaluate = traces[0::2], traces[1::2]
    try:
        est = [atp(lm, t.pair, window=t.window, knock_sink=t.knock_sink).trace for t in choose]
    except UserError as exc:
        return {"error": str(exc)}
    ranking, ranking_exact = rank_heads(est), rank_heads(choose)
    out = {"chosen_on": len(choose), "evaluated_on": len(evaluate), "method": "atp",
           "ranking": [{"layer": layer, "head": h, "rise": s} for layer, h, s in ranking[:max(top_k)]]}
    if not ranking or not evaluate:
        return {**out, "ablation": []}
    by_head = {(layer, h): s for layer, h, s in ranking}
    heads = [(layer, h) for layer, h, _ in ranking_exact]
    out["spearman"] = spearman([s for _, _, s in ranking_exact], [by_head[h] for h in heads])
    for k in top_k:
        if k <= len(ranking):
            top = {(layer, h) for layer, h, _ in ranking[:k]}
            out[f"overlap@{k}"] = len(top & set(heads[:k])) / k
    ablation = _held_out_ablation(lm, evaluate, ranking, top_k)
    es_exact = {a["k"]: a["es"] for a in (exact or {}).get("ablation", [])}
    for a in ablation:
        if a["k"] in es_exact:
            a["es_exact"] = es_exact[a["k"]]
    return {**out, "ablation": ablation}


def heads_atp_note(heads_atp: dict) -> str:
    """One line: the estimate's ranking against the exact one, and the held-out ES of each."""
    if "error" in heads_atp:
        return f"heads by attribution patching: {heads_atp['error']}"
    if not heads_atp.get("ablation"):
        return "heads by attribution patching: too few records to choose and evaluate"
    rho = heads_atp.get("spearman")
    parts = [f"heads ranked by attribution patching on the even records (Spearman with the exact ablation "
             f"ranking {'—' if rho is None else f'{rho:+.2f}'}"]
    parts[0] += "".join(f", top-{k} overlap {heads_atp[f'overlap@{k}']:.0%}" for k in TOP_K
                        if f"overlap@{k}" in heads_atp) + "): held-out ES"
    parts += [f"top{a['k']} {a['es']:.2f}" + (f" (exact ranking {a['es_exact']:.2f})" if "es_exact" in a else "")
              for a in heads_atp["ablation"] if a["k"]]
    return parts[0] + " " + ", ".join(parts[1:])


_STORE_FN = "engine.hijack.trace:record"  # the job-store name of one record's trace


def trace_all(lm, records: Sequence, scheme: str, n: int, template: str | None = None, window: int | None = None,
              ctx: JobContext | None = None, store=None,
              knock_sink: bool = False) -> tuple[list, list[dict]]:
    """(traces, skipped records with their reasons) of every record, one record at a time;
    ``ctx.progress(records done, records)``, the stored ones first. With a job store
    (``engine.jobstore``) each record's trace is written as it finishes and a rerun reads it (resume;
    ``store.hits`` counts them)."""
    from engine.hijack.trace import Trace
    from engine.hijack.trace_dataset import trace_records

    done, skipped = [], []

    def spec(rec) -> dict:
        return {"model": lm.name, "source": lm.source, "device": str(lm.device), "dtype": str(lm.dtype),
                "record": rec.to_dict(), "scheme": scheme, "n": n, "template": template, "window": window,
                "knock_sink": knock_sink}

    todo, stored = [], {}
    for i, rec in enumerate(records):
        hit, data = store.get(_STORE_FN, spec(rec)) if store is not None else (False, None)
        if hit:
            stored[i] = data
        else:
            todo.append(i)
    it = iter(trace_records(lm, [records[i] for i in todo], scheme, n, template, window=window,
                            ctx=(ctx or NO_JOB).part(len(stored), len(records)), knock_sink=knock_sink))
    for i, rec in enumerate(records):
        if i in stored:
            data = stored[i]
        else:
            rt = next(it)
            data = {"skipped": rt.skipped} if rt.trace is None else {"trace": rt.trace.to_dict()}
            if store is not None:
                data = store.put(_STORE_FN, spec(rec), data)
        if data.get("trace") is None:
            skipped.append({"case_id": rec.case_id, "reason": data.get("skipped")})
        else:
            done.append(Trace.from_dict(data["trace"]))
    if not done:
        raise UserError("no record could be traced: " + "; ".join(s["reason"] for s in skipped[:3]))
    return done, skipped


def dataset_trace(lm, records: Sequence, scheme: str, n: int, template: str | None = None, window: int | None = None,
                  ctx: JobContext | None = None, per_record: bool = False,
                  store=None, knock_sink: bool = False) -> dict:
    """The dataset trace as ``lca-tui trace --dataset`` prints it: the summaries over all and over the
    flipped records, the held-out head ablation, the skipped records; ``per_record`` adds each trace."""
    hits = store.hits if store is not None else 0
    done, skipped = trace_all(lm, records, scheme, n, template, window, ctx, store, knock_sink)
    out = {"model": lm.name, "scheme": scheme, "n": n, "window": done[0].window, "knock_sink": knock_sink,
           "records": len(done),
           "skipped": skipped, "all": summarise(done), "flipped": summarise([t for t in done if t.hijacked.flipped]),
           "heads": held_out_heads(lm, done), "ablation": "zero",
           "resumed_records": (store.hits - hits) if store is not None else 0}
    out["heads_atp"] = held_out_heads_atp(lm, done, out["heads"])
    if template is not None:
        out["template"] = template
    if per_record:
        out["per_record"] = [t.to_dict() for t in done]
    return out


# ----------------------------------------------------------------------------------- the experiment
#: The knockouts and the restore whose block is chosen on the even records and evaluated on the odd.
RULE_MEASURES = tuple(m.name for m in measures.RULE_MEASURES)

GRIDS = {
    "hijack-mechanism": {
        "tiny": Grid("tiny", models=("smollm2-135m",), schemes=("not-think",), n=3, limit=4, window=5,
                     dataset="builtin", seed=0, device="cpu"),
        "quick": Grid("quick", models=("smollm2-135m", "gemma3-270m"), schemes=("not-think",), n=5, limit=24,
                      window=5, dataset="builtin", seed=0, device="auto"),
        "paper": Grid("paper", models=("smollm2-135m", "gemma3-270m"), schemes=("not-think", "relation"), n=5,
                      limit=40, window=5, dataset="builtin", seed=0, device="auto"),
    },
}


def choose_block(measure: str, means: Sequence[float], chosen: dict) -> int:
    """The block a measure is evaluated at, from the even records' mean curve ``means``: a knockout's
    highest mean ``logit_diff``. ``restore_last`` is the clean run at the last block by construction,
    so there it is the earliest block whose restore brings back half of the even records' drop
    (hijacked + ½·(clean − hijacked)): where the answer reaches the last position; with none before
    the last block, the highest of the others."""
    if measure != measures.RESTORE_LAST.name or len(means) < 2:
        return max(range(len(means)), key=lambda i: means[i])
    half = (chosen["hijacked"]["logit_diff"]["mean"] + chosen["clean"]["logit_diff"]["mean"]) / 2
    early = [i for i in range(len(means) - 1) if means[i] >= half]
    return early[0] if early else max(range(len(means) - 1), key=lambda i: means[i])


def mechanism_row(model: str, scheme: str, traces: Sequence, heads: dict) -> dict:
    """One result row, the numbers ``judge_hijack_mechanism`` reads: for each of ``RULE_MEASURES`` the
    block chosen on the even records (``choose_block``) and, on the odd records, the mean
    rise Δ = measure − hijacked there with its 95% CI; the drop clean − hijacked on the odd records;
    ES clean / hijacked; ES with the held-out top-k heads ablated."""
    choose, evaluate = traces[0::2], traces[1::2]
    s_choose = summarise(choose)
    row = {"model": model, "scheme": scheme, "records": len(traces), "chosen_on": len(choose),
           "evaluated_on": len(evaluate)}
    d = mean_ci("drop", [t.clean.logit_diff - t.hijacked.logit_diff for t in evaluate])
    row.update({"drop": d.value, "drop_lo": d.lo, "drop_hi": d.hi})
    for measure in RULE_MEASURES:
        means = [c["mean"] for c in s_choose["layers"][measure]["logit_diff"]]
        layer = choose_block(measure, means, s_choose)
        e = mean_ci(measure, [_layer_measures(t)[measure][layer].logit_diff - t.hijacked.logit_diff
                              for t in evaluate])
        row.update({f"{measure}_layer": layer, measure: e.value, f"{measure}_lo": e.lo, f"{measure}_hi": e.hi})
    row["es_clean"] = sum(t.clean.flipped for t in traces) / len(traces)
    row["es_hijacked"] = sum(t.hijacked.flipped for t in traces) / len(traces)
    for a in heads.get("ablation", []):
        key = "none" if a["k"] == 0 else f"top{a['k']}"
        row[f"es_heads_{key}"] = a["es"]
        if a["k"]:
            row[f"sign_p_heads_{key}"] = a["sign_p"]
    return row


def _mechanism_job(spec: dict) -> dict:
    from engine.experiments.hijack import _lm
    from engine.hijack.counterfact import FactRecord

    lm = _lm(spec["model"], spec.get("device") or "auto")
    records = [FactRecord.from_dict(r) for r in spec["records"]]
    traces, skipped = trace_all(lm, records, spec["scheme"], spec["n"], window=spec["window"],
                                ctx=current_context())
    heads = held_out_heads(lm, traces)
    heads_atp = held_out_heads_atp(lm, traces, heads)
    row = mechanism_row(spec["model"], spec["scheme"], traces, heads)
    row["skipped"] = len(skipped)
    summary = summarise(traces)
    curves = {m: [c["mean"] for c in summary["layers"][m]["logit_diff"]] for m in RULE_MEASURES}
    curves["hijacked"] = summary["hijacked"]["logit_diff"]["mean"]
    curves["clean"] = summary["clean"]["logit_diff"]["mean"]
    return {"row": row, "curves": curves, "ranking": heads.get("ranking", [])[:10],
            "atp_note": heads_atp_note(heads_atp)}


def run_hijack_mechanism(grid: Grid, ctx=None, jobs: int = 1) -> ExperimentResult:
    from engine.experiments.hijack import run_model_scheme_jobs

    t = Timer()
    records, res = run_model_scheme_jobs(_mechanism_job, grid, {"window": grid["window"]}, ctx, jobs)
    rows = [r["row"] for r in res]
    curves = {}
    for r in res:
        for m in (measures.MENTIONS_WINDOW.name, measures.REST_WINDOW.name, measures.RESTORE_LAST.name):
            ys = r["curves"][m]
            curves[f"{r['row']['model']} {r['row']['scheme']} {m}"] = curve(list(range(len(ys))), ys)
    notes = [f"dataset {grid['dataset']}, {len(records)} records (seed {grid['seed']}), n = {grid['n']} prepended "
             f"sentences, knockout window {grid['window']} blocks; the built-in records are written for this "
             "project, not taken from CounterFact",
             "curves: mean logit_diff = logit(true) - logit(false) at the last position, per block; the hijack "
             "lowers it, a knockout or restore that undoes the hijack raises it back towards the clean value",
             "halves: blocks and heads are chosen on the records at even positions, evaluated on the odd ones; "
             "a knockout at the block of its highest mean, restore_last at the earliest block that brings back "
             "half the drop (its last block is the clean run by construction)",
             "knockouts keep position 0 (the attention sink) visible; the prompt's positions are restored only "
             "where the clean and hijacked tokens agree"]
    for r in res:
        top = ", ".join(f"L{h['layer']}H{h['head']} (+{h['rise']:.2f})" for h in r["ranking"][:5])
        notes.append(f"{r['row']['model']} {r['row']['scheme']}: top heads by ablation rise (even records): {top}")
        if "atp_note" in r:  # beside the rule, which reads the exact ranking only
            notes.append(f"{r['row']['model']} {r['row']['scheme']}: {r['atp_note']}")
    return SPECS["hijack-mechanism"].result(grid, rows, curves, t.seconds, notes=notes)
