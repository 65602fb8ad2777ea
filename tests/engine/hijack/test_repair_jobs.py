"""The repair's units as jobs (``engine.experiments.repair_jobs``): the same result as the in-process
runner; in this process the held model is used (no second load); every finished unit goes to the job
store and a rerun takes them all from there with the same result; a cancel raises ``Cancelled`` and
keeps the units finished before it; ``--jobs 2`` (spawned workers loading the model by spec) gives the
same result."""

from __future__ import annotations

import json

import pytest

from engine.errors import Cancelled
from engine.experiments import repair_jobs
from engine.experiments.jobs import sweep
from engine.hijack.counterfact import load_counterfact
from engine.hijack.repair import repair
from engine.job_context import JobContext
from engine.jobstore import JobStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCHEME = "not-think"
DEFENSES = ("heads", "attention", "steer", "contrastive")


@pytest.fixture(scope="module")
def tiny(tiny_lm_dir):
    from engine.hijack.lm import load_lm

    return load_lm(str(tiny_lm_dir), device="cpu")


@pytest.fixture
def held(tiny, tiny_lm_dir):
    spec = repair_jobs.model_spec(str(tiny_lm_dir), "cpu", "auto")
    repair_jobs.hold(tiny, spec)
    yield spec
    repair_jobs.release()


def _json(out) -> str:
    from engine.atomic import jsonable

    for d in out["defenses"]:
        d.pop("defense", None)
    return json.dumps(jsonable(out), sort_keys=True)


def _repair(lm, model, jobs=1, ctx=None, chunk=1):
    recs = load_counterfact("builtin", limit=4, seed=1)
    return repair(lm, recs, SCHEME, 1, defenses=DEFENSES, batch_size=4, chunk=chunk, ctx=ctx,
                  run_units=repair_jobs.runner(model, jobs))


def test_jobs_equal_the_in_process_runner_and_use_the_held_model(tiny, held, monkeypatch):
    import engine.hijack.lm as lm_mod

    want = _json(repair(tiny, load_counterfact("builtin", limit=4, seed=1), SCHEME, 1, defenses=DEFENSES,
                        batch_size=4, chunk=2))
    monkeypatch.setattr(lm_mod, "load_lm", lambda *a, **k: pytest.fail("a second copy of the model loaded"))
    with sweep(store=None) as sw:
        got = _json(_repair(tiny, held, chunk=2))  # the same units: the same result, bit for bit
    assert got == want and sw.ran == sw.total > 0 and sw.resumed == 0


def test_store_resume_takes_every_unit_and_gives_the_same_result(tiny, held, tmp_path):
    store = JobStore(tmp_path / "jobs")
    with sweep(store=store) as first:
        a = _json(_repair(tiny, held))
    units = first.total
    assert units > 10 and first.ran == units and len(store) == units and store.hits == 0
    with sweep(store=store) as second:
        b = _json(_repair(tiny, held))
    assert a == b
    assert second.resumed == units and second.ran == 0 and store.hits == units
    # another model's units are not its: the spec names the source
    other = {**held, "source": held["source"] + "-other"}
    repair_jobs.hold(tiny, other)
    with sweep(store=store) as third:
        _repair(tiny, other)
    assert third.resumed == 0


def test_a_cancel_keeps_the_finished_units(tiny, held, tmp_path):
    store = JobStore(tmp_path / "jobs")
    reports: list = []

    class AfterFive:
        def is_set(self):
            return len(reports) >= 5

    with sweep(store=store), pytest.raises(Cancelled):
        _repair(tiny, held, ctx=JobContext(lambda done, total, _p: reports.append(done), AfterFive()))
    kept = len(store)
    assert kept == 5  # the units finished before the cancel, each written when it finished
    with sweep(store=store) as again:
        out = _repair(tiny, held)
    assert again.resumed == kept and again.ran == again.total - kept
    with sweep(store=None):
        assert _json(out) == _json(_repair(tiny, held))


def test_two_spawned_workers_give_the_same_result(tiny, held, tmp_path):
    with sweep(store=JobStore(tmp_path / "jobs")) as sw:
        two = _json(_repair(tiny, held, jobs=2, chunk=2))
    assert sw.ran == sw.total and sw.stats and sw.stats[-1].workers == 2
    with sweep(store=None):
        assert two == _json(_repair(tiny, held, chunk=2))
