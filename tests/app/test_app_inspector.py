"""The inspector panel: every view drawn for a checkpoint, a live snapshot, errors inline, a snapshot SVG."""

import shutil

import pytest
from app_helpers import wait_for
from textual.widgets import ContentSwitcher, DataTable, Input, Static, TabbedContent

from lca_tui.app import LcaApp
from lca_tui.panels.inspector import HINT, VIEW_IDS, InspectorPanel
from widgets import Heatmap, LiveCurve


def _tiny_cfg():
    from engine.lca.config import ModelConfig, RunConfig, TaskConfig, TrainConfig

    return RunConfig(task=TaskConfig(m=4, L=16), model=ModelConfig(d=16, d_a=16),
                     train=TrainConfig(steps=30, batch_size=32, eval_every=10, eval_size=256, seed=7,
                                       lr=0.01, device="cpu"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A fixed tiny run (m = 4, L = 16, d = 16, 30 steps, seed 7) trained once on the CPU."""
    from engine.lca.runner import TrainingRun

    out = tmp_path_factory.mktemp("inspector") / "tiny-run"
    TrainingRun.start(_tiny_cfg(), out, device="cpu").run()
    return out


def _text(app, selector) -> str:
    return str(app.query_one(selector, Static).render())


async def _to_inspector(pilot) -> InspectorPanel:
    await pilot.pause()
    await pilot.press("escape", "3")
    assert pilot.app.query_one("#panels", ContentSwitcher).current == "inspector"
    return pilot.app.query_one(InspectorPanel)


async def test_inspector_draws_every_view_for_a_checkpoint(tiny_run):
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await _to_inspector(pilot)
        assert panel.report is None and HINT in _text(app, "#inspector-header")
        panel.show_run(tiny_run)
        await wait_for(pilot, lambda: panel.report is not None and not panel.busy, timeout=30)
        assert panel.shown_label == "tiny-run" and panel.shown_step == 30 and panel.error is None
        header = _text(app, "#inspector-header")
        assert "tiny-run" in header and "step 30" in header and "m=4" in header
        r = panel.report
        tabs = app.query_one("#inspector-views", TabbedContent)
        assert tabs.active == "insp-geometry"
        curve = app.query_one("#insp-geometry-curve", LiveCurve)
        assert curve.series_names == ["max over pairs", "min over pairs", "mean", "fit −a·D_H+b, b₀ at 0"]
        assert "R² =" in _text(app, "#insp-geometry-fit")
        await wait_for(pilot, lambda: curve.plotted_points.get("mean") == 5, timeout=5)

        await pilot.press("v")
        assert tabs.active == "insp-gram"
        gram = app.query_one("#insp-gram-map", Heatmap)
        await wait_for(pilot, lambda: gram.grid.size > 0, timeout=5)
        rows, cols = gram.grid.shape
        assert rows == cols and rows % 16 == 0          # 16 x 16 tokens, repeated to fit
        lo, hi = gram.value_range
        assert lo == -hi and hi == pytest.approx(abs(r.gram).max())  # diverging, symmetric

        await pilot.press("v")
        assert tabs.active == "insp-spectra"
        spectra = app.query_one("#insp-spectra-curve", LiveCurve)
        assert spectra.series_names == ["σ(W_E)", "σ(W_V)", "gap after m = 4"]
        assert "σ_m/σ_(m+1)" in _text(app, "#insp-spectra-info")

        await pilot.press("v")
        assert tabs.active == "insp-value"
        table = app.query_one("#insp-value-table", DataTable)
        assert table.row_count == 5
        assert table.get_row_at(4)[1] == f"{100 * r.swap['bayes']:.1f}%"
        assert table.get_row_at(1)[2] == f"{r.angles['constructed']:.1f}"

        await pilot.press("v")
        assert tabs.active == "insp-attention"
        att = app.query_one("#insp-attention-table", DataTable)
        assert att.row_count == 5 + 2 * 2               # D_H = 0..4, same/other for k = 1, 2
        amap = app.query_one("#insp-attention-map", Heatmap)
        await wait_for(pilot, lambda: amap.grid.size > 0, timeout=5)
        assert amap.grid.shape[0] == amap.grid.shape[1]

        await pilot.press("v")
        assert tabs.active == "insp-mirror"              # drawn in tests/app/test_app_inspector_mirror.py

        await pilot.press("v")
        assert tabs.active == VIEW_IDS[0]                # cycles round

        seq = panel.seq
        await pilot.press("r")                           # recompute from the checkpoint
        await wait_for(pilot, lambda: panel.seq == seq + 1 and not panel.busy, timeout=30)
        assert panel.report is not r and panel.report.swap == r.swap


async def test_live_snapshot_and_refresh_takes_a_new_one(tiny_run):
    import torch

    from engine.lca.inspection import load_model_from_run, snapshot_model

    cfg, model, step = load_model_from_run(tiny_run)
    calls = []

    def source():
        with torch.no_grad():
            model.W_E.mul_(2.0)                          # "training" moved on
        calls.append(1)
        return cfg, snapshot_model(model), step + 10

    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await _to_inspector(pilot)
        panel.show_snapshot(cfg, snapshot_model(model), "live run", step=step, source=source)
        await wait_for(pilot, lambda: panel.report is not None and not panel.busy, timeout=30)
        assert panel.shown_label == "live run" and "live run" in _text(app, "#inspector-header")
        b0 = panel.report.geometry.b0
        await pilot.press("f5")
        await wait_for(pilot, lambda: calls and not panel.busy and panel.shown_step == step + 10, timeout=30)
        assert panel.report.geometry.b0 == pytest.approx(4 * b0, rel=1e-5)  # |2 W_E(t)|² = 4 |W_E(t)|²


async def test_damaged_checkpoint_opened_with_o_shows_inline_error(tiny_run, tmp_path):
    bad = tmp_path / "bad-run"
    shutil.copytree(tiny_run, bad)
    ckpt = bad / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:64])
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await _to_inspector(pilot)
        await pilot.press("o")
        await pilot.pause()
        box = app.screen.query_one("#open-run-path", Input)
        box.value = str(bad)
        await pilot.press("enter")
        await wait_for(pilot, lambda: panel.error is not None and not panel.busy, timeout=30)
        assert "checkpoint.safetensors" in panel.error
        line = app.query_one("#inspector-error", Static)
        assert "checkpoint.safetensors" in str(line.render()) and line.display
        assert panel.report is None and HINT in _text(app, "#inspector-header")
        await pilot.press("1")
        assert app.query_one("#panels", ContentSwitcher).current == "hijack"
        await pilot.press("escape", "3")                 # leave the prompt editor first
        assert app.query_one("#panels", ContentSwitcher).current == "inspector"
        # a good run afterwards clears the error
        panel.show_run(tiny_run)
        await wait_for(pilot, lambda: panel.report is not None and not panel.busy, timeout=30)
        assert panel.error is None and not app.query_one("#inspector-error").display


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", ["insp-geometry", "insp-attention"])
def test_inspector_snapshot(snap_compare, tiny_run, monkeypatch, tmp_path, size, view):
    monkeypatch.setattr("lca_tui.app.memory_in_use", lambda: "100 MiB")  # the status bar is live
    app = LcaApp(load_model=False, session=str(tmp_path / "snap-session"))  # a fixed session name

    async def run_before(pilot):
        panel = await _to_inspector(pilot)
        panel.show_run(tiny_run)
        await wait_for(pilot, lambda: panel.report is not None and not panel.busy, timeout=30)
        pilot.app.query_one("#inspector-views", TabbedContent).active = view
        await pilot.pause(0.6)                           # the curve redraws at 4 Hz

    assert snap_compare(app, terminal_size=size, run_before=run_before)
