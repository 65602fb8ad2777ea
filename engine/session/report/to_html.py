"""A ``Report`` as one self-contained HTML file: inline CSS and SVG figures, no script, no URL, a
Content-Security-Policy that forbids loading anything. Every piece of user text is escaped; pinned
panel screenshots (already sanitised) are embedded as ``<img>`` data, where a browser runs no script
and fetches nothing."""

from __future__ import annotations

import base64
import html
import re

from engine.session.report.document import FIGURES, Paragraph, Preformatted, Report, Screenshot, Table
from engine.session.report.figures import figure_svg
from engine.session.report.values import fmt_time, fmt_value

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

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'none'; "
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
    table = "\n".join(out)
    if t.collapsed:
        return f"<details><summary>{_e(t.caption)}</summary>\n{table}\n</details>"
    return table


def _html_part(p, fig_no: int) -> str:
    if isinstance(p, Paragraph):
        return f"<p>{_e(p.text)}</p>"
    if isinstance(p, Preformatted):
        return f'<p class="note">{_e(p.label)}:</p>\n<pre class="prompt">{_e(p.text)}</pre>'
    if isinstance(p, Table):
        return _html_table(p)
    if isinstance(p, FIGURES):
        return f"<figure>\n{figure_svg(p, id_prefix=f'f{fig_no}-')}\n</figure>"
    if isinstance(p, Screenshot):
        data = base64.b64encode(p.svg.encode("utf-8")).decode("ascii")
        return (f'<figure><img alt="{_e(p.title)}" src="data:image/svg+xml;base64,{data}">'
                f"<figcaption class=\"note\">{_e(p.title)}</figcaption></figure>")
    raise TypeError(f"unknown report part {type(p).__name__}")


def render_html(report: Report) -> str:
    """One self-contained HTML document: inline CSS and SVG, no script, no external reference."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<meta name="referrer" content="no-referrer">',
           f"<title>{_e(report.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{_e(report.title)}</h1>",
           f'<p class="meta">Session folder {_e(report.session_path)} · created '
           f"{_e(fmt_time(report.session_created))} · last recorded {_e(fmt_time(report.as_of))}</p>"]
    if report.notes:
        out.append(f"<p>{_e(report.notes)}</p>")
    if report.problems:
        out.append('<div class="problems" id="sec-problems"><h2>Problems</h2>'
                   "<p>These files are damaged or unreadable and were skipped:</p><ul>")
        out.extend(f"<li>{_e(p)}</li>" for p in report.problems)
        out.append("</ul></div>")
    out.append("<nav><ul>" + "".join(f'<li><a href="#{_anchor(s.key)}">{_e(s.title)}</a></li>'
                                      for s in report.sections) + "</ul></nav>")
    fig_no = 0
    for s in report.sections:
        out.append(f'<section id="{_anchor(s.key)}">')
        out.append(f"<h2>{_e(s.title)}</h2>")
        if s.intro:
            out.append(f"<p>{_e(s.intro)}</p>")
        for b in s.blocks:
            out.append(f"<h3>{_e(b.title)}</h3>")
            for p in b.parts:
                fig_no += isinstance(p, FIGURES)
                out.append(_html_part(p, fig_no))
        out.append("</section>")
    out.append(f'<p class="note">Exported by lca-tui {_e(report.environment.get("packages", {}).get("lca-tui") or "")}'
               " — a self-contained file: it loads nothing from the network.</p>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
