"""The report's hijack section: every efficacy evaluation (ES against n) in an overview table and
chart, one chart per scheme with the latest curve of every model (Fig. 2), the flip points; then one
block per evaluation. ``es_by_model_chart`` and ``flip_histogram`` build the cross-model parts (ES
against n, one curve per model, as in Fig. 2; the distribution of flip points)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.session.report.document import Block, Histogram, LineChart, Paragraph, Section, Table
from engine.session.report.parts import records_table, section, short_model, xy
from engine.session.report.values import num


def es_by_model_chart(curves: Mapping[str, Sequence[tuple[float, float]]], title: str | None = None,
                      ylabel: str = "efficacy score") -> LineChart:
    """ES against the number of prepended sentences, one curve per model (``model -> [(n, ES)]``),
    as in Fig. 2 of the paper."""
    series = {}
    for model, pts in curves.items():
        pts = sorted((p for p in pts if num(p[0]) is not None), key=lambda p: p[0])
        series[str(model)] = ([p[0] for p in pts], [num(p[1]) for p in pts])
    return LineChart(title or "Efficacy score against n, one curve per model", series,
                     "n (prepended sentences)", ylabel, y_range=(0.0, 1.0))


def flip_histogram(flips: Mapping[str, Sequence[int | None]], title: str | None = None) -> Histogram:
    """The distribution of flip points (per record, the smallest n at which it counts towards the
    metric: P(false) > P(true), or P(true) > P(false) for reverse schemes; None when it never does in
    the range), one series per model or scheme."""
    return Histogram(title or "Flip points: prepended sentences needed to flip the answer",
                     {str(k): list(v) for k, v in flips.items()},
                     "first n with P(false) > P(true) (reverse schemes: P(true) > P(false))")


def flip_points(per_record: Sequence[dict]) -> list[int | None]:
    """Flip points from per-record scores, in record order (``record_index``, numerically).

    Rows with ``success`` (what the app and CLI record) go through the engine's one flip-point rule,
    ``engine.hijack.efficacy_flips.flip_points_of_rows``: the smallest n at which the record counts towards the
    result's metric under its scoring rule (P(false) > P(true) forward, P(true) > P(false) for the
    reverse schemes). Older rows without it fall back to whole-target P(false) > P(true)."""
    from engine.hijack.efficacy_flips import flip_points_of_rows

    rows = [r for r in per_record if isinstance(r, dict) and num(r.get("n")) is not None]
    plain = []
    for r in rows:
        if "success" in r:
            success = bool(r["success"])
        else:
            pt, pf = num(r.get("p_true")), num(r.get("p_false"))
            success = pt is not None and pf is not None and pf > pt
        index = r.get("record_index", r.get("case_id"))
        plain.append((int(index), int(r.get("case_id", index) or 0), int(r["n"]), success))
    return [p.n for p in flip_points_of_rows(plain)]


def _recorded_flips(d: dict) -> list[int | None] | None:
    """The flip points recorded with an evaluation (``flip_points``: ints/None or {case_id, n}),
    else computed from its per-record scores; None when neither is there."""
    fp = d.get("flip_points")
    if isinstance(fp, list):
        return [_flip_n(v.get("n") if isinstance(v, dict) else v) for v in fp]
    if isinstance(d.get("per_record"), list):
        return flip_points(d["per_record"])
    return None


def _flip_n(v) -> int | None:
    return int(v) if num(v) is not None else None


def _flip_summary(flips: Mapping[str, Sequence[int | None]],
                  labels: Mapping[str, tuple[str, str]] | None = None) -> Table:
    """Per evaluation: records, flipped, never, and the mean/median n to flip over the records that flip
    (``engine.hijack.efficacy_flips.flip_summary``); ``labels`` maps an evaluation to its (model, scheme)."""
    from engine.hijack.efficacy_flips import FlipPoint, flip_summary

    rows = []
    for label, vals in flips.items():
        hit = [v for v in vals if v is not None]
        points = [FlipPoint(i, i, v) for i, v in enumerate(vals)]
        s = flip_summary(points, max(hit, default=0))
        model, scheme = (labels or {}).get(label, ("", ""))
        rows.append([label, model, scheme, s.records, s.flipped, s.never, s.mean, s.median])
    return Table(["evaluation", "model", "scheme", "records", "flipped", "never", "mean n to flip",
                  "median n to flip"], rows,
                 caption="Flip points per model and scheme: mean and median over the records that flip")


def _label(d: dict) -> str:
    label = f"{d.get('scheme', '?')} · {short_model(d.get('model'))}"
    if d.get("relation"):
        label += f" · {d['relation']}"
    return label


def _curve(d: dict) -> list[dict]:
    return [p for p in d.get("curve") or [] if isinstance(p, dict)]


def _overview(labelled: list) -> Block:
    rows, series = [], {}
    latest: dict[tuple, tuple[str, dict]] = {}  # (model, scheme, relation) -> its latest evaluation
    for it, label in labelled:
        d = it.data
        curve = _curve(d)
        first = curve[0] if curve else {}
        last = curve[-1] if curve else {}
        rows.append([it.id, d.get("model"), d.get("scheme"), d.get("metric", "efficacy"), d.get("records"),
                     d.get("dataset"), d.get("relation"), num(first.get("es")),
                     last.get("n"), num(last.get("es"))])
        latest[(str(d.get("model")), str(d.get("scheme", "?")), d.get("relation"))] = (_label(d), d)
        series[label] = xy(curve, "n", "es")
    overview = [Table(["id", "model", "scheme", "metric", "records", "dataset", "relation", "ES at n=0",
                       "max n", "ES at max n"], rows),
                LineChart("Efficacy score against the number of prepended sentences", series,
                          "n (prepended sentences)", "ES / accuracy", y_range=(0.0, 1.0))]
    # Fig. 2: per scheme (and relation subset), the latest curve of every model on one chart.
    by_scheme: dict[tuple, dict[str, list]] = {}
    flips, labels = {}, {}
    for (model, scheme, relation), (label, d) in latest.items():
        by_scheme.setdefault((scheme, relation), {})[short_model(model)] = list(zip(*xy(_curve(d), "n", "es")))
        fp = _recorded_flips(d)
        if fp is not None:
            flips[label], labels[label] = fp, (model, scheme)
    for (scheme, relation), models in by_scheme.items():
        if len(models) > 1:
            where = f"{scheme}" + (f" · {relation}" if relation else "")
            ylabel = "accuracy" if scheme.startswith("reverse") else "efficacy score"
            overview.append(es_by_model_chart(models, f"{ylabel.capitalize()} against n — {where}, one curve per "
                                                      "model (Fig. 2)", ylabel))
    if flips:
        overview += [flip_histogram(flips), _flip_summary(flips, labels)]
    return Block("Overview", overview)


def _evaluation(entry) -> Block:
    it, label = entry
    d = it.data
    b = Block(f"Evaluation {it.id}: {label}")
    details = [f"model {d.get('model')}", f"scheme {d.get('scheme')}", f"metric {d.get('metric', 'efficacy')}"]
    for key in ("scoring", "dataset", "relation", "template"):
        if d.get(key):
            details.append(f"{key} {d[key]}")
    if d.get("cancelled"):
        details.append("cancelled before the end")
    b.parts.append(Paragraph("; ".join(details) + "."))
    b.parts.append(records_table(_curve(d), ["n", "es", "p_true", "p_false", "count"],
                                 ["n", d.get("metric", "efficacy"), "mean P(true)", "mean P(false)", "records"]))
    return b


def efficacy_section(session) -> Section:
    labelled, seen = [], set()  # each evaluation with its label, primed (′) where an earlier one has it
    for it in session.items("efficacy"):
        label = _label(it.data)
        while label in seen:
            label += "′"
        seen.add(label)
        labelled.append((it, label))
    return section("hijack", "Context hijacking: efficacy against n", labelled, _evaluation,
                   empty="No hijack evaluations in this session.", overview=_overview,
                   intro="ES(n) = fraction of records with P(target_false) > P(target_true) after n prepended "
                         "sentences; reverse schemes report accuracy, P(true) > P(false).")
