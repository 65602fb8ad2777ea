"""The inspector's hijack mirror view (issue #19): drawn from the engine's trace for the run shown,
recomputed as y / ỹ / r change, bad input inline, pinned into the session and drawn by the report."""

import pytest
from app_helpers import wait_for
from textual.widgets import DataTable, Input, Static, TabbedContent

from lca_tui.app import LcaApp
from lca_tui.panels.inspector import InspectorPanel
from lca_tui.panels.inspector_mirror import SWEEP_N, MirrorView
from widgets import LiveCurve

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A fixed tiny run (m = 4, L = 16, d = 16, 60 steps, seed 7) trained once on the CPU."""
    from engine.lca.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
    from engine.lca.runner import TrainingRun

    cfg = RunConfig(task=TaskConfig(m=4, L=16), model=ModelConfig(d=16, d_a=16),
                    train=TrainConfig(steps=60, batch_size=64, eval_every=20, eval_size=256, seed=7,
                                      lr=0.02, device="cpu"))
    out = tmp_path_factory.mktemp("mirror") / "tiny-run"
    TrainingRun.start(cfg, out, device="cpu").run()
    return out


async def _mirror(pilot, run) -> tuple[InspectorPanel, MirrorView]:
    await pilot.pause()
    await pilot.press("escape", "3")
    panel = pilot.app.query_one(InspectorPanel)
    panel.show_run(run)
    view = pilot.app.query_one(MirrorView)
    await wait_for(pilot, lambda: view.trace is not None and not view.busy, timeout=30)
    pilot.app.query_one("#inspector-views", TabbedContent).active = "insp-mirror"
    await pilot.pause()
    return panel, view


def _engine(run, y, yt, r, seed=0):
    from engine.lca.hijack_mirror import trace_mirror
    from engine.lca.inspection import load_model_from_run

    cfg, model, _ = load_model_from_run(run)
    return trace_mirror(cfg, model, y, yt, r, seed=seed)


async def test_mirror_draws_the_engines_trace_and_recomputes_on_input(tiny_run):
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        _, view = await _mirror(pilot, tiny_run)
        assert view.values() == {"y": "0000", "y-tilde": "1111", "r": "0.5", "seed": "0"}
        want = _engine(tiny_run, 0, 15, 0.5)
        assert view.trace.to_dict() == want.to_dict()
        table = app.query_one("#mirror-measures", DataTable)
        assert table.row_count == 4
        assert table.get_row_at(1)[1] == f"{100 * want.hijacked['p_true']:.1f}%"
        assert table.get_row_at(2)[3] == f"{want.knockout['logit_diff']:+.3f}"
        tokens = app.query_one("#mirror-tokens", DataTable)
        assert tokens.row_count == 16
        rows = [tokens.get_row_at(i) for i in range(16)]
        assert [r[2] for r in rows].count("ỹ") == want.k == round(0.5 * 15) and rows[-1][2] == "t_L (y)"
        assert rows[0][6] == f"{want.tokens[0]['to_diff']:+.3f}"
        curve = app.query_one("#mirror-sweep", LiveCurve)
        assert curve.series_names == ["P(y)", "P(ỹ)", "P(y) knockout", "P(ỹ) knockout", "predicts ỹ"]
        assert f"{SWEEP_N}" in curve.title
        flip = str(app.query_one("#mirror-flip", Static).render())
        assert ("flips to ỹ" in flip) == (want.flip["to_false"] and want.flip["away_from_true"])

        box = app.query_one("#mirror-r", Input)                # typing recomputes
        box.focus()
        box.value = ""
        await pilot.press(*"0.9")
        await wait_for(pilot, lambda: view.trace is not None and view.trace.r == 0.9 and not view.busy, timeout=30)
        assert view.trace.to_dict() == _engine(tiny_run, 0, 15, 0.9).to_dict()
        view.set_values(y="3", y_tilde="0101", seed="4")
        await wait_for(pilot, lambda: view.trace.y == 3 and view.trace.seed == 4 and not view.busy, timeout=30)
        assert view.trace.to_dict() == _engine(tiny_run, 3, 5, 0.9, seed=4).to_dict()


async def test_bad_input_is_inline_and_the_app_keeps_running(tiny_run):
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        _, view = await _mirror(pilot, tiny_run)
        good = view.trace
        line = app.query_one("#mirror-error", Static)
        for values, msg in (({"r": "1.5"}, "r must be a number in [0, 1]"),
                            ({"r": "0.5", "y_tilde": "0000"}, "ỹ must differ from y"),
                            ({"y_tilde": "99"}, "ỹ must be a token id in 0..15"),
                            ({"y_tilde": "1111", "seed": "x"}, "seed must be a whole number")):
            view.set_values(**values)
            await wait_for(pilot, lambda: not view.busy, timeout=30)
            assert view.error is not None and msg in view.error and line.display and msg in str(line.render())
            assert view.trace is good                          # the last good trace stays drawn
        view.set_values(seed="0")
        await wait_for(pilot, lambda: not view.busy and view.error is None, timeout=30)
        assert not line.display
        await pilot.press("1")                                 # the app still answers keys
        await pilot.pause()


async def test_pin_records_the_mirror_and_the_report_draws_it(tiny_run, tmp_path):
    from engine.session.report import build_report, render_html

    app = LcaApp(load_model=False, session=str(tmp_path / "s"))
    async with app.run_test(size=(120, 40)) as pilot:
        panel, view = await _mirror(pilot, tiny_run)
        app.query_one("#mirror-tokens", DataTable).focus()
        await pilot.press("p")
        await wait_for(pilot, lambda: app.session.items("mirror"), timeout=10)
        (item,) = app.session.items("mirror")
        d = item.data
        assert d["run"] == "tiny-run" and d["step"] == 60 and d["svg"].lstrip().startswith("<svg")
        assert d["tokens"] == view.trace.to_dict()["tokens"] and len(d["sweep"]["points"]) == 11
        html = render_html(build_report(app.session))
        assert "Hijack mirror" in html and "Contribution of each position" in html


async def test_pin_without_a_trace_warns(tmp_path, monkeypatch):
    app = LcaApp(load_model=False, session=str(tmp_path / "s"))
    seen = []
    monkeypatch.setattr(app, "notify", lambda message, **kw: seen.append((message, kw.get("severity"))))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("escape", "3", "p")
        await pilot.pause()
        assert app.session.items("mirror") == []
        assert ("nothing to pin yet: open a run and show the hijack mirror", "warning") in seen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_mirror_snapshot(snap_compare, tiny_run, monkeypatch, tmp_path, size):
    monkeypatch.setattr("lca_tui.app.memory_in_use", lambda: "100 MiB")  # the status bar is live
    app = LcaApp(load_model=False, session=str(tmp_path / "snap-session"))

    async def run_before(pilot):
        await _mirror(pilot, tiny_run)
        await pilot.pause(0.6)                                 # the curve redraws at 4 Hz

    assert snap_compare(app, terminal_size=size, run_before=run_before)
