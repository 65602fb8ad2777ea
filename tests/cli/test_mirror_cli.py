"""``lca-tui mirror``: the engine's trace as JSON and as text, bad input in one line with exit 2."""

from __future__ import annotations

import json

import pytest

from lca_tui.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from engine.lca.config import RunConfig
    from engine.lca.runner import TrainingRun

    cfg = RunConfig.from_flat(dict(m=3, L=8, d=8, d_a=8, steps=20, eval_every=10, batch_size=64,
                                   eval_size=128, device="cpu"))
    out = tmp_path_factory.mktemp("mirror-cli") / "run"
    TrainingRun.start(cfg, out, device="cpu").run()
    return out


def test_json_is_the_engines_trace_and_sweep(run_dir, capsys):
    from engine.lca.hijack_mirror import mirror_sweep, trace_mirror
    from engine.lca.inspection import load_model_from_run

    assert main(["mirror", "--run", str(run_dir), "--y", "001", "--y-tilde", "6", "--r", "0.4", "--seed", "2",
                 "--sweep", "--n", "16", "--json", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    cfg, model, step = load_model_from_run(run_dir)
    want = trace_mirror(cfg, model, 1, 6, 0.4, seed=2).to_dict()
    assert {k: out[k] for k in want} == want and out["step"] == step == 20
    assert out["sweep"] == mirror_sweep(cfg, model, 1, 6, n=16, seed=2).to_dict()
    assert {"p_true", "p_false", "logit_diff"} <= set(out["clean"]) and out["k"] == round(0.4 * 7)


def test_text_output_names_every_measure(run_dir, capsys):
    assert main(["mirror", "--run", str(run_dir), "--y", "0", "--y-tilde", "7"]) == 0
    text = capsys.readouterr().out
    for word in ("clean", "hijacked", "knockout", "knockout_rest", "predicts ỹ", "from y~"):
        assert word in text


@pytest.mark.parametrize("extra, msg", [
    (["--y", "0", "--y-tilde", "0"], "ỹ must differ from y"),
    (["--y", "0", "--y-tilde", "8"], "ỹ must be a token id in 0..7"),
    (["--y", "0", "--y-tilde", "1", "--r", "2"], "r must be a number in [0, 1]"),
    (["--y", "0", "--y-tilde", "1", "--sweep", "--n", "0"], "number of contexts"),
])
def test_bad_input_exits_2_with_one_line(run_dir, capsys, extra, msg):
    assert main(["mirror", "--run", str(run_dir), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


def test_missing_run_exits_2(tmp_path, capsys):
    assert main(["mirror", "--run", str(tmp_path / "nope"), "--y", "0", "--y-tilde", "1"]) == 2
    assert "is not a directory" in capsys.readouterr().err
