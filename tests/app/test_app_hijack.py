"""The hijack panel driven by the keyboard: live bars follow typing, stale answers are dropped,
n steps rebuild the prompt, a failed model load keeps the previous model."""

import pytest
from app_helpers import wait_for

from lca_tui.app import LcaApp
from lca_tui.messages import ProbeAnswered, ProbeRequest


def _panel(app):
    return app.query_one("#hijack")


async def _loaded(pilot, app):
    await wait_for(pilot, lambda: app.model_info is not None or app.model_error is not None, timeout=120)
    assert app.model_error is None, app.model_error
    p = _panel(app)
    await wait_for(pilot, lambda: p.last_request is not None and p.shown_seq == p.last_request.seq)


async def _evaluate(pilot, p):
    """Evaluate the efficacy score (escape, e) and wait for the curve."""
    await pilot.press("escape", "e")
    await wait_for(pilot, lambda: p.eval_job is None and p.eval_result is not None, timeout=120)
    return p.eval_result


async def test_typing_moves_the_bars(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        before = p.last_result
        bars = app.query_one("#topk-bars")
        rows_before = list(bars.rows)
        assert len(rows_before) == 10 and rows_before[0].rank == 1
        await pilot.press("end", *" Rome London")
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq and p.last_result is not before)
        assert p.last_result.prompt == p.prompt_text() and p.prompt_text().endswith("Rome London")
        assert list(bars.rows) != rows_before
        probs = [r.prob for r in bars.rows]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        # the targets table holds both tracked targets with their numbers
        table = app.query_one("#targets")
        assert table.row_count == 2


async def test_stale_answers_are_dropped(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        shown = p.last_result
        old = ProbeRequest(seq=p.last_request.seq - 1, prompt="old prompt")
        p.on_probe_answered(ProbeAnswered(old, result=object()))
        assert p.last_result is shown


async def test_n_steps_rebuild_the_prompt_and_probe(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        base = p.prompt_text()
        await pilot.press("escape", "plus", "plus")
        assert p.n == 2
        assert p.prompt_text().endswith(base) and p.prompt_text().count("Chicago") == 2
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq)
        assert p.last_result.prompt == p.prompt_text()
        await pilot.press("minus", "minus", "minus")
        assert p.n == 0 and p.prompt_text() == base
        await pilot.press("s")
        assert p.scheme != "relation"


async def test_failed_model_load_shows_error_and_keeps_the_model(tiny_lm_dir, tmp_path):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        name = app.model_info["name"]
        app.load_model(str(tmp_path / "no-such-model"))
        await wait_for(pilot, lambda: app.model_error is not None)
        assert "no-such-model" in app.model_error
        assert app.model_host.lm is not None and app.model_host.lm.name == name
        p = _panel(app)
        await pilot.press("escape", "plus")  # the kept model still answers
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq)
        assert p.last_result.prompt == p.prompt_text()


async def test_first_model_fails_app_keeps_running(tmp_path):
    app = LcaApp(model=str(tmp_path / "missing"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.model_error is not None, timeout=60)
        assert "missing" in app.model_error
        await pilot.press("escape", "2")
        assert app.query_one("#panels").current == "trainer"


async def test_evaluate_fills_the_efficacy_curve(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        r = await _evaluate(pilot, p)
        assert [pt.n for pt in r.curve] == list(range(6))
        assert r.n_records == len([x for x in p.records if x.relation_id == p.record.relation_id])
        assert all(0.0 <= pt.es <= 1.0 for pt in r.curve)
        await wait_for(pilot, lambda: app.results)  # RecordResult is a message up to the app
        assert app.results[-1][0] == "efficacy"


@pytest.mark.slow
async def test_real_model_chicago_overtakes_paris(smollm):
    """README's story with the embedded model: step n up on the Eiffel Tower record."""
    app = LcaApp()  # the embedded default, converted by the smollm fixture's cache dir
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        first = p.last_result
        assert first.targets[0].target == " Paris" and first.targets[0].prob > first.targets[1].prob
        await pilot.press("escape", *["plus"] * 8)
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq, timeout=60)
        paris, chicago = p.last_result.targets[0], p.last_result.targets[1]
        assert chicago.prob > paris.prob
        assert app.query_one("#hijack-toolbar").has_class("-hijacked")


async def test_answers_and_timers_arriving_under_a_modal_do_not_crash(tiny_lm_dir):
    """Probe answers, job messages and the status timer reach the main screen's widgets even while
    the help modal is on top (they used to query the modal and raise NoMatches)."""
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        assert app.screen.query("#help-table")
        p.n += 1
        p.rebuild_prompt()  # a new probe is answered while help is open
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq)
        await pilot.pause(1.3)  # the 1 s status-bar timer fires under the modal
        assert "jobs" in str(app.status.render())
        await pilot.press("escape")
        assert not app.screen.query("#help-table")


@pytest.mark.parametrize("row", [0, 1])
async def test_removing_a_record_target_drops_its_role_and_the_hijacked_mark(tiny_lm_dir, row):
    """With a third target tracked, removing the true (row 0) or false (row 1) target must not pass its
    role to the row that moves up, nor compare the remaining targets for the HIJACKED mark."""
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        true_t, false_t = p.targets
        await pilot.press("escape", "t", *" Rome", "enter")
        await wait_for(pilot, lambda: len(p.targets) == 3 and p.shown_seq == p.last_request.seq
                       and app.query_one("#targets").row_count == 3)
        table = app.query_one("#targets")
        table.focus()
        table.move_cursor(row=row)
        await pilot.press("x")
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq and table.row_count == 2)
        kept = [true_t, false_t][1 - row]
        roles = [str(table.get_row_at(i)[4]) for i in range(2)]
        assert roles == [("false" if row == 0 else "true"), ""]
        assert p.targets == [kept, " Rome"] and p.record is not None  # n steps keep working
        text = p._shown["toolbar"]
        assert "HIJACKED" not in text and "true target ahead" not in text
        assert not app.query_one("#hijack-toolbar").has_class("-hijacked")


async def test_the_right_column_shows_the_pairs_logit_difference_per_layer(tiny_lm_dir):
    """Every probe also asks for the target lens; the right column's LayerBars shows logit(true) −
    logit(false) per layer for the record's pair, equal to a separate Prober's full logit lens (log-prob
    differences), and says there is no pair once the false target is removed."""
    import numpy as np

    from engine.hijack.lm import load_lm
    from engine.hijack.probe import Prober
    from widgets import LayerBars

    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        assert p.last_request.analyses == ("surprise", "target_lens")  # the Surprise view's own, then the lens
        true_t, false_t = p.targets
        bars = app.query_one("#lens-pair", LayerBars)
        lens = Prober(load_lm(str(tiny_lm_dir), device="cpu")).probe(
            p.last_result.prompt, p.targets, analyses=("logit_lens",)).logit_lens
        log_p = np.log(lens.probs.astype(np.float64))
        np.testing.assert_allclose(bars.values, log_p[:, 0] - log_p[:, 1], atol=1e-4)
        assert len(bars.values) == 2  # the tiny Llama's two blocks, the last one the model's own logits
        await pilot.pause()
        lines = [bars.render_line(y).text for y in range(bars.size.height)]
        assert "◀ ␣Chicago" in lines[1] and "␣Paris ▶" in lines[1]
        assert [line.split()[0] for line in lines[2:4]] == ["L1", "L2"]
        table = app.query_one("#targets")
        await pilot.press("escape")
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("x")
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq and table.row_count == 1)
        assert p.targets == [true_t] and false_t not in p.roles
        assert bars.values == [] and "no true/false pair" in bars.render_line(0).text


def test_relation_schemes_evaluate_only_records_with_a_template():
    """relation and reverse-relation: the chosen record's relation, else every templated relation;
    never a record whose relation falls back to the generic sentence."""
    import dataclasses

    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.schemes import relation_templates, scheme_records

    records = load_counterfact("builtin")
    orphan = dataclasses.replace(records[0], case_id=-1, relation_id="P99999")
    pool = records + [orphan]
    known = relation_templates()
    for scheme in ("relation", "reverse-relation"):
        chosen, rel = scheme_records(pool, scheme, records[5])
        assert rel == records[5].relation_id
        assert chosen == [r for r in records if r.relation_id == rel]
        chosen, rel = scheme_records(pool, scheme, None)
        assert rel is None and orphan not in chosen and chosen == [r for r in records if r.relation_id in known]
        chosen, rel = scheme_records(pool, scheme, orphan)  # no template for its relation: the templated ones
        assert orphan not in chosen and len(chosen) == len(records)
    for scheme in ("not-think", "reverse-not-think"):
        assert scheme_records(pool, scheme, records[5]) == (pool, None)


async def test_efficacy_view_overlays_models_and_shows_flip_points(tiny_lm_dir, tiny_gpt2_dir):
    """Two models evaluated in one app session: the ES view draws each model's latest curve (legend by
    model) and, per model, the flip-point histogram, mean/median and the records flipping earliest/never."""
    from engine.hijack.efficacy import flip_points, flip_summary

    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        first = await _evaluate(pilot, p)
        app.load_model(str(tiny_gpt2_dir))
        await wait_for(pilot, lambda: app.model_host.lm is not None and app.model_host.lm.name != first.model
                       and not app.model_host.busy, timeout=120)
        await pilot.press("e")
        await wait_for(pilot, lambda: p.eval_job is None and p.eval_result is not first, timeout=120)
        second = p.eval_result
        assert second.model != first.model and second.scheme == first.scheme
        assert set(p.eval_results) == {(first.model, first.scheme), (second.model, second.scheme)}
        curve = app.query_one("#eval-curve")
        names = [m.rstrip("/").rsplit("/", 1)[-1] for m in (first.model, second.model)]
        assert curve.series_names == names and len(set(names)) == 2
        for name, res in zip(names, (first, second)):
            assert curve._series[name] == ([float(pt.n) for pt in res.curve], [pt.es for pt in res.curve])
        text = str(app.query_one("#flip-info").render())
        subjects = {r.case_id: r.subject for r in p.records}
        for name, res in zip(names, (first, second)):
            s = flip_summary(flip_points(res), res.max_prepends)
            line = next(x for x in text.splitlines() if x.startswith(name))
            assert f"({' '.join(map(str, s.histogram))})" in line
            assert f"never ({s.never}/{s.records})" in line
            assert ("mean —" if s.mean is None else f"mean {s.mean:.2f}") in line
            for ids in (s.earliest, s.never_ids):
                assert all(subjects[i] in line for i in ids[:3])


async def test_custom_scheme_is_checked_inline_then_probed_and_evaluated(tiny_lm_dir):
    """u: a template with an unknown placeholder gives one message and stays in the box; a good one
    becomes the custom scheme: the prompt, the sweep and ES use it (ES equal to the engine's)."""
    from engine.hijack.efficacy import efficacy_curve
    from engine.hijack.schemes import build_prompt

    bad, good = "{subject} is {bogus}.", "Think of {target_false} near {subject}."
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        box = app.query_one("#template-input")
        await pilot.press("escape", "u", *bad, "enter")
        assert "Unknown placeholder {bogus}" in p._shown["error"]
        assert box.value == bad and box.has_class("-visible") and p.scheme == "relation" and p.template is None
        box.value = ""
        await pilot.press(*good, "enter")
        assert p.scheme == "custom" and p.template == good and not box.has_class("-visible")
        assert p._shown["error"] == ""
        rec = p.record
        assert p.prompt_text() == build_prompt(rec, "custom", p.n, good) and p.n == 1
        assert f"Think of {rec.target_false} near {rec.subject}." in p.prompt_text()
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq)
        assert p.last_result.prompt == p.prompt_text()
        await pilot.press("s")  # the scheme cycle includes custom once it has a template
        while p.scheme != "custom":
            await pilot.press("s")
        p.records = p.records[:8]  # a small pool keeps the evaluation quick
        await pilot.press("e")
        await wait_for(pilot, lambda: p.eval_job is None and p.eval_result is not None, timeout=120)
        r = p.eval_result
        assert (r.scheme, r.template, r.n_records) == ("custom", good, 8)
        assert {s.prompt for s in r.records if s.record_index == 0} == {
            build_prompt(p.records[0], "custom", n, good) for n in range(6)}
        ref = efficacy_curve(app.model_host.lm, p.records, "custom", 5, good)
        assert [pt.es for pt in r.curve] == [pt.es for pt in ref.curve]
        assert (r.model, "custom") in p.eval_results


async def test_reverse_scheme_axis_says_accuracy(tiny_lm_dir):
    from engine.hijack.efficacy import efficacy_curve
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        curve = app.query_one("#eval-curve")
        for scheme, label in (("reverse-not-think", "accuracy"), ("not-think", "ES")):
            res = efficacy_curve(lm, p.records[:2], scheme, 1)
            p.views["efficacy"].draw(res, {}, p.records)
            assert curve.ylabel == label and curve.title.startswith(res.metric)


async def test_the_record_line_never_wraps_inside_n_at_80_columns(tiny_lm_dir):
    import re

    from engine.hijack.counterfact import FactRecord

    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        p = _panel(app)
        p.use_record(FactRecord(case_id=7, subject="The Hungarian Parliament Building", prompt="{} is located in",
                                relation_id="P131", target_true="Budapest", target_false="Vienna"))
        for _ in range(12):
            await pilot.press("escape", "plus")
            await pilot.pause()
            svg = app.export_screenshot()
            assert re.search(r"n=\d+", svg), "the record line shows n=<count> as one word"
            assert not re.search(r"n&#160;=", svg)
