"""SVG snapshots of ProbabilityBars and Heatmap with fixed data (pytest-textual-snapshot)."""

import numpy as np
from textual.app import App, ComposeResult

from widgets import BarRow, Heatmap, ProbabilityBars


class BarsSnapshotApp(App):
    def compose(self) -> ComposeResult:
        yield ProbabilityBars()

    def on_mount(self) -> None:
        self.query_one(ProbabilityBars).set_rows([
            BarRow(" Chicago", 0.4137, 1, highlight="false"),
            BarRow(" Paris", 0.2875, 2, highlight="true"),
            BarRow(" the", 0.0912, 3),
            BarRow("\n", 0.0433, 4),
            BarRow(" France", 0.0101, 5),
            BarRow("\t", 0.00004, 6),
        ])


class HeatmapSnapshotApp(App):
    def compose(self) -> ComposeResult:
        yield Heatmap()

    def on_mount(self) -> None:
        i = np.arange(32)
        m = np.cos(np.subtract.outer(i, i) / 5.0)  # fixed, signed
        m[3, 7] = np.nan
        self.query_one(Heatmap).set_matrix(m, diverging=True, title="cos((i-j)/5)")


def test_probability_bars_snapshot(snap_compare):
    assert snap_compare(BarsSnapshotApp(), terminal_size=(100, 30))


def test_heatmap_snapshot(snap_compare):
    assert snap_compare(HeatmapSnapshotApp(), terminal_size=(100, 30))
