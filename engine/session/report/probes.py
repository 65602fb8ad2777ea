"""The report's pinned probes: the prompt, the top next tokens, the targets and the panel as pinned."""

from __future__ import annotations

from engine.session.report.document import Block, Paragraph, Preformatted, Section, Table
from engine.session.report.parts import screenshot, section, short_model
from engine.session.report.values import fmt_time, num


def _probe(it, problems: list[str]) -> Block:
    d = it.data
    b = Block(f"Probe {it.id} · {short_model(d.get('model'))}")
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
    screenshot(b, it, "probe", "pins", problems)
    return b


def probes_section(session, problems: list[str]) -> Section:
    return section("probes", "Pinned probes", session.items("probe"), lambda it: _probe(it, problems),
                   empty="No pinned probes in this session.")
