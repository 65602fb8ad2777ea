"""The report as pure data: sections of blocks of parts (paragraphs, verbatim prompts, tables,
charts, screenshots). Builders fill it from a session; renderers turn it into HTML or Markdown.
Nothing here renders or escapes: user text is kept verbatim and escaped by each renderer."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    collapsed: bool = False  # HTML: folded under its caption (a run's configuration)


@dataclass
class LineChart:
    """Lines (name -> (xs, ys)) with dashed reference lines (name -> y), e.g. the Bayes accuracy."""

    title: str
    series: dict
    xlabel: str = ""
    ylabel: str = ""
    y_range: tuple | None = None
    hlines: dict | None = None


@dataclass
class Heatmap:
    """A matrix as pixels; optional axis names and tick labels (``xticks`` per column, ``yticks`` per
    row), e.g. blocks × prompt tokens."""

    title: str
    matrix: list
    vmin: float | None = None
    vmax: float | None = None
    diverging: bool = False
    xlabel: str = ""
    ylabel: str = ""
    xticks: list | None = None
    yticks: list | None = None


@dataclass
class Histogram:
    """Counts of values per series (name -> values); None values are counted as ``never``."""

    title: str
    samples: dict
    xlabel: str = ""
    ylabel: str = "records"


@dataclass
class BarChart:
    """Bars per series (name -> (xs, ys)) at their own x, e.g. each context position's contribution
    coloured by its source; a horizontal line at 0."""

    title: str
    series: dict
    xlabel: str = ""
    ylabel: str = ""


@dataclass
class Screenshot:
    """A sanitised SVG (with its namespace) of a panel as it was when pinned."""

    title: str
    svg: str


Figure = LineChart | Heatmap | Histogram | BarChart
Part = Paragraph | Preformatted | Table | LineChart | Heatmap | Histogram | BarChart | Screenshot
FIGURES = (LineChart, Heatmap, Histogram, BarChart)


@dataclass
class Block:
    title: str
    parts: list = field(default_factory=list)


@dataclass
class Section:
    key: str  # runs, hijack, sweeps, probes, traces, mirrors, experiments, environment
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    title: str
    session_name: str
    session_path: str
    as_of: float | None  # the session's last activity: the same session gives the same report
    session_created: float | None
    notes: str
    environment: dict
    sections: list[Section]
    problems: list[str]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)
