"""The report's environment section: where it was exported (``engine.session.environment``) and the
language models the session used."""

from __future__ import annotations

from engine.session.report.document import Block, Section, Table


def environment_section(env: dict, models: list[str]) -> Section:
    rows = [["python", env.get("python")], ["platform", env.get("platform")],
            ["device", env.get("device")], ["CPU cores", env.get("cpu_count")]]
    rows += [[f"package {k}", v or "not installed"] for k, v in (env.get("packages") or {}).items()]
    if models:
        rows.append(["language models used", ", ".join(models)])
    return Section("environment", "Environment", "Where this report was exported.",
                   [Block("Software and device", [Table(["", ""], rows)])])
