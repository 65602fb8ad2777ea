"""``ends_only`` (the sweep scores n = 0 and N only, what a before/after needs, as ``repair`` asks): the
scores at n = 0 and N are the full sweep's, the points between have no records, and fewer prompts are
run. Plain and under every defense, on a tiny Llama and GPT-2 (float32)."""

from __future__ import annotations

import math

import pytest

from engine.hijack.counterfact import load_counterfact
from engine.hijack.defenses import Defense, steer_vector
from engine.hijack.efficacy_defended import defended_curve
from engine.job_context import JobContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N = 3


def _defenses(lm, records):
    mid = lm.n_layers // 2
    return [Defense("none"), Defense("drop-context"), Defense("heads", 0.0, heads=((0, 0), (lm.n_layers - 1, 1))),
            Defense("attention", 0.2, blocks=tuple(range(lm.n_layers))), Defense("contrastive", 1.0),
            Defense("steer", 2.0, blocks=(mid,), v=steer_vector(lm, records[:2], "not-think", N, mid))]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_ends_only_scores_are_the_full_sweeps(family, family_dir):
    from engine.hijack.lm import load_lm

    lm = load_lm(str(family_dir(family)), device="cpu")
    records = load_counterfact("builtin", limit=5, seed=1)
    for d in _defenses(lm, records):
        full = defended_curve(lm, records, "not-think", N, d, batch_size=3)
        seen = []
        ends = defended_curve(lm, records, "not-think", N, d, batch_size=3, ends_only=True,
                              ctx=JobContext(lambda done, total, _p=None: seen.append((done, total))))
        assert {s.n for s in ends.records} == {0, N}, d.name
        want = {(s.record_index, s.n): s for s in full.records if s.n in (0, N)}
        got = {(s.record_index, s.n): s for s in ends.records}
        assert got.keys() == want.keys()
        for k, s in got.items():
            assert s.success == want[k].success, (d.name, k)
            assert math.isclose(s.p_true, want[k].p_true, rel_tol=1e-4, abs_tol=1e-7), (d.name, k)
            assert math.isclose(s.p_false, want[k].p_false, rel_tol=1e-4, abs_tol=1e-7), (d.name, k)
        assert [p.count for p in ends.curve] == [5, 0, 0, 5]
        assert ends.curve[N].es == full.curve[N].es and ends.curve[0].es == full.curve[0].es
        if d.name != "drop-context":  # drop-context's progress is its n = 0 sweep's
            assert seen and seen[-1][1] == 2 * len(records)
