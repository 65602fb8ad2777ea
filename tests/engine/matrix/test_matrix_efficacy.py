"""The ES sweep in every cell of the matrix: the batched, prefix-shared ``efficacy_curve`` and the
chunked ``efficacy_streamed`` equal ``naive_efficacy_curve`` (one full forward per prompt and target,
no cache, no batching) for every scheme."""

from __future__ import annotations

import math

import pytest

from engine.hijack.counterfact import load_counterfact
from engine.hijack.efficacy import efficacy_curve, naive_efficacy_curve
from engine.hijack.efficacy_stream import efficacy_streamed
from engine.hijack.schemes import SCHEMES
from tests.engine.matrix.conftest import cells, logit_scale
from tests.engine.matrix.tolerance import check, tolerance

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 2  # prepended sentences 0..N
TEMPLATE = "{subject} has nothing to do with {target_false}."
#: scheme -> (scoring, batch size): every scoring rule and small batches that cut records apart
RUNS = {"not-think": ("whole", 3), "relation": ("nll", 2), "reverse-not-think": ("first", 5),
        "reverse-relation": ("whole", 4), "custom": ("first", 3)}
assert set(RUNS) == set(SCHEMES)


@pytest.fixture(scope="module")
def records():
    return load_counterfact("builtin", limit=3, seed=3)


def _margin(s, scoring):
    """How far the record is from the decision under the scoring rule (in log-probability)."""
    if scoring == "first":
        return abs(math.log(s.first_false) - math.log(s.first_true))
    if scoring == "nll":
        return abs(s.nll_false - s.nll_true)
    return abs(math.log(s.p_false) - math.log(s.p_true))


def _diff(fast, slow, scoring, tol):
    """Largest difference of the per-record numbers (log-probabilities halved: they get 2 tol); the
    successes must agree wherever the plain margin exceeds the rounding."""
    assert len(fast.records) == len(slow.records) and fast.n_records == slow.n_records
    worst = 0.0
    for a, b in zip(fast.records, slow.records):
        assert (a.case_id, a.n, a.prompt, a.exact) == (b.case_id, b.n, b.prompt, b.exact)
        worst = max(worst, abs(math.log(a.p_true) - math.log(b.p_true)) / 2,
                    abs(math.log(a.p_false) - math.log(b.p_false)) / 2,
                    abs(a.first_true - b.first_true), abs(a.first_false - b.first_false),
                    abs(a.nll_true - b.nll_true) / 2, abs(a.nll_false - b.nll_false) / 2)
        if a.success != b.success:
            assert _margin(b, scoring) <= 2 * tol, (a, b)
    return worst


@pytest.mark.parametrize("cell", cells())
def test_sweeps_equal_the_naive_loop_for_every_scheme(cell, load_cell, records):
    lm = load_cell(cell)
    tol = tolerance(lm.dtype, max(logit_scale(lm, r.text) for r in records))
    for scheme, (scoring, batch) in RUNS.items():
        template = TEMPLATE if scheme == "custom" else None
        slow = naive_efficacy_curve(lm, records, scheme, N, template=template, scoring=scoring)
        fast = efficacy_curve(lm, records, scheme, N, template=template, scoring=scoring, batch_size=batch)
        check("es", cell, _diff(fast, slow, scoring, tol), tol, f"efficacy_curve {scheme}")
        streamed = efficacy_streamed(lm, records, scheme, N, template=template, scoring=scoring,
                                     batch_size=batch, chunk=2)
        assert [p.count for p in streamed.curve] == [p.count for p in slow.curve]
        worst = 0.0
        for p, q in zip(streamed.curve, slow.curve):
            worst = max(worst, abs(p.p_true - q.p_true), abs(p.p_false - q.p_false))
            ambiguous = sum(_margin(s, scoring) <= 2 * tol for s in slow.records if s.n == q.n)
            assert abs(p.es - q.es) * q.count <= ambiguous, (scheme, p, q)
        check("es", cell, worst, tol, f"efficacy_streamed {scheme}")
        if tol == 1e-4:  # float32: the curves are the same numbers
            assert [p.es for p in fast.curve] == [p.es for p in slow.curve] == [p.es for p in streamed.curve]
