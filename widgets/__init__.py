"""Reusable Textual widgets that draw the plain data they are given (lists, arrays, small dataclasses)."""

from .colors import quantize, ramp
from .column_chart import ColumnChart, bucket_max, column_eighths
from .heatmap import Heatmap, fit_grid
from .layer_bars import LayerBars, diverging_eighths, grouped_values, layer_groups
from .live_curve import LiveCurve, downsample
from .prob_bars import BarRow, ProbabilityBars, bar_text, format_percent
from .row_table import RowTable, column_widths
from .status_bar import StatusBar
from .token_strip import TokenStrip, wrap_tokens
from .tokens import visible_token

__all__ = [
    "StatusBar",
    "BarRow", "ColumnChart", "Heatmap", "LayerBars", "LiveCurve", "ProbabilityBars", "RowTable", "TokenStrip",
    "bar_text", "bucket_max", "column_eighths", "column_widths", "diverging_eighths", "downsample", "fit_grid",
    "format_percent", "grouped_values", "layer_groups", "quantize", "ramp",
    "visible_token", "wrap_tokens",
]
