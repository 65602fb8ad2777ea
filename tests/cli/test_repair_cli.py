"""``lca-tui repair``: the JSON names the issue and DESIGN.md give, numbers that are the engine's own
(``engine.hijack.repair.repair`` on the same records), a saved defense scored as it is, the job store
(a rerun takes every unit from it and prints the same JSON), ``--out`` files that load back with
``--defense-file`` and score the same, a custom scheme, progress lines, and one line with exit 2 for
every bad input (before the model loads where the input alone is wrong)."""

from __future__ import annotations

import json

import pytest

from lca_tui.cli import main

KEYS = {"name", "params", "es_before", "es_after", "es_ci", "sign_p", "clean_accuracy_before",
        "clean_accuracy_after", "reverse_accuracy_before", "reverse_accuracy_after", "frontier"}


def _run(capsys, *argv):
    rc = main(["repair", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_is_the_engines_result(capsys, tiny_lm_dir, one_torch_thread):
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.lm import load_lm
    from engine.hijack.repair import repair

    rc, out, err = _run(capsys, "--model", str(tiny_lm_dir), "--dataset", "builtin", "--scheme", "not-think",
                        "--n", "2", "--limit", "4", "--seed", "0", "--defense", "drop-context", "heads",
                        "--alpha", "0", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert {"model", "scheme", "n", "selection", "evaluation", "defenses"} <= set(data)
    assert data["scheme"] == "not-think" and data["n"] == 2
    assert len(data["selection"]) == len(data["evaluation"]) == 2
    assert not set(data["selection"]) & set(data["evaluation"])  # selection apart from evaluation
    assert [d["name"] for d in data["defenses"]] == ["drop-context", "heads"]
    for d in data["defenses"]:
        assert KEYS <= set(d)
        assert d["params"]["alpha"] == 0.0 and [p["alpha"] for p in d["frontier"]] == [0.0]
    heads = data["defenses"][1]["params"]["heads"]
    assert heads and all(len(h) == 2 for h in heads)
    assert data["defenses"][0]["es_after"] == 0.0  # the question alone: nothing is prepended
    lm = load_lm(str(tiny_lm_dir), device="cpu")
    records = load_counterfact("builtin", limit=4, seed=0)
    want = repair(lm, records, "not-think", 2, defenses=["drop-context", "heads"], alpha=0.0)
    for got, ref in zip(data["defenses"], want["defenses"]):
        for key in ("es_before", "es_after", "clean_accuracy_before", "clean_accuracy_after", "sign_p"):
            assert got[key] == pytest.approx(ref[key])


def test_a_saved_defense_is_scored_as_it_is(capsys, tiny_lm_dir, tmp_path, one_torch_thread):
    from engine.hijack.defenses import Defense

    path = Defense("heads", 0.5, heads=((0, 1), (1, 0))).save(tmp_path / "heads.json")
    rc, out, err = _run(capsys, "--model", str(tiny_lm_dir), "--dataset", "builtin", "--scheme", "not-think",
                        "--n", "1", "--limit", "4", "--defense-file", str(path), "--json")
    assert rc == 0, err
    (d,) = json.loads(out)["defenses"]
    assert d["name"] == "heads" and d["params"]["heads"] == [[0, 1], [1, 0]] and d["params"]["alpha"] == 0.5


def test_table(capsys, tiny_lm_dir, one_torch_thread):
    rc, out, err = _run(capsys, "--model", str(tiny_lm_dir), "--dataset", "builtin", "--scheme", "not-think",
                        "--n", "1", "--limit", "2", "--defense", "drop-context")
    assert rc == 0, err
    assert "drop-context" in out and "clean" in out and "reverse" in out and "evaluated on 1" in out


@pytest.mark.parametrize("argv, words", [
    (["--scheme", "not-think", "--n", "1"], "needs --dataset"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "0"], "--n must be at least 1"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--limit", "1"], "--limit must be at least 2"),
    (["--dataset", "builtin", "--scheme", "nope", "--n", "1"], "scheme"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--alpha", "-1"], "alpha"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--defense", "attention", "--alpha", "2"],
     "attention defense keeps alpha"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--defense-file", "/nonexistent.json"],
     "nonexistent.json"),
    (["--dataset", "/nonexistent.json", "--scheme", "not-think", "--n", "1"], "nonexistent"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--chunk", "0"], "--chunk must be at least 1"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--jobs", "0"], "--jobs must be at least 1"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--gpus", "x"], "--gpus takes all"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--executor", "slurm", "--store", "none"],
     "needs a job store"),
    (["--dataset", "builtin", "--scheme", "custom", "--n", "1"], "template"),
])
def test_bad_input_is_one_line_exit_2_before_the_model_loads(capsys, argv, words, monkeypatch, tmp_path):
    import lca_tui.commands.probe as probe

    monkeypatch.setattr(probe, "load_model", lambda *a, **k: pytest.fail("the model loaded"))
    rc, out, err = _run(capsys, *argv)
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_unknown_defense_is_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["repair", "--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--defense", "magic"])
    assert exc.value.code == 2 and "magic" in capsys.readouterr().err


def test_out_is_not_a_folder(capsys, tmp_path, monkeypatch):
    import lca_tui.commands.probe as probe

    monkeypatch.setattr(probe, "load_model", lambda *a, **k: pytest.fail("the model loaded"))
    (tmp_path / "f").write_text("x")
    rc, _, err = _run(capsys, "--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--out", str(tmp_path / "f"))
    assert rc == 2 and "is not a folder" in err and len(err.strip().splitlines()) == 1


BASE = ["--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--limit", "4", "--seed", "1",
        "--batch-size", "4", "--chunk", "1"]


def _took(err: str) -> tuple[int, int, int]:
    import re

    m = re.search(r"took (\d+) of (\d+) jobs from the store .* \(ran (\d+)\)", err)
    assert m, err
    return int(m[1]), int(m[2]), int(m[3])


def test_a_rerun_takes_every_unit_from_the_store(capsys, tiny_lm_dir, tmp_path, one_torch_thread):
    argv = ["--model", str(tiny_lm_dir), *BASE, "--defense", "heads", "steer", "--store", str(tmp_path / "s"),
            "--json"]
    rc, first, err = _run(capsys, *argv)
    assert rc == 0, err
    took, total, ran = _took(err)
    assert took == 0 and ran == total > 10
    assert "units (100%), ETA" in err  # progress lines (not a terminal)
    rc, again, err = _run(capsys, *argv)
    assert rc == 0, err
    assert _took(err) == (total, total, 0)
    assert json.loads(again) == json.loads(first)


def test_out_files_load_back_and_score_the_same(capsys, tiny_lm_dir, tmp_path, one_torch_thread):
    from engine.hijack.defenses import Defense

    out = tmp_path / "out"
    rc, text, err = _run(capsys, "--model", str(tiny_lm_dir), *BASE, "--defense", "heads", "attention", "steer",
                         "contrastive", "--out", str(out), "--json")
    assert rc == 0, err
    data = json.loads(text)
    assert json.loads((out / "repair.json").read_text()) == data
    names = ["heads", "attention", "steer", "contrastive"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{n}.json" for n in names), "repair.json",
                                                            "steer.safetensors"])
    for d in data["defenses"]:
        back = Defense.load(out / f"{d['name']}.json")
        assert back.to_dict()["params"] == d["params"]
    files = [str(out / f"{n}.json") for n in names]
    rc, text2, err = _run(capsys, "--model", str(tiny_lm_dir), *BASE, "--defense-file", *files, "--store", "none",
                          "--json")
    assert rc == 0, err
    again = json.loads(text2)
    assert [d["name"] for d in again["defenses"]] == names
    for a, b in zip(data["defenses"], again["defenses"]):
        assert b["params"] == a["params"]
        for key in ("es_before", "es_after", "es_ci", "sign_p", "clean_accuracy_after", "reverse_accuracy_after",
                    "log_p_true_change"):
            assert b[key] == a[key], (a["name"], key)


def test_custom_scheme_with_a_template(capsys, tiny_lm_dir, one_torch_thread):
    rc, out, err = _run(capsys, "--model", str(tiny_lm_dir), "--dataset", "builtin", "--scheme", "custom",
                        "--template", "Some say {subject} relates to {target_false}.", "--n", "1", "--limit", "4", "--seed", "1",
                        "--defense", "attention", "drop-context", "--alpha", "0.3", "--json")
    assert rc == 0, err
    for d in json.loads(out)["defenses"]:
        assert d["reverse_accuracy_before"] is None and d["reverse_fall"] is None


def test_the_result_is_recorded_in_the_session_unless_no_save(capsys, tiny_lm_dir, one_torch_thread, tmp_path):
    from engine.session.store import Session

    argv = ["--model", str(tiny_lm_dir), "--dataset", "builtin", "--scheme", "not-think", "--n", "1", "--limit", "4",
            "--defense", "drop-context", "--store", "none", "--json"]
    rc, out, err = _run(capsys, "--session", str(tmp_path / "s"), *argv)
    assert rc == 0, err
    assert "recorded in the session" in err
    (item,) = Session.open(tmp_path / "s").items("repair")
    assert item.data["scope"] == "dataset"
    assert item.data["defenses"] == json.loads(out)["defenses"]
    rc, _, err = _run(capsys, "--session", str(tmp_path / "s"), *argv, "--no-save")
    assert rc == 0, err
    assert len(Session.open(tmp_path / "s").items("repair")) == 1
