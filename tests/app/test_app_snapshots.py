"""SVG snapshots of every panel at 80 x 24 and 120 x 40, with content that fills their tables and
charts: the hijack panel with a fixed probe answer (logit lens chart), the trainer with two finished
runs in the session. No model, no training: deterministic. The inspector's snapshots live with its
tests. Cursor blink is off in Textual's test driver."""

import math

import numpy as np
import pytest

from lca_tui.app import LcaApp
from lca_tui.messages import ProbeAnswered

SIZES = [(80, 24), (120, 40)]


def _app(monkeypatch, tmp_path):
    monkeypatch.setattr("lca_tui.app.memory_in_use", lambda: "100 MiB")  # the status bar is live
    return LcaApp(load_model=False, session=str(tmp_path / "snap-session"))


def fixed_probe(prompt: str):
    """A probe answer with fixed numbers: top-10 bars, two targets, a 12-layer logit lens (Chicago ahead in
    layers 7-11, Paris at the output), its target lens (the log-probs: same differences) and surprise."""
    from engine.hijack.probe import LogitLens, ProbeResult, TargetLens, TargetProb, TokenProb

    words = [" Paris", " Chicago", " France", " the", " a", " Europe", " London", " Rome", " Lyon", " Berlin"]
    probs = [0.31, 0.22, 0.09, 0.06, 0.04, 0.03, 0.02, 0.015, 0.01, 0.008]
    top = tuple(TokenProb(token=w, token_id=i, prob=p, logit=math.log(p), rank=i + 1)
                for i, (w, p) in enumerate(zip(words, probs)))
    targets = (TargetProb(" Paris", 0.31, 0.31, 1, 1), TargetProb(" Chicago", 0.22, 0.22, 2, 1))
    layers = np.arange(1, 13)
    lens_p = np.stack([1e-5 * 10 ** (layers / 12 * 4.5), 1e-6 * 10 ** (layers / 12 * 6.5)], axis=1)
    lens_p[-1] = [0.31, 0.22]
    ranks = np.maximum(1, (1 / lens_p).astype(int) // 10)
    return ProbeResult(prompt=prompt, token_ids=tuple(range(6)),
                       tokens=("The", " Eiffel", " Tower", " is", " in", ""), top_k=top, targets=targets,
                       surprise=(math.nan, 9.1, 6.2, 0.9, 2.4, 3.3),
                       logit_lens=LogitLens((" Paris", " Chicago"), lens_p, ranks),
                       target_lens=TargetLens((" Paris", " Chicago"), (0, 1), np.log(lens_p)))


#: Fig. 1's prompt at n = 3 as tokens, with a fixed surprise that collapses over the repeats.
_SENTENCE = ["The", " E", "iffel", " Tower", " is", " not", " in", " Chicago", "."]
_HIJACK_TOKENS = tuple(_SENTENCE + [" " + _SENTENCE[0]] + _SENTENCE[1:] + [" The"] + _SENTENCE[1:]
                       + [" The", " E", "iffel", " Tower", " is", " in"])
_HIJACK_SURPRISE = ((math.nan, 7.9, 5.1, 0.8, 1.9, 4.6, 2.2, 7.4, 1.6)
                    + (3.1, 1.2, 0.2, 0.1, 0.3, 1.1, 0.4, 1.9, 0.3)
                    + (1.4, 0.4, 0.1, 0.1, 0.1, 0.3, 0.1, 0.5, 0.1)
                    + (1.0, 0.3, 0.1, 0.1, 0.1, 3.6))


def fixed_hijack_probe(prompt: str):
    """``fixed_probe`` over Fig. 1's prompt at n = 3: its tokens and their surprise."""
    import dataclasses

    return dataclasses.replace(fixed_probe(prompt), token_ids=tuple(range(len(_HIJACK_TOKENS))),
                               tokens=_HIJACK_TOKENS, surprise=_HIJACK_SURPRISE)


async def _show_fixed_probe(pilot, view="lens", probe=fixed_probe, keys=()):
    panel = pilot.app.query_one("#hijack")
    await pilot.pause()
    await pilot.press("escape", *keys)
    panel.query_one("#hijack-views").active = view
    await pilot.pause()
    req = panel.last_request
    panel.post_message(ProbeAnswered(req, result=probe(req.prompt), seconds=0.012))
    await pilot.pause(0.6)  # curves redraw at 4 Hz


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_hijack_panel_snapshot(snap_compare, monkeypatch, tmp_path, size):
    assert snap_compare(_app(monkeypatch, tmp_path), terminal_size=size, run_before=_show_fixed_probe)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_hijack_surprise_snapshot(snap_compare, monkeypatch, tmp_path, size):
    """The Surprise view: the token strip, the column per token below it, the lens pair on the right."""

    async def run_before(pilot):
        await _show_fixed_probe(pilot, view="surprise", probe=fixed_hijack_probe, keys=("plus",) * 3)
        assert pilot.app.query_one("#hijack").prompt_text() == "".join(_HIJACK_TOKENS)

    assert snap_compare(_app(monkeypatch, tmp_path), terminal_size=size, run_before=run_before)


async def test_logit_lens_is_a_chart_with_the_table_one_key_away(monkeypatch, tmp_path):
    from textual.widgets import ContentSwitcher, DataTable

    from widgets import LiveCurve

    app = _app(monkeypatch, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _show_fixed_probe(pilot)
        lens = fixed_probe("").logit_lens
        curve = app.query_one("#lens-curve", LiveCurve)
        assert curve.series_names == ["␣Paris", "␣Chicago"]
        xs, ys = curve._series[curve.series_names[0]]
        assert xs == list(range(1, 13))
        assert ys == pytest.approx([math.log10(p) for p in lens.probs[:, 0]])
        switcher = app.query_one("#lens-switcher", ContentSwitcher)
        assert switcher.current == "lens-curve"
        await pilot.press("l")
        assert switcher.current == "lens-table"
        table = app.query_one("#lens-table", DataTable)
        assert table.row_count == 12 and table.get_row_at(11)[1] == "31.00% / 1"
        await pilot.press("l")
        assert switcher.current == "lens-curve"


def _finished_run(session_dir, name, steps, acc, bayes, **overrides):
    """A finished run on disk (config, metrics, state), written by hand: fixed numbers, in a
    session made by the store (so it opens without warnings)."""
    from engine.lca.config import RunConfig
    from engine.lca.rundir import RunDir
    from engine.session.store import open_cli_session

    open_cli_session(str(session_dir))

    cfg = RunConfig.from_flat({**RunConfig().flat(), "steps": steps, "eval_every": steps // 10, **overrides})
    rd = RunDir.create(session_dir / "runs" / name, cfg)
    for i in range(1, 11):
        step = i * steps // 10
        rd.append({"event": "train", "step": step, "loss": 4.2 * math.exp(-i / 3), "accuracy": acc * i / 10,
                   "samples_per_s": 1000.0})
        rd.append({"event": "eval", "step": step, "loss": 4.2 * math.exp(-i / 3) + 0.05,
                   "accuracy": acc * (1 - math.exp(-i / 2)), "bayes_accuracy": bayes})
    rd.close()
    rd.write_state({"status": "completed", "step": steps, "best_accuracy": acc, "bayes_accuracy": bayes})


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_trainer_panel_snapshot(snap_compare, monkeypatch, tmp_path, size):
    session = tmp_path / "snap-session"
    _finished_run(session, "20260101-120000-m6-L64-1a2b", 2000, 0.9531, 0.9610)
    _finished_run(session, "20260101-130000-m8-L128-3c4d", 150000, 0.8125, 0.8203, m=8, L=128,
                  freeze_value=True)

    async def run_before(pilot):
        await pilot.pause()
        await pilot.press("escape", "2")
        panel = pilot.app.query_one("#trainer")
        panel.set_field("omega", "1.5")  # an invalid value, marked inline
        pilot.app.query_one("#runs-table").focus()
        await pilot.press("down")  # the second run: its curves
        await pilot.pause(0.6)

    assert snap_compare(_app(monkeypatch, tmp_path), terminal_size=size, run_before=run_before)


async def test_runs_table_shows_every_value_uncut(monkeypatch, tmp_path):
    """Each cell's text fits its column, at 80 and 120 columns (the 120-column table used to cut
    the run id and the step)."""
    from textual.widgets import DataTable

    session = tmp_path / "snap-session"
    _finished_run(session, "20260101-130000-m8-L128-3c4d", 150000, 0.8125, 0.8203, m=8, L=128)
    for size in SIZES:
        app = _app(monkeypatch, tmp_path)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.press("escape", "2")
            await pilot.pause()
            t = app.query_one("#runs-table", DataTable)
            assert t.virtual_size.width <= t.size.width, size  # no horizontal scrolling
            row = t.get_row_at(0)
            keys = [k.value for k in t.columns]
            assert "150000/150000" in row
            assert row[keys.index("run")] == "130000-3c4d"
            for key, col in t.columns.items():
                for cell in [col.label.plain, *[str(v) for v in t.get_column(key)]]:
                    assert max(len(line) for line in cell.split("\n")) <= col.content_width, (size, cell)
            if size[0] >= 120:
                assert "config" in keys


async def test_targets_table_updates_in_place_and_marks_the_hijack(monkeypatch, tmp_path):
    """While the tracked targets stay the same the table is repainted, never laid out again (one
    repaint per answer); the numbers are the new answer's, and the false target is marked once it leads."""
    import dataclasses

    from widgets import RowTable

    app = _app(monkeypatch, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _show_fixed_probe(pilot, view="surprise")
        panel, table = app.query_one("#hijack"), app.query_one("#targets", RowTable)
        layouts = []
        real = table.refresh
        table.refresh = lambda *a, **kw: (layouts.append(kw.get("layout", False)), real(*a, **kw))[1]
        res = fixed_probe(panel.last_request.prompt)
        t0, t1 = res.targets
        swapped = dataclasses.replace(res, targets=(dataclasses.replace(t0, prob=0.0123, rank=12),
                                                    dataclasses.replace(t1, prob=0.456, rank=1)))
        panel.post_message(ProbeAnswered(panel.last_request, result=swapped))
        await pilot.pause()
        assert layouts and not any(layouts)
        assert table.get_row_at(0)[1:3] == ["1.23%", "12"] and table.get_row_at(1)[1:] == [
            "45.60%", "1", "22.00%", "▲ hijacked"]
        assert app.query_one("#hijack-toolbar").has_class("-hijacked")
