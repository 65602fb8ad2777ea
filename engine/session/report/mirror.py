"""The report's hijack mirror section: each pinned mirror of the one-layer model (``mirrors/``,
``engine.lca.hijack_mirror``) as its measures, a bar chart of every position's contribution to
logit_y − logit_ỹ by source, the per-position table and the sweep over r."""

from __future__ import annotations

from engine.session.report.document import BarChart, Block, LineChart, Paragraph, Section, Table
from engine.session.report.parts import obj, records_table, screenshot, section
from engine.session.report.values import fmt_time, num


def _mirror_measures(d: dict) -> Table:
    rows = []
    for key, label in (("clean", "clean (r = 0)"), ("hijacked", "hijacked"), ("knockout", "knockout: ỹ tokens"),
                       ("knockout_rest", "knockout: the rest")):
        v = obj(d.get(key))
        rows.append([label, num(v.get("p_true")), num(v.get("p_false")), num(v.get("logit_diff")),
                     v.get("prediction")])
    return Table(["context", "P(y)", "P(ỹ)", "logit diff", "prediction"], rows,
                 caption="Clean, hijacked and knockout (softmax over the vocabulary at the output)")


def _sweep_curve(points: list, measure: str, key: str) -> tuple[list, list]:
    pts = [p for p in points if isinstance(p.get(measure), dict)]
    return [p.get("r") for p in pts], [p[measure].get(key) for p in pts]


def _mirror(it, problems: list[str]) -> Block:
    d = it.data
    b = Block(f"Mirror {it.id} · {d.get('run')}")
    flip = obj(d.get("flip"))
    b.parts.append(Paragraph(
        f"run {d.get('run')} (step {d.get('step')}; {d.get('config')}); y = {d.get('y_bits')} "
        f"({d.get('y')}), ỹ = {d.get('y_tilde_bits')} ({d.get('y_tilde')}), r = {d.get('r')} "
        f"({d.get('k')} of {num(d.get('L'))} positions), seed {d.get('seed')}; pinned "
        f"{fmt_time(d.get('created'))}. Prediction leaves y: {flip.get('away_from_true')}; "
        f"predicts ỹ: {flip.get('to_false')}; knockout restores y: {flip.get('restored')}."))
    b.parts.append(_mirror_measures(d))
    tokens = [t for t in d.get("tokens") or [] if isinstance(t, dict)]
    series = {}
    for src, name in (("y", "drawn for y"), ("y~", "drawn for ỹ")):
        pts = [t for t in tokens if t.get("source") == src and not t.get("last")]
        series[name] = ([t.get("position") for t in pts], [t.get("to_diff") for t in pts])
    last = [t for t in tokens if t.get("last")]
    series["t_L (query, for y)"] = ([t.get("position") for t in last], [t.get("to_diff") for t in last])
    b.parts.append(BarChart("Contribution of each position to logit_y − logit_ỹ", series,
                            "context position l", "a_l · (W_Eᵀ W_V W_E(x_l))[y] − [ỹ]"))
    table = records_table(tokens, ["position", "bits", "source", "attention", "to_true", "to_false", "to_diff"],
                          ["l", "token", "source", "attention", "to y", "to ỹ", "to diff"],
                          caption="Per-position contributions (hijacked context)")
    table.collapsed = True
    b.parts.append(table)
    sw = d.get("sweep") if isinstance(d.get("sweep"), dict) else None
    points = [p for p in (sw or {}).get("points") or [] if isinstance(p, dict)]
    if points:
        def curve(measure, key, points=points):
            return _sweep_curve(points, measure, key)

        b.parts.append(LineChart(
            f"Mean over {sw.get('n')} contexts against r", {
                "P(y)": curve("hijacked", "p_true"), "P(ỹ)": curve("hijacked", "p_false"),
                "P(y), ỹ tokens knocked out": curve("knockout", "p_true"),
                "P(ỹ), ỹ tokens knocked out": curve("knockout", "p_false"),
                "predicts ỹ": curve("hijacked", "to_false"),
                "predicts ỹ, knocked out": curve("knockout", "to_false")},
            "r (fraction of context tokens drawn for ỹ)", "probability / rate", y_range=(0.0, 1.0)))
    screenshot(b, it, "mirror", "mirrors", problems)
    return b


def mirrors_section(session, problems: list[str]) -> Section:
    return section("mirrors", "Hijack mirror: the one-layer model (Sec. 5.5)", session.items("mirror"),
                   lambda it: _mirror(it, problems), empty="No pinned hijack mirrors in this session.",
                   intro="A context for y with round(r·(L-1)) of its tokens drawn for ỹ; each position's exact "
                         "contribution a_l·[W_Eᵀ W_V W_E(x_l)] to the logits of y and ỹ; knockout: those "
                         "positions masked before the softmax.")
