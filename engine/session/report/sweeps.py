"""The report's per-record sweeps: P(true) and P(false) against n for one record each."""

from __future__ import annotations

from engine.session.report.document import Block, LineChart, Paragraph, Preformatted, Section
from engine.session.report.parts import records_table, section, xy


def _sweep(it) -> Block:
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
                             {f"P({rec.get('target_true', 'true')})": xy(points, "n", "p_true"),
                              f"P({rec.get('target_false', 'false')})": xy(points, "n", "p_false")},
                             "n (prepended sentences)", "probability"))
    b.parts.append(records_table(points, ["n", "p_true", "p_false"], ["n", "P(true)", "P(false)"]))
    return b


def sweeps_section(session) -> Section:
    return section("sweeps", "Per-record sweeps: P(true) and P(false) against n", session.items("sweep"), _sweep,
                   empty="No per-record sweeps in this session.")
