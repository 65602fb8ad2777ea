"""``lca-tui doctor`` (engine.hijack.doctor): every row on the tiny Llama in float32 and bfloat16, a
perturbed fast trace fails the comparison row (exit 1, naming what was compared and by how much), the
attention and KV rows refuse what the trace cannot run, bad input is one line with exit 2; the
tolerance rule (engine.hijack.tolerance)."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from engine.hijack import doctor as D
from lca_tui.cli import main


def _json(capsys, argv):
    rc = main(["doctor", *argv, "--json"])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_every_row_passes_on_the_tiny_llama(capsys, tiny_lm_dir, one_torch_thread, dtype):
    rc, data, err = _json(capsys, ["--model", str(tiny_lm_dir), "--device", "cpu", "--dtype", dtype])
    assert rc == 0, err + json.dumps(data, indent=1)
    assert data["ok"] is True
    rows = {c["name"]: c for c in data["checks"]}
    assert [c["name"] for c in data["checks"]] == list(D.ROWS)
    assert all(c["status"] in ("ok", "info") for c in data["checks"])
    assert rows["dtype"]["value"] == dtype and rows["device"]["value"] == "cpu"
    assert rows["model"]["value"] == "LlamaForCausalLM"
    assert rows["blocks"]["data"] == {"n_layers": 2, "n_heads": 2, "d_head": 16, "kv_heads": 1}
    assert rows["final norm"]["value"] == "LlamaRMSNorm"
    assert rows["attention"]["status"] == "ok" and rows["kv reuse"]["value"] == "any length"
    compared = rows["trace vs plain"]["data"]
    assert compared["compared"] == 12  # 2 restores + 4 knockouts + 4 attn/mlp restores + 2 heads
    assert compared["max_abs_diff"] <= compared["tolerance"]
    if dtype == "float32":
        assert compared["tolerance"] == 1e-4
    else:  # 4 · eps(bf16) · max|logit|
        assert compared["tolerance"] == pytest.approx(4 * 2 ** -7 * compared["scale"])
    dla = rows["dla sum"]["data"]
    assert dla["abs_diff"] <= dla["tolerance"]
    assert rows["trace time"]["data"]["seconds"] > 0 and rows["probe time"]["data"]["seconds"] > 0
    assert rows["memory"]["data"]["peak_rss"] > 0
    assert rows["trace prompt"]["data"]["prepend"] == "The Eiffel Tower is not in Chicago. " * 2


def test_gpt2_layout_passes(capsys, tiny_gpt2_dir, one_torch_thread):
    rc, data, err = _json(capsys, ["--model", str(tiny_gpt2_dir), "--device", "cpu"])
    rows = {c["name"]: c for c in data["checks"]}
    assert rc == 0, err + json.dumps(data, indent=1)
    assert rows["model"]["value"] == "GPT2LMHeadModel" and rows["final norm"]["value"] == "LayerNorm"
    assert rows["dla sum"]["data"]["heads_abs_diff"] is None  # c_proj has a bias the heads leave out


def test_human_output_lists_every_check(capsys, tiny_lm_dir, one_torch_thread):
    assert main(["doctor", "--model", str(tiny_lm_dir), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for name in D.ROWS:
        assert name in out
    assert out.strip().splitlines()[-1] == "every check passed"


def test_a_perturbed_fast_trace_fails_and_says_by_how_much(capsys, tiny_lm_dir, one_torch_thread, monkeypatch):
    from engine.hijack import trace as T

    real = T.trace

    def perturbed(*args, **kwargs):
        tr = real(*args, **kwargs)
        m = tr.knockout["all"][1]
        tr.knockout["all"][1] = replace(m, logit_diff=m.logit_diff + 0.01)
        return tr

    monkeypatch.setattr(T, "trace", perturbed)
    rc, data, _ = _json(capsys, ["--model", str(tiny_lm_dir), "--device", "cpu"])
    assert rc == 1 and data["ok"] is False
    bad = [c for c in data["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in bad] == ["trace vs plain"]
    assert "knockout all block 1, logit_diff" in bad[0]["detail"] and "|Δ| 0.01" in bad[0]["detail"]
    assert bad[0]["data"]["max_abs_diff"] == pytest.approx(0.01, abs=1e-5)
    assert main(["doctor", "--model", str(tiny_lm_dir), "--device", "cpu"]) == 1
    assert "failed: trace vs plain" in capsys.readouterr().out


def test_a_failing_trace_is_a_row_not_a_crash(capsys, tiny_lm_dir, one_torch_thread, monkeypatch):
    from engine.errors import UserError
    from engine.hijack import trace as T

    def refuse(*args, **kwargs):
        raise UserError("cannot attribute through the norm X")

    monkeypatch.setattr(T, "trace", refuse)
    rc, data, _ = _json(capsys, ["--model", str(tiny_lm_dir), "--device", "cpu"])
    rows = {c["name"]: c for c in data["checks"]}
    assert rc == 1 and rows["trace vs plain"]["status"] == "fail"
    assert "cannot attribute through the norm X" in rows["trace vs plain"]["detail"]
    assert rows["dla sum"]["value"] == "skipped" and rows["trace time"]["value"] == "skipped"
    assert [c["name"] for c in data["checks"]] == list(D.ROWS)


def test_flash_attention_and_no_kv_reuse_fail_and_skip_the_trace(tiny_lm_dir, one_torch_thread, monkeypatch):
    from engine.hijack.lm import LanguageModel, load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    flash = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(_attn_implementation="flash_attention_2")),
                            attn_implementation="flash_attention_2", name="m")
    row = D._attention_row(flash)
    assert row.status == D.FAIL and "sdpa" in row.detail and "eager" in row.detail
    monkeypatch.setattr(LanguageModel, "kv_limit", property(lambda self: 0))
    checks = D.doctor(lm)
    rows = {c.name: c for c in checks}
    assert rows["kv reuse"].status == D.FAIL and not D.passed(checks)
    for name in ("trace prompt", "trace vs plain", "dla sum", "probe time", "trace time"):
        assert rows[name].value == "skipped" and "kv reuse" in rows[name].detail
    assert [c.name for c in checks] == list(D.ROWS)


@pytest.mark.parametrize("argv, words", [
    (["--model", "/nonexistent/model/folder"], "no model folder exists there"),
    (["--dtype", "float8"], "unknown dtype"),
    (["--device", "tpu"], "unknown device"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, words):
    assert main(["doctor", *argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and captured.out == ""


def test_tolerance_rule():
    import torch

    from engine.hijack.tolerance import HALF_C, tolerance

    assert tolerance(torch.float32, 1e6) == 1e-4 == tolerance("float32", 3.0)
    assert tolerance(torch.bfloat16, 20.0) == pytest.approx(HALF_C * 2 ** -7 * 20.0)
    assert tolerance("bf16", 20.0) == tolerance(torch.bfloat16, -20.0)
    assert tolerance(torch.float16, 20.0) == pytest.approx(HALF_C * 2 ** -10 * 20.0)
    assert tolerance(torch.bfloat16, 0.01) == tolerance(torch.bfloat16, 1.0)  # the scale is floored at 1
    for bad in (torch.int64, "nope"):
        with pytest.raises(ValueError):
            tolerance(bad, 1.0)
    with pytest.raises(ValueError):
        tolerance(torch.bfloat16, float("nan"))
