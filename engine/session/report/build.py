"""Building a ``Report`` from a session: the sections in order, each from its own module (one block
per record of its kind on the ``parts.section`` skeleton), then the environment; nothing rendered
yet."""

from __future__ import annotations

from engine.session.report.document import Report
from engine.session.report.efficacy import efficacy_section
from engine.session.report.environment import environment_section
from engine.session.report.experiments import experiments_section
from engine.session.report.mirror import mirrors_section
from engine.session.report.probes import probes_section
from engine.session.report.repair import repairs_section
from engine.session.report.runs import runs_section
from engine.session.report.sweeps import sweeps_section
from engine.session.report.trace import traces_section


def build_report(session, env: dict | None = None) -> Report:
    """Everything in ``session`` as pure data (tables and chart data, nothing rendered yet)."""
    from engine.session.environment import environment

    problems: list[str] = []
    sections = [runs_section(session), efficacy_section(session), sweeps_section(session),
                probes_section(session, problems), traces_section(session, problems),
                repairs_section(session, problems),
                mirrors_section(session, problems), experiments_section(session)]
    models = sorted({str(it.data.get("model")) for k in ("efficacy", "sweep", "probe", "trace", "repair")
                     for it in session.items(k) if it.data.get("model")})
    env = env if env is not None else environment()
    sections.append(environment_section(env, models))
    all_problems = list(session.problems) + [p for p in problems if p not in session.problems]
    return Report(title=f"lca-tui session report: {session.name}", session_name=session.name,
                  session_path=str(session.path), as_of=session.updated, session_created=session.created,
                  notes=session.notes, environment=env, sections=sections,
                  problems=all_problems)
