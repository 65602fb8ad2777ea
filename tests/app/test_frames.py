"""Issue 22, one frame per answer (lca_tui/frames.py): while a fast probe is in flight the screen
holds its frames, so the typed character and the answer's bars reach the terminal in one frame; a
slow probe never holds the echo, and a hold ends at its deadline whatever the model does."""

from __future__ import annotations

from app_helpers import hijack_ready, wait_for

from lca_tui.app import LcaApp
from lca_tui.frames import HOLD_S, FrameHold


def _spy_frames(app, panel):
    """Record, for every frame the main screen renders, (the editor's text, the prompt of the answer shown)."""
    screen = app.screen
    frames = []
    real = screen._compositor_refresh

    def spy():
        shown = panel.last_result.prompt if panel.last_result is not None else None
        frames.append((panel.prompt_text(), shown))
        return real()

    screen._compositor_refresh = spy
    return frames


async def _typed(pilot, app, key):
    p = app.query_one("#hijack")
    await pilot.press(key)
    await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq and p.last_result.prompt == p.prompt_text())
    await pilot.pause(0.05)


async def test_a_fast_probe_draws_the_echo_and_the_bars_in_one_frame(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        p = await hijack_ready(pilot, app)
        assert p.probe_s is not None and p.probe_s <= HOLD_S, f"the tiny model's probe took {p.probe_s:.3f} s"
        app.query_one("#prompt").focus()
        await pilot.press("end")
        await pilot.pause(0.3)  # past the model thread's debounce: the next probe starts at once
        frames = _spy_frames(app, p)
        holds = app.frames.holds
        await _typed(pilot, app, "x")
        assert app.frames.holds == holds + 1 and not app.frames.active
        typed = [f for f in frames if f[0].endswith("x")]
        assert typed, "no frame showed the typed character"
        assert all(text == shown for text, shown in typed), "a frame showed the echo before its answer"


async def test_a_slow_probe_does_not_hold_the_echo(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        p = await hijack_ready(pilot, app)
        app.query_one("#prompt").focus()
        await pilot.press("end")
        await pilot.pause(0.3)
        p.probe_s = 2 * HOLD_S  # the last answer took longer than a hold may last
        holds = app.frames.holds
        await _typed(pilot, app, "y")
        assert app.frames.holds == holds


async def test_a_hold_ends_at_its_deadline_and_the_frame_comes():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        p = app.query_one("#hijack")
        frames = _spy_frames(app, p)
        hold = FrameHold(app, limit=0.1)
        hold.hold()
        hold.hold()  # a second hold keeps the first one's deadline
        assert hold.active and hold.holds == 1
        app.query_one("#probe-info").update("changed while held")
        await pilot.pause(0.05)
        assert frames == []  # held: nothing drawn
        await wait_for(pilot, lambda: frames, timeout=2.0)
        assert not hold.active and hold.expired == 1 and app._batch_count == 0
        hold.release()  # after the deadline: a no-op
        assert app._batch_count == 0
