"""``engine.hijack.repair`` (issue 30, items 2-3): the α choice bounds the clean AND the reverse cost; the
attention defense's blocks come from the selection half's knockout curve (the rule recomputed here from
full traces); the knockout curve is the trace's; the result does not depend on how the records are split
into units; the default runner cancels between units; a custom scheme has no reverse."""

from __future__ import annotations

import json
import math

import pytest

from engine.errors import Cancelled, UserError
from engine.hijack.counterfact import load_counterfact
from engine.hijack.repair import MAX_CLEAN_COST, choose_alpha, in_process, knockout_blocks, repair
from engine.job_context import JobContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCHEME = "not-think"


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    """A tiny random Llama of 6 blocks (the conftest's has 2: too few to tell a block rule apart)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.hijack.lm import load_lm
    from tests.families import tiny_tokenizer

    path = tmp_path_factory.mktemp("tiny-llama-6")
    fast = tiny_tokenizer(bos=True)
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=6,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      bos_token_id=0, eos_token_id=1, initializer_range=0.3)
    LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return load_lm(str(path), device="cpu")


@pytest.fixture(scope="module")
def tiny(tiny_lm_dir):
    from engine.hijack.lm import load_lm

    return load_lm(str(tiny_lm_dir), device="cpu")


def _point(es, clean, rev):
    return {"es": es, "clean_accuracy": clean, "reverse_accuracy": rev}


def test_alpha_with_a_reverse_cost_above_the_bound_is_rejected():
    base = _point(0.8, 1.0, 1.0)
    points = [(0.0, _point(0.0, 1.0, 0.5)),   # the largest drop, clean free, reverse down 0.5: rejected
              (0.3, _point(0.4, 0.99, 1.0)),  # clean down 0.01, reverse free: the largest allowed drop
              (0.6, _point(0.6, 1.0, 1.0))]
    assert choose_alpha(points, base) == 0.3
    # the clean bound alone (the rule before the fix) took α = 0
    assert max((base["es"] - s["es"], a) for a, s in points if base["clean_accuracy"] - s["clean_accuracy"]
               <= MAX_CLEAN_COST)[1] == 0.0
    # a reverse cost just within the bound is allowed
    assert choose_alpha([(0.0, _point(0.0, 1.0, 1.0 - MAX_CLEAN_COST)), (0.3, _point(0.4, 1.0, 1.0))], base) == 0.0
    # no reverse (custom): the clean cost alone
    assert choose_alpha([(0.0, _point(0.0, 1.0, None)), (0.3, _point(0.4, 1.0, None))], _point(0.8, 1.0, None)) == 0.0


def test_no_alpha_qualifies_the_smallest_larger_cost_wins():
    base = _point(0.8, 1.0, 1.0)
    points = [(0.0, _point(0.0, 1.0, 0.5)), (0.3, _point(0.4, 0.9, 0.95)), (0.6, _point(0.6, 0.7, 1.0))]
    assert choose_alpha(points, base) == 0.3  # costs (0, .5), (.1, .05), (.3, 0): the larger is smallest at 0.3


def test_knockout_block_rule():
    assert knockout_blocks([0.1, 2.0, -1.0, 1.0, 0.5]) == (1,)  # P = 3.6, 2.0 >= 1.8
    assert knockout_blocks([0.5, 1.0, -3.0, 1.0, 0.5]) == (1, 3)  # P = 3.0: 1.0 + 1.0 (ties: lower block first)
    assert knockout_blocks([0.4, 0.3, 0.3]) == (0, 1)  # P = 1.0: 0.4 + 0.3 >= 0.5
    assert knockout_blocks([-1.0, 0.0, -0.5]) == (0, 1, 2)  # nothing raises it: every block
    assert knockout_blocks([0.0, 0.0]) == (0, 1)


def test_knockout_curve_is_the_traces(deep):
    from engine.hijack.trace import knockout_curve, trace
    from engine.hijack.trace_dataset import record_pair

    rec = load_counterfact("builtin", limit=1, seed=2)[0]
    pair = record_pair(deep, rec, SCHEME, 2)
    full = trace(deep, pair, heads=False, every_position=False)
    hijacked, curve = knockout_curve(deep, pair, "all")
    assert hijacked == full.hijacked and curve == list(full.knockout["all"])


def test_attention_blocks_come_from_the_selection_halfs_knockout_curve(deep):
    from engine.hijack.trace_dataset import trace_records

    recs = load_counterfact("builtin", limit=8, seed=5)
    out = repair(deep, recs, SCHEME, 2, defenses=("attention",), alpha=0.5, batch_size=4)
    (att,) = out["defenses"]
    # the rule, recomputed from full traces of the selection records (even positions)
    traces = [t.trace for t in trace_records(deep, recs[0::2], SCHEME, 2, heads=False) if t.trace is not None]
    assert traces
    effects = [sum(t.knockout["all"][b].logit_diff - t.hijacked.logit_diff for t in traces) / len(traces)
               for b in range(6)]
    pos = sum(e for e in effects if e > 0)
    assert pos > 0, effects
    want, got = [], 0.0
    for b in sorted(range(6), key=lambda b: -effects[b]):
        if got >= pos / 2:
            break
        want.append(b)
        got += effects[b]
    assert att["params"]["blocks"] == sorted(want), effects
    assert len(want) < 6  # the curve picks blocks out, not every block
    # the evaluation records play no part: other records at the odd positions, the same blocks
    sel = recs[0::2]
    taken = {r.case_id for r in recs}
    fresh = [r for r in load_counterfact("builtin", limit=20, seed=9) if r.case_id not in taken][:len(sel)]
    mixed = [x for both in zip(sel, fresh) for x in both]
    again = repair(deep, mixed, SCHEME, 2, defenses=("attention",), alpha=0.5, batch_size=4)
    assert again["defenses"][0]["params"]["blocks"] == att["params"]["blocks"]


def _json(out) -> str:
    from engine.atomic import jsonable

    for d in out["defenses"]:
        d.pop("defense", None)
    return json.dumps(jsonable(out), sort_keys=True)


def _close(a, b, path="") -> None:
    """``a`` and ``b`` (JSON) equal but for float rounding (rel or abs 1e-5: log-probabilities)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5), (path, a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def test_the_result_does_not_depend_on_how_the_records_are_split(tiny):
    """Other chunks batch the records differently: the same result but for float rounding."""
    recs = load_counterfact("builtin", limit=6, seed=1)
    got = [_json(repair(tiny, recs, SCHEME, 2, batch_size=4, chunk=c)) for c in (1, 2, 100)]
    _close(json.loads(got[0]), json.loads(got[1]))
    _close(json.loads(got[0]), json.loads(got[2]))
    data = json.loads(got[0])
    assert [d["name"] for d in data["defenses"]] == ["heads", "attention", "contrastive", "steer", "drop-context"]
    for d in data["defenses"]:
        assert {p["alpha"] for p in d["frontier"]} >= {d["params"]["alpha"]}
        assert "reverse_accuracy" in d["frontier"][0]


def test_units_are_counted_and_a_cancel_stops_between_them(tiny):
    recs = load_counterfact("builtin", limit=4, seed=1)
    seen: list = []

    class Stop:
        def is_set(self):
            return len(seen) >= 3

    runner = in_process(tiny)
    calls = []

    def run_units(kind, specs, ctx):
        calls.append((kind, len(specs)))
        return runner(kind, specs, ctx)

    ctx = JobContext(progress=lambda done, total, _p: seen.append((done, total)), cancel=Stop())
    with pytest.raises(Cancelled):
        repair(tiny, recs, SCHEME, 1, defenses=("heads", "contrastive"), batch_size=4, chunk=1, ctx=ctx,
               run_units=run_units)
    assert len(seen) == 3 and calls[0] == ("select", 2)  # 2 selection records, one unit each
    seen.clear()
    repair(tiny, recs, SCHEME, 1, defenses=("heads", "contrastive"), batch_size=4, chunk=1,
           ctx=JobContext(progress=lambda done, total, _p: seen.append((done, total))))
    # select 2; score: none on both halves (4), heads 3 α x 2 halves x 2 records (12), contrastive the same (12)
    assert seen[-1] == (30, 30) and [d for d, _ in seen] == list(range(1, 31))


def test_custom_scheme_has_no_reverse(tiny):
    recs = load_counterfact("builtin", limit=4, seed=1)
    out = repair(tiny, recs, "custom", 1, defenses=("heads", "drop-context"), batch_size=4,
                 template="Some say {subject} relates to {target_false}.")
    for d in out["defenses"]:
        assert d["reverse_accuracy_before"] is None and d["reverse_fall"] is None
    with pytest.raises(UserError):
        repair(tiny, recs, SCHEME, 1, defenses=("heads",), chunk=0)


def test_ties_and_the_reverse_log_p_change_are_the_sweeps(tiny):
    """``tied_after`` and ``reverse_log_p_true_change`` are what the defended sweeps give, record by record."""
    from engine.hijack.defenses import Defense
    from engine.hijack.efficacy_defended import defended_curve

    recs = load_counterfact("builtin", limit=8, seed=2)
    d = Defense("contrastive", 4.0, beta=0.5)  # a hard cut-off: both targets may be cut to 0
    (entry,) = repair(tiny, recs, SCHEME, 2, defenses=(d,), batch_size=4)["defenses"]
    evaluation = recs[1::2]

    def at_n(scheme, defense):
        res = defended_curve(tiny, evaluation, scheme, 2, defense, batch_size=4)
        return sorted((s for s in res.records if s.n == 2), key=lambda s: s.record_index)

    after = at_n(SCHEME, d)
    assert entry["tied_after"] == sum(s.p_true == s.p_false for s in after)
    before_r, after_r = at_n("reverse-not-think", Defense("none")), at_n("reverse-not-think", d)
    diffs = [math.log(a.p_true) - math.log(b.p_true) for a, b in zip(after_r, before_r) if a.p_true > 0]
    got = entry["reverse_log_p_true_change"]
    assert got["n"] == len(diffs)
    if diffs:
        assert math.isclose(got["mean"], sum(diffs) / len(diffs), rel_tol=1e-4, abs_tol=1e-5)
