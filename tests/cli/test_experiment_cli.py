"""``lca-tui experiment``: list, a tiny run as JSON / table, saving, and user mistakes (exit 2)."""

import json

import pytest

from lca_tui.cli import main


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LCA_TUI_DATA_DIR", str(tmp_path / "data"))


def test_list_text_and_json(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("hijack-curves", "hijack-mechanism", "value-matrix", "context-mixing", "theorem1", "lemma2",
                 "theorem3", "theorem4", "lemma5", "lemma6"):
        assert name in out
    assert main(["experiment", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    from engine import experiments as E

    assert [e["name"] for e in data["experiments"]] == E.names() and len(E.names()) == 18
    assert all({"name", "title", "figure", "claim"} <= set(e) for e in data["experiments"])


def test_theorem1_tiny_json_shape(capsys):
    assert main(["experiment", "theorem1", "--tiny", "--json", "--no-save"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert {"name", "title", "claim", "verdict", "grid", "rows", "curves", "seconds"} <= set(data)
    assert data["name"] == "theorem1" and data["grid"]["level"] == "tiny"
    assert data["verdict"] in ("holds", "does not hold", "inconclusive")
    assert all({"m", "L", "constructed", "bayes"} <= set(r) for r in data["rows"])
    assert "jobs" in captured.err  # progress goes to stderr


def test_table_chart_and_verdict_and_out_file(tmp_path, capsys):
    out = tmp_path / "res" / "lemma2.json"
    assert main(["experiment", "lemma2", "--tiny", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "verdict: holds" in text and "constructed" in text and "paper:" in text
    assert "┤" in text  # the plotext chart
    saved = json.loads(out.read_text())
    assert saved["name"] == "lemma2" and saved["rows"]


def test_result_is_recorded_in_the_session(tmp_path, capsys):
    assert main(["--session", str(tmp_path / "s"), "experiment", "lemma2", "--tiny", "--json"]) == 0
    err = capsys.readouterr().err
    files = list((tmp_path / "s" / "experiments").glob("lemma2-*.json"))
    assert len(files) == 1 and str(files[0]) in err
    rec = json.loads(files[0].read_text())
    assert rec["name"] == "lemma2" and rec["rows"] and rec["kind"] == "experiment"


@pytest.mark.parametrize("argv, word", [
    (["experiment", "elephants"], "unknown experiment"),
    (["experiment", "theorem1", "--tiny", "--seeds", "0"], "seeds"),
    (["experiment", "theorem1", "--tiny", "--jobs", "0"], "--jobs"),
    (["experiment", "theorem1", "--tiny", "--set", "stepz=3"], "unknown grid parameter"),
    (["experiment", "theorem1", "--tiny", "--set", "oops"], "KEY=VALUE"),
    (["experiment", "theorem1", "--tiny", "--device", "tpu"], "unknown device"),
])
def test_user_mistakes_exit_2_with_one_line(argv, word, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert word in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_quick_and_tiny_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "theorem1", "--quick", "--tiny"])
    assert exc.value.code == 2


def test_results_folder_and_render(tmp_path, capsys):
    res = tmp_path / "results"
    assert main(["experiment", "lemma5", "--tiny", "--no-save", "--results", str(res)]) == 0
    saved = json.loads((res / "tiny" / "lemma5.json").read_text())
    assert saved["name"] == "lemma5" and saved["run"]["command"].startswith("lca-tui experiment lemma5 --tiny")
    assert saved["reasons"] and saved["effects"] and "machine" in saved["run"] and "code" in saved["run"]
    md = tmp_path / "E.md"
    assert main(["experiment", "render", "--results", str(res), "--out", str(md)]) == 0
    assert "`lemma5`" in md.read_text()
    assert main(["experiment", "render", "--results", str(res), "--out", str(md), "--check"]) == 0
    md.write_text("hand edit\n")
    assert main(["experiment", "render", "--results", str(res), "--out", str(md), "--check"]) == 1
    assert "differs" in capsys.readouterr().err


def test_rejudge_recomputes_saved_verdicts_from_rows(tmp_path, capsys):
    res = tmp_path / "results"
    assert main(["experiment", "lemma5", "--tiny", "--no-save", "--results", str(res)]) == 0
    path = res / "tiny" / "lemma5.json"
    data = json.loads(path.read_text())
    data["verdict"], data["reasons"] = "does not hold", []
    path.write_text(json.dumps(data))
    assert main(["experiment", "rejudge", "--results", str(res)]) == 0
    again = json.loads(path.read_text())
    assert again["verdict"] == "holds" and again["reasons"] and "(was does not hold)" in capsys.readouterr().out


@pytest.mark.slow
def test_new_sec5_checks_run_at_the_quick_grid(tmp_path, capsys):
    """CI runs the training-free Sec. 5 checks at --quick and they reproduce the committed results (theorem3
    trains, so CI runs it at --tiny in tests/engine/experiments/test_experiments_sec5.py)."""
    from pathlib import Path

    committed = Path(__file__).resolve().parents[2] / "results" / "quick"
    res = tmp_path / "results"
    for name in ("lemma5", "lemma6", "theorem4"):
        assert main(["experiment", name, "--quick", "--jobs", "2", "--no-save", "--results", str(res)]) == 0
        new = json.loads((res / "quick" / f"{name}.json").read_text())
        old = json.loads((committed / f"{name}.json").read_text())
        assert new["verdict"] == old["verdict"], name
    assert (json.loads((res / "quick" / "lemma5.json").read_text())["rows"]
            == json.loads((committed / "lemma5.json").read_text())["rows"])
