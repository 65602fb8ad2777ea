"""The trainer panel driven by the keyboard: inline validation, a tiny run that finishes, stop keeps
the checkpoint, pause holds the step, runs land in the session."""

import json

from app_helpers import wait_for

from lca_tui.app import LcaApp

TINY = {"m": "3", "L": "8", "d": "8", "d_a": "8", "batch_size": "32", "eval_size": "128", "device": "cpu"}


async def _open(pilot, app):
    await pilot.pause()
    await pilot.press("escape", "2")
    return app.query_one("#trainer")


async def _start(pilot, tp, steps: str, eval_every: str, running: bool = True):
    """Fill the form with the tiny config, press F5 and (``running``) wait until it has taken 5 steps."""
    for name, value in {**TINY, "steps": steps, "eval_every": eval_every}.items():
        tp.set_field(name, value)
    await pilot.pause()
    await pilot.press("f5")
    if running:
        await wait_for(pilot, lambda: tp._current() is not None and tp._current().step > 5, 60)


async def _type(pilot, panel, name, text):
    box = panel.query_one(f"#f-{name}")
    box.focus()
    box.value = ""
    await pilot.press(*text)


async def test_fill_form_with_keys_and_train_to_completion():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        for name, value in {**TINY, "steps": "60", "eval_every": "20"}.items():
            await _type(pilot, tp, name, value)
        assert tp.config is not None and tp.config.task.m == 3 and tp.config.train.steps == 60
        await pilot.press("f5")
        await wait_for(pilot, lambda: tp._current() is not None and tp._current().status == "completed", 60)
        await pilot.pause(0.5)
        st = tp._current()
        assert st.step == 60 and [e["step"] for e in st.evals] == [20, 40, 60]
        assert 0.0 < st.best <= 1.0 and 0.0 < st.bayes <= 1.0
        acc = app.query_one("#acc-curve")
        assert any(name.endswith("acc") for name in acc.series_names)
        assert acc.hlines["Bayes-optimal"] == st.bayes
        assert app.query_one("#runs-table").row_count == 1
        # the run is in the session on disk, with its metrics and checkpoint
        run = app.session.run(st.run_id)
        assert run.status == "completed" and run.step == 60 and run.has_checkpoint


async def test_invalid_value_marks_its_field_and_disables_start():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        await _type(pilot, tp, "omega", "1.5")
        assert "omega" in tp.errors and tp.query_one("#f-omega").has_class("-invalid")
        assert "[0, 1]" in str(tp.query_one("#e-omega").render())
        assert app.query_one("#start-button").disabled
        await pilot.press("f5")
        assert not tp.runs  # nothing started
        await _type(pilot, tp, "omega", "0.5")
        assert not tp.errors and not app.query_one("#start-button").disabled
        await _type(pilot, tp, "neighborhood", "cluster:9")
        assert "neighborhood" in tp.errors and "empty" in tp.errors["neighborhood"]


async def test_pause_resume_and_stop_keep_a_checkpoint():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        await _start(pilot, tp, "1000000", "50")
        await pilot.press("f6")
        await wait_for(pilot, lambda: tp._current().status == "paused", 30)
        held = tp._current().run.trainer.step
        await pilot.pause(0.5)
        assert tp._current().run.trainer.step == held
        await pilot.press("f6")
        await wait_for(pilot, lambda: tp._current().run.trainer.step > held, 30)
        await pilot.press("f7")
        await wait_for(pilot, lambda: tp._current().status == "stopped", 30)
        st = tp._current()
        state = json.loads((st.path / "state.json").read_text())
        assert state["status"] == "stopped" and state["checkpoint_step"] == st.run.trainer.step
        assert (st.path / "checkpoint.safetensors").exists()


async def test_runs_survive_in_the_session_across_app_restarts():
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        await _start(pilot, tp, "10", "5", running=False)
        await wait_for(pilot, lambda: tp._current() is not None and tp._current().status == "completed", 60)
        run_id = tp._current().run_id
    again = LcaApp(load_model=False)
    async with again.run_test(size=(120, 40)) as pilot:
        tp = again.query_one("#trainer")
        assert run_id in tp.runs and tp.runs[run_id].status == "completed"
        assert [e["step"] for e in tp.runs[run_id].evals] == [5, 10]


async def test_inspect_a_live_run_takes_its_snapshot_on_the_training_thread(monkeypatch):
    """F9 on a running run: the inspector's weights come from Trainer.request_snapshot, answered
    by the training thread between steps (paused here, so they must equal the trainer's now)."""
    import threading

    import torch

    import lca_tui.panels.inspector as insp

    taken = []
    real = insp.live_snapshot

    def spy(trainer):
        out = real(trainer)
        taken.append((threading.current_thread() is threading.main_thread(), out))
        return out

    monkeypatch.setattr(insp, "live_snapshot", spy)
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        await _start(pilot, tp, "1000000", "50")
        await pilot.press("f9")  # while it trains
        panel = app.query_one("#inspector")
        await wait_for(pilot, lambda: panel.report is not None and not panel.busy, 60)
        assert app.query_one("#panels").current == "inspector"
        assert panel.shown_label.endswith("(live)") and panel.shown_step > 0
        on_ui_thread, (cfg, model, step) = taken[-1]
        assert not on_ui_thread and step == panel.shown_step
        trainer = tp._current().run.trainer
        trainer.pause_event.set()
        await wait_for(pilot, lambda: tp._current().status == "paused", 30)
        await pilot.press("r")  # a new snapshot of the paused run: exactly its weights now
        await wait_for(pilot, lambda: len(taken) == 2 and not panel.busy, 60)
        _, (cfg, model, step) = taken[-1]
        assert step == trainer.step == panel.shown_step
        for name, p in trainer.model.named_parameters():
            assert torch.equal(getattr(model, name).detach(), p.detach().cpu()), name
        trainer.stop()
        await wait_for(pilot, lambda: tp._current().status == "stopped", 30)


def _capture_starts(monkeypatch):
    """Replace the training worker: the configs the panel would train, nothing trained."""
    from lca_tui.panels.trainer import TrainerPanel

    started = []
    monkeypatch.setattr(TrainerPanel, "_train", lambda self, run_id, path, resume, cfg, share=1: started.append(cfg))
    return started


async def test_untouched_form_follows_the_recipe_and_starts_recipe_config(monkeypatch):
    from engine.lca.config import recipe_config
    from lca_tui.panels.trainer import TUNING

    started = _capture_starts(monkeypatch)
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        await pilot.pause()
        assert tp.config == recipe_config({}) and not tp.edited  # the form opens on the recipe (m=6, L=64)
        await _type(pilot, tp, "m", "8")
        await _type(pilot, tp, "L", "128")
        await pilot.pause()
        want = recipe_config({"m": 8, "L": 128})
        values = tp.form_values()
        for name in TUNING:
            assert values[name] == str(want.flat()[name]), name
        assert values["d"] == "256" and values["batch_size"] == "1024"  # the m = 8 recipe, not the defaults
        assert "recipe" in str(tp.query_one("#l-lr").render()) and "edited" not in str(tp.query_one("#l-lr").render())
        await pilot.press("f5")
        await pilot.pause()
        assert started == [want]


async def test_an_edited_field_keeps_its_value_and_f4_restores_the_recipe(monkeypatch):
    from engine.lca.config import recipe_config

    started = _capture_starts(monkeypatch)
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        await _type(pilot, tp, "lr", "0.005")
        await _type(pilot, tp, "steps", "200")
        await _type(pilot, tp, "m", "5")
        await pilot.pause()
        assert tp.edited == {"lr", "steps"}
        values = tp.form_values()
        assert values["lr"] == "0.005" and values["steps"] == "200"  # the user's values stay
        assert values["d"] == "64" and values["warmup"] == "20" and values["eval_every"] == "10"  # follow m, steps
        assert "edited" in str(tp.query_one("#l-lr").render())
        assert "F4" in str(tp.query_one("#form-recipe").render())
        await pilot.press("f5")
        await pilot.pause()
        assert started[-1] == recipe_config({"m": 5, "L": 64, "lr": 0.005, "steps": 200})
        await pilot.press("f4")
        await pilot.pause()
        assert not tp.edited and tp.config == recipe_config({"m": 5, "L": 64})
        assert "edited" not in str(tp.query_one("#l-lr").render())


async def test_a_run_loaded_into_the_form_keeps_its_settings(monkeypatch):
    """F8 (restart) fills the form with a run's settings: those off the recipe count as edited."""
    from engine.lca.config import recipe_config

    _capture_starts(monkeypatch)
    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        cfg = recipe_config({"m": 7, "L": 64, "d": 96, "lr": 0.01, "omega": 0.7})
        tp.load_values(cfg.flat())
        await pilot.pause()
        assert tp.config == cfg and tp.edited == {"d", "lr"}  # d_a follows the edited d, as in the recipe
        await _type(pilot, tp, "L", "128")
        await pilot.pause()
        assert tp.config == recipe_config({"m": 7, "L": 128, "d": 96, "lr": 0.01, "omega": 0.7})
