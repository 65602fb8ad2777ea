"""Reusable Textual widgets that draw the plain data they are given (lists, arrays, small dataclasses)."""

from .colors import quantize, ramp
from .heatmap import Heatmap, fit_grid
from .live_curve import LiveCurve, downsample
from .prob_bars import BarRow, ProbabilityBars, bar_text, format_percent
from .row_table import RowTable, column_widths
from .status_bar import StatusBar
from .token_strip import TokenStrip, wrap_tokens
from .tokens import visible_token

__all__ = [
    "StatusBar",
    "BarRow", "Heatmap", "LiveCurve", "ProbabilityBars", "RowTable", "TokenStrip",
    "bar_text", "column_widths", "downsample", "fit_grid", "format_percent", "quantize", "ramp",
    "visible_token", "wrap_tokens",
]
