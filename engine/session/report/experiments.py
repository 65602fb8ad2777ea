"""The report's experiment results: each result's rows, curves and heat maps."""

from __future__ import annotations

from engine.session.report.document import Block, Heatmap, LineChart, Paragraph, Section
from engine.session.report.parts import records_table, section
from engine.session.report.values import num


def _experiment(it) -> Block:
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
    return b


def experiments_section(session) -> Section:
    return section("experiments", "Experiments", session.items("experiment"), _experiment,
                   empty="No experiment results in this session.")
