"""The default training recipe: filled in for the tuning flags not given, used by ``lca-tui train``,
and (slow) good enough to reach 0.98 x the Bayes accuracy at m = 5, L = 64."""

import json

import pytest
import torch

from engine.lca.config import RECIPE_FIELDS, RunConfig, recipe, recipe_config
from engine.lca.trainer import Trainer
from lca_tui.cli import main


@pytest.mark.parametrize("m", [2, 5, 6, 7, 8, 10])
def test_recipe_is_a_valid_config_for_any_m(m):
    cfg = recipe_config({"m": m, "L": 64})
    assert set(recipe(m, 64)) == set(RECIPE_FIELDS)
    for key, value in recipe(m, 64).items():
        assert cfg.flat()[key] == value
    assert cfg.train.schedule == "cosine" and cfg.train.warmup < cfg.train.steps


def test_given_values_win_and_d_a_follows_d():
    cfg = recipe_config({"m": 8, "L": 64, "lr": 0.001, "d": 40})
    assert cfg.train.lr == 0.001 and cfg.model.d == 40 and cfg.model.d_a == 40
    assert cfg.train.steps == recipe(8, 64)["steps"]
    assert cfg.task.omega == RunConfig().task.omega  # non-tuning fields keep the dataclass defaults


def test_train_cli_without_tuning_flags_uses_the_recipe(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LCA_TUI_THREADS", "1")
    before = torch.get_num_threads()
    out = tmp_path / "r"
    assert main(["train", "--m", "3", "--L", "8", "--steps", "3", "--eval-size", "64", "--device", "cpu",
                 "--json", "--out", str(out)]) == 0
    assert torch.get_num_threads() == before  # the thread choice does not leak out of the command
    done = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert done["threads"] == 1
    saved = RunConfig.from_dict(json.loads((out / "config.json").read_text()))
    expected = recipe(3, 8)
    assert saved.model.d == expected["d"] and saved.train.lr == expected["lr"]
    assert saved.train.schedule == expected["schedule"] and saved.train.steps == 3


def test_bad_thread_env_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LCA_TUI_THREADS", "many")
    assert main(["train", "--m", "3", "--L", "8", "--steps", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LCA_TUI_THREADS must be a positive integer" in err[0]


@pytest.mark.slow
def test_default_recipe_reaches_098_of_bayes_at_m5_L64():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tr = Trainer(recipe_config({"m": 5, "L": 64, "device": "cpu", "eval_size": 4096}))
        done = tr.run()
    finally:
        torch.set_num_threads(threads)
    assert done["status"] == "completed"
    assert done["accuracy"] >= 0.98 * done["bayes_accuracy"], done
