"""The Trace view live (issue 31): the attribution-patching estimate is drawn first and marked as an
estimate, the exact trace replaces it, the estimate's misses are counted and marked in the table, and
an answer to a stale or cancelled job never replaces what is shown."""

from __future__ import annotations

from app_helpers import wait_for
from test_app_trace import _current, _open_trace, _traceable

from lca_tui.app import LcaApp
from lca_tui.messages import JobFinished


async def test_estimate_first_then_exact_and_stale_answers_ignored(tiny_lm_dir, tmp_path):
    from engine.hijack import trace as T
    from engine.hijack.atp import atp
    from engine.hijack.atp_agreement import disagreements
    from engine.hijack.lm import load_lm
    from lca_tui.panels.hijack.views.trace import CURVE_TITLE, ESTIMATE

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    app = LcaApp(model=str(tiny_lm_dir), session=str(tmp_path / "s"))
    async with app.run_test(size=(120, 40)) as pilot:
        p, view = await _open_trace(pilot, app)
        info, curve = view.query_one("#trace-info"), app.query_one("#trace-curve")
        drawn = []
        draw = view.draw

        def logged(tr):
            draw(tr)
            drawn.append((tr, view.estimated, view.job, str(info.render()), curve.title))

        view.draw = logged
        asked = []
        ask = view.ask

        def logged_ask(msg):
            asked.append(msg)
            ask(msg)

        view.ask = logged_ask
        p.use_record(_traceable(lm, p.records))
        await pilot.press("plus", "plus")
        await wait_for(pilot, lambda: _current(view, p) and not view.estimated, timeout=120)
        mine = [d for d in drawn if d[0].pair.prepend + d[0].pair.prompt == p.prompt_text()]  # (n = 1 may show)
        first, last = mine[0], drawn[-1]
        # the estimate first, marked, while the exact trace still ran
        assert first[1] and first[2] is not None and ESTIMATE in first[3] and first[4].startswith(ESTIMATE)
        pair = T.prepare(lm, p.record.text, p.prompt_text()[: -len(p.record.text)], " " + p.record.target_true,
                         " " + p.record.target_false, p.record.target_false)
        est = atp(lm, pair).trace
        assert all(abs(a.logit_diff - b.logit_diff) < 1e-4
                   for a, b in zip(first[0].knockout["mentions"], est.knockout["mentions"]))
        # then the exact trace replaced it: unmarked, with the estimate's misses counted
        exact = T.trace(lm, pair)
        assert not last[1] and last[0] is view.result and last[4] == CURVE_TITLE and ESTIMATE not in last[3]
        assert abs(view.result.hijacked.logit_diff - exact.hijacked.logit_diff) < 1e-4
        want = disagreements(view.result.to_dict(), first[0].to_dict())
        assert view.misses == want and f"estimate missed {len(want)}/{view.compared}" in last[3]
        # the table marks the blocks where it missed
        for _ in range(5):
            await pilot.press("k")
        table = app.query_one("#trace-table")
        assert view.mode == "table" and table.row_count == lm.n_layers
        marked = {i for i in range(lm.n_layers) if str(table.get_row_at(i)[-1]).strip()}
        assert marked == {d["block"] for d in want}
        # stale answers: the estimate's job answered again, and an old job id, change nothing
        shown, n = view.result, len(drawn)
        kinds = [(m.job.kind, m.job_id) for m in asked if hasattr(m, "job")]
        assert [k for k, _ in kinds[-2:]] == ["atp_trace", "trace"]  # the estimate asked for first
        old_est = kinds[-2][1]
        view.post_message(JobFinished(old_est, "atp_trace", result=first[0]))
        view.post_message(JobFinished(first[2], "trace", result=first[0]))
        await pilot.pause(0.2)
        assert view.result is shown and not view.estimated and len(drawn) == n
        # a new prompt: its estimate, then its exact trace; the first prompt's late answers are ignored
        await pilot.press("minus")
        await wait_for(pilot, lambda: view.result is not shown and _current(view, p) and not view.estimated,
                       timeout=120)
        after = view.result
        view.post_message(JobFinished(old_est, "atp_trace", result=first[0]))
        view.post_message(JobFinished(first[2], "trace", result=shown))
        await pilot.pause(0.2)
        assert view.result is after and not view.estimated
        assert any(e for _, e, *_ in drawn[n:]) and not drawn[-1][1]
        # the exact trace cancelled while the estimate is shown: the estimate stays, said to be alone
        view.result, view.estimated, view.job = first[0], True, 10**9
        view.cancel()
        assert view.job is None and "the exact trace was cancelled" in str(info.render())
        # pinning while only the estimate is shown pins nothing
        assert view.pin() and not app.session.items("trace")
