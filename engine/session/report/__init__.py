"""Session reports, the public face. A report is built as pure data from a session
(``build_report``), rendered as one self-contained HTML file (``render_html``) or as Markdown with
its figures in a folder (``render_markdown``), and written atomically (``write_report``). The
pieces, one thing each:

- ``document``: the data model (sections, blocks, tables, charts, screenshots);
- ``build``: the report from a session (it only assembles the sections);
- one module per section, each on the ``parts.section`` skeleton: ``runs``, ``efficacy`` (with the
  cross-model chart and flip-point histogram builders), ``sweeps``, ``probes``, ``trace``, ``mirror``
  (pinned hijack mirrors of the one-layer model, Sec. 5.5), ``experiments``, ``environment``;
- ``parts``: the leaf the sections share (``section``, ``records_table``, a chart's points, screenshots);
- ``figures``: charts drawn by matplotlib's SVG backend (imported only when a report is written);
- ``sanitize``: SVG made safe to embed (no script, no URL, no namespace);
- ``to_html`` / ``to_markdown``: the two renderers; ``values``: number and time formatting;
- ``write``: the files on disk.
"""

from engine.session.report.build import build_report
from engine.session.report.document import (
    BarChart,
    Block,
    Heatmap,
    Histogram,
    LineChart,
    Paragraph,
    Preformatted,
    Report,
    Screenshot,
    Section,
    Table,
)
from engine.session.report.efficacy import es_by_model_chart, flip_histogram, flip_points
from engine.session.report.parts import records_table
from engine.session.report.to_html import render_html
from engine.session.report.to_markdown import md_escape, render_markdown
from engine.session.report.values import fmt_time, fmt_value
from engine.session.report.write import write_report

__all__ = [
    "BarChart", "Block", "Heatmap", "Histogram", "LineChart", "Paragraph", "Preformatted", "Report", "Screenshot",
    "Section", "Table", "build_report", "es_by_model_chart", "flip_histogram", "flip_points", "fmt_time",
    "fmt_value", "md_escape", "records_table", "render_html", "render_markdown", "write_report",
]
