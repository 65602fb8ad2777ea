"""``lca-tui experiment`` over the job store (issue 21): killed with SIGKILL and run again, it says how
many jobs it took from the store and ends with the rows and verdict of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.jobstore import JobStore

ROOT = Path(__file__).resolve().parents[2]


def _cmd(*args):
    return [sys.executable, "-m", "lca_tui", "experiment", "value-matrix", "--tiny", "--seeds", "3", "--json",
            "--no-save", *args]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _comparable(data):
    return {k: data[k] for k in ("rows", "curves", "verdict", "reasons", "effects")}


@pytest.mark.slow
def test_value_matrix_killed_and_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path):
    plain = subprocess.run(_cmd("--store", "none"), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr[-2000:]
    whole = json.loads(plain.stdout)
    assert "took" not in plain.stderr

    root = tmp_path / "store"
    store = JobStore(root)
    proc = subprocess.Popen(_cmd("--store", str(root)), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(store) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = len(store)
    assert 3 <= kept < 12, "the run was not killed midway"

    again = subprocess.run(_cmd("--store", str(root)), cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    data = json.loads(again.stdout)
    assert data["resumed_jobs"] == kept
    assert f"took {kept} of 12 jobs from the store {root} (ran {12 - kept})" in again.stderr
    assert _comparable(data) == _comparable(whole)


@pytest.mark.slow
def test_a_damaged_entry_is_named_on_stderr_and_rerun(tmp_path):
    root = tmp_path / "store"
    first = subprocess.run(_cmd("--store", str(root)), cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    entry = sorted(root.glob("??/*.json"))[0]
    entry.write_text(entry.read_text()[:30])
    again = subprocess.run(_cmd("--store", str(root), "--jobs", "2"), cwd=ROOT, env=_env(), capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"store entry {entry} is damaged" in again.stderr
    assert json.loads(again.stdout)["resumed_jobs"] == 11
    assert _comparable(json.loads(again.stdout)) == _comparable(json.loads(first.stdout))


def test_bad_sweep_flags_are_one_clear_line(tmp_path):
    for extra, words in ((["--gpus", "0,x"], "--gpus takes"), (["--executor", "slurm", "--store", "none"],
                                                                 "needs a job store")):
        proc = subprocess.run(_cmd(*extra), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert words in proc.stderr and proc.stderr.count("\n") == 1


def test_hijack_streams_to_the_store_and_resumes(capsys, tiny_lm_dir, tmp_path):
    from lca_tui.cli import main

    argv = ["hijack", "--model", str(tiny_lm_dir), "--scheme", "not-think", "--max-prepends", "2", "--limit", "3",
            "--json", "--store", str(tmp_path)]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "from the store" not in first.err
    assert len(JobStore(tmp_path)) == 1
    assert main(argv) == 0
    again = capsys.readouterr()
    assert f"took 1 chunks of records from the store {tmp_path}" in again.err
    assert json.loads(again.out) == json.loads(first.out)
    assert main(argv[:-2] + ["--store", "none"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(first.out)


def test_hijack_max_prepends_beyond_the_window_is_one_line(capsys, tiny_lm_dir, tmp_path):
    from lca_tui.cli import main

    rc = main(["hijack", "--model", str(tiny_lm_dir), "--scheme", "not-think", "--max-prepends", "100000",
               "--limit", "1", "--store", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    line = [ln for ln in err.splitlines() if ln.startswith("lca-tui: error:")]
    assert len(line) == 1 and "window" in line[0] and "at most" in line[0]
    assert len(JobStore(tmp_path)) == 0


def test_parse_gpus(monkeypatch):
    from engine.errors import UserError
    from lca_tui.commands.sweep_options import parse_gpus

    assert parse_gpus(None) == () and parse_gpus("0,1") == ("0", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert parse_gpus("all") == ("3", "5")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    for bad in ("all", "0,0", "x", ""):
        with pytest.raises(UserError):
            parse_gpus(bad)
