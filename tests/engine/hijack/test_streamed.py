"""ES over large record sets (issue 21): the chunked, store-backed sweep equals one ``efficacy_curve``
call, keeps no per-record scores, resumes from the store, and a ``--max-prepends`` that cannot fit the
model's window is refused before any scoring."""

from __future__ import annotations

import json

import pytest

import engine.hijack.efficacy_stream as stream
from engine.errors import UserError
from engine.hijack.counterfact import load_counterfact
from engine.hijack.efficacy import check_window, efficacy_curve, flip_points
from engine.hijack.efficacy_stream import efficacy_streamed
from engine.hijack.lm import load_lm
from engine.job_context import JobContext
from engine.jobstore import JobStore


@pytest.fixture(scope="module")
def tiny(tiny_lm_dir):
    return load_lm(str(tiny_lm_dir), device="cpu")


@pytest.fixture(scope="module")
def records():
    return load_counterfact("builtin", limit=7, seed=4)


def _same(streamed, whole):
    assert streamed.records == ()  # no per-record scores or prompts are kept
    assert streamed.n_records == whole.n_records
    assert [p.es for p in streamed.curve] == [p.es for p in whole.curve]
    assert [p.count for p in streamed.curve] == [p.count for p in whole.curve]
    for a, b in zip(streamed.curve, whole.curve):  # other batches, other padding: float32 rounding only
        assert a.p_true == pytest.approx(b.p_true, rel=1e-5) and a.p_false == pytest.approx(b.p_false, rel=1e-5)
    assert flip_points(streamed) == flip_points(whole)


@pytest.mark.parametrize("scheme,scoring", [("not-think", "whole"), ("reverse-not-think", "first")])
def test_streamed_chunks_equal_one_efficacy_curve(tiny, records, scheme, scoring):
    whole = efficacy_curve(tiny, records, scheme, 2, scoring=scoring, batch_size=4)
    _same(efficacy_streamed(tiny, records, scheme, 2, scoring=scoring, batch_size=4, chunk=3), whole)


def test_one_chunk_is_exactly_efficacy_curve(tiny, records):
    whole = efficacy_curve(tiny, records, "not-think", 2, batch_size=4)
    one = efficacy_streamed(tiny, records, "not-think", 2, batch_size=4)
    assert one.curve == whole.curve


def test_streamed_sweep_resumes_from_the_store(tiny, records, tmp_path, monkeypatch):
    store = JobStore(tmp_path)
    whole = efficacy_curve(tiny, records, "not-think", 2, batch_size=4)
    first = efficacy_streamed(tiny, records[:6], "not-think", 2, batch_size=4, store=store, chunk=3)
    assert len(store) == 2 and store.hits == 0
    entry = json.loads(next(tmp_path.glob("??/*.json")).read_text())
    assert "prompt" not in json.dumps(entry["result"])  # per-record results, not per-record prompts
    scored = []
    real = stream.efficacy_curve
    monkeypatch.setattr(stream, "efficacy_curve", lambda lm, recs, *a, **k: scored.append(len(recs)) or real(lm, recs, *a, **k))
    seen = []
    again = efficacy_streamed(tiny, records, "not-think", 2, batch_size=4, store=store, chunk=3,
                              ctx=JobContext(lambda d, t, _p: seen.append((d, t))))
    assert store.hits == 2 and scored == [1]  # the two finished chunks are read, only the last is scored
    assert seen[-1] == (21, 21)
    _same(again, whole)
    assert first.n_records == 6


def test_a_max_prepends_beyond_the_window_is_refused_before_any_work(tiny, records, monkeypatch):
    import engine.hijack.schemes as schemes

    built = []
    real = schemes.build_prompt
    monkeypatch.setattr(schemes, "build_prompt", lambda rec, scheme, n, t=None: built.append(n) or real(rec, scheme, n, t))
    with pytest.raises(UserError, match=r"--max-prepends 100000 .* window of .* at most \d+ prepends fit"):
        check_window(tiny, records, "not-think", 100000)
    assert set(built) == {0, 1}  # no prompt of 100000 sentences was built
    monkeypatch.undo()
    check_window(tiny, records, "not-think", 2)  # fits: no error
    with pytest.raises(UserError, match="window"):
        efficacy_streamed(tiny, records[:1], "not-think", 100000)


def test_the_largest_fitting_n_is_accepted(tiny, records):
    with pytest.raises(UserError) as err:
        check_window(tiny, records[:1], "not-think", 1000)
    fits = int(str(err.value).split("at most ")[1].split()[0])
    check_window(tiny, records[:1], "not-think", fits)
    with pytest.raises(UserError):
        check_window(tiny, records[:1], "not-think", fits + 1)
