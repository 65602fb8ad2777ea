"""Top-k next-token probabilities as horizontal bars (Line API, cheap to update)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from textnum import short_percent as format_percent

from .lines import LinesWidget
from .tokens import visible_token

_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"
_MAX_TOKEN_WIDTH = 20


@dataclass(frozen=True)
class BarRow:
    """One bar: a token, its probability, its rank, and an optional highlight style name."""

    token: str
    prob: float
    rank: int
    highlight: str | None = None


def bar_text(prob: float, width: int) -> str:
    """A bar of ``prob * width`` cells, with eighth blocks for the fractional cell."""
    eighths = int(round(max(0.0, min(1.0, float(prob))) * width * 8))
    full, rem = divmod(eighths, 8)
    return _FULL * full + (_EIGHTHS[rem] if rem else "")


class ProbabilityBars(LinesWidget):
    """Ranked tokens with percent and a bar whose length is proportional to probability.

    A probability of 1 fills the bar column. ``highlight`` names a component style
    ("true", "false", "target") or any Rich style string.
    """

    DEFAULT_CSS = """
    ProbabilityBars { height: auto; min-height: 1; }
    ProbabilityBars > .prob-bars--bar { color: $primary; }
    ProbabilityBars > .prob-bars--rank { color: $text-muted; }
    ProbabilityBars > .prob-bars--dim { color: $text-muted; text-style: italic; }
    ProbabilityBars > .prob-bars--true { color: $success; text-style: bold; }
    ProbabilityBars > .prob-bars--false { color: $error; text-style: bold; }
    ProbabilityBars > .prob-bars--target { color: $warning; text-style: bold; }
    """
    COMPONENT_CLASSES = {
        "prob-bars--bar", "prob-bars--rank", "prob-bars--dim",
        "prob-bars--true", "prob-bars--false", "prob-bars--target",
    }

    def __init__(self, rows: list[BarRow] | None = None, *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: list[BarRow] = list(rows or [])

    @property
    def rows(self) -> list[BarRow]:
        """The rows currently shown."""
        return list(self._rows)

    def set_rows(self, rows: list[BarRow]) -> None:
        """Replace the rows; relayout only if the row count changes."""
        rows = list(rows)
        relayout = len(rows) != len(self._rows)
        self._rows = rows
        self._redraw(relayout)  # else only the lines that changed (widgets/lines.py)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self._rows))

    def _highlight_style(self, name: str | None) -> Style | None:
        if not name:
            return None
        component = f"prob-bars--{name}"
        if component in self.COMPONENT_CLASSES:
            return self.get_component_rich_style(component)
        try:
            return Style.parse(name)
        except Exception:  # noqa: BLE001 -- rich raises several types for an unknown style name
            return None

    def _build(self, width: int, height: int = 0) -> list[Strip]:
        base = self.rich_style
        if not self._rows:
            dim = base + self.get_component_rich_style("prob-bars--dim")
            return [Strip([Segment("no data", dim)]).adjust_cell_length(width, base)]
        tokens = [visible_token(r.token) for r in self._rows]
        tokens = [t if len(t) <= _MAX_TOKEN_WIDTH else t[: _MAX_TOKEN_WIDTH - 1] + "…" for t in tokens]
        tok_w = max(len(t) for t in tokens)
        rank_w = max(len(str(r.rank)) for r in self._rows)
        pct_w = 6
        bar_w = max(1, width - (rank_w + 1 + tok_w + 1 + pct_w + 1))
        rank_style = base + self.get_component_rich_style("prob-bars--rank")
        bar_style = base + self.get_component_rich_style("prob-bars--bar")
        strips = []
        for row, tok in zip(self._rows, tokens):
            hl = self._highlight_style(row.highlight)
            tok_style = base + hl if hl else base
            segments = [
                Segment(f"{row.rank:>{rank_w}} ", rank_style),
                Segment(f"{tok:<{tok_w}} ", tok_style),
                Segment(f"{format_percent(row.prob):>{pct_w}} ", tok_style),
                Segment(bar_text(row.prob, bar_w), (bar_style + hl) if hl else bar_style),
            ]
            strips.append(Strip(segments).adjust_cell_length(width, base))
        return strips
