"""The trainer learns, stops, pauses, diverges honestly and resumes bit-for-bit."""

import json
import threading

import pytest
import torch

from engine.lca.config import RunConfig
from engine.lca.rundir import RunDir
from engine.lca.runner import TrainingRun
from engine.lca.trainer import Trainer


def _cfg(**kw):
    base = {"m": 4, "L": 32, "d": 32, "d_a": 32, "lr": 0.01, "batch_size": 128, "steps": 800,
            "eval_every": 200, "eval_size": 4096, "device": "cpu", "seed": 0}
    return RunConfig.from_flat({**base, **kw})


def test_small_config_trains_to_within_a_few_points_of_bayes():
    tr = Trainer(_cfg())
    evals = [e for e in tr.events() if e["event"] == "eval"]
    first, last = evals[0], evals[-1]
    assert tr.status == "completed" and tr.step == 800
    assert last["bayes_accuracy"] - last["accuracy"] < 0.05, last
    assert last["accuracy"] > 10 / 16  # far above chance (1/16)
    assert last["loss"] < first["loss"]


def test_same_seed_same_numbers():
    a = Trainer(_cfg(steps=20, eval_every=10)).run()
    b = Trainer(_cfg(steps=20, eval_every=10)).run()
    c = Trainer(_cfg(steps=20, eval_every=10, seed=1)).run()
    assert a == b and a != c


def test_fixed_training_set_is_reused():
    tr = Trainer(_cfg(train_size=64, steps=5))
    x, _ = tr.next_batch()
    pool = {tuple(r) for r in tr.train_set[0].tolist()}
    assert all(tuple(r) in pool for r in x.tolist())


def test_stop_between_steps():
    tr = Trainer(_cfg(steps=10_000))
    for ev in tr.events():
        if ev["event"] == "train" and ev["step"] == 7:
            tr.stop()
    assert tr.status == "stopped" and tr.step == 7


def test_pause_then_resume_continues():
    tr = Trainer(_cfg(steps=6, eval_every=100))
    seen = []
    for ev in tr.events():
        seen.append(ev["event"] if ev["event"] != "status" else ev["status"])
        if ev["event"] == "train" and ev["step"] == 2:
            tr.pause_event.set()
            threading.Timer(0.2, tr.pause_event.clear).start()
    assert "paused" in seen and tr.step == 6 and tr.status == "completed"


def test_nan_loss_is_diverged():
    tr = Trainer(_cfg(steps=50, lr=1e30))
    with torch.no_grad():
        tr.model.W_E.mul_(float("inf"))
    done = tr.run()
    assert done["event"] == "done" and done["status"] == "diverged"


def test_resume_equals_uninterrupted(tmp_path):
    full = TrainingRun.start(_cfg(steps=40, eval_every=10), tmp_path / "full")
    full.run()
    part = TrainingRun.start(_cfg(steps=40, eval_every=10), tmp_path / "part")
    for ev in part.events():
        if ev["event"] == "train" and ev["step"] == 17:
            part.trainer.stop()
    assert RunDir(tmp_path / "part").state()["status"] == "stopped"
    resumed = TrainingRun.resume(tmp_path / "part")
    assert resumed.trainer.step == 17
    resumed.run()
    for (n, p), (_, q) in zip(full.trainer.model.named_parameters(), resumed.trainer.model.named_parameters()):
        assert torch.equal(p, q), n
    fm, rm = RunDir(tmp_path / "full").metrics(), RunDir(tmp_path / "part").metrics()
    f_train = [(r["step"], r["loss"]) for r in fm if r["event"] == "train"]
    r_train = [(r["step"], r["loss"]) for r in rm if r["event"] == "train"]
    assert f_train == r_train and [s for s, _ in r_train] == list(range(1, 41))


def test_resume_crops_metrics_written_after_the_checkpoint(tmp_path):
    run = TrainingRun.start(_cfg(steps=10, eval_every=5), tmp_path / "r")
    for ev in run.events():
        if ev["event"] == "train" and ev["step"] == 5:
            run.trainer.stop()
    with open(tmp_path / "r" / "metrics.jsonl", "a") as fh:  # lines a crash left after the checkpoint
        fh.write(json.dumps({"event": "train", "step": 6, "loss": 9.9}) + "\n")
        fh.write('{"event": "train", "st')  # torn last line
    resumed = TrainingRun.resume(tmp_path / "r")
    assert max(r["step"] for r in RunDir(tmp_path / "r").metrics()) == 5
    resumed.run()
    steps = [r["step"] for r in RunDir(tmp_path / "r").metrics() if r["event"] == "train"]
    assert steps == list(range(1, 11))


def test_checkpoint_holds_no_pickle(tmp_path):
    run = TrainingRun.start(_cfg(steps=3), tmp_path / "r")
    run.run()
    blob = (tmp_path / "r" / "checkpoint.safetensors").read_bytes()
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + header_len])
    assert "model.W_E" in header and "rng.stream" in header and "optim.W_E.exp_avg" in header
    assert json.loads((tmp_path / "r" / "config.json").read_text())["task"]["m"] == 4


def test_damaged_checkpoint_is_reported_by_name(tmp_path):
    from engine.errors import UserError

    run = TrainingRun.start(_cfg(steps=3), tmp_path / "r")
    run.run()
    (tmp_path / "r" / "checkpoint.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="checkpoint.safetensors"):
        TrainingRun.resume(tmp_path / "r")


def test_live_snapshots_are_the_weights_of_a_step():
    """Snapshots requested from another thread while training equal the weights a deterministic
    rerun has after the same number of steps (never a half-applied AdamW update)."""
    cfg = _cfg(m=4, L=16, d=16, d_a=16, steps=60, eval_every=1000, batch_size=32, eval_size=64)
    tr = Trainer(cfg)
    snaps = []
    worker = threading.Thread(target=tr.run)
    worker.start()
    while worker.is_alive():
        snaps.append(tr.request_snapshot().result(timeout=60))
    worker.join()
    snaps.append(tr.request_snapshot().result(timeout=1))  # not running: resolved at once
    assert snaps[-1]["step"] == 60
    assert len({s["step"] for s in snaps}) >= 3
    by_step = {s["step"]: s["tensors"] for s in snaps}
    rerun = Trainer(cfg)
    for step in range(0, 61):
        if step in by_step:
            for name, p in rerun.model.named_parameters():
                assert torch.equal(by_step[step][name], p.detach()), (step, name)
                assert by_step[step][name].device.type == "cpu"
        if step < 60:
            rerun.train_step()
            rerun.step += 1


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from engine.lca.trainer import lr_at

    lrs = [lr_at(s, 0.01, 100, warmup=10, schedule="cosine") for s in range(100)]
    assert lrs[0] == pytest.approx(0.001) and lrs[9] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 1e-5
    assert lr_at(50, 0.01, 100) == 0.01  # constant, no warm-up: the old behaviour


def test_wsd_schedule_is_flat_then_linear_to_zero():
    from engine.lca.trainer import lr_at, wsd_decay_start

    start = wsd_decay_start(120, warmup=10)
    assert start == 100                                  # the last sixth of the run decays
    lrs = [lr_at(s, 0.01, 120, warmup=10, schedule="wsd") for s in range(120)]
    assert lrs[0] == pytest.approx(0.001) and all(v == pytest.approx(0.01) for v in lrs[9:start])
    assert lrs[start + 10] == pytest.approx(0.01 * 10 / 20) and lrs[-1] == pytest.approx(0.01 / 20)
    moved = [lr_at(s, 0.01, 60, warmup=10, schedule="wsd", decay_from=50) for s in range(60)]
    assert moved[49] == pytest.approx(0.01) and moved[55] == pytest.approx(0.005)


def test_begin_decay_anneals_from_now_and_ends_early():
    tr = Trainer(_cfg(steps=1000, schedule="wsd", warmup=10, eval_every=100))
    seen = []

    def cb(ev):
        if ev["event"] == "train":
            seen.append(tr.optimizer.param_groups[0]["lr"])
            if ev["step"] == 200:
                assert tr.begin_decay() and not tr.begin_decay()   # once only
    tr.run(cb)
    assert tr.decay_from == 200 and tr.end_step == 240 and tr.step == 240 and tr.status == "completed"
    assert seen[150] == pytest.approx(0.01) and seen[220] == pytest.approx(0.01 * 20 / 40)
    assert seen[-1] == pytest.approx(0.01 / 40)
    cos = Trainer(_cfg(steps=100, schedule="cosine"))
    assert not cos.begin_decay() and cos.end_step == 100
