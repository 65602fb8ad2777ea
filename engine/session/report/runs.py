"""The report's training-run section: an overview table of every run, then per run its settings, the
loss curves and the accuracy against the Bayes accuracy."""

from __future__ import annotations

from engine.session.report.document import Block, LineChart, Paragraph, Section, Table
from engine.session.report.parts import section, xy
from engine.session.report.values import fmt_value, num


def _facts(r, metrics: list) -> dict:
    evals = [m for m in metrics if m.get("event") == "eval"]
    last_eval = evals[-1] if evals else {}
    return {"train": [m for m in metrics if m.get("event") == "train"], "evals": evals,
            "diverged": [m for m in metrics if m.get("event") == "diverged"], "last_eval": last_eval,
            "bayes": r.bayes_accuracy if r.bayes_accuracy is not None else num(last_eval.get("bayes_accuracy")),
            "steps": f"{r.step} / {r.steps}" if r.steps is not None else str(r.step)}


def _overview(runs: list) -> Block:
    rows = []
    for r, metrics in runs:
        f = _facts(r, metrics)
        best = r.best_accuracy  # the metrics' best (the listing reads them)
        rows.append([r.id, r.summary, r.status, f["steps"], best, num(f["last_eval"].get("accuracy")), f["bayes"],
                     num(f["last_eval"].get("loss"))])
    return Block("Overview", [Table(
        ["run", "config", "status", "steps", "best acc", "final acc", "Bayes acc", "final loss"], rows)])


def _run(entry) -> Block:
    r, metrics = entry
    f = _facts(r, metrics)
    train, evals, diverged, bayes, steps = f["train"], f["evals"], f["diverged"], f["bayes"], f["steps"]
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
            series["train loss"] = xy(train, "step", "loss")
        if evals:
            series["eval loss"] = xy(evals, "step", "loss")
        b.parts.append(LineChart(f"Loss — {r.id}", series, "step", "cross-entropy"))
    if evals:
        hl = {"Bayes accuracy": bayes} if bayes is not None else None
        b.parts.append(LineChart(f"Accuracy — {r.id}", {"eval accuracy": xy(evals, "step", "accuracy")},
                                 "step", "accuracy", y_range=(0.0, 1.0), hlines=hl))
    return b


def runs_section(session) -> Section:
    runs = [(r, session.metrics(r.id) if (r.path / "config.json").exists() else []) for r in session.runs()]
    return section("runs", "Training runs (latent concept association)", runs, _run,
                   empty="No training runs in this session.", overview=_overview)
