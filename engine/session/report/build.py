"""Session reports: a pure-data ``Report`` built from a session, rendered as one self-contained HTML
file (inline CSS and SVG, no script, no URL) or as Markdown with its images in a folder beside it.

Every piece of user text (names, prompts, tokens, model ids, notes, table cells) is escaped for the
output format; pinned panel screenshots are sanitised (``svg.sanitize_svg``) and embedded in HTML as
``<img>`` data, where a browser runs no script and fetches nothing.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union
from urllib.parse import quote

from engine.errors import UserError
from engine.session import svg as svglib
from engine.atomic import atomic_write_text

MAX_TABLE_ROWS = 200


# ------------------------------------------------------------------------------------ model
@dataclass
class Paragraph:
    text: str


@dataclass
class Preformatted:
    """Verbatim user text (a prompt)."""

    label: str
    text: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    caption: str = ""
    note: str = ""


@dataclass
class LineChart:
    title: str
    series: dict  # name -> (xs, ys)
    xlabel: str = ""
    ylabel: str = ""
    y_range: tuple | None = None
    hlines: dict | None = None

    def svg(self) -> str:
        return svglib.line_chart(self.series, self.title, self.xlabel, self.ylabel,
                                 y_range=self.y_range, hlines=self.hlines)


@dataclass
class Heatmap:
    title: str
    matrix: list
    vmin: float | None = None
    vmax: float | None = None
    diverging: bool = False

    def svg(self) -> str:
        return svglib.heatmap(self.matrix, self.title, self.vmin, self.vmax, self.diverging)


@dataclass
class Screenshot:
    """A sanitised SVG (with its namespace) of a panel as it was when pinned."""

    title: str
    svg: str


Part = Union[Paragraph, Preformatted, Table, LineChart, Heatmap, Screenshot]


@dataclass
class Block:
    title: str
    parts: list = field(default_factory=list)


@dataclass
class Section:
    key: str  # runs, hijack, sweeps, probes, experiments, environment
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    title: str
    session_name: str
    session_path: str
    created: float  # when the report was built
    session_created: float | None
    notes: str
    environment: dict
    sections: list[Section]
    problems: list[str]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    def figures(self) -> list:
        return [p for s in self.sections for b in s.blocks for p in b.parts
                if isinstance(p, (LineChart, Heatmap, Screenshot))]


# ------------------------------------------------------------------------------------ values
def fmt_value(v) -> str:
    """Table formatting: 4 decimals for ordinary floats, scientific for tiny/huge ones."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == 0:
            return "0.0000"
        if 1e-3 <= abs(v) < 1e5:
            return f"{v:.4f}"
        return f"{v:.3e}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_value(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt_value(x)}" for k, x in v.items())
    return str(v)


def fmt_time(t) -> str:
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _xy(points: list, xkey: str, ykey: str) -> tuple[list, list]:
    xs, ys = [], []
    for p in points:
        if isinstance(p, dict) and _num(p.get(xkey)) is not None:
            xs.append(p[xkey])
            ys.append(_num(p.get(ykey)))
    return xs, ys


def _cap_rows(rows: list) -> tuple[list, str]:
    if len(rows) > MAX_TABLE_ROWS:
        return rows[:MAX_TABLE_ROWS], f"{len(rows) - MAX_TABLE_ROWS} more rows not shown"
    return rows, ""


def _short_model(model) -> str:
    s = str(model or "?")
    return s.rstrip("/").rsplit("/", 1)[-1] if len(s) > 32 else s


# ------------------------------------------------------------------------------------ build
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
        bayes = r.bayes_accuracy if r.bayes_accuracy is not None else _num(last_eval.get("bayes_accuracy"))
        best = r.best_accuracy
        if best is None and evals:
            best = max((_num(e.get("accuracy")) or 0.0) for e in evals)
        steps = f"{r.step} / {r.steps}" if r.steps is not None else str(r.step)
        overview_rows.append([r.id, r.summary, r.status, steps, best, _num(last_eval.get("accuracy")), bayes,
                              _num(last_eval.get("loss"))])
        b = Block(f"Run {r.id}")
        line = f"{r.summary} — status {r.status}, step {steps}"
        if r.has_checkpoint:
            line += f", checkpoint at step {r.checkpoint_step if r.checkpoint_step is not None else '?'}"
        if r.resumable:
            line += " (resumable)"
        b.parts.append(Paragraph(line + "."))
        if diverged:
            d = diverged[-1]
            b.parts.append(Paragraph(f"Diverged at step {d.get('step')} (loss {fmt_value(d.get('loss'))})."))
        if r.problem:
            b.parts.append(Paragraph(f"Problem: {r.problem}"))
        if r.config:
            flat = [[f"{sec_name}.{k}", v] for sec_name, vals in r.config.items() for k, v in vals.items()]
            b.parts.append(Table(["setting", "value"], flat, caption="Configuration"))
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
    for it in items:
        d = it.data
        curve = [p for p in d.get("curve") or [] if isinstance(p, dict)]
        first = curve[0] if curve else {}
        last = curve[-1] if curve else {}
        rows.append([it.id, d.get("model"), d.get("scheme"), d.get("metric", "efficacy"), d.get("records"),
                     d.get("dataset"), d.get("relation"), _num(first.get("es")),
                     last.get("n"), _num(last.get("es"))])
        label = _efficacy_label(d)
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
        crow, note = _cap_rows([[p.get("n"), _num(p.get("es")), _num(p.get("p_true")), _num(p.get("p_false")),
                                 p.get("count")] for p in curve])
        b.parts.append(Table(["n", d.get("metric", "efficacy"), "mean P(true)", "mean P(false)", "records"],
                             crow, note=note))
        blocks.append(b)
    sec.blocks.append(Block("Overview", [
        Table(["id", "model", "scheme", "metric", "records", "dataset", "relation", "ES at n=0",
               "max n", "ES at max n"], rows),
        LineChart("Efficacy score against the number of prepended sentences", series,
                  "n (prepended sentences)", "ES / accuracy", y_range=(0.0, 1.0))]))
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
        title = f"Sweep {it.id}: {rec.get('subject', '?')}"
        b = Block(title)
        b.parts.append(Paragraph(f"model {d.get('model')}; scheme {d.get('scheme')}."))
        b.parts.append(Table(["subject", "relation", "target_true", "target_false"],
                             [[rec.get("subject"), rec.get("relation_id"), rec.get("target_true"),
                               rec.get("target_false")]]))
        if rec.get("prompt") is not None:
            b.parts.append(Preformatted("prompt", str(rec.get("prompt"))))
        points = [p for p in d.get("points") or [] if isinstance(p, dict)]
        b.parts.append(LineChart(f"P(true) and P(false) against n — {rec.get('subject', '?')}",
                                 {f"P({rec.get('target_true', 'true')})": _xy(points, "n", "p_true"),
                                  f"P({rec.get('target_false', 'false')})": _xy(points, "n", "p_false")},
                                 "n (prepended sentences)", "probability"))
        prow, note = _cap_rows([[p.get("n"), _num(p.get("p_true")), _num(p.get("p_false"))] for p in points])
        b.parts.append(Table(["n", "P(true)", "P(false)"], prow, note=note))
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
                                 [[i + 1, repr(str(t.get("token", ""))), _num(t.get("prob"))]
                                  for i, t in enumerate(top)], caption="Top next tokens"))
        targets = [t for t in d.get("targets") or [] if isinstance(t, dict)]
        if targets:
            b.parts.append(Table(["target", "P(target)", "P(first token)", "rank"],
                                 [[repr(str(t.get("target", ""))), _num(t.get("prob")),
                                   _num(t.get("first_token_prob")), t.get("rank")] for t in targets],
                                 caption="Targets"))
        if d.get("svg"):
            try:
                b.parts.append(Screenshot(f"Panel when pinned — probe {it.id}",
                                          svglib.standalone(svglib.sanitize_svg(d["svg"]))))
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
            cols: list[str] = []
            for r in rows:
                cols.extend(k for k in r if k not in cols)
            trows, note = _cap_rows([[r.get(c) for c in cols] for r in rows])
            b.parts.append(Table(cols, trows, note=note))
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
                    b.parts.append(Heatmap(str(name), h["matrix"], _num(h.get("vmin")), _num(h.get("vmax")),
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

    problems: list[str] = []
    sections = [_runs_section(session), _hijack_section(session), _sweeps_section(session),
                _probes_section(session, problems), _experiments_section(session)]
    models = sorted({str(it.data.get("model")) for k in ("efficacy", "sweep", "probe")
                     for it in session.items(k) if it.data.get("model")})
    env = env if env is not None else environment()
    sections.append(_environment_section(env, models))
    all_problems = list(session.problems) + [p for p in problems if p not in session.problems]
    return Report(title=f"lca-tui session report: {session.name}", session_name=session.name,
                  session_path=str(session.path), created=time.time(), session_created=session.created,
                  notes=session.notes, environment=env, sections=sections, problems=all_problems)


# ------------------------------------------------------------------------------------ HTML
_CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5rem 2rem 4rem; color: #1f2328; background: #ffffff; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { font-size: 1.35rem; border-bottom: 2px solid #d0d7de; padding-bottom: .25rem; margin-top: 2.4rem; }
h3 { font-size: 1.08rem; margin-top: 1.6rem; }
.meta { color: #57606a; margin-top: 0; }
nav ul { columns: 2; padding-left: 1.2rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fbfcfd; }
pre.prompt { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; border: 1px solid #d0d7de;
             padding: .6rem .8rem; border-radius: 6px; font-size: .85rem; }
figure { margin: .8rem 0 1.2rem; overflow-x: auto; }
figure svg, figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
.problems { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .5rem 1rem; }
.note { color: #57606a; font-size: .85rem; }
details > summary { cursor: pointer; color: #0969da; }
"""

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'none'; "
        "connect-src 'none'; font-src 'none'; base-uri 'none'; form-action 'none'")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _anchor(key: str) -> str:
    return "sec-" + re.sub(r"[^a-z0-9-]+", "-", key.lower())


def _html_table(t: Table) -> str:
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{_e(t.caption)}</caption>")
    if any(c for c in t.columns):
        out.append("<thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in t.columns) + "</tr></thead>")
    out.append("<tbody>")
    for row in t.rows:
        cells = []
        for v in row:
            cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{_e(fmt_value(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if t.note:
        out.append(f'<p class="note">{_e(t.note)}</p>')
    return "\n".join(out)


def _html_part(p) -> str:
    if isinstance(p, Paragraph):
        return f"<p>{_e(p.text)}</p>"
    if isinstance(p, Preformatted):
        return f'<p class="note">{_e(p.label)}:</p>\n<pre class="prompt">{_e(p.text)}</pre>'
    if isinstance(p, Table):
        if p.caption == "Configuration":
            return f"<details><summary>{_e(p.caption)}</summary>\n{_html_table(p)}\n</details>"
        return _html_table(p)
    if isinstance(p, (LineChart, Heatmap)):
        return f"<figure>\n{p.svg()}\n</figure>"
    if isinstance(p, Screenshot):
        data = base64.b64encode(p.svg.encode("utf-8")).decode("ascii")
        return (f'<figure><img alt="{_e(p.title)}" src="data:image/svg+xml;base64,{data}">'
                f"<figcaption class=\"note\">{_e(p.title)}</figcaption></figure>")
    raise TypeError(f"unknown report part {type(p).__name__}")


def render_html(report: Report) -> str:
    """One self-contained HTML document: inline CSS and SVG, no script, no external reference."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<meta name="referrer" content="no-referrer">',
           f"<title>{_e(report.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{_e(report.title)}</h1>",
           f'<p class="meta">Session folder {_e(report.session_path)} · created '
           f"{_e(fmt_time(report.session_created))} · report exported {_e(fmt_time(report.created))}</p>"]
    if report.notes:
        out.append(f"<p>{_e(report.notes)}</p>")
    if report.problems:
        out.append('<div class="problems" id="sec-problems"><h2>Problems</h2>'
                   "<p>These files are damaged or unreadable and were skipped:</p><ul>")
        out.extend(f"<li>{_e(p)}</li>" for p in report.problems)
        out.append("</ul></div>")
    out.append("<nav><ul>" + "".join(f'<li><a href="#{_anchor(s.key)}">{_e(s.title)}</a></li>'
                                      for s in report.sections) + "</ul></nav>")
    for s in report.sections:
        out.append(f'<section id="{_anchor(s.key)}">')
        out.append(f"<h2>{_e(s.title)}</h2>")
        if s.intro:
            out.append(f"<p>{_e(s.intro)}</p>")
        for b in s.blocks:
            out.append(f"<h3>{_e(b.title)}</h3>")
            out.extend(_html_part(p) for p in b.parts)
        out.append("</section>")
    out.append(f'<p class="note">Exported by lca-tui {_e(report.environment.get("packages", {}).get("lca-tui") or "")}'
               " — a self-contained file: it loads nothing from the network.</p>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ Markdown
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
             f"- Report exported: {md_escape(fmt_time(report.created))}", ""]
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
                else:
                    name = f"fig-{len(images) + 1:02d}-{re.sub(r'[^a-z0-9]+', '-', p.title.lower()).strip('-')[:40]}.svg"
                    svg = p.svg if isinstance(p, Screenshot) else svglib.standalone(p.svg())
                    images[name] = svg
                    lines += [f"![{md_escape(p.title)}]({quote(images_dir_name)}/{quote(name)})", ""]
    pkg = (report.environment.get("packages") or {}).get("lca-tui") or ""
    lines += [f"*Exported by lca-tui {md_escape(pkg)}.*", ""]
    return "\n".join(lines), images


# ------------------------------------------------------------------------------------ writing
def _created_parents(path: Path) -> list[Path]:
    """Folders above ``path`` that do not exist yet (deepest last)."""
    missing = []
    p = path.parent
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return list(reversed(missing))


def _remove_dirs(dirs: list[Path]):
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            pass


def _resolve_out(session, fmt: str, out_path) -> Path:
    suffix = ".html" if fmt == "html" else ".md"
    out = Path(out_path).expanduser() if out_path else Path.cwd()
    if out.is_dir():
        out = out / f"{session.path.name}-report{suffix}"
    return out


def write_report(session, fmt: str = "html", out_path: str | os.PathLike | None = None,
                 report: Report | None = None) -> Path:
    """Write the report and return its path. ``out_path`` may be a folder (the file is named after
    the session). For Markdown the images go to ``<stem>_files/`` beside the file. An unwritable
    destination raises UserError and leaves nothing behind (a previous export stays as it was)."""
    fmt = (fmt or "html").lower()
    if fmt in ("markdown",):
        fmt = "md"
    if fmt not in ("html", "md"):
        raise UserError(f"unknown report format {fmt!r}: choose html or md")
    out = _resolve_out(session, fmt, out_path)
    if out.exists() and out.is_dir():
        raise UserError(f"cannot write {out}: it is a directory")
    report = report if report is not None else build_report(session)
    new_dirs = _created_parents(out)
    try:
        if fmt == "html":
            atomic_write_text(out, render_html(report))
        else:
            _write_markdown(report, out)
    except BaseException:
        _remove_dirs(new_dirs)
        raise
    return out


def _write_markdown(report: Report, out: Path):
    images_name = f"{out.stem}_files"
    text, images = render_markdown(report, images_name)
    final_dir = out.parent / images_name
    if not images:
        atomic_write_text(out, text)
        return
    tmp_dir = old_dir = None
    installed = False
    try:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp_dir = Path(tempfile.mkdtemp(prefix=f".{images_name}.", suffix=".tmp", dir=out.parent))
            for name, svg in images.items():
                (tmp_dir / name).write_text(svg, encoding="utf-8")
            if final_dir.exists() or final_dir.is_symlink():
                if not final_dir.is_dir() or final_dir.is_symlink():
                    raise UserError(f"cannot write {final_dir}: something that is not a folder is in the way")
                old_dir = Path(tempfile.mkdtemp(prefix=f".{images_name}.old.", dir=out.parent))
                os.rmdir(old_dir)
                os.replace(final_dir, old_dir)
            os.replace(tmp_dir, final_dir)
            installed, tmp_dir = True, None
        except OSError as exc:
            raise UserError(f"cannot write {final_dir}: {exc.strerror or exc}") from None
        atomic_write_text(out, text)
    except BaseException:
        if installed:
            shutil.rmtree(final_dir, ignore_errors=True)
        if old_dir is not None and old_dir.exists():
            os.replace(old_dir, final_dir)
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    if old_dir is not None:
        shutil.rmtree(old_dir, ignore_errors=True)
