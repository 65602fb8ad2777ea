"""LiveCurve and downsample: spikes survive, bounded points, redraws only on dirty timer ticks."""

import asyncio
import time

import numpy as np
from textual.app import App, ComposeResult
from textual_plotext import PlotextPlot

from widgets import LiveCurve, downsample


class CurveApp(App):
    def compose(self) -> ComposeResult:
        yield LiveCurve(title="accuracy", xlabel="step", y_range=(0.0, 1.0))


def test_downsample_identity_for_short_input():
    xs, ys = [0, 1, 2, 3], [5.0, 1.0, 2.0, 9.0]
    x, y = downsample(xs, ys, 10)
    assert x.tolist() == xs and y.tolist() == ys
    x, y = downsample(xs, ys, 4)
    assert x.tolist() == xs


def test_downsample_keeps_ends_extremes_and_order():
    rng = np.random.default_rng(1)
    n = 100_000
    xs = np.arange(n, dtype=float)
    ys = rng.normal(size=n)
    ys[12_345] = 50.0  # a spike
    ys[77_777] = -50.0  # a dip
    x, y = downsample(xs, ys, 200)
    assert len(x) <= 200 and len(x) >= 150
    assert (x[0], y[0]) == (xs[0], ys[0]) and (x[-1], y[-1]) == (xs[-1], ys[-1])
    assert y.max() == 50.0 and y.min() == -50.0
    assert 12_345.0 in x and 77_777.0 in x
    assert np.all(np.diff(x) > 0)  # x order preserved, no duplicates
    # every kept point is a real point of the series
    assert np.array_equal(ys[x.astype(int)], y)


def test_downsample_rejects_mismatched_lengths():
    try:
        downsample([1, 2], [1], 10)
    except ValueError:
        return
    raise AssertionError("expected ValueError")


async def test_replots_at_most_once_per_tick_and_only_when_dirty():
    app = CurveApp()
    async with app.run_test(size=(100, 30)) as pilot:
        curve = app.query_one(LiveCurve)
        calls = []
        original = curve._replot
        curve._replot = lambda: (calls.append(time.monotonic()), original())
        await pilot.pause(0.3)
        calls.clear()
        start = time.monotonic()
        for burst in range(40):  # 4000 points arriving over ~0.5 s
            for i in range(100):
                step = burst * 100 + i
                curve.append("train", step, 1 - np.exp(-step / 800))
            await asyncio.sleep(0.0125)
        await pilot.pause(0.3)
        elapsed = time.monotonic() - start
        assert 1 <= len(calls) <= elapsed / 0.25 + 1
        n = len(calls)
        await pilot.pause(0.6)  # nothing changed: no more redraws
        assert len(calls) == n
        # Manual ticks: one replot per dirty tick, none when clean.
        curve.append("train", 4000, 1.0)
        curve._tick()
        curve._tick()
        assert len(calls) == n + 1


async def test_downsamples_to_about_twice_the_width_and_draws():
    app = CurveApp()
    async with app.run_test(size=(100, 30)) as pilot:
        curve = app.query_one(LiveCurve)
        xs = np.arange(10_000)
        curve.set_series("train", xs, np.sin(xs / 500) * 0.4 + 0.5)
        curve.set_series("short", [0, 5000, 9999], [0.1, 0.2, 0.3])
        curve.set_hline("bayes", 0.9)
        await pilot.pause(0.4)
        width = curve.size.width
        assert curve.plotted_points["short"] == 3
        assert width <= curve.plotted_points["train"] <= 2 * width
        text = "\n".join(str(line) for line in [app.query_one(PlotextPlot).render()])
        assert "accuracy" in text and "bayes" in text and "train" in text
        assert any("\u2800" < ch <= "\u28ff" for ch in text)  # braille plot marks
        curve.clear()
        curve._tick()
        assert curve.plotted_points == {} and curve.series_names == []


async def test_nonfinite_points_are_skipped():
    app = CurveApp()
    async with app.run_test(size=(100, 30)) as pilot:
        curve = app.query_one(LiveCurve)
        curve.set_series("loss", [0, 1, 2, 3], [1.0, float("nan"), float("inf"), 0.5])
        curve._tick()
        assert curve.plotted_points == {"loss": 2}
        await pilot.pause()
