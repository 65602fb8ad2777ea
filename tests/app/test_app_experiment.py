"""Experiments from the palette: run with progress, recorded in the session, shown in a modal."""

from app_helpers import wait_for

from lca_tui.app import LcaApp


async def test_palette_runs_an_experiment_and_records_it(monkeypatch):
    import engine.experiments as ex

    real = ex.run
    monkeypatch.setattr(ex, "run", lambda name, level="quick", **kw: real(name, "tiny", **kw))
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Experiment: theorem1")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.last_experiment is not None, 120)
        r = app.last_experiment
        assert r["name"] == "theorem1" and r["verdict"] == "holds"
        assert [i.data["name"] for i in app.session.items("experiment")] == ["theorem1"]
        await pilot.pause(0.2)
        table = app.screen.query_one("#experiment-rows")
        assert table.row_count == len(r["rows"]) > 0
