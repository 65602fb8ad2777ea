"""Types instead of tags: the app saves a RecordResult by its record's type (the untyped
``RecordResult(kind, result, meta)`` still works), and the inspector's sources are dataclasses that
load in the worker and say what a refresh computes."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from lca_tui.app import LcaApp
from lca_tui.messages import RecordResult
from lca_tui.panels.inspector_sources import LiveSource, RunSource, SnapshotSource
from lca_tui.records import Evaluation, PinnedTrace, Sweep


class _Result:
    model = "tiny"

    def to_dict(self, per_record=False):
        return {"per_record": per_record}

    def sweep_dict(self, record):
        return {"record": record}


class _Session:
    def __init__(self):
        self.calls = []

    def record_hijack(self, data):
        self.calls.append(("hijack", data))

    def record_sweep(self, data):
        self.calls.append(("sweep", data))

    def record_trace(self, data):
        self.calls.append(("trace", data))
        return Path("trace-1.json")


def test_the_untyped_form_is_typed_by_its_kind():
    r = _Result()
    assert isinstance(RecordResult("efficacy", r, {"relation": "P131"}).record, Evaluation)
    sweep = RecordResult("sweep", r, {"record": "rec"}).record
    assert isinstance(sweep, Sweep) and sweep.record == "rec" and sweep.result is r
    assert isinstance(RecordResult("trace", r).record, PinnedTrace)
    assert RecordResult("probe", r).record is None
    typed = RecordResult.of(Sweep(r, "rec"), {"scheme": "relation"})
    assert typed.kind == "sweep" and typed.record.result is r and typed.meta == {"scheme": "relation"}


def test_the_app_saves_each_record_by_its_type():
    r, session = _Result(), _Session()
    app = SimpleNamespace(session=session, notify=lambda *a, **k: None)
    save = LcaApp.__dict__["save_record"].__get__(app, LcaApp)  # app.save_record, on a stand-in app
    save(Evaluation(r, "P131"))
    save(Sweep(r, "rec"))
    save(PinnedTrace(r))
    assert session.calls == [("hijack", {"per_record": True, "dataset": "builtin", "relation": "P131"}),
                             ("sweep", {"record": "rec"}), ("trace", {"per_record": False, "model": "tiny"})]
    with pytest.raises(TypeError):
        save(r)


def test_sources_load_and_say_what_a_refresh_computes(tmp_path):
    from engine.errors import UserError

    run = RunSource(str(tmp_path / "my-run"))
    assert run.label == "my-run" and run.again() is run
    snap = SnapshotSource("cfg", "model", "live run", 7)
    assert snap.load() == ("cfg", "model", 7) and snap.again() is snap
    live = SnapshotSource("cfg", "model", "live run", 7, take=lambda: ("cfg", "new", 8)).again()
    assert isinstance(live, LiveSource) and live.label == "live run" and live.load() == ("cfg", "new", 8)

    def gone():
        raise RuntimeError("the run is gone")

    with pytest.raises(UserError, match="could not take a snapshot: the run is gone"):
        LiveSource("x", gone).load()
