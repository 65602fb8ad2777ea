"""``lca-tui probe`` and ``lca-tui hijack``: JSON shapes, human output, one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

from lca_tui.cli import main


def test_probe_json_shape(capsys, tiny_lm_dir):
    rc = main(["probe", "--model", str(tiny_lm_dir), "--prompt", "The Eiffel Tower is in",
               "--target", " Paris", "--target", " Chicago", "--top-k", "4", "--json"])
    captured = capsys.readouterr()
    assert rc == 0
    data = json.loads(captured.out)
    assert set(data) == {"model", "top_k", "targets"}
    assert data["model"] == str(tiny_lm_dir)
    assert len(data["top_k"]) == 4 and set(data["top_k"][0]) == {"token", "prob"}
    assert [t["target"] for t in data["targets"]] == [" Paris", " Chicago"]
    assert set(data["targets"][0]) == {"target", "prob", "first_token_prob", "rank", "tokens", "exact"}
    assert data["targets"][0]["exact"] is True
    assert "loading" in captured.err  # loading messages go to stderr


def test_probe_human_tables(capsys, tiny_lm_dir):
    assert main(["probe", "--model", str(tiny_lm_dir), "--prompt", "The Eiffel Tower is in",
                 "--target", " Paris"]) == 0
    out = capsys.readouterr().out
    assert "Next token" in out and "' Paris'" in out and "first-token prob" in out


def test_hijack_json_shape(capsys, tiny_lm_dir):
    rc = main(["hijack", "--model", str(tiny_lm_dir), "--scheme", "not-think", "--max-prepends", "2",
               "--limit", "3", "--seed", "1", "--batch-size", "4", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(data) == {"scheme", "metric", "scoring", "records", "max_prepends", "models"}
    assert data["scheme"] == "not-think" and data["records"] == 3 and data["max_prepends"] == 2
    (model,) = data["models"]
    assert set(model) == {"model", "curve", "flips", "flip_points", "notes"}
    assert model["model"] == str(tiny_lm_dir)
    assert [p["n"] for p in model["curve"]] == [0, 1, 2]
    assert set(model["curve"][0]) == {"n", "es", "p_true", "p_false"}
    assert all(0.0 <= p["es"] <= 1.0 for p in model["curve"])
    assert len(model["flip_points"]) == 3 and set(model["flip_points"][0]) == {"case_id", "n"}
    assert set(model["flips"]) == {"records", "flipped", "never", "mean", "median", "histogram", "earliest",
                                   "never_ids"}


def test_hijack_compares_models_on_the_same_records(capsys, tiny_lm_dir, tiny_gpt2_dir):
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.efficacy import efficacy_curve, flip_points
    from engine.hijack.lm import load_lm

    argv = ["hijack", "--model", str(tiny_lm_dir), "--model", str(tiny_gpt2_dir), "--scheme", "not-think",
            "--max-prepends", "3", "--limit", "4", "--seed", "2", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["model"] for m in data["models"]] == [str(tiny_lm_dir), str(tiny_gpt2_dir)]
    records = load_counterfact("builtin", limit=4, seed=2)
    for entry, folder in zip(data["models"], (tiny_lm_dir, tiny_gpt2_dir)):
        ref = efficacy_curve(load_lm(str(folder), device="cpu"), records, "not-think", 3)
        assert [p["es"] for p in entry["curve"]] == [p.es for p in ref.curve]
        points = flip_points(ref)
        assert entry["flip_points"] == [{"case_id": p.case_id, "n": p.n} for p in points]
        hist = [sum(1 for p in points if p.n == n) for n in range(4)]
        assert entry["flips"]["histogram"] == hist
        assert entry["flips"]["never"] == sum(1 for p in points if p.n is None)
    assert [p["case_id"] for p in data["models"][0]["flip_points"]] == [r.case_id for r in records]

    assert main(argv[:-1]) == 0  # human output: one curve per model, flip-point table
    out = capsys.readouterr().out
    assert "scheme not-think, models" in out and out.count("Flip points") == 1
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    header = lines[top + 1:next(i for i, line in enumerate(lines) if line.startswith("┡"))]
    assert header[0].count("┃") == 5 and header[0].count("ES") == 2  # n, ES per model, records


def test_hijack_human_chart_and_table(capsys, tiny_lm_dir):
    rc = main(["hijack", "--model", str(tiny_lm_dir), "--scheme", "reverse-relation", "--relation", "P103",
               "--max-prepends", "2", "--limit", "2", "--scoring", "nll"])  # 3 would not fit the 128-token window
    out = capsys.readouterr().out
    assert rc == 0
    assert "accuracy(n), reverse-relation" in out  # the plotext chart title
    assert "mean P(true)" in out and "scoring nll" in out
    assert "\x1b[" not in out  # no colour codes when not writing to a terminal


@pytest.mark.parametrize("argv,needle", [
    (["probe", "--model", "./no/such/model", "--prompt", "x"], "no model folder"),
    (["probe", "--model", "owner-xyz/model-xyz", "--prompt", "x"], "not an alias"),
    (["probe", "--prompt", "   "], "prompt is empty"),
    (["probe", "--prompt", "The", "--target", ""], "target is empty"),
    (["hijack", "--scheme", "nope", "--max-prepends", "2"], "scheme"),
    (["hijack", "--scheme", "not-think", "--max-prepends", "-1"], "prepends"),
    (["hijack", "--scheme", "not-think", "--max-prepends", "2", "--batch-size", "0"], "batch size"),
    (["hijack", "--scheme", "not-think", "--max-prepends", "2", "--dataset", "/no/such/file.json"], "file.json"),
    (["hijack", "--model", "gemma3-270m", "--model", "Gemma3-270m", "--scheme", "not-think", "--max-prepends", "2"],
     "given twice"),
])
def test_user_errors_exit_2_with_one_line(capsys, monkeypatch, argv, needle):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lca-tui: error")]
    assert len(err) == 1 and needle in err[0]


def test_hijack_out_of_memory_message(capsys, tiny_lm_dir, monkeypatch):
    import engine.hijack.efficacy_batch as es_batch

    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 1.00 GiB")

    monkeypatch.setattr(es_batch, "extend", oom)
    assert main(["hijack", "--model", str(tiny_lm_dir), "--scheme", "not-think", "--max-prepends", "1",
                 "--limit", "2", "--batch-size", "32", "--json"]) == 2
    assert "smaller --batch-size" in capsys.readouterr().err


@pytest.mark.slow
def test_embedded_probe_cli_json(capsys, smollm, monkeypatch):
    rc = main(["probe", "--prompt", "The Eiffel Tower is located in the city of", "--target", " Paris",
               "--top-k", "3", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["model"] == "smollm2-135m"
    assert data["top_k"][0]["token"] == " Paris" and data["targets"][0]["rank"] == 1


@pytest.mark.slow
def test_embedded_models_side_by_side(capsys, smollm):
    """The issue's 'done when': both embedded models, one curve and flip points each (fewer records here)."""
    rc = main(["hijack", "--model", "smollm2-135m", "--model", "gemma3-270m", "--scheme", "not-think",
               "--max-prepends", "2", "--limit", "3", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and [m["model"] for m in data["models"]] == ["smollm2-135m", "gemma3-270m"]
    for m in data["models"]:
        assert [p["n"] for p in m["curve"]] == [0, 1, 2] and len(m["flip_points"]) == 3
        assert m["flips"]["flipped"] + m["flips"]["never"] == 3 and m["notes"] == []
