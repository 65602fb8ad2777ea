"""Session store: layout, round trips, interrupted-run detection, damaged files reported by name."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from engine.errors import UserError
from engine.session import store
from engine.session.store import (
    Session,
    check_safetensors,
    default_sessions_root,
    find_session,
    last_session,
    list_sessions,
    new_id,
)

CURVE = [{"n": n, "es": n / 10, "p_true": 0.5 - n / 30, "p_false": 0.1 + n / 30, "count": 5} for n in range(5)]


def test_default_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LCA_TUI_DATA_DIR", str(tmp_path / "d"))
    assert default_sessions_root() == tmp_path / "d" / "sessions"
    monkeypatch.delenv("LCA_TUI_DATA_DIR")
    assert default_sessions_root().name == "sessions"
    assert "lca-tui" in str(default_sessions_root())


def test_ids_sort_by_time_and_are_unique():
    ids = []
    for _ in range(5):
        ids.append(new_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert len({new_id() for _ in range(200)}) == 200


def test_create_open_list_last(sessions_root):
    a = Session.create(name="First <exp>")
    assert a.path.parent == sessions_root and a.path.name == "first-exp"
    meta = json.loads((a.path / "session.json").read_text())
    assert meta["name"] == "First <exp>" and meta["notes"] == "" and meta["created"] <= meta["updated"]
    a.set_notes("hello")
    time.sleep(0.01)
    b = Session.create(sessions_root)  # unnamed: the folder is a time-sortable id
    assert b.name == b.path.name and b.path.name[:8].isdigit()
    again = Session.create(sessions_root, "First <exp>")  # same name: a new folder, not a clash
    assert again.path != a.path and again.path.name.startswith("first-exp-")

    reopened = Session.open(a.path)
    assert (reopened.name, reopened.notes, reopened.problems) == ("First <exp>", "hello", [])
    infos = list_sessions(sessions_root)
    assert [i.path for i in infos] == [again.path, b.path, a.path]
    assert last_session(sessions_root) == again.path
    assert a.mark_used(sessions_root)
    assert last_session(sessions_root) == a.path

    # a damaged last.json falls back to the most recently active session
    (sessions_root / "last.json").write_text("{oops")
    assert last_session(sessions_root) == again.path
    assert last_session(sessions_root / "nothing-here") is None

    # look-ups by folder, by name, by path; unknown and ambiguous names are clear errors
    assert find_session(b.path.name, sessions_root) == b.path
    assert find_session(str(a.path), sessions_root) == a.path
    with pytest.raises(UserError, match="2 sessions are named"):
        find_session("First <exp>", sessions_root)
    with pytest.raises(UserError, match="no session 'nope'"):
        find_session("nope", sessions_root)


def test_open_refuses_non_sessions(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        Session.open(tmp_path / "file.txt")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an lca-tui session"):
        Session.open(tmp_path / "other")
    with pytest.raises(UserError, match="no session at"):
        Session.open(tmp_path / "missing", create=False)
    s = Session.open(tmp_path / "fresh")  # missing + create: a new session
    assert (tmp_path / "fresh" / "session.json").exists() and s.name == "fresh"


def test_records_round_trip(tmp_path):
    s = Session.open(tmp_path / "s")
    p_h = s.record_hijack({"model": "smol", "scheme": "not-think", "records": 5, "curve": CURVE,
                           "dataset": "builtin", "relation": "P190", "extra": float("nan")})
    p_s = s.record_sweep({"model": "smol", "scheme": "relation", "record": {"subject": "Lyon"},
                          "points": [{"n": 0, "p_true": 0.5, "p_false": 0.1}]})
    p_p = s.pin_probe({"model": "smol", "prompt": "The Eiffel Tower is in",
                       "top_k": [{"token": " Paris", "prob": 0.4}], "targets": []})
    p_e = s.record_experiment({"name": "W_V frozen", "title": "Trained vs frozen W_V",
                               "rows": [{"L": 64, "acc": 0.9}], "curves": {"a": {"x": [1], "y": [2]}}})
    assert p_h.parent.name == "hijack" and p_s.parent.name == "sweeps" and p_p.parent.name == "pins"
    assert p_e.parent.name == "experiments" and p_e.name.startswith("w_v-frozen-")
    assert not list(s.path.rglob("*.tmp"))

    s2 = Session.open(s.path)
    (h,) = s2.items("hijack")
    assert h.kind == "efficacy" and h.data["kind"] == "efficacy" and h.data["metric"] == "efficacy"
    assert h.data["curve"] == CURVE and h.data["relation"] == "P190"
    assert h.data["extra"] is None  # NaN stored as null: the files stay strict JSON
    assert [i.kind for i in s2.items("sweeps")] == ["sweep"]
    assert s2.items("pins")[0].data["prompt"] == "The Eiffel Tower is in"
    assert s2.items("probe")[0].data["kind"] == "probe"
    assert s2.items("experiment")[0].data["rows"] == [{"L": 64, "acc": 0.9}]
    for _ in range(3):
        s2.record_hijack({"curve": CURVE, "model": "m", "scheme": "relation"})
    items = s2.items("efficacy")
    assert len(items) == 4 and [i.id for i in items] == sorted(i.id for i in items)
    assert s2.problems == []

    with pytest.raises(UserError):
        s2.items("bogus")
    with pytest.raises(UserError, match="curve"):
        s2.record_hijack({"model": "m"})
    with pytest.raises(UserError, match="name"):
        s2.record_experiment({"rows": []})


def test_efficacy_result_object_is_recorded(tmp_path):
    from engine.hijack.efficacy import CurvePoint, EfficacyResult

    res = EfficacyResult(model="smol", scheme="not-think", metric="efficacy", scoring="whole", max_prepends=2,
                         n_records=3, curve=(CurvePoint(0, 0.0, 0.6, 0.1, 3), CurvePoint(2, 2 / 3, 0.2, 0.3, 3)),
                         records=())
    s = Session.open(tmp_path / "s")
    s.record_hijack(res)
    (it,) = s.items("efficacy")
    assert it.data["curve"][1] == {"n": 2, "es": 2 / 3, "p_true": 0.2, "p_false": 0.3, "count": 3}
    assert it.data["records"] == 3 and it.data["scoring"] == "whole"


def test_runs_listing(tmp_path, fake_run):
    s = Session.open(tmp_path / "s")
    from engine.lca.config import RunConfig

    cfg = RunConfig.from_flat(dict(m=3, L=8, d=8, steps=20))
    path = s.new_run_dir(cfg)
    assert path.parent == s.path / "runs" and not path.exists() and "-m3-L8-" in path.name
    fake_run(path, steps=20, with_checkpoint=True)
    (r,) = Session.open(s.path).runs()
    assert (r.id, r.status, r.step, r.steps) == (path.name, "completed", 20, 20)
    assert r.summary == cfg.summary() and r.has_checkpoint and r.bayes_accuracy == 0.75
    assert r.best_accuracy == pytest.approx(0.4) and not r.resumable
    assert s.run(path.name).id == path.name
    assert len(s.metrics(path.name)) == 24
    with pytest.raises(UserError, match="no run"):
        s.run_path("../s")


def test_interrupted_when_pid_is_dead(tmp_path, dead_pid, fake_run):
    s = Session.open(tmp_path / "s")
    fake_run(s.path / "runs" / "a-dead", steps=50, done_steps=20, status="running", pid=dead_pid,
                   with_checkpoint=True)
    fake_run(s.path / "runs" / "b-alive", steps=50, done_steps=20, status="running", pid=os.getpid())
    fake_run(s.path / "runs" / "c-paused-dead", steps=50, done_steps=20, status="paused", pid=dead_pid)
    fake_run(s.path / "runs" / "d-done", steps=20, status="completed", pid=dead_pid)
    runs = {r.id: r for r in Session.open(s.path).runs()}
    assert runs["a-dead"].status == "interrupted" and runs["a-dead"].resumable
    assert runs["b-alive"].status == "running"
    assert runs["c-paused-dead"].status == "interrupted"
    assert runs["d-done"].status == "completed"


def test_reused_pid_counts_as_dead(tmp_path, fake_run):
    """A live pid that started after the state was written belongs to another process."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.1)
        s = Session.open(tmp_path / "s")
        fake_run(s.path / "runs" / "old", steps=50, done_steps=5, status="running", pid=proc.pid,
                       state_updated=time.time() - 3600)
        fake_run(s.path / "runs" / "new", steps=50, done_steps=5, status="running", pid=proc.pid)
        runs = {r.id: r.status for r in s.runs()}
        assert runs == {"old": "interrupted", "new": "running"}
        proc.kill()
        proc.wait()  # reaped: gone
        assert {r.id: r.status for r in s.runs()}["new"] == "interrupted"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_without_pid_a_stale_run_is_interrupted(tmp_path, fake_run):
    """A running state without a pid (hand-written, older versions) is alive while its files change."""
    s = Session.open(tmp_path / "s", stale_after=60)
    path = fake_run(s.path / "runs" / "r", steps=50, done_steps=5, status="running")
    assert s.runs()[0].status == "running"
    old = time.time() - 600
    for f in path.iterdir():
        os.utime(f, (old, old))
    state = json.loads((path / "state.json").read_text())
    (path / "state.json").write_text(json.dumps({**state, "updated": old}))
    os.utime(path / "state.json", (old, old))
    assert s.runs()[0].status == "interrupted"


def test_pid_alive_by_psutil(dead_pid):
    """The liveness rule itself: live, dead, reused (younger than the state), nonsense pids."""
    now = time.time()
    assert store.pid_alive(os.getpid(), now)
    assert not store.pid_alive(dead_pid) and not store.pid_alive(dead_pid, now)
    assert store.pid_alive(1) or sys.platform == "win32"  # init/launchd exists (maybe as another user)
    assert not store.pid_alive(1, since=0.0)  # started long after 1970: a reused pid
    for bad in (0, -3, True, "12", None, 1.5):
        assert not store.pid_alive(bad)


def test_damaged_files_are_named_and_the_rest_opens(tmp_path, fake_run):
    s = Session.open(tmp_path / "s")
    good = fake_run(s.path / "runs" / "good", steps=10, with_checkpoint=True)
    bad = fake_run(s.path / "runs" / "bad", steps=10, with_checkpoint=True)
    blob = (bad / "checkpoint.safetensors").read_bytes()
    (bad / "checkpoint.safetensors").write_bytes(blob[: len(blob) // 2])  # torn checkpoint
    s.record_hijack({"model": "m", "scheme": "not-think", "curve": CURVE})
    broken = s.record_hijack({"model": "m", "scheme": "relation", "curve": CURVE})
    broken.write_text('{"kind": "efficacy", "curve": [')
    s.pin_probe({"model": "m", "prompt": "p"})
    (s.path / "sweeps").mkdir()
    (s.path / "sweeps" / "list.json").write_text("[1, 2]")  # valid JSON, wrong shape

    s2 = Session.open(s.path)
    assert any(f"hijack/{broken.name}" in p for p in s2.problems)
    assert any("runs/bad/checkpoint.safetensors" in p and "damaged" in p for p in s2.problems)
    assert any("sweeps/list.json" in p for p in s2.problems)
    assert len(s2.problems) == 3
    assert [i.data["scheme"] for i in s2.items("efficacy")] == ["not-think"]
    assert len(s2.items("probe")) == 1
    runs = {r.id: r for r in s2.runs()}
    assert runs["good"].has_checkpoint and runs["good"].problem is None
    assert not runs["bad"].has_checkpoint and "checkpoint" in runs["bad"].problem
    assert runs["bad"].status == "completed" and runs["bad"].step == 10
    assert check_safetensors(good / "checkpoint.safetensors") is None

    # a damaged state.json / config.json: the run is still listed
    (good / "state.json").write_text("garbage")
    (bad / "config.json").write_text("{")
    s3 = Session.open(s.path)
    runs = {r.id: r for r in s3.runs()}
    assert runs["good"].status == "unknown" and runs["bad"].summary == "(no config)"
    assert any("runs/good/state.json" in p for p in s3.problems)
    assert any("runs/bad/config.json" in p for p in s3.problems)


def test_damaged_session_json(tmp_path):
    s = Session.open(tmp_path / "s")
    s.record_hijack({"model": "m", "scheme": "x", "curve": CURVE})
    (s.path / "session.json").write_bytes(b"\xff\xfe not json")
    s2 = Session.open(s.path)
    assert s2.name == "s" and any(p.startswith("session.json") for p in s2.problems)
    assert len(s2.items("efficacy")) == 1
    (info,) = list_sessions(tmp_path)
    assert info.problem and info.name == "s"
    s2.set_notes("repaired")  # the damaged file is kept aside, a sound one written
    assert (s.path / "session.json.damaged").exists()
    assert json.loads((s.path / "session.json").read_text())["notes"] == "repaired"
    assert Session.open(s.path).problems == []


def test_torn_metrics_line_is_counted(tmp_path, fake_run):
    s = Session.open(tmp_path / "s")
    path = fake_run(s.path / "runs" / "r", steps=10)
    with open(path / "metrics.jsonl", "a") as fh:
        fh.write('{"event": "train", "step": 11, "lo')
    assert len(s.metrics("r")) == 12
    assert s.problems == ["runs/r/metrics.jsonl: 1 damaged line skipped"]


def test_open_cli_session(sessions_root, tmp_path, monkeypatch):
    from engine.session.store import open_cli_session

    monkeypatch.chdir(tmp_path)
    first = open_cli_session()  # no sessions yet: a new one, remembered as last
    assert first.path.parent == sessions_root and last_session(sessions_root) == first.path
    assert open_cli_session().path == first.path  # then the last one again
    named = Session.create(sessions_root, "named")
    first.mark_used(sessions_root)
    assert open_cli_session("named").path == named.path  # a session name under the root
    assert last_session(sessions_root) == named.path
    here = open_cli_session("fresh-dir")  # an unknown name: a new folder where the user is
    assert here.path == tmp_path / "fresh-dir" and (here.path / "session.json").exists()
    assert open_cli_session(str(tmp_path / "fresh-dir")).path == here.path


def test_pinned_mirror_round_trip(tmp_path):
    s = Session.open(tmp_path / "s")
    p = s.pin_mirror({"y": 0, "y_tilde": 7, "r": 0.5, "hijacked": {"p_true": 0.2, "p_false": 0.7},
                      "tokens": [{"position": 1, "token": 7, "source": "y~", "to_diff": -1.5}]})
    assert p.parent.name == "mirrors"
    (item,) = Session.open(s.path).items("mirrors")
    assert item.kind == "mirror" and item.data["kind"] == "mirror" and item.data["tokens"][0]["source"] == "y~"
    with pytest.raises(UserError, match="'tokens' and 'hijacked'"):
        s.pin_mirror({"y": 0, "tokens": []})
