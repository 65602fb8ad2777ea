"""engine.lca.hijack_mirror (issue #19, item 5): the hijack of the one-layer model against plain
implementations — the model's own forward, and the knockout as the context with those tokens deleted
(eq. 4.1 has no positions, so a position that cannot be attended is a position that is not there)."""

import json

import numpy as np
import pytest
import torch

from engine.errors import UserError
from engine.lca.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from engine.lca.hijack_mirror import mirror_contexts, mirror_sweep, parse_token, trace_mirror
from engine.lca.inspection import load_model_from_run, snapshot_model
from engine.lca.latent import LatentSpace
from engine.lca.model import OneLayerTransformer
from engine.lca.runner import TrainingRun
from engine.lca.task import LCATask

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = RunConfig(task=TaskConfig(m=4, L=16), model=ModelConfig(d=16, d_a=8),
                 train=TrainConfig(steps=40, batch_size=64, eval_every=20, eval_size=256, seed=2,
                                   lr=0.02, device="cpu"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirror") / "run"
    TrainingRun.start(TINY, out, device="cpu").run()
    cfg, model, _ = load_model_from_run(out)
    return cfg, model


def _random(task: TaskConfig, seed=0, **model_kw):
    cfg = ModelConfig(**{"d": 12, "d_a": 6, **model_kw})
    return OneLayerTransformer(task.V, cfg, torch.Generator().manual_seed(seed)).eval()


def _double(model):
    return snapshot_model(model).double()


def _plain(model64, tokens: list[int]) -> torch.Tensor:
    """Logits of eq. 4.1 on one context, through the model's reference forward (every key)."""
    return model64.forward_reference(torch.tensor([tokens]))[0]


def _measures(logits: torch.Tensor, y: int, yt: int) -> tuple[float, float, float]:
    p = logits.softmax(0)
    return float(p[y]), float(p[yt]), float(logits[y] - logits[yt])


# ----------------------------------------------------------------------------- sampler
def test_sample_mixed_mask_counts_positions_and_couples_r():
    task = LCATask(TaskConfig(m=5, L=33, omega=1.0, neighborhood="hamming1"))
    D = LatentSpace(5).hamming()
    y1, y2 = torch.full((300,), 3), torch.full((300,), 28)      # D_H(3, 28) = 5: disjoint neighbourhoods
    xs, masks = {}, {}
    for r in (0.0, 0.25, 1.0):
        xs[r], masks[r] = task.sample_mixed(y1, y2, r, torch.Generator().manual_seed(4))
        k = round(r * 32)
        assert (masks[r].sum(1) == k).all() and not masks[r][:, -1].any()
        x = xs[r].numpy()
        assert (D[x[masks[r].numpy()], 28] == 1).all()           # mixed-in tokens come from p(.|y2)
        assert (D[x[~masks[r].numpy()], 3] == 1).all()           # the rest (t_L included) from y1
    assert (masks[0.25] <= masks[1.0]).all()                     # a larger r only adds y2 positions
    keep = ~masks[0.25]
    assert torch.equal(xs[0.25][keep], xs[0.0][keep])            # r = 0 is the same context, y1 twins


# ----------------------------------------------------------------------------- one context
@pytest.mark.parametrize("kw", [{}, {"uniform_attention": True}, {"freeze_value": True}])
def test_contributions_sum_to_the_models_logits(kw):
    task = TaskConfig(m=4, L=20)
    model = _random(task, 1, **kw)
    tr = trace_mirror(task, model, 2, 13, 0.4, seed=5)
    x = torch.tensor([[t["token"] for t in tr.tokens]])
    ref = _plain(_double(model), x[0].tolist())
    for name, v in (("to_true", 2), ("to_false", 13)):
        total = sum(t[name] for t in tr.tokens)
        assert total == pytest.approx(float(ref[v]), abs=1e-9)
    assert tr.hijacked["logit_true"] == pytest.approx(float(ref[2]), abs=1e-9)
    assert sum(t["to_diff"] for t in tr.tokens) == pytest.approx(tr.hijacked["logit_diff"], abs=1e-9)
    with torch.no_grad():                                         # the fast float32 forward agrees too
        f32 = model(x)[0]
    assert tr.hijacked["logit_diff"] == pytest.approx(float(f32[2] - f32[13]), abs=1e-5)
    assert tr.hijacked["prediction"] == int(f32.argmax())
    assert sum(t["attention"] for t in tr.tokens) == pytest.approx(1.0, abs=1e-12)
    a_ref = _double(model).attention_last(x)[0]
    np.testing.assert_allclose([t["attention"] for t in tr.tokens], a_ref.numpy(), atol=1e-12)
    src = tr.by_source
    assert src["y"]["count"] + src["y~"]["count"] + 1 == 20 and src["y~"]["count"] == tr.k == 8
    assert sum(g["to_diff"] for g in src.values()) == pytest.approx(tr.hijacked["logit_diff"], abs=1e-9)


def test_knockout_equals_the_context_with_those_tokens_deleted(trained):
    cfg, model = trained
    m64 = _double(model)
    y, yt = 5, 10
    tr = trace_mirror(cfg, model, y, yt, 0.5, seed=3)
    mixed = [t["source"] == "y~" for t in tr.tokens]
    assert sum(mixed) == tr.k == round(0.5 * 15) and not mixed[-1]
    toks = [t["token"] for t in tr.tokens]
    kept = [t for t, mx in zip(toks, mixed) if not mx]             # each mixed-in token removed by hand
    rest = [t for i, (t, mx) in enumerate(zip(toks, mixed)) if mx or i == len(toks) - 1]
    for name, ctx in (("knockout", kept), ("knockout_rest", rest), ("hijacked", toks),
                      ("clean", tr.clean_tokens)):
        p_t, p_f, diff = _measures(_plain(m64, ctx), y, yt)
        got = getattr(tr, name)
        assert got["p_true"] == pytest.approx(p_t, abs=1e-9), name
        assert got["p_false"] == pytest.approx(p_f, abs=1e-9), name
        assert got["logit_diff"] == pytest.approx(diff, abs=1e-9), name
        assert got["prediction"] == int(_plain(m64, ctx).argmax()), name
    # the clean context: the same draw with every y~ token replaced by its y twin
    assert all(c == t for c, t, mx in zip(tr.clean_tokens, toks, mixed) if not mx)
    flip = tr.flip
    assert flip["to_false"] == (tr.hijacked["prediction"] == yt)
    assert flip["away_from_true"] == (tr.clean["prediction"] == y and tr.hijacked["prediction"] != y)


def test_r0_gives_the_clean_context_and_r1_mixes_every_context_token():
    task = TaskConfig(m=3, L=12)
    model = _random(task, 2)
    tr = trace_mirror(task, model, 1, 6, 0.0, seed=9)
    assert tr.k == 0 and all(t["source"] == "y" for t in tr.tokens)
    assert tr.hijacked == tr.clean == tr.knockout
    assert tr.clean_tokens == [t["token"] for t in tr.tokens]
    full = trace_mirror(task, model, 1, 6, 1.0, seed=9)
    assert full.k == 11 and full.knockout_rest == full.hijacked      # nothing else left to mask
    assert full.by_source["y"]["count"] == 0


def test_trace_is_seeded_and_json_ready(trained):
    cfg, model = trained
    a = trace_mirror(cfg, model, "0101", "1010", 0.3, seed=7).to_dict()
    b = trace_mirror(cfg, model, 5, 10, 0.3, seed=7).to_dict()
    c = trace_mirror(cfg, model, 5, 10, 0.3, seed=8).to_dict()
    assert a == b and json.loads(json.dumps(a)) == a
    assert [t["token"] for t in a["tokens"]] != [t["token"] for t in c["tokens"]]
    for name in ("clean", "hijacked", "knockout", "knockout_rest"):
        assert {"p_true", "p_false", "logit_diff"} <= set(a[name])
    assert a["y_bits"] == "0101" and a["prediction"]["hijacked"] == a["hijacked"]["prediction"]


@pytest.mark.parametrize("y, yt, r, msg", [
    (16, 3, 0.5, "y must be a token id in 0..15"),
    (3, 3, 0.5, "ỹ must differ from y"),
    (3, "0x2", 0.5, "ỹ must be a token"),
    (3, 4, 1.5, r"r must be a number in \[0, 1\]"),
    (3, 4, "half", r"r must be a number in \[0, 1\]"),
    (-1, 4, 0.2, "y must be a token id"),
])
def test_bad_input_is_one_user_error(y, yt, r, msg):
    task = TaskConfig(m=4, L=8)
    with pytest.raises(UserError, match=msg):
        trace_mirror(task, _random(task), y, yt, r)


def test_bad_seed_and_model_task_mismatch_are_user_errors():
    task = TaskConfig(m=4, L=8)
    with pytest.raises(UserError, match="seed"):
        trace_mirror(task, _random(task), 1, 2, 0.5, seed=-1)
    with pytest.raises(UserError, match="V = 8 tokens but the task has m = 4"):
        trace_mirror(task, _random(TaskConfig(m=3, L=8)), 1, 2, 0.5)
    with pytest.raises(UserError, match="at least one ratio"):
        mirror_sweep(task, _random(task), 1, 2, ratios=[])


def test_parse_token_reads_bits_or_ids():
    assert parse_token("01011", 5) == 11 and parse_token("11", 5) == 11 and parse_token(7, 3) == 7
    assert parse_token(" 3 ", 2) == 3 and parse_token("01", 2) == 1
    with pytest.raises(UserError, match="id 0..7 or 3 bits"):
        parse_token("abc", 3)


# ----------------------------------------------------------------------------- the sweep
def test_sweep_means_equal_a_loop_over_contexts(trained):
    cfg, model = trained
    m64 = _double(model)
    y, yt, n = 2, 12, 12
    sw = mirror_sweep(cfg, model, y, yt, ratios=(0.0, 0.5, 1.0), n=n, seed=4)
    task = LCATask(cfg.task)
    for p in sw.points:
        x, mixed = mirror_contexts(task, y, yt, p["r"], n, 4)
        hij, ko = [], []
        for row, mx in zip(x.tolist(), mixed.tolist()):
            hij.append(_plain(m64, row))
            ko.append(_plain(m64, [t for t, b in zip(row, mx) if not b]))
        for name, lgs in (("hijacked", hij), ("knockout", ko)):
            got = p[name]
            assert got["p_true"] == pytest.approx(np.mean([_measures(lg, y, yt)[0] for lg in lgs]), abs=1e-9)
            assert got["p_false"] == pytest.approx(np.mean([_measures(lg, y, yt)[1] for lg in lgs]), abs=1e-9)
            assert got["away_from_true"] == pytest.approx(np.mean([int(lg.argmax()) != y for lg in lgs]))
            assert got["to_false"] == pytest.approx(np.mean([int(lg.argmax()) == yt for lg in lgs]))
        assert p["k"] == round(p["r"] * 15)
    assert sw.points[0]["hijacked"] == sw.points[0]["knockout"]          # r = 0: nothing to knock out
    assert sw.curve("hijacked", "p_true")[0] == [0.0, 0.5, 1.0]
    assert mirror_sweep(cfg, model, y, yt, ratios=(0.5,), n=n, seed=4).points[0] == sw.points[1]
