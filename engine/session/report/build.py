"""Building a ``Report`` from a session: one section per kind of record, tables and chart data,
nothing rendered yet. ``es_by_model_chart`` and ``flip_histogram`` build the cross-model parts
(ES against n, one curve per model, as in Fig. 2; the distribution of flip points)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.session.report.document import (
    Block,
    Heatmap,
    Histogram,
    LineChart,
    Paragraph,
    Preformatted,
    Report,
    Screenshot,
    Section,
    Table,
)
from engine.session.report.sanitize import sanitize_svg, standalone
from engine.session.report.values import fmt_time, fmt_value, num

MAX_TABLE_ROWS = 200


# ------------------------------------------------------------------------------------ helpers
def _xy(points: list, xkey: str, ykey: str) -> tuple[list, list]:
    xs, ys = [], []
    for p in points:
        if isinstance(p, dict) and num(p.get(xkey)) is not None:
            xs.append(p[xkey])
            ys.append(num(p.get(ykey)))
    return xs, ys


def _short_model(model) -> str:
    s = str(model or "?")
    return s.rstrip("/").rsplit("/", 1)[-1] if len(s) > 32 else s


def records_table(records: Sequence[dict], keys: Sequence[str] | None = None,
                  columns: Sequence[str] | None = None, caption: str = "") -> Table:
    """One row per record (dict), one column per key (default: every key met, in order), headed by
    ``columns`` (default: the keys); at most ``MAX_TABLE_ROWS`` rows, the rest counted in a note.
    Finite-number cells are kept as numbers (NaN/inf read as missing)."""
    records = [r for r in records if isinstance(r, dict)]
    if keys is None:
        keys = []
        for r in records:
            keys.extend(k for k in r if k not in keys)
    keys = list(keys)

    def cell(v):
        if isinstance(v, float):
            return num(v)
        return v

    rows = [[cell(r.get(k)) for k in keys] for r in records]
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        rows, note = rows[:MAX_TABLE_ROWS], f"{len(rows) - MAX_TABLE_ROWS} more rows not shown"
    return Table(list(columns) if columns is not None else keys, rows, caption=caption, note=note)


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
    ``engine.hijack.efficacy.flip_points_of_rows``: the smallest n at which the record counts towards the
    result's metric under its scoring rule (P(false) > P(true) forward, P(true) > P(false) for the
    reverse schemes). Older rows without it fall back to whole-target P(false) > P(true)."""
    from engine.hijack.efficacy import flip_points_of_rows

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
    (``engine.hijack.efficacy.flip_summary``); ``labels`` maps an evaluation to its (model, scheme)."""
    from engine.hijack.efficacy import FlipPoint, flip_summary

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


# ------------------------------------------------------------------------------------ sections
def _runs_section(session) -> Section:
    sec = Section("runs", "Training runs (latent concept association)")
    runs = session.runs()
    if not runs:
        sec.intro = "No training runs in this session."
        return sec
    overview_rows, blocks = [], []
    for r in runs:
        metrics = session.metrics(r.id) if (r.path / "config.json").exists() else []
        train = [m for m in metrics if m.get("event") == "train"]
        evals = [m for m in metrics if m.get("event") == "eval"]
        diverged = [m for m in metrics if m.get("event") == "diverged"]
        last_eval = evals[-1] if evals else {}
        bayes = r.bayes_accuracy if r.bayes_accuracy is not None else num(last_eval.get("bayes_accuracy"))
        best = r.best_accuracy  # the metrics' best (the listing reads them)
        steps = f"{r.step} / {r.steps}" if r.steps is not None else str(r.step)
        overview_rows.append([r.id, r.summary, r.status, steps, best, num(last_eval.get("accuracy")), bayes,
                              num(last_eval.get("loss"))])
        b = Block(f"Run {r.id}")
        line = f"{r.summary} — status {r.status}, step {steps}"
        if r.resumable:
            line += f" (resume from step {r.checkpoint_step if r.checkpoint_step is not None else '?'})"
        elif r.has_checkpoint:
            line += f", checkpoint at step {r.checkpoint_step if r.checkpoint_step is not None else '?'}"
        b.parts.append(Paragraph(line + "."))
        if diverged:
            d = diverged[-1]
            b.parts.append(Paragraph(f"Diverged at step {d.get('step')} (loss {fmt_value(d.get('loss'))})."))
        if r.problem:
            b.parts.append(Paragraph(f"Problem: {r.problem}"))
        if r.config:
            flat = [[f"{sec_name}.{k}", v] for sec_name, vals in r.config.items() for k, v in vals.items()]
            b.parts.append(Table(["setting", "value"], flat, caption="Configuration", collapsed=True))
        if train or evals:
            series = {}
            if train:
                series["train loss"] = _xy(train, "step", "loss")
            if evals:
                series["eval loss"] = _xy(evals, "step", "loss")
            b.parts.append(LineChart(f"Loss — {r.id}", series, "step", "cross-entropy"))
        if evals:
            hl = {"Bayes accuracy": bayes} if bayes is not None else None
            b.parts.append(LineChart(f"Accuracy — {r.id}", {"eval accuracy": _xy(evals, "step", "accuracy")},
                                     "step", "accuracy", y_range=(0.0, 1.0), hlines=hl))
        blocks.append(b)
    sec.blocks.append(Block("Overview", [Table(
        ["run", "config", "status", "steps", "best acc", "final acc", "Bayes acc", "final loss"],
        overview_rows)]))
    sec.blocks.extend(blocks)
    return sec


def _efficacy_label(d: dict) -> str:
    label = f"{d.get('scheme', '?')} · {_short_model(d.get('model'))}"
    if d.get("relation"):
        label += f" · {d['relation']}"
    return label


def _hijack_section(session) -> Section:
    sec = Section("hijack", "Context hijacking: efficacy against n")
    items = session.items("efficacy")
    if not items:
        sec.intro = "No hijack evaluations in this session."
        return sec
    sec.intro = ("ES(n) = fraction of records with P(target_false) > P(target_true) after n prepended "
                 "sentences; reverse schemes report accuracy, P(true) > P(false).")
    rows, series, blocks = [], {}, []
    latest: dict[tuple, tuple[str, dict]] = {}  # (model, scheme, relation) -> its latest evaluation
    for it in items:
        d = it.data
        curve = [p for p in d.get("curve") or [] if isinstance(p, dict)]
        first = curve[0] if curve else {}
        last = curve[-1] if curve else {}
        rows.append([it.id, d.get("model"), d.get("scheme"), d.get("metric", "efficacy"), d.get("records"),
                     d.get("dataset"), d.get("relation"), num(first.get("es")),
                     last.get("n"), num(last.get("es"))])
        label = _efficacy_label(d)
        latest[(str(d.get("model")), str(d.get("scheme", "?")), d.get("relation"))] = (label, d)
        while label in series:
            label += "′"
        series[label] = _xy(curve, "n", "es")
        b = Block(f"Evaluation {it.id}: {label}")
        details = [f"model {d.get('model')}", f"scheme {d.get('scheme')}", f"metric {d.get('metric', 'efficacy')}"]
        for key in ("scoring", "dataset", "relation", "template"):
            if d.get(key):
                details.append(f"{key} {d[key]}")
        if d.get("cancelled"):
            details.append("cancelled before the end")
        b.parts.append(Paragraph("; ".join(details) + "."))
        b.parts.append(records_table(curve, ["n", "es", "p_true", "p_false", "count"],
                                     ["n", d.get("metric", "efficacy"), "mean P(true)", "mean P(false)", "records"]))
        blocks.append(b)
    overview = [Table(["id", "model", "scheme", "metric", "records", "dataset", "relation", "ES at n=0",
                       "max n", "ES at max n"], rows),
                LineChart("Efficacy score against the number of prepended sentences", series,
                          "n (prepended sentences)", "ES / accuracy", y_range=(0.0, 1.0))]
    # Fig. 2: per scheme (and relation subset), the latest curve of every model on one chart.
    by_scheme: dict[tuple, dict[str, list]] = {}
    flips, labels = {}, {}
    for (model, scheme, relation), (label, d) in latest.items():
        curve = [p for p in d.get("curve") or [] if isinstance(p, dict)]
        by_scheme.setdefault((scheme, relation), {})[_short_model(model)] = list(zip(*_xy(curve, "n", "es")))
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
    sec.blocks.append(Block("Overview", overview))
    sec.blocks.extend(blocks)
    return sec


def _sweeps_section(session) -> Section:
    sec = Section("sweeps", "Per-record sweeps: P(true) and P(false) against n")
    items = session.items("sweep")
    if not items:
        sec.intro = "No per-record sweeps in this session."
        return sec
    for it in items:
        d = it.data
        rec = d.get("record") if isinstance(d.get("record"), dict) else {}
        b = Block(f"Sweep {it.id}: {rec.get('subject', '?')}")
        b.parts.append(Paragraph(f"model {d.get('model')}; scheme {d.get('scheme')}."))
        b.parts.append(records_table([rec], ["subject", "relation_id", "target_true", "target_false"],
                                     ["subject", "relation", "target_true", "target_false"]))
        if rec.get("prompt") is not None:
            b.parts.append(Preformatted("prompt", str(rec.get("prompt"))))
        points = [p for p in d.get("points") or [] if isinstance(p, dict)]
        b.parts.append(LineChart(f"P(true) and P(false) against n — {rec.get('subject', '?')}",
                                 {f"P({rec.get('target_true', 'true')})": _xy(points, "n", "p_true"),
                                  f"P({rec.get('target_false', 'false')})": _xy(points, "n", "p_false")},
                                 "n (prepended sentences)", "probability"))
        b.parts.append(records_table(points, ["n", "p_true", "p_false"], ["n", "P(true)", "P(false)"]))
        sec.blocks.append(b)
    return sec


def _probes_section(session, problems: list[str]) -> Section:
    sec = Section("probes", "Pinned probes")
    items = session.items("probe")
    if not items:
        sec.intro = "No pinned probes in this session."
        return sec
    for it in items:
        d = it.data
        b = Block(f"Probe {it.id} · {_short_model(d.get('model'))}")
        b.parts.append(Paragraph(f"model {d.get('model')}; pinned {fmt_time(d.get('created'))}."))
        b.parts.append(Preformatted("prompt", str(d.get("prompt", ""))))
        top = [t for t in d.get("top_k") or [] if isinstance(t, dict)]
        if top:
            b.parts.append(Table(["#", "next token", "probability"],
                                 [[i + 1, repr(str(t.get("token", ""))), num(t.get("prob"))]
                                  for i, t in enumerate(top)], caption="Top next tokens"))
        targets = [t for t in d.get("targets") or [] if isinstance(t, dict)]
        if targets:
            b.parts.append(Table(["target", "P(target)", "P(first token)", "rank"],
                                 [[repr(str(t.get("target", ""))), num(t.get("prob")),
                                   num(t.get("first_token_prob")), t.get("rank")] for t in targets],
                                 caption="Targets"))
        if d.get("svg"):
            try:
                b.parts.append(Screenshot(f"Panel when pinned — probe {it.id}",
                                          standalone(sanitize_svg(d["svg"]))))
            except ValueError as exc:
                problems.append(f"pins/{it.path.name}: screenshot not shown ({exc})")
        sec.blocks.append(b)
    return sec


def _experiments_section(session) -> Section:
    sec = Section("experiments", "Experiments")
    items = session.items("experiment")
    if not items:
        sec.intro = "No experiment results in this session."
        return sec
    for it in items:
        d = it.data
        b = Block(f"{d.get('title') or d.get('name')} ({it.id})")
        if d.get("description"):
            b.parts.append(Paragraph(str(d["description"])))
        rows = [r for r in d.get("rows") or [] if isinstance(r, dict)]
        if rows:
            b.parts.append(records_table(rows))
        curves = d.get("curves")
        if isinstance(curves, dict) and curves:
            series = {str(k): (list(v.get("x") or []), list(v.get("y") or []))
                      for k, v in curves.items() if isinstance(v, dict)}
            y_range = d.get("y_range") if isinstance(d.get("y_range"), list) and len(d["y_range"]) == 2 else None
            hlines = d.get("hlines") if isinstance(d.get("hlines"), dict) else None
            b.parts.append(LineChart(str(d.get("title") or d.get("name")), series, str(d.get("xlabel", "")),
                                     str(d.get("ylabel", "")), y_range=y_range, hlines=hlines))
        heatmaps = d.get("heatmaps")
        if isinstance(heatmaps, dict):
            for name, h in heatmaps.items():
                if isinstance(h, dict) and isinstance(h.get("matrix"), list):
                    b.parts.append(Heatmap(str(name), h["matrix"], num(h.get("vmin")), num(h.get("vmax")),
                                           bool(h.get("diverging"))))
        sec.blocks.append(b)
    return sec


def _environment_section(env: dict, models: list[str]) -> Section:
    rows = [["python", env.get("python")], ["platform", env.get("platform")],
            ["device", env.get("device")], ["CPU cores", env.get("cpu_count")]]
    rows += [[f"package {k}", v or "not installed"] for k, v in (env.get("packages") or {}).items()]
    if models:
        rows.append(["language models used", ", ".join(models)])
    return Section("environment", "Environment", "Where this report was exported.",
                   [Block("Software and device", [Table(["", ""], rows)])])


def build_report(session, env: dict | None = None) -> Report:
    """Everything in ``session`` as pure data (tables and chart data, nothing rendered yet)."""
    from engine.session.environment import environment
    from engine.session.report.mirror import mirrors_section
    from engine.session.report.trace import traces_section

    problems: list[str] = []
    sections = [_runs_section(session), _hijack_section(session), _sweeps_section(session),
                _probes_section(session, problems), traces_section(session, problems),
                mirrors_section(session, problems), _experiments_section(session)]
    models = sorted({str(it.data.get("model")) for k in ("efficacy", "sweep", "probe", "trace")
                     for it in session.items(k) if it.data.get("model")})
    env = env if env is not None else environment()
    sections.append(_environment_section(env, models))
    all_problems = list(session.problems) + [p for p in problems if p not in session.problems]
    return Report(title=f"lca-tui session report: {session.name}", session_name=session.name,
                  session_path=str(session.path), as_of=session.updated, session_created=session.created,
                  notes=session.notes, environment=env, sections=sections,
                  problems=all_problems)
