"""Issue 22: while a keystroke's probe runs the UI stays quiet, so the probe keeps the cores: no
widget animates or polls on an idle screen, the record line is not repainted per key, and the
status bar waits while a probe is in flight."""

from __future__ import annotations

from app_helpers import hijack_ready as _loaded
from app_helpers import wait_for

from lca_tui.app import LcaApp
from widgets import LiveCurve


async def test_an_idle_screen_keeps_no_animation_or_redraw_timer(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        await pilot.pause(0.4)  # every armed redraw has run
        animated = [w for w in app.screen.query("*") if w.auto_refresh]
        assert animated == []  # e.g. an indeterminate ProgressBar redraws at 15 Hz even when hidden
        curves = list(app.screen.query(LiveCurve))
        assert curves and all(c._timer is None for c in curves)
        curve = curves[0]
        curve.append("x", 0, 1.0)  # a change arms one redraw, which then runs and disarms
        assert curve._timer is not None
        await wait_for(pilot, lambda: curve._timer is None and not curve._dirty)


async def test_a_keystroke_does_not_repaint_the_record_line(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        p = await _loaded(pilot, app)
        before = p._shown["toolbar"]
        assert "target ahead" in before  # the answer's mark is shown
        seen = []
        bar = app.query_one("#hijack-toolbar")
        original = bar.update
        bar.update = lambda *a, **k: (seen.append(a), original(*a, **k))
        app.query_one("#prompt").focus()
        await pilot.press("end", "x")
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq and p.last_request.prompt.endswith("x"))
        assert p._shown["toolbar"] == before or seen  # a changed mark is repainted ...
        assert len(seen) <= 1  # ... once, by the answer; the request keeps the last mark


async def test_the_status_bar_waits_while_a_probe_is_in_flight(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        calls = []
        app.status.set_fields = lambda **kw: calls.append(kw)
        host = app.model_host
        host._probing = True
        app._refresh_status()
        assert calls == []
        host._probing = False
        app._refresh_status()
        assert calls and "memory" in calls[0]
