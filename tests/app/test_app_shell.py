"""The shell: panels on 1/2/3, help, palette, themes remembered, keymap rebinding, no model needed."""

import json

from textual.widgets import ContentSwitcher, DataTable

from lca_tui.app import LcaApp


def _current(app):
    return app.query_one("#panels", ContentSwitcher).current


async def test_panels_switch_with_number_keys():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("escape")  # leave the prompt editor, where digits are text
        assert _current(app) == "hijack"
        await pilot.press("2")
        assert _current(app) == "trainer"
        await pilot.press("3")
        assert _current(app) == "inspector"
        await pilot.press("1")
        assert _current(app) == "hijack"


async def test_digits_typed_in_the_editor_are_text_not_panel_switches():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        editor = app.query_one("#prompt")
        assert editor.has_focus
        await pilot.press("end", "2")
        assert _current(app) == "hijack" and editor.text.endswith("2")


async def test_help_lists_every_binding_with_its_id():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        table = app.screen.query_one("#help-table", DataTable)
        ids = {table.get_row_at(i)[3] for i in range(table.row_count)}
        assert {"app.panel.hijack", "app.help", "hijack.n_up", "hijack.evaluate"} <= ids
        await pilot.press("escape")
        assert not app.screen.query("#help-table")


async def test_palette_runs_a_panel_command():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Panel: inspector")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert _current(app) == "inspector"


async def test_theme_cycles_and_is_remembered(tmp_path):
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.theme == "lca-dark"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme == "lca-light"
    saved = json.loads((tmp_path / "config" / "settings.json").read_text())
    assert saved["theme"] == "lca-light"
    again = LcaApp(load_model=False)
    async with again.run_test(size=(120, 40)):
        assert again.theme == "lca-light"


async def test_keymap_file_rebinds_by_id(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "keymap.json").write_text(json.dumps({"app.panel.trainer": "f6"}))
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("escape", "f6")
        assert _current(app) == "trainer"
        await pilot.press("1", "2")  # "2" is no longer bound
        assert _current(app) == "hijack"


async def test_bad_keymap_file_warns_and_app_runs(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "keymap.json").write_text("{not json")
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert any("keymap.json" in p for p in app.startup_problems)
        await pilot.press("escape", "2")
        assert _current(app) == "trainer"


def test_app_module_imports_no_torch():
    import subprocess
    import sys

    code = "import lca_tui.app, sys; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


async def test_tab_strip_names_the_panels_and_follows_keys_and_clicks():
    from textual.widgets import Tabs

    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        tabs = app.query_one("#panel-tabs", Tabs)
        labels = [str(t.label) for t in tabs.query("Tab")]
        assert labels == ["1 Hijack", "2 Trainer", "3 Inspector"]
        assert tabs.active == "tab-hijack"
        await pilot.press("escape", "2")
        assert tabs.active == "tab-trainer" and _current(app) == "trainer"
        await pilot.click("#tab-inspector")
        await pilot.pause()
        assert _current(app) == "inspector" and tabs.active == "tab-inspector"
        await pilot.click("#tab-hijack")
        await pilot.pause()
        assert _current(app) == "hijack"


async def test_alt_digits_switch_panels_from_the_editors():
    """alt+N works where digits are text; a terminal's alt+N (ESC N) reaches Textual as ¡ ™ £ and
    is not typed into the editor."""
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        editor = app.query_one("#prompt")
        text = editor.text
        assert editor.has_focus
        await pilot.press("alt+2")
        assert _current(app) == "trainer"
        app.query_one("#f-m").focus()  # the form's fields are editors too
        await pilot.pause()
        await pilot.press("pound_sign")  # what tmux's M-3 arrives as
        assert _current(app) == "inspector"
        await pilot.press("inverted_exclamation_mark")
        assert _current(app) == "hijack"
        editor.focus()
        await pilot.press("trade_mark_sign")
        assert _current(app) == "trainer" and editor.text == text


async def test_the_first_screen_teaches_how_to_leave_the_editor():
    from lca_tui.screens.help import binding_rows

    app = LcaApp(load_model=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        hint = str(app.query_one("#prompt").border_subtitle)
        assert "esc" in hint and "alt+1/2/3" in hint
        rows = binding_rows(app)
        assert ("app", "alt+2", "Trainer", "app.panel.trainer.alt") in rows


async def test_every_panel_brings_its_palette_commands():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for prefix in ("Panel:", "Hijack:", "Trainer:", "Inspector:", "Report:", "Experiment:"):
            assert any(t.startswith(prefix) for t in titles), prefix
