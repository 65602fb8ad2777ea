"""``lca-tui train``: JSON lines, bad flags exit 2, Ctrl-C leaves a resumable run."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lca_tui.cli import main

TINY = ["--m", "3", "--L", "8", "--d", "8", "--d-a", "8", "--batch-size", "32", "--eval-size", "128",
        "--device", "cpu"]


def test_json_lines_shape(tmp_path, capsys):
    rc = main(["train", *TINY, "--steps", "20", "--eval-every", "10", "--json", "--out", str(tmp_path / "r")])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    evals, done = lines[:-1], lines[-1]
    assert [e["step"] for e in evals] == [10, 20]
    assert all(set(e) == {"event", "step", "loss", "accuracy", "bayes_accuracy"} for e in evals)
    assert done["event"] == "done" and done["status"] == "completed"
    assert {"status", "accuracy", "bayes_accuracy", "loss", "run_dir"} <= set(done)
    assert done["accuracy"] == evals[-1]["accuracy"]
    assert Path(done["run_dir"]) == tmp_path / "r"
    assert (tmp_path / "r" / "checkpoint.safetensors").exists()


@pytest.mark.parametrize("flags, word", [
    (["--m", "0"], "m must"), (["--omega", "1.5"], "omega"), (["--beta", "0"], "beta"),
    (["--L", "0"], "L (context length)"), (["--d", "0"], "d must"), (["--m", "3", "--neighborhood", "cluster:3"], "empty"),
    (["--device", "tpu"], "unknown device"), (["--m", "30"], "memory"), (["--lr", "-1"], "lr")])
def test_bad_values_exit_2_with_one_line(flags, word, tmp_path, capsys):
    rc = main(["train", *flags, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert word in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written for a rejected config


def test_unparsable_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--m", "five"])
    assert exc.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_resume_flag_continues_a_run(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", *TINY, "--steps", "10", "--eval-every", "5", "--json", "--out", out]) == 0
    assert main(["train", "--resume", out, "--steps", "15", "--json"]) == 0
    done = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert done["step"] == 15 and done["status"] == "completed"


def test_ctrl_c_leaves_a_resumable_run(tmp_path):
    out = tmp_path / "r"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lca_tui", "train", *TINY, "--steps", "1000000",
                             "--eval-every", "50", "--json", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()  # the first eval line: training is under way
        assert json.loads(first)["event"] == "eval"
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    done = json.loads(stdout.splitlines()[-1])
    assert done["status"] == "stopped" and done["step"] >= 50
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "stopped" and state["checkpoint_step"] == done["step"]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "train"]
    assert steps == list(range(1, done["step"] + 1))
    assert main(["train", "--resume", str(out), "--steps", str(done["step"] + 5), "--json"]) == 0


def test_default_out_is_a_new_run_in_the_session(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LCA_TUI_DATA_DIR", str(tmp_path / "data"))
    rc = main(["--session", str(tmp_path / "sess"), "train", *TINY, "--steps", "4", "--eval-every", "2", "--json"])
    assert rc == 0
    done = json.loads(capsys.readouterr().out.splitlines()[-1])
    run_dir = Path(done["run_dir"])
    assert run_dir.parent == tmp_path / "sess" / "runs" and (run_dir / "checkpoint.safetensors").exists()
    from engine.session.store import Session

    runs = Session.open(tmp_path / "sess").runs()
    assert [r.id for r in runs] == [run_dir.name] and runs[0].status == "completed"
