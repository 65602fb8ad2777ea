"""Heatmap: quantisation, half-block fg/bg, fitting (down by averaging, up by repetition), NaN."""

import numpy as np
from textual.app import App, ComposeResult

from widgets import Heatmap, fit_grid, ramp
from widgets.colors import NAN_COLOR
from widgets.heatmap import N_COLORS


class HeatApp(App):
    def __init__(self, height="1fr", width="1fr"):
        self.CSS = f"Heatmap {{ height: {height}; width: {width}; }}"
        super().__init__()

    def compose(self) -> ComposeResult:
        yield Heatmap()


def cells(strip):
    """The '▀' segments of a rendered line."""
    return [s for s in strip if s.text == "▀"]


def test_fit_grid_shrinks_by_block_average_and_grows_by_repetition():
    a = np.arange(16, dtype=np.int16).reshape(4, 4)
    grid, k = fit_grid(a, 2, 2)
    assert k == 1 and grid.tolist() == [[3, 5], [11, 13]]  # means 2.5, 4.5, 10.5, 12.5, rounded half up
    grid, k = fit_grid(a, 9, 13)
    assert k == 2 and grid.shape == (8, 8)
    assert (grid[::2, ::2] == a).all() and (grid[1::2, 1::2] == a).all()
    grid, k = fit_grid(np.array([[-1, -1, 4, 6]], dtype=np.int16), 1, 2)
    assert grid.tolist() == [[-1, 5]]  # all-NaN block stays NaN, NaN ignored otherwise
    big = np.zeros((256, 100), dtype=np.int16)
    grid, _ = fit_grid(big, 64, 80)
    assert grid.shape[0] <= 64 and grid.shape[1] <= 80 and grid.shape[0] >= 60


async def test_quantisation_maps_vmin_to_first_and_vmax_to_last_colour():
    app = HeatApp(height=3)
    async with app.run_test(size=(100, 30)) as pilot:
        heat = app.query_one(Heatmap)
        heat.set_matrix(np.array([[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]]), vmin=0.0, vmax=1.0)
        await pilot.pause()
        assert heat._indices.tolist() == [[0, 128, 255], [255, 128, 0]]
        heat.set_matrix(np.array([[-2.0, 5.0]]), vmin=-1.0, vmax=1.0)  # out of range clips
        assert heat._indices.tolist() == [[0, 255]]
        heat.set_matrix(np.array([[3.0, 7.0]]))  # default range is the data range
        assert heat.value_range == (3.0, 7.0) and heat._indices.tolist() == [[0, 255]]
        heat.set_matrix(np.array([[-1.0, 4.0]]), diverging=True)
        assert heat.value_range == (-4.0, 4.0)


async def test_two_rows_render_to_one_line_with_fg_and_bg():
    app = HeatApp(height=2)  # one heatmap line + the legend
    async with app.run_test(size=(100, 30)) as pilot:
        heat = app.query_one(Heatmap)
        heat.set_matrix(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, np.nan]]), vmin=0.0, vmax=1.0)
        await pilot.pause()
        assert heat.grid.shape == (2, 3)
        colors = ramp("viridis", N_COLORS)
        line = cells(heat.render_line(0))
        assert len(line) == 3
        assert (line[0].style.color, line[0].style.bgcolor) == (colors[0], colors[-1])
        assert (line[1].style.color, line[1].style.bgcolor) == (colors[-1], colors[0])
        assert line[2].style.bgcolor == NAN_COLOR  # NaN -> grey
        legend = heat.render_line(1).text
        assert legend.startswith("0 ") and legend.rstrip().endswith(" 1")
        assert cells(heat.render_line(1)) == []


async def test_small_matrix_is_scaled_up_by_integer_repetition():
    app = HeatApp()
    async with app.run_test(size=(100, 30)) as pilot:
        heat = app.query_one(Heatmap)
        heat.set_matrix(np.eye(4), row_labels=["a", "b", "c", "d"], col_labels=["w", "x", "y", "z"])
        await pilot.pause()
        rows, cols = heat.grid.shape
        k = rows // 4
        assert k >= 2 and heat.grid.shape == (4 * k, 4 * k)
        assert rows <= 2 * (heat.size.height - 2)
        text = [heat.render_line(y).text for y in range(heat.size.height)]
        assert [t[0] for t in text if t[:1] in "abcd" and t[:1]] == ["a", "b", "c", "d"]
        assert text[rows // 2].split() == ["w", "x", "y", "z"]  # column labels under the map


async def test_256x256_in_80x40_is_downscaled():
    app = HeatApp(height=40, width=80)
    async with app.run_test(size=(100, 50)) as pilot:
        heat = app.query_one(Heatmap)
        rng = np.random.default_rng(0)
        heat.set_matrix(rng.normal(size=(256, 256)), title="W_V", diverging=True)
        await pilot.pause()
        assert heat._indices.shape == (256, 256)
        rows, cols = heat.grid.shape
        assert rows == cols <= 2 * (40 - 2) and cols <= 80 and rows >= 70
        assert heat.render_line(0).text.startswith("W_V")
        assert len(cells(heat.render_line(1))) == cols
        assert "W_V" in app.export_screenshot()


async def test_nan_is_grey_and_resize_refits():
    app = HeatApp()
    async with app.run_test(size=(60, 20)) as pilot:
        heat = app.query_one(Heatmap)
        m = np.full((40, 40), np.nan)
        m[:20] = 1.0
        heat.set_matrix(m)
        await pilot.pause()
        first = cells(heat.render_line(0))[0]
        last = cells(heat.render_line(heat.grid.shape[0] // 2 - 1))[0]
        assert first.style.bgcolor != NAN_COLOR and last.style.bgcolor == NAN_COLOR
        small = heat.grid.shape
        await pilot.resize_terminal(120, 60)
        await pilot.pause()
        heat.render_line(0)
        assert heat.grid.shape[0] > small[0]


async def test_odd_row_count_leaves_last_lower_half_as_background():
    app = HeatApp(height=3)  # two heatmap lines + legend -> 4 pixel rows for 3 matrix rows
    async with app.run_test(size=(100, 30)) as pilot:
        heat = app.query_one(Heatmap)
        heat.set_matrix(np.array([[0.0], [0.5], [1.0]]), vmin=0.0, vmax=1.0)
        await pilot.pause()
        assert heat.grid.shape == (3, 1)
        last = cells(heat.render_line(1))[0]
        assert last.style.color == ramp("viridis", N_COLORS)[-1]
        assert last.style.bgcolor == heat.rich_style.bgcolor


def test_fit_grid_stretch_fits_rows_and_columns_each_on_their_own():
    a = np.arange(6, dtype=np.int16).reshape(3, 2)  # 3 rows, 2 wide columns
    grid, k = fit_grid(a, 7, 10, stretch=True)
    assert k == 2 and grid.shape == (6, 10)  # rows x2, columns x5 (aspect not kept)
    assert (grid[::2, ::5] == a).all()
    tall = np.arange(40, dtype=np.int16).reshape(20, 2)
    grid, k = fit_grid(tall, 10, 30, stretch=True)
    assert k == 1 and grid.shape == (10, 24)  # rows averaged in pairs, columns capped at 12 cells
    assert grid[0, 0] == round((tall[0, 0] + tall[1, 0]) / 2) and (grid[:, :12] == grid[:, :1]).all()
    wide = np.zeros((2, 50), dtype=np.int16)
    assert fit_grid(wide, 4, 20, stretch=True)[0].shape == (4, 20)


async def test_stretched_rows_keep_labels_when_averaged():
    from textual.app import App

    class One(App):
        def compose(self):
            yield Heatmap(id="h", stretch=True)

    app = One()
    async with app.run_test(size=(40, 12)) as pilot:
        h = app.query_one("#h", Heatmap)
        h.set_matrix(np.arange(60.0).reshape(30, 2), row_labels=[str(i) for i in range(30)], col_labels=["a", "b"])
        await pilot.pause()
        lines = [h.render_line(y).text for y in range(h.size.height)]
        labels = [line.split()[0] for line in lines[:-2] if line.strip() and line.split()[0].isdigit()]
        assert labels[0] == "0" and len(labels) >= 5  # 30 rows averaged into fewer lines, still labelled
        assert [int(x) for x in labels] == sorted(int(x) for x in labels)
