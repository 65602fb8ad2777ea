"""The Trace view of the hijack panel: a new prompt is traced after its probe, the numbers are the
engine's, a stale trace is cancelled, bad pairs are said inline, k cycles the displays, p pins."""

from __future__ import annotations

from app_helpers import wait_for

from lca_tui.app import LcaApp


def _traceable(lm, records):
    """A built-in record whose two targets start with different tokens in this tokenizer."""
    from engine.hijack.probe import continuation_ids

    for rec in records:
        ids = lm.encode(rec.text)
        a = continuation_ids(lm, rec.text, ids, " " + rec.target_true)[0][0]
        b = continuation_ids(lm, rec.text, ids, " " + rec.target_false)[0][0]
        if a != b:
            return rec
    raise AssertionError("no traceable record")


def _current(view, p) -> bool:
    """The shown trace is of the prompt in the editor and none is running."""
    r = view.result
    return r is not None and view.job is None and r.pair.prepend + r.pair.prompt == p.prompt_text()


async def _open_trace(pilot, app):
    await wait_for(pilot, lambda: app.model_info is not None, timeout=120)
    p = app.query_one("#hijack")
    await pilot.press("escape", "v", "v", "v")
    assert p.view == "trace"
    return p, p.views["trace"]


async def test_trace_is_the_engines_and_follows_the_prompt(tiny_lm_dir, tmp_path):
    from engine.hijack import trace as T
    from engine.hijack.lm import load_lm

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    app = LcaApp(model=str(tiny_lm_dir), session=str(tmp_path / "s"))
    async with app.run_test(size=(120, 40)) as pilot:
        p, view = await _open_trace(pilot, app)
        # the default record at n = 0: nothing is prepended, said inline
        await wait_for(pilot, lambda: "nothing is prepended" in str(view.query_one("#trace-info").render()))
        p.use_record(_traceable(lm, p.records))
        await pilot.press("plus", "plus")
        info = view.query_one("#trace-info")
        try:
            await wait_for(pilot, lambda: _current(view, p), timeout=120)
        except AssertionError:
            raise AssertionError(str(info.render())) from None
        tr = view.result
        want = T.trace(lm, T.prepare(lm, p.record.text, p.prompt_text()[: -len(p.record.text)],
                                     " " + p.record.target_true, " " + p.record.target_false,
                                     p.record.target_false))
        assert tr.pair.ids == want.pair.ids
        assert abs(tr.hijacked.logit_diff - want.hijacked.logit_diff) < 1e-4
        assert all(abs(a.logit_diff - b.logit_diff) < 1e-4
                   for a, b in zip(tr.knockout["mentions"], want.knockout["mentions"]))
        curve = app.query_one("#trace-curve")
        assert set(curve.series_names) >= {"restore last", "knockout all", "mentions ±w", "rest ±w"}
        assert curve.hlines["clean"] == tr.clean.logit_diff
        # a new prompt: traced in turn
        first = view.job
        await pilot.press("minus")
        await wait_for(pilot, lambda: view.result is not tr and _current(view, p), timeout=120)
        assert first is None and p.n == 1 and view.result.pair.prepend.count(". ") == 1
        # k cycles: curves -> three heat maps -> heads -> table
        for mode in ("resid", "attn", "mlp", "heads", "table"):
            await pilot.press("k")
            assert view.mode == mode
        assert app.query_one("#trace-table").row_count == lm.n_layers
        await pilot.press("p")
        await wait_for(pilot, lambda: len(app.session.items("trace")) == 1)
        saved = app.session.items("trace")[0].data
        assert saved["hijacked"]["logit_diff"] == view.result.hijacked.logit_diff


async def test_untraceable_pair_is_one_inline_message(tiny_lm_dir):
    app = LcaApp(model=str(tiny_lm_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        from engine.hijack.counterfact import FactRecord

        p, view = await _open_trace(pilot, app)
        p.use_record(FactRecord(case_id=9, subject="The Eiffel Tower", prompt="{} is in", relation_id="P131",
                                target_true="Paris", target_false="Paris"))
        await pilot.press("plus")
        try:
            await wait_for(pilot, lambda: "trace failed" in str(view.query_one("#trace-info").render()), timeout=60)
        except AssertionError:
            raise AssertionError(str(view.query_one("#trace-info").render()) + p.prompt_text()) from None
        assert "same token" in str(view.query_one("#trace-info").render())
        await pilot.press("minus")
        await wait_for(pilot, lambda: p.shown_seq == p.last_request.seq)
        await pilot.press("i", "end", *"xyz")  # the prompt no longer ends with the record's
        await wait_for(pilot, lambda: "end with the record's prompt" in str(view.query_one("#trace-info").render()))
