"""engine.lca.inspection: a run's model rebuilt from its checkpoint, and the inspector's numbers."""

import numpy as np
import pytest
import torch

from engine.errors import UserError
from engine.lca.analysis import attention_by_cluster, attention_by_hamming, embedding_geometry, value_swap_report
from engine.lca.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from engine.lca.constructed import theorem1_model
from engine.lca.inspection import (
    InspectionReport,
    inspect_model,
    load_live_model,
    load_model_from_run,
    snapshot_model,
)
from engine.lca.runner import TrainingRun
from engine.lca.task import LCATask

TINY = RunConfig(task=TaskConfig(m=4, L=16), model=ModelConfig(d=16, d_a=16),
                 train=TrainConfig(steps=30, batch_size=64, eval_every=10, eval_size=256, seed=3,
                                   lr=0.01, device="cpu"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect") / "tiny-run"
    run = TrainingRun.start(TINY, out, device="cpu")
    run.run()
    return out, run.trainer


def test_load_model_from_run_returns_the_trainers_weights(tiny_run):
    path, trainer = tiny_run
    cfg, model, step = load_model_from_run(path)
    assert cfg == TINY and step == 30
    assert next(model.parameters()).device.type == "cpu"
    for name, p in trainer.model.named_parameters():
        assert torch.equal(getattr(model, name).detach(), p.detach().cpu()), name
    x, _ = trainer.task.sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(model(x), trainer.model(x))


def test_inspect_model_of_a_run_is_plain_data_and_seeded(tiny_run):
    path, _ = tiny_run
    cfg, model, _ = load_model_from_run(path)
    r = inspect_model(cfg, model, n_samples=512, seed=1)
    assert isinstance(r, InspectionReport)
    assert (r.m, r.L, r.d, r.n_samples) == (4, 16, 16, 512)
    assert r.gram.shape == (16, 16) and r.attention_matrix.shape == (16, 16)
    assert r.sv_W_E.shape == (16,) and r.sv_W_V.shape == (16,)
    # the inspector's gap is the one shared definition (largest s_k/s_{k+1}, k <= m + 2), computed by hand
    s = np.sort(r.sv_W_E)[::-1]
    assert r.gap_W_E == pytest.approx(max(s[k - 1] / s[k] for k in range(1, 4 + 2 + 1)))
    assert sorted(r.attention_cluster) == [1, 2]            # m = 4 > 2: k = 1 and 2
    np.testing.assert_allclose(r.attention_hamming.mass.sum(), 1.0, atol=1e-9)
    for k in range(5):  # the spread holds the mean at every distance
        assert r.pair_min[k] <= r.geometry.mean_inner[k] + 1e-12 <= r.pair_max[k] + 2e-12
    d = r.to_dict()  # JSON-ready, no tensors anywhere
    assert not any(torch.is_tensor(v) for v in d.values())
    again = inspect_model(cfg, model, n_samples=512, seed=1)
    assert again.swap == r.swap and again.angles == r.angles
    np.testing.assert_array_equal(again.attention_matrix, r.attention_matrix)


def test_inspect_model_equals_the_analyses_on_the_same_samples(tiny_run):
    """The forward-pass cache changes no number: same as calling the analyses directly."""
    path, _ = tiny_run
    cfg, model, _ = load_model_from_run(path)
    r = inspect_model(cfg, model, n_samples=300, seed=5)
    x, y = LCATask(cfg.task).sample(300, torch.Generator().manual_seed(5))
    swap = value_swap_report(model, 4, x, y, generator=torch.Generator().manual_seed(6))
    for key in ("trained", "constructed", "random_constructed"):
        assert r.swap[key] == swap[key]
    assert r.swap["bayes"] == LCATask(cfg.task).bayes_accuracy(x, y)
    h = attention_by_hamming(model, x)
    np.testing.assert_allclose(r.attention_hamming.mean, h.mean, rtol=1e-12)
    np.testing.assert_array_equal(r.attention_hamming.counts, h.counts)
    c2 = attention_by_cluster(model, x, 2)
    np.testing.assert_allclose(r.attention_cluster[2].mass, c2.mass, rtol=1e-12)
    g = embedding_geometry(model.W_E, 4)
    assert (r.geometry.a, r.geometry.b, r.geometry.b0) == (g.a, g.b, g.b0)


def test_theorem1_model_known_answers():
    m, L = 4, 16
    model = theorem1_model(m, generator=torch.Generator().manual_seed(0))
    r = inspect_model(TaskConfig(m=m, L=L), model, n_samples=1024, seed=0)
    assert r.swap["constructed"] == r.swap["trained"]           # W_V is the constructed one
    assert r.swap["trained"] > r.swap["random_constructed"]
    np.testing.assert_allclose(r.gram, np.eye(16), atol=1e-5)   # orthonormal W_E
    assert r.angles["constructed"] == pytest.approx(0.0, abs=1e-3)
    seen = r.attention_hamming.counts > 0
    assert seen.all()
    np.testing.assert_allclose(r.attention_hamming.mean, 1 / L, atol=1e-7)  # W_K = W_Q = 0
    np.testing.assert_allclose(r.attention_matrix[~np.isnan(r.attention_matrix)], 1 / L, atol=1e-7)
    assert sorted(r.attention_cluster) == [1, 2]


def test_cluster_neighbourhood_adds_its_own_k():
    cfg = RunConfig(task=TaskConfig(m=5, L=8, neighborhood="cluster:3"), model=ModelConfig(d=8, d_a=8))
    from engine.lca.model import OneLayerTransformer

    model = OneLayerTransformer(32, cfg.model, torch.Generator().manual_seed(0))
    r = inspect_model(cfg, model, n_samples=64)
    assert sorted(r.attention_cluster) == [1, 2, 3]
    # d = 8 >= m = 5: angles defined; spectra of an (8, 32) W_E have 8 values
    assert r.sv_W_E.shape == (8,) and np.isfinite(r.angles["gaussian"])


def test_snapshot_is_a_detached_cpu_copy(tiny_run):
    _, trainer = tiny_run
    snap = snapshot_model(trainer.model)
    assert snap is not trainer.model
    assert all(not p.requires_grad for p in snap.parameters())
    with torch.no_grad():
        snap.W_E.add_(1.0)
    assert not torch.equal(snap.W_E, trainer.model.W_E)  # the original is untouched


def test_damaged_checkpoint_is_a_user_error_naming_it(tiny_run, tmp_path):
    import shutil

    path, _ = tiny_run
    bad = tmp_path / "bad-run"
    shutil.copytree(path, bad)
    ckpt = bad / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(UserError, match="checkpoint.safetensors"):
        load_model_from_run(bad)
    ckpt.unlink()
    with pytest.raises(UserError, match="checkpoint.safetensors"):
        load_model_from_run(bad)
    with pytest.raises(UserError, match="no config.json"):
        load_model_from_run(tmp_path)


def test_checkpoint_that_does_not_fit_the_config_is_a_user_error(tiny_run, tmp_path):
    import json
    import shutil

    path, _ = tiny_run
    other = tmp_path / "other"
    shutil.copytree(path, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model"]["d"] = 8
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="does not match"):
        load_model_from_run(other)


def test_load_live_model_gives_the_model_the_inspector_built_before(tiny_run):
    """Issue 18: the inspector's own rebuild (load_state_dict of the snapshot) moved to the engine."""
    _, trainer = tiny_run
    cfg, model, step = load_live_model(trainer, timeout=10)
    snap = trainer.request_snapshot().result(timeout=10)
    before = type(model)(trainer.task.V, trainer.cfg.model)  # what lca_tui.panels.inspector did
    before.load_state_dict({k.removeprefix("model."): v for k, v in snap["tensors"].items()
                            if not k.startswith(("optim.", "rng."))})
    before.requires_grad_(False)
    before.eval()
    assert cfg is trainer.cfg and step == snap["step"] == 30
    assert not model.training and all(not p.requires_grad for p in model.parameters())
    assert model.state_dict().keys() == before.state_dict().keys()
    for name, t in before.state_dict().items():
        assert torch.equal(model.state_dict()[name], t), name
    x, _ = trainer.task.sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(model(x), before(x))
