"""``lca-tui report`` and ``lca-tui sessions``: exit codes, written files, one-line errors."""

from __future__ import annotations

import json
import time

import pytest

from lca_tui.cli import main

CURVE = [{"n": n, "es": n / 4, "p_true": 0.5, "p_false": 0.1 * n, "count": 4} for n in range(5)]


def _fake_run(path):
    from engine.atomic import atomic_write_json
    from engine.lca.config import RunConfig
    from engine.lca.rundir import RunDir

    rd = RunDir.create(path, RunConfig.from_flat(dict(m=3, L=8, d=8, steps=10, eval_every=5, device="cpu")))
    for s in range(1, 11):
        rd.append({"event": "train", "step": s, "loss": 2.0 - 0.05 * s, "accuracy": 0.1, "samples_per_s": 1.0})
        if s % 5 == 0:
            rd.append({"event": "eval", "step": s, "loss": 1.9 - 0.05 * s, "accuracy": 0.3125 + s / 100,
                       "bayes_accuracy": 0.8})
    rd.close()
    atomic_write_json(path / "state.json", {"status": "completed", "step": 10, "best_accuracy": 0.4125,
                                            "bayes_accuracy": 0.8, "updated": time.time()})


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("LCA_TUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data" / "sessions"


@pytest.fixture
def session(root):
    from engine.session.store import Session

    s = Session.create(root, "cli demo")
    s.record_hijack({"model": "tiny", "scheme": "not-think", "records": 4, "curve": CURVE})
    _fake_run(s.runs_dir / "run-1")
    return s


def _one_line_error(err: str):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lca-tui: error: ")
    return lines[0]


def test_report_by_path_writes_html(session, tmp_path, capsys):
    out = tmp_path / "out" / "r.html"
    assert main(["report", str(session.path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(out.resolve())
    h = out.read_text()
    assert "0.4125" in h and "0.7500" in h and "cli demo" in h  # final eval accuracy, ES at n=3


def test_report_by_name_md_and_last_session(session, tmp_path, capsys):
    assert main(["report", "cli demo", "--out", str(tmp_path / "r.md")]) == 0  # format from the suffix
    assert (tmp_path / "r.md").read_text().startswith("# lca-tui session report: cli demo")
    assert len(list((tmp_path / "r_files").iterdir())) == 3
    capsys.readouterr()
    assert main(["report"]) == 0  # the last session, into the current folder
    written = capsys.readouterr().out.strip()
    assert written.endswith("cli-demo-report.html") and (tmp_path / "cli-demo-report.html").exists()
    assert main(["report", session.path.name, "--format", "md", "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x").read_text().startswith("# lca-tui")


def test_report_uses_top_level_session_option(session, tmp_path):
    assert main(["--session", str(session.path), "report", "--out", str(tmp_path / "t.html")]) == 0
    assert (tmp_path / "t.html").exists()


def test_bad_session_exits_2_with_one_line(session, tmp_path, capsys):
    assert main(["report", "no-such-session"]) == 2
    assert "no session 'no-such-session'" in _one_line_error(capsys.readouterr().err)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("x")
    assert main(["report", str(tmp_path / "plain")]) == 2
    assert "not an lca-tui session" in _one_line_error(capsys.readouterr().err)


def test_unwritable_out_exits_2_and_writes_nothing(session, tmp_path, capsys):
    (tmp_path / "blocker").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["report", str(session.path), "--out", str(tmp_path / "blocker" / "r.html")]) == 2
    assert "cannot write" in _one_line_error(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_no_sessions_yet(root, capsys):
    assert main(["report"]) == 2
    assert "no sessions yet" in _one_line_error(capsys.readouterr().err)
    assert main(["sessions"]) == 0
    assert "no sessions" in capsys.readouterr().out


def test_sessions_listing(session, root, capsys):
    from engine.session.store import Session

    time.sleep(0.01)
    other = Session.create(root, "second")
    assert main(["sessions", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["second", "cli demo"]
    assert rows[0]["last"] and rows[0]["path"] == str(other.path)
    assert rows[1]["runs"] == 1 and rows[1]["items"] == 1
    assert main(["sessions"]) == 0
    out = capsys.readouterr().out
    assert "cli demo" in out and "second" in out
