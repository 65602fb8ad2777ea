"""Efficacy curves: the prefix-shared, batched sweep must equal the naive one-prompt-at-a-time loop."""

from __future__ import annotations

import math
import threading

import pytest

import engine.hijack.efficacy as eff
import engine.hijack.efficacy_batch as es_batch
from engine.errors import Cancelled, UserError
from engine.hijack.counterfact import load_counterfact
from engine.hijack.efficacy import efficacy_curve, naive_efficacy_curve
from engine.hijack.lm import LanguageModel, load_lm
from engine.job_context import JobContext


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny(request, tiny_lm_dir, tiny_gpt2_dir):
    return load_lm(str(tiny_lm_dir if request.param == "llama" else tiny_gpt2_dir), device="cpu")


@pytest.fixture(scope="module")
def records():
    return load_counterfact("builtin", limit=5, seed=3)


def assert_equal_results(fast, slow, tol=1e-4):
    assert [p.es for p in fast.curve] == [p.es for p in slow.curve]
    assert [p.count for p in fast.curve] == [p.count for p in slow.curve]
    assert len(fast.records) == len(slow.records)
    for a, b in zip(fast.records, slow.records):
        assert (a.case_id, a.n, a.prompt, a.success) == (b.case_id, b.n, b.prompt, b.success)
        assert math.log(a.p_true) == pytest.approx(math.log(b.p_true), abs=tol)
        assert math.log(a.p_false) == pytest.approx(math.log(b.p_false), abs=tol)
        assert a.nll_true == pytest.approx(b.nll_true, abs=tol)
        assert a.first_false == pytest.approx(b.first_false, rel=tol)


@pytest.mark.parametrize("scheme,scoring,batch", [
    ("not-think", "whole", 16), ("not-think", "first", 3), ("relation", "nll", 1),
    ("reverse-not-think", "whole", 7), ("reverse-relation", "first", 16),
])
def test_shared_sweep_equals_naive(tiny, records, scheme, scoring, batch):
    fast = efficacy_curve(tiny, records, scheme, 3, scoring=scoring, batch_size=batch)
    slow = naive_efficacy_curve(tiny, records, scheme, 3, scoring=scoring)
    assert_equal_results(fast, slow)
    assert fast.metric == ("accuracy" if scheme.startswith("reverse") else "efficacy")
    assert [p.n for p in fast.curve] == [0, 1, 2, 3] and fast.n_records == len(records)


def test_custom_template_and_curve_means(tiny, records):
    template = "{subject} has nothing to do with {target_false}."
    res = efficacy_curve(tiny, records, "custom", 2, template=template, batch_size=4)
    assert_equal_results(res, naive_efficacy_curve(tiny, records, "custom", 2, template=template))
    for p in res.curve:
        rows = [r for r in res.records if r.n == p.n]
        assert p.count == len(records)
        assert p.es == sum(r.p_false > r.p_true for r in rows) / len(rows)
        assert p.p_true == pytest.approx(sum(r.p_true for r in rows) / len(rows))
    assert res.records[-1].prompt.startswith(records[-1].subject + " has nothing to do with")
    assert res.to_dict()["template"] == template   # what the session keeps: the scheme is reproducible
    assert "template" not in efficacy_curve(tiny, records[:1], "not-think", 0).to_dict()


def test_prefix_is_really_shared(tiny, records, monkeypatch):
    """The sweep runs far fewer tokens than the naive prompts hold."""
    ran = []
    real = es_batch.extend

    def spy(lm, past, rows, **kw):
        ran.append(sum(len(r) for r in rows))
        return real(lm, past, rows, **kw)

    monkeypatch.setattr(es_batch, "extend", spy)
    efficacy_curve(tiny, records, "not-think", 5, batch_size=64)
    from engine.hijack.schemes import build_prompt

    naive_tokens = 0  # what the naive loop runs: prompt + target[:-1], once per target
    for r in records:
        for n in range(6):
            prompt = build_prompt(r, "not-think", n)
            for t in (r.target_true, r.target_false):
                naive_tokens += len(tiny.encode(prompt)) + len(tiny.encode(" " + t, special=False)) - 1
    assert sum(ran) < 0.6 * naive_tokens
    assert len(ran) == 2  # one forward for the shared prefixes, one for every (record, n)


def test_without_kv_reuse_still_equal(tiny, records, monkeypatch):
    monkeypatch.setattr(LanguageModel, "kv_reuse", property(lambda self: False))
    fast = efficacy_curve(tiny, records, "not-think", 2, batch_size=5)
    assert_equal_results(fast, naive_efficacy_curve(tiny, records, "not-think", 2))


def test_progress_and_cancel(tiny, records):
    seen = []
    res = efficacy_curve(tiny, records, "not-think", 2, batch_size=2,
                         ctx=JobContext(lambda d, t, _p: seen.append((d, t))))
    assert seen[-1] == (len(records) * 3, len(records) * 3)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert not res.cancelled

    stop = threading.Event()

    def cancel_after_first(done, total, _partial):
        stop.set()

    with pytest.raises(Cancelled) as cancelled:  # the one rule: a cancel raises, the partial result rides along
        efficacy_curve(tiny, records, "not-think", 2, batch_size=3, ctx=JobContext(cancel_after_first, stop))
    part = cancelled.value.partial
    assert part.cancelled and part.n_records < len(records)
    assert all(p.count == part.n_records for p in part.curve)


@pytest.mark.parametrize("kwargs,match", [
    ({"scoring": "median"}, "scoring"),
    ({"max_prepends": -1}, "prepends"),
    ({"batch_size": 0}, "batch size"),
    ({"scheme": "nope"}, "scheme"),
    ({"scheme": "custom"}, "template"),
])
def test_bad_requests(tiny, records, kwargs, match):
    args = {"scheme": "not-think", "max_prepends": 2, **kwargs}
    with pytest.raises(UserError, match=match):
        efficacy_curve(tiny, records, **args)


def test_empty_records(tiny):
    with pytest.raises(UserError, match="no records"):
        efficacy_curve(tiny, [], "not-think", 2)


def test_out_of_memory_suggests_smaller_batch(tiny, records, monkeypatch):
    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(es_batch, "extend", oom)
    with pytest.raises(UserError, match="smaller --batch-size"):
        efficacy_curve(tiny, records, "not-think", 2, batch_size=8)


@pytest.mark.slow
def test_embedded_shared_es_equals_naive(smollm):
    recs = load_counterfact("builtin", limit=4, seed=0)
    fast = efficacy_curve(smollm, recs, "not-think", 3, batch_size=16)
    slow = naive_efficacy_curve(smollm, recs, "not-think", 3)
    assert_equal_results(fast, slow)


def test_sweep_dict_is_what_the_session_stores(records):
    """The one-record sweep as the app records it (issue 18: the app passes the result along)."""
    curve = (eff.CurvePoint(0, 0.0, 0.6, 0.1, 1), eff.CurvePoint(1, 1.0, 0.2, 0.5, 1))
    res = eff.EfficacyResult("smol", "relation", "efficacy", "first", 1, 1, curve, records=())
    assert res.sweep_dict(records[0]) == {
        "kind": "sweep", "model": "smol", "scheme": "relation", "record": records[0].to_dict(),
        "points": [{"n": 0, "p_true": 0.6, "p_false": 0.1}, {"n": 1, "p_true": 0.2, "p_false": 0.5}]}


def test_every_forward_is_followed_by_a_progress_break(tiny, records, monkeypatch):
    """The app's model thread answers a waiting probe at ``ctx.pause()``: no two forwards of an
    evaluation may run back to back without one (the shared-prefix forward included)."""
    events = []
    real = es_batch.extend
    monkeypatch.setattr(es_batch, "extend", lambda *a, **k: (events.append("forward"), real(*a, **k))[1])
    efficacy_curve(tiny, records, "not-think", 2, batch_size=3, ctx=JobContext(pause=lambda: events.append("break")))
    assert events.count("forward") >= 4
    assert all(not (a == b == "forward") for a, b in zip(events, events[1:])), events
    assert events[-1] == "break"


def test_the_apps_efficacy_jobs_batch_fewer_rows_on_a_cpu(tiny):
    from engine.hijack.jobs import APP_ES_BATCH_CPU, app_batch_size

    assert str(tiny.device) == "cpu" and app_batch_size(tiny) == APP_ES_BATCH_CPU < 8
