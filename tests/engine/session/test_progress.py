"""A run's progress from its metrics.jsonl (last step, best eval accuracy): missing, empty and torn
files, appends read incrementally, rewritten files read afresh; the run listing and the report use
it over a state.json that lags (written only at checkpoints)."""

from __future__ import annotations

import json
import os
import time

import pytest

from engine.session.store import MetricsProgress, Session, metrics_progress
from engine.session.store import progress as progress_mod


def _line(event, step, **kw) -> str:
    return json.dumps({"event": event, "step": step, **kw}) + "\n"


def _train(step) -> str:
    return _line("train", step, loss=1.0, accuracy=0.5, samples_per_s=100.0)


def _eval(step, acc, bayes=0.9) -> str:
    return _line("eval", step, loss=1.0, accuracy=acc, bayes_accuracy=bayes)


def test_missing_and_empty_files_have_no_progress(tmp_path):
    assert metrics_progress(tmp_path / "nothing.jsonl") == MetricsProgress()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert metrics_progress(empty) == MetricsProgress(None, None, None)
    empty.write_text("\n\n")
    assert metrics_progress(empty) == MetricsProgress()
    empty.unlink()
    assert metrics_progress(empty) == MetricsProgress()  # deleted after a read: nothing cached


def test_a_torn_last_line_waits_for_its_newline(tmp_path):
    p = tmp_path / "metrics.jsonl"
    whole = _train(1) + _eval(1, 0.25) + _train(2)
    torn = _eval(2, 0.75)
    p.write_text(whole + torn[:20])  # a trainer mid-append (or killed there)
    assert metrics_progress(p) == MetricsProgress(2, 0.25, 0.9)
    with open(p, "a") as fh:
        fh.write(torn[20:])  # the line is whole now
    assert metrics_progress(p) == MetricsProgress(2, 0.75, 0.9)
    assert metrics_progress(tmp_path / "metrics.jsonl") == MetricsProgress(2, 0.75, 0.9)  # cached


def test_damaged_lines_and_other_events_are_skipped(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_bytes((_train(1) + "{oops\n" + "[1, 2]\n" + _eval(2, 0.5, 0.8)).encode()
                  + b"\xff\xfe\n" + _line("eval", 3, accuracy=float("nan"), bayes_accuracy=None).encode()
                  + _line("diverged", 9, loss=float("inf")).encode()  # names the step that failed
                  + _line("train", True).encode())
    assert metrics_progress(p) == MetricsProgress(3, 0.5, 0.8)


def test_appends_are_read_incrementally(tmp_path, monkeypatch):
    """Thousands of lines: a second call after an append folds only the appended bytes."""
    p = tmp_path / "metrics.jsonl"
    text = "".join(_train(s) + (_eval(s, s / 10_000) if s % 100 == 0 else "") for s in range(1, 5001))
    p.write_text(text)
    folded = []
    real = progress_mod._fold
    monkeypatch.setattr(progress_mod, "_fold", lambda prog, data: folded.append(len(data)) or real(prog, data))
    assert metrics_progress(p) == MetricsProgress(5000, 0.5, 0.9)
    assert folded == [len(text.encode())]
    assert metrics_progress(p) == MetricsProgress(5000, 0.5, 0.9) and len(folded) == 1  # unchanged: cached
    new = _train(5001) + _eval(5001, 0.125)
    with open(p, "a") as fh:
        fh.write(new)
    assert metrics_progress(p) == MetricsProgress(5001, 0.5, 0.9)
    assert folded[1:] == [len(new.encode())]


def test_a_cropped_or_rewritten_file_is_read_afresh(tmp_path):
    from engine.lca.config import RunConfig
    from engine.lca.rundir import RunDir

    rd = RunDir.create(tmp_path / "run", RunConfig.from_flat(dict(m=3, L=8, d=8, steps=50)))
    for s in range(1, 21):
        rd.append({"event": "train", "step": s, "loss": 1.0, "accuracy": 0.5, "samples_per_s": 1.0})
        if s % 5 == 0:
            rd.append({"event": "eval", "step": s, "loss": 1.0, "accuracy": s / 20, "bayes_accuracy": 0.9})
    rd.close()
    p = rd.path / "metrics.jsonl"
    assert metrics_progress(p) == MetricsProgress(20, 1.0, 0.9)
    rd.crop_metrics(10)  # a resume from step 10: replaced atomically
    assert metrics_progress(p) == MetricsProgress(10, 0.5, 0.9)
    # rewritten in place (same file, longer): the bytes read before changed, so all is read again
    with open(p, "r+") as fh:
        fh.write(_train(3) + _eval(3, 0.125) + _train(4) * 20)
        fh.truncate()
    assert metrics_progress(p) == MetricsProgress(4, 0.125, 0.9)
    # rewritten in place with the same size: the mtime tells
    size = p.stat().st_size
    text = (_train(7) + _eval(7, 0.375) + _train(8) * 19).encode()
    text = text + b" " * (size - len(text) - 1) + b"\n"
    assert len(text) == size
    with open(p, "r+b") as fh:
        fh.write(text)
    later = time.time() + 5
    os.utime(p, (later, later))
    assert metrics_progress(p) == MetricsProgress(8, 0.375, 0.9)


# ------------------------------------------------------------------------ the listing and report
def _interrupted_run(path, dead_pid, steps=50, ckpt=6, metrics_to=15):
    """A run killed at step ``metrics_to``: its checkpoint holds step ``ckpt`` and its state.json
    still says step 0 with no best (the state the trainer writes when it starts)."""
    import torch
    from safetensors.torch import save

    from engine.atomic import atomic_write_json
    from engine.lca.config import RunConfig
    from engine.lca.rundir import RunDir

    rd = RunDir.create(path, RunConfig.from_flat(dict(m=3, L=8, d=8, d_a=8, steps=steps, eval_every=5)))
    for s in range(1, metrics_to + 1):
        rd.append({"event": "train", "step": s, "loss": 1.0, "accuracy": 0.5, "samples_per_s": 1.0})
        if s % 5 == 0:
            rd.append({"event": "eval", "step": s, "loss": 1.0, "accuracy": 0.8 + s / 1000,
                       "bayes_accuracy": 0.95})
    rd.close()
    with open(path / "metrics.jsonl", "a") as fh:
        fh.write('{"event": "train", "step": ')  # killed mid-append
    blob = save({"model.W_E": torch.zeros(8, 8)}, metadata={"step": str(ckpt), "status": "running"})
    (path / "checkpoint.safetensors").write_bytes(blob)
    atomic_write_json(path / "state.json", {"status": "running", "step": 0, "pid": dead_pid,
                                            "updated": time.time()})
    return path


def test_the_listing_reads_the_metrics_over_a_lagging_state(tmp_path, dead_pid):
    s = Session.open(tmp_path / "s")
    _interrupted_run(s.path / "runs" / "r", dead_pid)
    (r,) = s.runs()
    assert r.status == "interrupted" and r.has_checkpoint
    assert (r.step, r.steps, r.checkpoint_step) == (15, 50, 6)
    assert r.best_accuracy == pytest.approx(0.815) and r.bayes_accuracy == pytest.approx(0.95)
    assert r.resumable


def test_resumable_goes_by_the_checkpoint_step(tmp_path, dead_pid):
    """Metrics that reach the configured steps with a checkpoint short of them: a resume still has
    steps to train. A checkpoint at the end has none."""
    s = Session.open(tmp_path / "s")
    _interrupted_run(s.path / "runs" / "a-short", dead_pid, steps=20, ckpt=10, metrics_to=20)
    _interrupted_run(s.path / "runs" / "b-end", dead_pid, steps=20, ckpt=20, metrics_to=20)
    runs = {r.id: r for r in s.runs()}
    assert runs["a-short"].step == 20 and runs["a-short"].resumable
    assert runs["b-end"].step == 20 and not runs["b-end"].resumable


def test_a_state_ahead_of_the_metrics_still_counts(tmp_path, fake_run):
    """Metrics lost (or never written): the state's step and best stand."""
    s = Session.open(tmp_path / "s")
    path = fake_run(s.path / "runs" / "r", steps=20, done_steps=20, with_checkpoint=True)
    (path / "metrics.jsonl").unlink()
    (r,) = s.runs()
    assert (r.step, r.checkpoint_step) == (20, 20) and r.best_accuracy == pytest.approx(0.4)


def test_the_report_says_where_a_resume_starts(tmp_path, dead_pid):
    from engine.session.report import build_report
    from engine.session.report.document import Paragraph

    s = Session.open(tmp_path / "s")
    _interrupted_run(s.path / "runs" / "r", dead_pid)
    runs = build_report(s).section("runs")
    (row,) = runs.blocks[0].parts[0].rows
    assert row[3] == "15 / 50" and row[4] == pytest.approx(0.815)
    first = next(p for p in runs.blocks[1].parts if isinstance(p, Paragraph))
    assert "status interrupted, step 15 / 50 (resume from step 6)." in first.text
