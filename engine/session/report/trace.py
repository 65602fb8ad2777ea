"""The report's causal-trace section: each trace in ``traces/`` (``engine.hijack.trace``; the CLI's
``lca-tui trace`` and the hijack panel's pinned Trace view) as its measures, the curves per block
(restore_last and the knockouts against the clean and hijacked levels), the block × prompt-token
heat map of the restored residual stream, the block × head grid of zero ablations and the numbers;
a dataset trace as its mean curves and the held-out head ablation."""

from __future__ import annotations

import math

from engine.hijack import measures
from engine.hijack.trace import positions_note
from engine.session.report.document import Block, Heatmap, LineChart, Paragraph, Section, Table
from engine.session.report.parts import obj, records_table, section
from engine.session.report.values import fmt_time, num

#: (legend, JSON key of a layers entry / of the dataset summary's layers)
CURVES = tuple((m.title, m.name) for m in measures.CURVES)  # (legend, JSON name)


def _measures(d: dict) -> Table:
    rows = [[label, num(obj(d.get(k)).get("p_true")), num(obj(d.get(k)).get("p_false")),
             num(obj(d.get(k)).get("logit_diff"))] for k, label in (("clean", "clean (prompt alone)"),
                                                                   ("hijacked", "hijacked"))]
    return Table(["prompt", "P(true)", "P(false)", "logit diff"], rows,
                 caption="First-token probabilities at the last position and logit(true) − logit(false)")


def _short(text, limit: int = 160) -> str:
    text = str(text or "")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _one(it) -> Block:
    d = it.data
    layers = [e for e in d.get("layers") or [] if isinstance(e, dict)]
    b = Block(f"Trace {it.id} · {d.get('model')}")
    b.parts.append(Paragraph(
        f"{d.get('model')}: prompt {d.get('prompt')!r} after the prepended text {_short(d.get('prepend'))!r}; "
        f"true {d.get('target_true')!r}, false {d.get('target_false')!r}; {len(d.get('tokens') or [])} "
        f"tokens, {sum(bool(x) for x in d.get('mentions') or [])} of them mention the false target; knockout "
        f"window {d.get('window')} blocks; head ablation {d.get('ablation')}; {fmt_time(d.get('created'))}. "
        f"{_sentence(positions_note(d))}."))
    b.parts.append(_measures(d))
    xs = [e.get("layer") for e in layers]
    b.parts.append(LineChart(
        "logit(true) − logit(false) at the last position, one intervention per block",
        {name: (xs, [obj(e.get(key)).get("logit_diff") for e in layers]) for name, key in CURVES},
        "block", "logit diff", hlines={"clean": obj(d.get("clean")).get("logit_diff"),
                                       "hijacked": obj(d.get("hijacked")).get("logit_diff")}))
    positions = [p for p in d.get("positions") or [] if isinstance(p, dict)]
    tokens = d.get("tokens") or []
    unaligned = [i for i in d.get("unaligned") or [] if isinstance(i, int) and 0 <= i < len(tokens)]
    if positions and layers:  # unaligned prompt positions first, blank (not restored)
        gap = [math.nan] * len(unaligned)
        grid = [gap + [obj(m).get("logit_diff") for m in (obj(e.get("restore")).get("resid") or [])] for e in layers]
        lo, hi = sorted((obj(d.get("hijacked")).get("logit_diff") or 0.0, obj(d.get("clean")).get("logit_diff") or 1.0))
        b.parts.append(Heatmap("logit diff with the clean residual stream restored", grid, lo, hi,
                               xlabel="prompt token", ylabel="block",
                               xticks=[tokens[i] for i in unaligned] + [p.get("token") for p in positions],
                               yticks=xs))
    heads = [row for row in d.get("heads") or [] if isinstance(row, list)]
    base = obj(d.get("hijacked")).get("logit_diff") or 0.0
    if heads and heads[0]:
        grid = [[(obj(h.get("ablated")).get("logit_diff") or base) - base for h in row] for row in heads]
        b.parts.append(Heatmap("rise of logit diff when one head is zero-ablated at the last position", grid,
                               diverging=True, xlabel="head", ylabel="block",
                               xticks=list(range(len(heads[0]))), yticks=xs))
    rows = [{"layer": e.get("layer"), **{k: obj(e.get(k)).get("logit_diff") for _, k in CURVES},
             "restore_p_true": obj(e.get(measures.RESTORE_LAST.name)).get("p_true"), "dla_attn": e.get("dla_attn"),
             "dla_mlp": e.get("dla_mlp")} for e in layers]
    table = records_table(rows, ["layer", "restore_p_true", *[k for _, k in CURVES], "dla_attn", "dla_mlp"],
                          ["block", "restore_last P(true)", *[n for n, _ in CURVES], "DLA attn", "DLA MLP"],
                          caption="Per block (logit diffs)")
    table.collapsed = True
    b.parts.append(table)
    return b


def _dataset(it) -> Block:
    d = it.data
    s = obj(d.get("all"))
    b = Block(f"Dataset trace {it.id} · {d.get('model')} · {d.get('scheme')} n = {d.get('n')}")
    b.parts.append(Paragraph(
        f"{d.get('records')} records traced ({len(d.get('skipped') or [])} skipped), "
        f"{obj(d.get('flipped')).get('records')}"
        f" flipped; ES clean {num(s.get('es_clean'))} → hijacked {num(s.get('es_hijacked'))}; "
        f"{fmt_time(d.get('created'))}."))
    layers = obj(s.get("layers"))
    series = {}
    for name, key in CURVES:
        pts = [c for c in obj(layers.get(key)).get("logit_diff") or [] if isinstance(c, dict)]
        series[name] = (list(range(len(pts))), [c.get("mean") for c in pts])
    b.parts.append(LineChart("mean logit diff per block, all records", series, "block", "mean logit diff",
                             hlines={"clean": obj(obj(s.get("clean")).get("logit_diff")).get("mean"),
                                     "hijacked": obj(obj(s.get("hijacked")).get("logit_diff")).get("mean")}))
    heads = obj(d.get("heads"))
    rows = [[a.get("k"), num(a.get("es")), num(a.get("es_none")), a.get("up"), a.get("down"), num(a.get("sign_p"))]
            for a in heads.get("ablation") or [] if isinstance(a, dict)]
    if rows:
        b.parts.append(Table(["top k heads ablated", "ES", "ES, none", "up", "down", "sign-test p"], rows,
                             caption=f"Heads chosen on {heads.get('chosen_on')} records, evaluated on "
                                     f"{heads.get('evaluated_on')} others"))
    return b


def traces_section(session, problems: list[str]) -> Section:
    return section("traces", "Causal traces: where the hijack happens", session.items("trace"),
                   lambda it: _dataset(it) if isinstance(it.data.get("all"), dict) else _one(it),
                   empty="No causal traces in this session (lca-tui trace, or p in the hijack panel's Trace view).",
                   intro="The hijacked prompt against the prompt alone: the clean run's residual stream restored at "
                         "one block (restore_last), the last position barred from the prepended tokens (knockouts), "
                         "heads zero-ablated; all at the last position, measured as logit(true) − logit(false).",
                   catch="traces", problems=problems)


def _sentence(text: str) -> str:
    """``text`` with its first letter in upper case (the rest as it is: token strings keep their case)."""
    return text[:1].upper() + text[1:]

