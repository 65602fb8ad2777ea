"""The report's defenses section (issue 30): each record in ``repairs/``.

- a dataset result (``lca-tui repair``, ``engine.hijack.repair``): per defense on the evaluation half,
  ES at n before → after with the 95% CI of the per-record drop and the sign test, clean accuracy
  (n = 0) and reverse-scheme accuracy before → after (what the defense costs when the context is
  right), the mean change of log P(true), α and its settings; then the frontiers over α drawn by
  matplotlib: ES against clean accuracy (one line per defense, its points the α grid) and ES against α;
- a pinned probe (the hijack panel's Repair view): the prompt, the defense, each target's probability
  undefended and defended, and the model's greedy continuation with and without the defense.
"""

from __future__ import annotations

from engine.hijack.defenses import settings_text
from engine.session.report.document import Block, LineChart, Paragraph, Preformatted, Section, Table
from engine.session.report.parts import obj, section, short_model
from engine.session.report.values import fmt_time, num
from textnum import number


def _settings(params) -> str:
    """α and the defense's settings (``defenses.settings_text``)."""
    alpha = f"α = {number(obj(params).get('alpha'), '.3g')}"
    rest = settings_text(obj(params))
    return f"{alpha}; {rest}" if rest else alpha


def _arrow(before, after) -> str:
    if before is None and after is None:
        return "—"
    return f"{number(before, '.3f')} → {number(after, '.3f')}"


def _dataset(it) -> Block:
    d = it.data
    defenses = [e for e in d.get("defenses") or [] if isinstance(e, dict)]
    b = Block(f"Defenses {it.id} · {short_model(d.get('model'))} · {d.get('scheme')} n = {d.get('n')}")
    b.parts.append(Paragraph(
        f"{d.get('model')}, scheme {d.get('scheme')}, n = {d.get('n')} prepended sentences: selected on "
        f"{len(d.get('selection') or [])} records (even positions), evaluated on {len(d.get('evaluation') or [])} "
        f"others (odd positions); {fmt_time(d.get('created'))}. ES is the share of records whose false target "
        "beats the true one (lower is better); clean accuracy is at n = 0, reverse accuracy under a context "
        "that states the true target (what a defense costs when the context is right)."))
    rows = []
    for e in defenses:
        ci = e.get("es_ci") if isinstance(e.get("es_ci"), list) and len(e.get("es_ci")) == 2 else [None, None]
        interval = f"{number(ci[0], '+.3f')} … {number(ci[1], '+.3f')}"
        rows.append([e.get("name"), _arrow(e.get("es_before"), e.get("es_after")), interval,
                     num(e.get("sign_p")), _arrow(e.get("clean_accuracy_before"), e.get("clean_accuracy_after")),
                     _arrow(e.get("reverse_accuracy_before"), e.get("reverse_accuracy_after")),
                     num(obj(e.get("log_p_true_change")).get("mean")),
                     num(obj(e.get("reverse_log_p_true_change")).get("mean")), e.get("tied_after"),
                     _settings(e.get("params"))])
    b.parts.append(Table(["defense", "ES", "drop 95% CI", "sign p", "clean acc.", "reverse acc.", "Δ log P(true)",
                          "Δ log P(true), reverse", "ties", "settings"], rows,
                         caption="Evaluation half, before → after (ties: records whose defended P(true) = P(false), "
                                 "e.g. both cut to 0)"))
    frontier = {str(e.get("name")): [p for p in e.get("frontier") or [] if isinstance(p, dict)] for e in defenses}
    frontier = {k: v for k, v in frontier.items() if v}
    if frontier:
        b.parts.append(LineChart(
            "frontier: ES against clean accuracy over the α grid (evaluation half; down and right is better)",
            {k: ([p.get("clean_accuracy") for p in v], [p.get("es") for p in v]) for k, v in frontier.items()},
            "clean accuracy (n = 0)", "ES at n", y_range=(0.0, 1.0),
            hlines={"ES undefended": defenses[0].get("es_before")} if defenses else None))
        b.parts.append(LineChart(
            "ES against α (evaluation half)",
            {k: ([p.get("alpha") for p in v], [p.get("es") for p in v]) for k, v in frontier.items()},
            "α", "ES at n", y_range=(0.0, 1.0)))
    return b


def _target_rows(d: dict) -> list[list]:
    before, after = obj(obj(d.get("undefended")).get("probs")), obj(obj(d.get("defended")).get("probs"))
    names = list(dict.fromkeys([*before, *after]))
    return [[repr(str(t)), num(before.get(t)), num(after.get(t))] for t in names]


def _probe(it) -> Block:
    d = it.data
    defense = obj(d.get("defense"))
    b = Block(f"Defended probe {it.id} · {short_model(d.get('model'))} · {defense.get('name')}")
    b.parts.append(Paragraph(
        f"model {d.get('model')}; defense {defense.get('name')} ({_settings(defense.get('params'))}); "
        f"{d.get('shaped') or 'settings as pinned'}; pinned {fmt_time(d.get('created'))}."))
    b.parts.append(Preformatted("prompt", str(d.get("prompt", ""))))
    rows = _target_rows(d)
    if rows:
        b.parts.append(Table(["target", "P undefended", "P defended"], rows, caption="Whole-target probabilities"))
    b.parts.append(Table(["", "greedy continuation"],
                         [["undefended", repr(str(obj(d.get("undefended")).get("continuation", "")))],
                          ["defended", repr(str(obj(d.get("defended")).get("continuation", "")))]],
                         caption="What the model says"))
    return b


def repairs_section(session, problems: list[str]) -> Section:
    return section("repairs", "Defenses against the hijack", session.items("repair"),
                   lambda it: _dataset(it) if it.data.get("scope") == "dataset" else _probe(it),
                   empty="No defenses in this session (lca-tui repair, or p in the hijack panel's Repair view).",
                   intro="Interventions that act at every position, chosen on one half of the records and scored "
                         "on the other, with what they cost when the context is right.",
                   catch="repairs", problems=problems)
