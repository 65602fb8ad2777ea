"""A ``Report`` as Markdown plus its figures as separate SVG files (referenced from an images
folder beside the ``.md``). User text is escaped for Markdown (and HTML, which Markdown passes on)."""

from __future__ import annotations

import re
from urllib.parse import quote

from engine.session.report.document import FIGURES, Paragraph, Preformatted, Report, Screenshot, Table
from engine.session.report.figures import figure_svg
from engine.session.report.sanitize import standalone
from engine.session.report.values import fmt_time, fmt_value

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_escape(text) -> str:
    """Markdown-safe inline text: HTML metacharacters as entities, Markdown punctuation escaped,
    newlines folded (a table cell or heading stays on one line)."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    s = re.sub(r"^(\s*\d+)([.)])(?=\s|$)", r"\1\\\2", s)  # "1. " would start a list
    s = re.sub(r"^(\s*)([-=+])(?=\s|$)", r"\1\\\2", s)  # "- " a list, a lone "=" / "-" a heading
    s = re.sub(r"^(\s*)#", r"\1\\#", s)  # a heading
    return re.sub(r"\s*\n\s*", " ", s)


def _numeric_column(rows: list, i: int) -> bool:
    vals = [r[i] for r in rows if i < len(r) and r[i] is not None]
    return bool(vals) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)


def _md_table(t: Table) -> list[str]:
    out = []
    if t.caption:
        out.append(f"**{md_escape(t.caption)}**")
        out.append("")
    cols = [md_escape(c) if c else " " for c in t.columns]
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "|".join("---:" if _numeric_column(t.rows, i) else "---"
                              for i in range(len(t.columns))) + "|")
    for row in t.rows:
        out.append("| " + " | ".join(md_escape(fmt_value(v)) for v in row) + " |")
    if t.note:
        out.append("")
        out.append(f"*{md_escape(t.note)}*")
    out.append("")
    return out


def render_markdown(report: Report, images_dir_name: str) -> tuple[str, dict[str, str]]:
    """(Markdown text, {file name: standalone SVG}); images are referenced as
    ``images_dir_name/<file>``, to be written in that folder beside the ``.md`` file."""
    images: dict[str, str] = {}
    lines = [f"# {md_escape(report.title)}", "",
             f"- Session folder: {md_escape(report.session_path)}",
             f"- Created: {md_escape(fmt_time(report.session_created))}",
             f"- Last recorded: {md_escape(fmt_time(report.as_of))}", ""]
    if report.notes:
        lines += [md_escape(report.notes), ""]
    if report.problems:
        lines += ["## Problems", "", "These files are damaged or unreadable and were skipped:", ""]
        lines += [f"- {md_escape(p)}" for p in report.problems] + [""]
    for s in report.sections:
        lines += [f"## {md_escape(s.title)}", ""]
        if s.intro:
            lines += [md_escape(s.intro), ""]
        for b in s.blocks:
            lines += [f"### {md_escape(b.title)}", ""]
            for p in b.parts:
                if isinstance(p, Paragraph):
                    lines += [md_escape(p.text), ""]
                elif isinstance(p, Preformatted):
                    lines += [f"{md_escape(p.label)}:", ""]
                    lines += ["> " + (md_escape(line) or "&nbsp;") for line in str(p.text).split("\n")]
                    lines.append("")
                elif isinstance(p, Table):
                    lines += _md_table(p)
                elif isinstance(p, (*FIGURES, Screenshot)):
                    slug = re.sub(r'[^a-z0-9]+', '-', p.title.lower()).strip('-')[:40]
                    name = f"fig-{len(images) + 1:02d}-{slug}.svg"
                    images[name] = p.svg if isinstance(p, Screenshot) else standalone(figure_svg(p))
                    lines += [f"![{md_escape(p.title)}]({quote(images_dir_name)}/{quote(name)})", ""]
                else:
                    raise TypeError(f"unknown report part {type(p).__name__}")
    pkg = (report.environment.get("packages") or {}).get("lca-tui") or ""
    lines += [f"*Exported by lca-tui {md_escape(pkg)}.*", ""]
    return "\n".join(lines), images
