"""Training helpers: held-out validation/test split, the best-lr rule, the plateau stop, the model cache."""

import pytest

from engine.experiments.training import accuracy_job, best_lr, make_trainer, run_trainer

SPEC = dict(m=3, L=16, d=8, lr=0.01, steps=40, batch_size=64, eval_size=256, seed=0, omega=0.5, beta=1.0,
            neighborhood="all", device="cpu")


def test_best_lr_uses_validation_not_test():
    pairs = [({"lr": 0.01, "seed": 0}, {"val_accuracy": 0.9, "accuracy": 0.1}),
             ({"lr": 0.001, "seed": 0}, {"val_accuracy": 0.5, "accuracy": 0.99})]
    lr, runs = best_lr(pairs)
    assert lr == 0.01 and runs == [pairs[0][1]]
    tie = [({"lr": 0.01, "seed": 0}, {"val_accuracy": 0.5}), ({"lr": 0.001, "seed": 0}, {"val_accuracy": 0.5})]
    assert best_lr(tie)[0] == 0.001


def test_accuracy_job_scores_validation_and_a_separate_test_set():
    out = accuracy_job(SPEC)
    assert {"val_accuracy", "val_bayes", "accuracy", "bayes", "steps", "converged"} <= set(out)
    assert out["steps"] == 40 and out["val_bayes"] != out["bayes"]      # two different held-out sets


def test_plateau_stops_early_and_counts_as_converged():
    tr = make_trainer({**SPEC, "steps": 400, "eval_every": 10, "lr": 1e-9})  # the loss cannot improve
    run_trainer(tr, patience=2)
    assert tr.plateau and tr.step == 30


def test_cached_model_is_loaded_not_retrained(tmp_path, monkeypatch):
    monkeypatch.setenv("LCA_TUI_TRAIN_CACHE", str(tmp_path))
    first = accuracy_job(SPEC)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    from engine.lca.trainer import Trainer

    def no_training(self, *a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(Trainer, "run", no_training)
    assert accuracy_job(SPEC) == first
    with pytest.raises(AssertionError, match="trained again"):
        accuracy_job({**SPEC, "seed": 1})
