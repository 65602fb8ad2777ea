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


def test_wsd_plateau_anneals_then_stops_and_counts_as_converged():
    tr = make_trainer({**SPEC, "steps": 400, "eval_every": 10, "lr": 1e-9, "schedule": "wsd"})
    run_trainer(tr, patience=2)
    # plateau after the evaluations at 10, 20, 30 -> decay from step 30 over a fifth of it (6 steps)
    assert tr.plateau and tr.decay_from == 30 and tr.step == 36 and tr.status == "completed"
    again = make_trainer({**SPEC, "steps": 60, "eval_every": 10, "schedule": "wsd"})
    run_trainer(again, patience=50)               # never plateaus: decays over its cap's last sixth
    assert not again.plateau and again.decay_from is None and again.step == 60


def test_best_lr_compares_lrs_on_the_seeds_they_share():
    pairs = [({"lr": 0.01, "seed": 0}, {"val_accuracy": 0.6}), ({"lr": 0.01, "seed": 1}, {"val_accuracy": 0.1}),
             ({"lr": 0.001, "seed": 0}, {"val_accuracy": 0.5})]
    lr, runs = best_lr(pairs)            # seed 0 only: 0.6 > 0.5, though 0.01's mean over seeds is 0.35
    assert lr == 0.01 and [r["val_accuracy"] for r in runs] == [0.6, 0.1]


def _fake_job(spec):
    """A job whose validation accuracy depends on lr and seed (lr 0.01 wins where d = 8)."""
    good = 0.01 if spec["d"] == 8 else 0.001
    return {"val_accuracy": (0.9 if spec["lr"] == good else 0.5) + 0.01 * spec["seed"], "id": (spec["d"], spec["lr"],
                                                                                                spec["seed"])}


def test_lr_race_trains_only_the_winner_beyond_the_first_seed_and_agrees_with_the_full_grid():
    from engine.experiments.grids import Grid
    from engine.experiments.training import lca_specs, train_pairs
    from engine.job_context import JobContext

    grid = Grid("custom", d=(8, 16), lr=(0.01, 0.001), seeds=(0, 1, 2), lr_select="race")
    specs = lca_specs(grid, {"d": grid["d"], "lr": grid["lr"], "seed": grid["seeds"]})
    seen = []
    raced = train_pairs(_fake_job, specs, grid, ctx=JobContext(lambda done, total, _p: seen.append((done, total))))
    ran = {r["id"] for _, r in raced}
    assert ran == {(8, 0.01, 0), (8, 0.001, 0), (8, 0.01, 1), (8, 0.01, 2),
                   (16, 0.01, 0), (16, 0.001, 0), (16, 0.001, 1), (16, 0.001, 2)}
    assert seen[-1] == (8, 8) and [d for d, _ in seen] == list(range(1, 9))
    full = train_pairs(_fake_job, specs, grid.replace(lr_select="all"))
    assert len(full) == 12
    for d in (8, 16):
        race_lr, race_runs = best_lr([p for p in raced if p[0]["d"] == d])
        full_lr, full_runs = best_lr([p for p in full if p[0]["d"] == d])
        assert race_lr == full_lr and race_runs == full_runs


def test_an_unknown_lr_selection_is_one_clear_error():
    from engine.errors import UserError
    from engine.experiments.grids import Grid
    from engine.experiments.training import train_pairs

    grid = Grid("custom", lr=(0.01, 0.001), lr_select="fastest")
    with pytest.raises(UserError, match="lr_select must be one of all, race"):
        train_pairs(_fake_job, [{"d": 8, "lr": 0.01, "seed": 0}], grid)
