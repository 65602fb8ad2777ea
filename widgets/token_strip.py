"""A wrapping strip of tokens, each coloured by a scalar (surprise, attention weight, ...)."""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from .colors import NAN_COLOR, contrast_text, quantize, ramp
from .lines import LinesWidget
from .tokens import visible_token

N_COLORS = 64
_LEGEND_RAMP = 16


def wrap_tokens(texts: list[str], width: int, breaks: list[bool] | None = None) -> list[list[int]]:
    """Greedy wrap: token indices per line, one space between tokens.

    Tokens wider than ``width`` get a line of their own (cropped when drawn);
    ``breaks[i]`` forces a new line after token ``i`` (e.g. it contained a newline).
    """
    width = max(1, width)
    lines: list[list[int]] = [[]]
    used = 0
    for i, text in enumerate(texts):
        need = len(text) if not lines[-1] else used + 1 + len(text)
        if lines[-1] and need > width:
            lines.append([])
            need = len(text)
        lines[-1].append(i)
        used = need
        if breaks and breaks[i] and i < len(texts) - 1:
            lines.append([])
            used = 0
    return lines if lines[-1] or len(lines) == 1 else lines[:-1]


class TokenStrip(LinesWidget):
    """Tokens with visible whitespace, background-coloured by value on a 0..vmax scale.

    ``label`` names the value in the legend line, e.g. "surprise (nats)".
    """

    DEFAULT_CSS = """
    TokenStrip { height: auto; min-height: 1; }
    TokenStrip > .token-strip--legend { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"token-strip--legend"}

    def __init__(self, *, label: str = "", palette: str = "viridis", name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.label = label
        self._colors = ramp(palette, N_COLORS)
        self._texts: list[str] = []
        self._breaks: list[bool] = []
        self._indices: np.ndarray | None = None
        self._vmax = 0.0
        self._style_base: Style | None = None
        self._style_table: list[Style] = []

    def set_tokens(self, tokens: list[str], values: list[float] | None = None,
                   vmax: float | None = None) -> None:
        """Show ``tokens``; colour each by ``values[i]`` in [0, vmax] (vmax defaults to the max)."""
        if values is not None and len(values) != len(tokens):
            raise ValueError(f"{len(tokens)} tokens but {len(values)} values")
        width = self.content_region.width or self.size.width
        before = self.get_content_height(None, None, width) if width else -1
        self._texts = [visible_token(t) for t in tokens]
        self._breaks = ["\n" in t for t in tokens]
        if values is None:
            self._indices = None
        else:
            v = np.asarray(values, dtype=float)
            finite = v[np.isfinite(v)]
            top = float(finite.max()) if finite.size else 1.0
            self._vmax = float(vmax) if vmax is not None else (top if top > 0 else 1.0)
            self._indices = quantize(v, 0.0, self._vmax, N_COLORS)
        # A relayout only when the strip's height changes (it costs a full-screen layout per key);
        # else a repaint of the lines that changed (widgets/lines.py).
        self._redraw(not width or self.get_content_height(None, None, width) != before)

    def _layout(self, width: int) -> list[list[int]]:
        return wrap_tokens(self._texts, width, self._breaks)

    def get_content_height(self, container, viewport, width: int) -> int:
        if not self._texts:
            return 1
        return len(self._layout(width)) + (1 if self._indices is not None else 0)

    def _styles(self, base: Style) -> list[Style]:
        """The token style of each colour index (the last entry: NaN), built once per base style."""
        if self._style_base != base:
            self._style_base = base
            self._style_table = [base + Style(bgcolor=bg, color=contrast_text(bg))
                                 for bg in (*self._colors, NAN_COLOR)]
        return self._style_table

    def _token_style(self, i: int, base: Style) -> Style:
        if self._indices is None:
            return base + Style(reverse=True, dim=True)
        return self._styles(base)[int(self._indices[i])]  # index -1 (NaN) is the table's last entry

    def _build(self, width: int, height: int = 0) -> list[Strip]:
        base = self.rich_style
        legend_style = base + self.get_component_rich_style("token-strip--legend")
        if not self._texts:
            return [Strip([Segment("no tokens", legend_style + Style(italic=True))])
                    .adjust_cell_length(width, base)]
        strips = []
        for line in self._layout(width):
            segs: list[Segment] = []
            for j, i in enumerate(line):
                if j:
                    segs.append(Segment(" ", base))
                segs.append(Segment(self._texts[i], self._token_style(i, base)))
            strips.append(Strip(segs).adjust_cell_length(width, base))
        if self._indices is not None:
            tail = f" {self._vmax:.3g}" + (f"  {self.label}" if self.label else "")
            n = max(4, min(_LEGEND_RAMP, width - 2 - len(tail)))
            picks = np.linspace(0, N_COLORS - 1, n).round().astype(int)
            segs = [Segment("0 ", legend_style)]
            segs += [Segment(" ", Style(bgcolor=self._colors[p])) for p in picks]
            segs.append(Segment(tail, legend_style))
            strips.append(Strip(segs).adjust_cell_length(width, base))
        return strips
