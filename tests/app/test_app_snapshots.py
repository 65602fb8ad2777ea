"""SVG snapshots of the hijack and trainer panels at 120 x 40 (no model: deterministic; the
inspector's snapshot lives with its tests). Cursor blink is off in Textual's test driver."""

from lca_tui.app import LcaApp


def _app(monkeypatch, tmp_path):
    monkeypatch.setattr("lca_tui.app.memory_in_use", lambda: "100 MiB")  # the status bar is live
    return LcaApp(load_model=False, session=str(tmp_path / "snap-session"))


def test_hijack_panel_snapshot(snap_compare, monkeypatch, tmp_path):
    async def run_before(pilot):
        await pilot.pause()
        await pilot.press("escape", "plus", "plus")  # n = 2 on the Eiffel Tower record
        await pilot.pause(0.3)

    assert snap_compare(_app(monkeypatch, tmp_path), terminal_size=(120, 40), run_before=run_before)


def test_trainer_panel_snapshot(snap_compare, monkeypatch, tmp_path):
    async def run_before(pilot):
        await pilot.pause()
        await pilot.press("escape", "2")
        panel = pilot.app.query_one("#trainer")
        panel.set_field("omega", "1.5")  # an invalid value, marked inline
        await pilot.pause(0.3)

    assert snap_compare(_app(monkeypatch, tmp_path), terminal_size=(120, 40), run_before=run_before)
