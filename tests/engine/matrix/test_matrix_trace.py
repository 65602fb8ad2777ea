"""The causal trace in every cell of the matrix, against one full forward per intervention
(``engine.hijack.trace_reference``): the full trace against ``reference_trace`` (the pair, every
restore, knockout and head, the clean and hijacked measures, the per-head attribution, the direct
attribution's sums), ``last_position`` (the sink kept and masked), ``ablate_heads``, the dataset
trace of built-in records, and the ``hijack-mechanism`` per-record pieces."""

from __future__ import annotations

import math

import pytest
import torch

from engine.hijack import device_check as D
from engine.hijack import trace as T
from engine.hijack import trace_reference as R
from engine.hijack.blocks import locate
from engine.hijack.counterfact import load_counterfact
from tests.engine.matrix.conftest import cells, logit_scale
from tests.engine.matrix.tolerance import check, tolerance

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPT = "The Eiffel Tower is located in the city of"
PREPEND = "Do not think of London. The twin city of Lyon is not Beijing. Do not think of London. "
TARGETS = (" Paris", " London")


def _diff(a: T.Measure, b: T.Measure) -> float:
    return max(abs(a.p_true - b.p_true), abs(a.p_false - b.p_false), abs(a.logit_diff - b.logit_diff))


def _setup(cell, load_cell):
    lm = load_cell(cell)
    pair = T.prepare(lm, PROMPT, PREPEND, *TARGETS)
    return lm, pair, tolerance(lm.dtype, max(logit_scale(lm, PREPEND + PROMPT), logit_scale(lm, PROMPT)))


def _raw_last_logits(lm, ids):
    """The unembedding's output at the last position before any final soft-capping (a hook on it)."""
    got = {}
    head = lm.model.get_output_embeddings()
    handle = head.register_forward_hook(lambda _m, _a, out: got.__setitem__("x", out[0, -1].float()))
    try:
        with torch.inference_mode():
            lm.model(torch.tensor([list(ids)]))
    finally:
        handle.remove()
    return got["x"]


def _mdiff(m: T.Measure, ref: dict) -> float:
    return max(abs(m.p_true - ref["p_true"]), abs(m.p_false - ref["p_false"]), abs(m.logit_diff - ref["logit_diff"]))


@pytest.mark.parametrize("cell", cells())
def test_full_trace_equals_the_reference_trace(cell, load_cell):
    """``trace`` against ``reference_trace`` (its own pair from the strings, one full forward per
    intervention, its own per-head attribution): the pair, every measure, the per-head DLA."""
    lm, pair, tol = _setup(cell, load_cell)
    tr = T.trace(lm, pair, window=2, chunk=7)  # a small chunk: rows cross batch boundaries
    ref = R.reference_trace(lm, PROMPT, PREPEND, *TARGETS, window=2)
    assert (list(pair.ids), list(pair.clean_ids), pair.true_id, pair.false_id) == \
        (list(ref["ids"]), list(ref["clean_ids"]), ref["true_id"], ref["false_id"])
    assert [tuple(x) for x in pair.positions] == [tuple(x) for x in ref["positions"]]
    worst = max(_mdiff(tr.clean, ref["clean"]), _mdiff(tr.hijacked, ref["hijacked"]))
    for layer in range(lm.n_layers):
        for kind in T.KINDS:
            for j in range(len(pair.positions)):
                worst = max(worst, _mdiff(tr.restore[kind][layer][j], ref["restore"][kind][layer][j]))
        for v in T.KNOCKOUTS:
            worst = max(worst, _mdiff(tr.knockout[v][layer], ref["knockout"][v][layer]))
        for h in range(len(tr.heads[layer])):
            worst = max(worst, _mdiff(tr.heads[layer][h], ref["heads"][layer][h]))
    check("trace", cell, worst, tol, "every intervention")
    d = tr.dla
    check("dla", cell, max(abs(a - b) for row, rrow in zip(d["heads"], ref["dla_heads"]) for a, b in zip(row, rrow)),
          tol, "per-head attribution")
    # the direct attribution sums to the logit difference before any final soft-capping
    raw = _raw_last_logits(lm, pair.ids)
    total = d["embed"] + sum(d["attn"]) + sum(d["mlp"]) + d["bias"]
    check("dla", cell, abs(total - float(raw[pair.true_id] - raw[pair.false_id])), tol, "dla sum")
    if all(getattr(b.out_proj, "bias", None) is None for b in locate(lm).blocks):  # heads leave the bias out
        check("dla", cell, max(abs(sum(row) - a) for row, a in zip(d["heads"], d["attn"])), tol, "heads sum")


@pytest.mark.parametrize("cell", cells())
def test_last_position_and_head_ablation_equal_the_plain_loops(cell, load_cell):
    lm, pair, tol = _setup(cell, load_cell)
    fast = D.last_position(lm, pair, variants=T.KNOCKOUTS, window=2)
    plain = R.last_position_trace(lm, pair, 2, variants=T.KNOCKOUTS)
    assert set(fast) == set(plain)
    worst = max(_diff(a, b) for key in fast for a, b in zip(fast[key], plain[key]))
    check("last_position", cell, worst, tol, "restore_last and every knockout")
    sink = D.last_position(lm, pair, variants=("all", "mentions_window"), window=2, knock_sink=True)
    worst = max(_diff(sink[v][layer], R.knockout(lm, pair, v, layer, 2, sink=True))
                for v in ("all", "mentions_window") for layer in range(lm.n_layers))
    check("last_position", cell, worst, tol, "knockouts with the sink masked")
    n_heads = locate(lm).n_heads
    sets = [[], [(0, 1)], [(0, 1), (1, 0)], [(layer, h) for layer in range(lm.n_layers) for h in range(n_heads)]]
    got = T.ablate_heads(lm, pair, sets, chunk=3)
    check("ablate_heads", cell, max(_diff(R.zero_heads(lm, pair, hs), m) for hs, m in zip(sets, got)), tol,
          "joint head ablation")


@pytest.fixture(scope="module")
def records():
    return load_counterfact("builtin", limit=4, seed=1)


@pytest.mark.parametrize("cell", cells())
def test_dataset_trace_equals_the_plain_forwards(cell, load_cell, records):
    from engine.hijack.trace_dataset import trace_records

    lm = load_cell(cell)
    tol = tolerance(lm.dtype, max(logit_scale(lm, r.text) for r in records))
    traced = [rt for rt in trace_records(lm, records[:3], "not-think", 1, window=2) if rt.trace is not None]
    assert len(traced) >= 2, [rt.skipped for rt in trace_records(lm, records[:3], "not-think", 1, window=2)]
    worst = 0.0
    for rt in traced:
        tr, pair = rt.trace, rt.trace.pair
        assert len(pair.positions) == 1  # the dataset trace restores at the last position only
        worst = max(worst, _diff(R._measure(lm, pair), tr.hijacked))
        for layer in range(lm.n_layers):
            for kind in T.KINDS:
                worst = max(worst, _diff(R.restore(lm, pair, kind, layer, 0), tr.restore[kind][layer][0]))
            for v in T.KNOCKOUTS:
                worst = max(worst, _diff(R.knockout(lm, pair, v, layer, tr.window), tr.knockout[v][layer]))
            for h in range(len(tr.heads[layer])):
                worst = max(worst, _diff(R.zero_head(lm, pair, layer, h), tr.heads[layer][h]))
    check("trace_dataset", cell, worst, tol, "records' last-position trace")


def _finite(x) -> bool:
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(_finite(v) for v in x)
    return not isinstance(x, float) or math.isfinite(x)


#: the mechanism's pieces only run the trace above: one attention implementation per family
@pytest.mark.parametrize("cell", cells(attns="default"))
def test_mechanism_pieces_run_and_are_finite(cell, load_cell):
    from engine.experiments.mechanism import held_out_heads, mechanism_row, summarise, trace_all

    lm = load_cell(cell)
    records = load_counterfact("builtin", limit=6, seed=1)
    traces, skipped = trace_all(lm, records, "not-think", 1, window=2)
    assert len(traces) + len(skipped) == len(records) and len(traces) >= 4  # 2 + 2 halves: CIs defined
    heads = held_out_heads(lm, traces, top_k=(1, 3))
    summary = summarise(traces)
    row = mechanism_row(lm.name, "not-think", traces, heads)
    assert heads["ablation"] and heads["ranking"]
    for name, value in (("summary", summary), ("heads", heads), ("row", row)):
        assert _finite(value), name
