"""The app records into the session: efficacy curves, sweeps, pinned probes; ctrl+r writes a
self-contained HTML report that shows them, user text escaped."""

from app_helpers import wait_for

from lca_tui.app import LcaApp


async def _loaded(pilot, app):
    await wait_for(pilot, lambda: app.model_info is not None or app.model_error is not None, timeout=120)
    assert app.model_error is None, app.model_error
    p = app.query_one("#hijack")
    await wait_for(pilot, lambda: p.last_request is not None and p.shown_seq == p.last_request.seq)
    return p


async def test_sweep_pin_and_report(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        p = await _loaded(pilot, app)
        editor = app.query_one("#prompt")
        editor.text = "<script>alert(1)</script> The Eiffel Tower is in"
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq and "<script>" in p.last_result.prompt)
        await pilot.press("escape", "p")
        await wait_for(pilot, lambda: len(app.session.items("probe")) == 1)
        pinned = app.session.items("probe")[0]
        await pilot.press("w")
        await wait_for(pilot, lambda: p.sweep_result is not None, 120)
        await wait_for(pilot, lambda: len(app.session.items("sweep")) == 1)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.last_report is not None, 60)
        html = app.last_report.read_text()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
        assert "http://" not in html and "https://" not in html
        assert "<svg" in html
        assert pinned is not None
