"""``lca-tui trace``: the JSON names DESIGN.md documents, the dataset mode, the session record, and one
line with exit 2 for every bad input (before the model loads where the input alone is wrong)."""

from __future__ import annotations

import json

import pytest

from lca_tui.cli import main

ONE = ["--prompt", "The Eiffel Tower is located in the city of", "--prepend", "Do not think of London. " * 2,
       "--true", " Paris", "--false", " London"]


def test_one_prompt_json(capsys, tiny_lm_dir, tmp_path):
    rc = main(["trace", "--model", str(tiny_lm_dir), *ONE, "--window", "2", "--json", "--session", str(tmp_path / "s")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(captured.out)
    for key in ("clean", "hijacked"):
        assert set(data[key]) == {"p_true", "p_false", "logit_diff"}
    assert len(data["layers"]) == 2 and [e["layer"] for e in data["layers"]] == [0, 1]
    entry = data["layers"][0]
    for key in ("restore_last", "knockout", "knockout_window", "knockout_mentions", "knockout_rest",
                "knockout_mentions_window", "knockout_rest_window", "restore_attn_last", "restore_mlp_last"):
        assert set(entry[key]) == {"p_true", "p_false", "logit_diff"}
    assert set(entry["restore"]) == {"resid", "attn", "mlp"}
    assert len(entry["restore"]["resid"]) == len(data["positions"])
    assert len(data["heads"]) == 2 and len(data["heads"][0]) == 2
    assert set(data["heads"][0][0]) == {"dla", "ablated"}
    assert data["prepend"] == "Do not think of London. " * 2 and data["window"] == 2
    assert sum(data["mentions"]) >= 2
    saved = list((tmp_path / "s" / "traces").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["kind"] == "trace"
    assert "recorded in" in captured.err


def test_one_prompt_human_table(capsys, tiny_lm_dir):
    assert main(["trace", "--model", str(tiny_lm_dir), *ONE, "--window", "1", "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "restore_last" in out and "mentions" in out and "hijacked" in out
    assert "L0H" in out or "L1H" in out


def _facts(tmp_path):
    rows = [{"case_id": i, "requested_rewrite": {"prompt": "{} is located in the city of", "subject": s,
                                                 "relation_id": "P131", "target_true": {"str": "Paris"},
                                                 "target_new": {"str": "London"}}}
            for i, s in enumerate(["The Eiffel Tower", "The Colosseum", "Lyon", "Toko Yasuda"])]
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(rows))
    return path


def test_dataset_trace_resumes_from_the_store(capsys, tiny_lm_dir, tmp_path):
    argv = ["trace", "--model", str(tiny_lm_dir), "--dataset", str(_facts(tmp_path)), "--scheme", "not-think",
            "--n", "1", "--window", "1", "--json", "--no-save", "--store", str(tmp_path / "store")]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["resumed_records"] == 0
    entries = sorted((tmp_path / "store").rglob("*.json"))
    assert len(entries) == 4  # one per record
    entries[0].write_text(entries[0].read_text()[:50])  # a truncated entry: named and rerun
    assert main(argv) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert again["resumed_records"] == 3 and "took 3 of 4 records from the store" in captured.err
    for key in ("all", "flipped", "heads", "heads_atp", "records"):
        assert again[key] == first[key]  # read back = computed


def test_dataset_json(capsys, tiny_lm_dir, tmp_path):
    path = _facts(tmp_path)
    rc = main(["trace", "--model", str(tiny_lm_dir), "--dataset", str(path), "--scheme", "not-think", "--n", "2",
               "--window", "1", "--json", "--no-save"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(captured.out)
    assert data["records"] == 4 and data["scheme"] == "not-think" and data["n"] == 2
    assert set(data["all"]["layers"]["knockout_mentions_window"]["logit_diff"][0]) == {"mean", "lo", "hi", "n"}
    assert data["heads"]["chosen_on"] == 2 and data["heads"]["evaluated_on"] == 2
    assert [a["k"] for a in data["heads"]["ablation"]] == [0, 1, 3]  # 4 heads: k = 10 does not fit
    assert [a["k"] for a in data["heads_atp"]["ablation"]] == [0, 1, 3] and data["heads_atp"]["method"] == "atp"
    rc = main(["trace", "--model", str(tiny_lm_dir), "--dataset", str(path), "--scheme", "not-think", "--n", "2",
               "--window", "1", "--no-save"])
    assert rc == 0 and "heads ranked by attribution patching" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--prompt", "x"], "needs --prepend, --true, --false"),
    ([*ONE, "--dataset", "builtin"], "not both"),
    (["--dataset", "builtin", "--n", "2"], "needs --scheme"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "0"], "at least 1"),
    (["--dataset", "builtin", "--scheme", "nope", "--n", "2"], "Unknown hijack scheme"),
    ([*ONE, "--window", "0"], "--window"),
    (["--dataset", "builtin", "--scheme", "not-think", "--n", "2", "--method", "atp"], "one prompt"),
    ([*ONE, "--method", "fast"], "--method"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, words):
    assert main(["trace", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_bad_pair_exits_2_after_loading(capsys, tiny_lm_dir):
    argv = ["trace", "--model", str(tiny_lm_dir), "--prompt", "The Eiffel Tower is in", "--prepend", "x. ",
            "--true", " Paris", "--false", " Paris", "--no-save"]
    assert main(argv) == 2
    assert "same token" in capsys.readouterr().err.splitlines()[-1]


def test_method_atp_is_the_exact_shape_with_method_atp(capsys, tiny_lm_dir, tmp_path):
    argv = ["trace", "--model", str(tiny_lm_dir), *ONE, "--window", "2", "--json", "--session", str(tmp_path / "s")]
    assert main([*argv, "--method", "atp"]) == 0
    captured = capsys.readouterr()
    est = json.loads(captured.out)
    assert est["method"] == "atp" and "not recorded" in captured.err
    assert not list((tmp_path / "s").glob("traces/*.json"))
    assert main(argv) == 0
    exact = json.loads(capsys.readouterr().out)
    assert set(est) - {"method", "estimate"} == set(exact)
    assert set(est["layers"][1]) == set(exact["layers"][1])
    assert est["hijacked"] == pytest.approx(exact["hijacked"], rel=1e-5, abs=1e-5)  # the same run, cached in two parts


def test_method_both_adds_the_agreement(capsys, tiny_lm_dir):
    assert main(["trace", "--model", str(tiny_lm_dir), *ONE, "--window", "2", "--json", "--no-save",
                 "--method", "both"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "both" and data["atp"]["method"] == "atp"
    fam = data["agreement"]["families"]
    assert set(fam) >= {"restore_resid", "restore_attn", "restore_mlp", "knockout", "knockout_rest_window", "heads"}
    assert set(fam["heads"]) >= {"spearman", "recall@5", "recall@10", "misses"}
    miss = fam["heads"]["misses"][0]
    assert set(miss) == {"component", "exact", "estimate", "saturation"} and miss["saturation"]["entropy"] >= 0
    assert main(["trace", "--model", str(tiny_lm_dir), *ONE, "--window", "2", "--no-save", "--method", "both"]) == 0
    out = capsys.readouterr().out
    assert "spearman" in out and "attribution patching" in out
