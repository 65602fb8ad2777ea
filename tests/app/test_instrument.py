"""The app's own latency instrumentation (lca_tui/instrument.py, LCA_TUI_INSTRUMENT): off by
default; when on, one keystroke's stages appear in order (request -> probe -> answer -> frame) with
the prompt that was typed, and the main screen logs its layouts and frames."""

import json

import pytest
from app_helpers import wait_for

from lca_tui import instrument
from lca_tui.app import LcaApp


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "stages.jsonl"
    monkeypatch.setattr(instrument, "PATH", str(path))
    monkeypatch.setattr(instrument, "ENABLED", True)
    monkeypatch.setattr(instrument, "_file", None)
    monkeypatch.setattr(instrument, "_pending", None)
    yield path
    if instrument._file is not None:
        instrument._file.close()


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_off_by_default_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(instrument, "PATH", str(tmp_path / "never.jsonl"))
    assert not instrument.ENABLED  # the test process has no LCA_TUI_INSTRUMENT
    instrument.emit("request", prompt="x")
    instrument.answered(seq=1, prompt="x")
    instrument.frame_out()
    assert not (tmp_path / "never.jsonl").exists()
    assert instrument.screen_class().__name__ == "Screen"


def test_frame_follows_only_an_answer(log):
    instrument.frame_out()  # no answer waits: no frame line
    instrument.answered(seq=3, prompt="p")
    instrument.frame_out()
    instrument.frame_out()  # the answer was taken by the first frame
    evs = _events(log)
    assert [e["ev"] for e in evs] == ["answer", "frame"]
    assert evs[1]["seq"] == 3 and evs[1]["t"] >= evs[0]["t"]


async def test_a_keystroke_logs_its_stages_in_order(log, tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.model_info is not None or app.model_error is not None, timeout=120)
        assert app.model_error is None, app.model_error
        p = app.query_one("#hijack")
        await wait_for(pilot, lambda: p.last_request is not None and p.shown_seq == p.last_request.seq)
        await pilot.press("end", "X")
        want = p.prompt_text()
        await wait_for(pilot, lambda: any(e["ev"] == "frame" and e["prompt"] == want for e in _events(log)))
    evs = _events(log)
    first = {}
    for e in evs:
        if e.get("prompt") == want:
            first.setdefault(e["ev"], e)
    assert set(first) >= {"request", "probe", "answer", "frame"}
    t = [first[k]["t"] for k in ("request", "probe", "answer", "frame")]
    assert t == sorted(t) and first["probe"]["t0"] >= first["request"]["t"]
    assert first["frame"]["seq"] == first["answer"]["seq"] and first["answer"]["n_tokens"] > 0
    assert {e["what"] for e in evs if e["ev"] == "ui"} == {"_refresh_layout", "_compositor_refresh"}
