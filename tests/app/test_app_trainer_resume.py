"""A session reopened after a crash: its interrupted run shows what its metrics reached (not its
lagging state.json) and where a resume starts, and F5 offers to resume it (r) or start anew (n)."""

import json
import subprocess
import sys
import time

from app_helpers import wait_for

from lca_tui.app import LcaApp

TINY = dict(m=3, L=8, d=8, d_a=8, batch_size=32, eval_size=128, steps=60, eval_every=10, device="cpu")
CKPT, REACHED, BEST = 20, 30, 0.8945


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def crashed_run(session_dir, name="20260101-120000-m3-L8-dead", updated=None):
    """A real tiny run checkpointed at step ``CKPT``, whose process then trained on to step
    ``REACHED`` (metrics only, eval accuracy up to ``BEST``; loss 99 marks those lines) and died:
    state.json still says step 0, running, no best, as the trainer writes it when it starts."""
    from engine.atomic import atomic_write_json
    from engine.lca.config import RunConfig
    from engine.lca.runner import TrainingRun
    from engine.session.store import open_cli_session

    open_cli_session(str(session_dir))
    run = TrainingRun.start(RunConfig.from_flat(TINY), session_dir / "runs" / name, device="cpu")
    for ev in run.events():
        if ev["event"] == "train" and ev["step"] == CKPT:
            run.trainer.stop()  # the final checkpoint holds step CKPT
    with open(run.path / "metrics.jsonl", "a") as fh:
        for s in range(CKPT + 1, REACHED + 1):
            fh.write(json.dumps({"event": "train", "step": s, "loss": 99.0, "accuracy": 0.5,
                                 "samples_per_s": 1.0}) + "\n")
            if s % 5 == 0:
                fh.write(json.dumps({"event": "eval", "step": s, "loss": 99.0,
                                     "accuracy": BEST if s == 25 else 0.5, "bayes_accuracy": 0.9}) + "\n")
        fh.write('{"event": "train", "st')  # killed mid-append
    atomic_write_json(run.path / "state.json", {"status": "running", "step": 0, "pid": _dead_pid(),
                                                "updated": updated or time.time()})
    return run.path


async def _open(pilot, app):
    await pilot.pause()
    await pilot.press("escape", "2")
    await pilot.pause()
    return app.query_one("#trainer")


def _capture_starts(monkeypatch):
    """Replace the training worker: (run_id, resume, cfg) of each launch, nothing trained."""
    from lca_tui.panels.trainer import TrainerPanel

    started = []
    monkeypatch.setattr(TrainerPanel, "_train",
                        lambda self, run_id, path, resume, cfg, share=1: started.append((run_id, resume, cfg)))
    return started


async def test_the_table_shows_what_the_metrics_reached_and_where_a_resume_starts(tmp_path):
    from textual.widgets import DataTable

    session = tmp_path / "s"
    path = crashed_run(session)
    app = LcaApp(load_model=False, session=str(session))
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        st = tp.runs[path.name]
        assert (st.status, st.step, st.resume_from) == ("interrupted", REACHED, CKPT) and st.resumable
        t = app.query_one("#runs-table", DataTable)
        row = dict(zip([c.value for c in t.columns], t.get_row_at(0)))
        assert row["step"] == f"{REACHED}/60" and row["best"] == "0.894"
        assert row["status"] == f"interrupted\nresume {CKPT}"
        tp.selected = path.name
        tp._redraw()
        assert f"step {REACHED}/60 · resumable from step {CKPT}" in str(app.query_one("#trainer-stats").render())
    for size in ((80, 24), (120, 40)):  # the narrow table shows the second line too; nothing is cut
        app = LcaApp(load_model=False, session=str(session))
        async with app.run_test(size=size) as pilot:
            await _open(pilot, app)
            t = app.query_one("#runs-table", DataTable)
            keys = [c.value for c in t.columns]
            assert t.get_row_at(0)[keys.index("status")] == f"interrupted\nresume {CKPT}"
            assert t.rows[path.name].height >= 2 and t.virtual_size.width <= t.size.width, size


async def test_f5_offers_the_resume_and_r_resumes_from_the_checkpoint(tmp_path):
    from lca_tui.screens.resume import ResumeScreen

    session = tmp_path / "s"
    path = crashed_run(session)
    app = LcaApp(load_model=False, session=str(session))
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        tp.query_one("#f-m").focus()  # the form has focus, not the run's row
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(app.screen, ResumeScreen)
        text = str(app.screen.query_one("#resume-choices").render())
        assert f"Resume {path.name} from step {CKPT}" in text and "Start a new run" in text
        await pilot.press("r")
        await wait_for(pilot, lambda: tp.runs[path.name].status == "completed", 60)
        assert not isinstance(app.screen, ResumeScreen)
        assert list(tp.runs) == [path.name] and tp.selected == path.name  # no new run
        st = tp.runs[path.name]
        assert st.step == 60 and not st.resumable
    recs = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in recs if r["event"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 61))  # resumed at CKPT: continuous
    assert all(r["loss"] != 99.0 for r in recs)  # the steps past the checkpoint were trained again
    assert json.loads((path / "state.json").read_text())["status"] == "completed"


async def test_f5_n_starts_a_new_run_and_escape_does_nothing(tmp_path, monkeypatch):
    from engine.lca.config import recipe_config
    from lca_tui.screens.resume import ResumeScreen

    session = tmp_path / "s"
    path = crashed_run(session)
    started = _capture_starts(monkeypatch)
    app = LcaApp(load_model=False, session=str(session))
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        tp.query_one("#f-m").focus()
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(app.screen, ResumeScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ResumeScreen) and started == []
        await pilot.press("f5")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ResumeScreen)
        ((run_id, resume, cfg),) = started
        assert run_id != path.name and not resume and cfg == recipe_config({})
        assert tp.selected == run_id and tp.runs[path.name].resumable  # still there to resume


async def test_f5_on_the_selected_row_resumes_it_and_the_newest_is_offered(tmp_path, monkeypatch):
    """With the runs table focused on a resumable row F5 resumes that row at once; from the form F5
    offers the resumable run whose state was written last."""
    from lca_tui.screens.resume import ResumeScreen

    session = tmp_path / "s"
    old = crashed_run(session, "20260101-120000-m3-L8-aaaa", updated=time.time() - 600)
    new = crashed_run(session, "20260101-110000-m3-L8-bbbb", updated=time.time())  # sorts first, written last
    started = _capture_starts(monkeypatch)
    app = LcaApp(load_model=False, session=str(session))
    async with app.run_test(size=(120, 40)) as pilot:
        tp = await _open(pilot, app)
        tp.query_one("#f-m").focus()
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(app.screen, ResumeScreen) and app.screen.run_id == new.name
        await pilot.press("escape")
        await pilot.pause()
        table = app.query_one("#runs-table")
        table.focus()
        table.move_cursor(row=list(tp.runs).index(old.name))
        await pilot.pause()
        assert tp.selected == old.name
        await pilot.press("f5")
        await pilot.pause()
        assert not isinstance(app.screen, ResumeScreen)
        assert started == [(old.name, True, None)]
