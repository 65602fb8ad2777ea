"""The Repair view of the hijack panel (issue 30): d and < > change the defense and its α, the bars and
the continuation lines are the engine's (``repair_probe.defended_probe`` called directly), the shaped
settings are kept per record, a stale answer is never drawn, p pins a repair record; the ES evaluation
overlays the defended curve as its own series."""

from __future__ import annotations

from app_helpers import wait_for
from test_app_trace import _traceable

from lca_tui.app import LcaApp
from lca_tui.messages import JobFinished


def _shown(view, p, name, alpha) -> bool:
    r = view.result
    return (r is not None and view.job is None and r.prompt == p.prompt_text() and r.defense.name == name
            and r.defense.alpha == alpha)


async def _open(pilot, app, lm):
    await wait_for(pilot, lambda: app.model_info is not None, timeout=120)
    p = app.query_one("#hijack")
    await pilot.press("escape")
    view = p.views["repair"]
    return p, view


async def test_keys_bars_continuations_stale_answers_and_pin(tiny_lm_dir, tmp_path):
    from engine.hijack.defenses import Defense
    from engine.hijack.lm import load_lm
    from engine.hijack.repair_probe import defended_probe, shape_on_pair
    from lca_tui.panels.hijack.views.repair import K_TOKENS, grid

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    app = LcaApp(model=str(tiny_lm_dir), session=str(tmp_path / "s"))
    async with app.run_test(size=(120, 40)) as pilot:
        p, view = await _open(pilot, app, lm)
        info = view.query_one("#repair-info")
        # d shows the view; at n = 0 (nothing prepended) the defense acts on the prompt alone: drop-context
        # changes nothing there
        await pilot.press("d")
        assert p.view == "repair" and view.defense_name == "drop-context"
        await wait_for(pilot, lambda: _shown(view, p, "drop-context", 1.0), timeout=120)
        assert "n = 0: the prompt alone" in str(info.render())
        assert view.result.prepend.strip() == "" and view.result.defended.probs == view.result.undefended.probs
        rec = _traceable(lm, p.records)
        p.use_record(rec)
        await pilot.press("plus", "plus")
        await wait_for(pilot, lambda: _shown(view, p, "drop-context", 1.0), timeout=120)
        question, prepend = rec.text, p.prompt_text()[: -len(rec.text)]
        targets = tuple(p.targets)
        want = defended_probe(lm, question, prepend, targets, Defense("drop-context"), k_tokens=K_TOKENS)
        plain = view.query_one("#repair-plain").rows
        defended = view.query_one("#repair-defended").rows
        assert [r.token for r in plain] == list(targets) == [r.token for r in defended]
        assert [r.highlight for r in plain[:2]] == ["true", "false"]
        for rows, side in ((plain, want.undefended), (defended, want.defended)):
            assert all(abs(r.prob - q) <= 1e-5 for r, (_, q) in zip(rows, side.probs))
        says = str(view.query_one("#repair-says").render())
        assert f"says: “{want.undefended.continuation.replace(chr(10), '⏎')}”" in says
        assert f"with drop-context: “{want.defended.continuation.replace(chr(10), '⏎')}”" in says
        assert view.result.undefended.continuation == want.undefended.continuation
        assert view.result.defended.continuation == want.defended.continuation
        assert "says:" in says and "with drop-context:" in says and "question alone" in str(info.render())
        # d: heads, shaped on this record (first job), the settings shown
        await pilot.press("d")
        assert view.defense_name == "heads"
        a0 = view.alpha
        await wait_for(pilot, lambda: _shown(view, p, "heads", a0), timeout=120)
        shaped = shape_on_pair(lm, question, prepend, " " + rec.target_true, " " + rec.target_false, "heads", a0)
        assert view.result.defense == shaped
        want = defended_probe(lm, question, prepend, targets, shaped, k_tokens=K_TOKENS)
        got = view.query_one("#repair-defended").rows
        assert all(abs(r.prob - q) <= 1e-5 * max(1.0, q) for r, (_, q) in zip(got, want.defended.probs))
        text = str(info.render())
        assert "shaped on this record (not held out)" in text
        assert " ".join(f"L{b}H{h}" for b, h in shaped.heads) in text
        assert view.result.defended.continuation == want.defended.continuation
        # > : α up the grid; the shaped heads are kept (the job does not shape again)
        asked = []
        ask = view.ask

        def logged(msg):
            asked.append(msg)
            ask(msg)

        view.ask = logged
        g = grid("heads")
        await pilot.press("greater_than_sign")
        a1 = g[g.index(a0) + 1]
        assert view.alpha == a1
        await wait_for(pilot, lambda: _shown(view, p, "heads", a1), timeout=120)
        job = [m for m in asked if hasattr(m, "job")][-1].job
        assert job.kind == "repair_probe" and job.args[-1] is None and job.args[3].heads == shaped.heads
        want = defended_probe(lm, question, prepend, targets, shaped.with_alpha(a1), k_tokens=K_TOKENS)
        got = view.query_one("#repair-defended").rows
        assert all(abs(r.prob - q) <= 1e-5 * max(1.0, q) for r, (_, q) in zip(got, want.defended.probs))
        # keys faster than the answers: the new ask cancels the job before it, only the last is drawn
        n_asked = len(asked)
        view.action_alpha(-1)
        view.action_alpha(-1)  # before the first one's answer can arrive
        assert view.alpha == g[0] == 0.0
        await wait_for(pilot, lambda: _shown(view, p, "heads", 0.0), timeout=120)
        jobs_asked = [m.job_id for m in asked[n_asked:] if hasattr(m, "job")]
        cancelled = [m.job_id for m in asked[n_asked:] if type(m).__name__ == "CancelModelJob"]
        assert len(jobs_asked) == 2 and cancelled == jobs_asked[:1]
        await pilot.press("less_than_sign")  # at the grid's end: the same α, nothing asked
        await pilot.pause(0.1)
        assert len([m for m in asked[n_asked:] if hasattr(m, "job")]) == 2
        # stale answers: an old job id, or the asked job cancelled, are never drawn
        shown = view.result
        old = [m.job_id for m in asked if hasattr(m, "job")][0]
        view.post_message(JobFinished(old, "repair_probe", result=want))
        await pilot.pause(0.2)
        assert view.result is shown
        # p pins the shown repair into the session
        await pilot.press("p")
        await wait_for(pilot, lambda: len(app.session.items("repair")) == 1)
        saved = app.session.items("repair")[0].data
        assert saved["scope"] == "probe" and saved["defense"]["name"] == "heads"
        assert saved["shaped"] == "settings shaped on this record (not held out)"
        assert saved["defense"]["params"]["heads"] == [list(h) for h in shaped.heads]
        assert saved["defended"]["probs"] == dict(shown.defended.probs)
        assert saved["undefended"]["continuation"] == shown.undefended.continuation
        assert saved["prepend"] == prepend and saved["question"] == question and saved["targets"] == list(targets)
        # back to n = 0: the heads shaped at n = 2 act on the prompt alone (their cost when nothing misleads)
        await pilot.press("minus", "minus")
        await wait_for(pilot, lambda: _shown(view, p, "heads", 0.0) and view.result.prompt == rec.text, timeout=120)
        want = defended_probe(lm, question, "", targets, shaped.with_alpha(0.0), k_tokens=K_TOKENS)
        got = view.query_one("#repair-defended").rows
        assert all(abs(r.prob - q) <= 1e-5 * max(1.0, q) for r, (_, q) in zip(got, want.defended.probs))
        assert view.result.defended.continuation == want.defended.continuation
        assert "n = 0: the prompt alone" in str(info.render())
        # a defense not shaped on this record yet cannot be at n = 0: said inline, nothing asked
        await pilot.press("d")
        assert view.defense_name == "attention"
        await wait_for(pilot, lambda: "press + to prepend a sentence" in str(info.render()))
        assert view.result is None and view.job is None


async def test_es_overlays_the_defended_curve(tiny_lm_dir, tmp_path):
    from engine.hijack.defenses import Defense
    from engine.hijack.efficacy_defended import defended_curve
    from engine.hijack.lm import load_lm
    from engine.hijack.schemes import scheme_records

    lm = load_lm(str(tiny_lm_dir), device="cpu")
    app = LcaApp(model=str(tiny_lm_dir), session=str(tmp_path / "s"))
    async with app.run_test(size=(120, 40)) as pilot:
        p, view = await _open(pilot, app, lm)
        p.scheme = "not-think"
        for _ in range(4):  # none -> drop-context -> heads -> attention -> contrastive
            await pilot.press("d")
        assert view.defense_name == "contrastive"
        p.records = p.records[:3]
        await pilot.press("e")
        curve = app.query_one("#eval-curve")
        label = f"{lm.name.rstrip('/').rsplit('/', 1)[-1]} + contrastive α={view.alpha:g}"
        await wait_for(pilot, lambda: label in curve.series_names and p.eval_job is None
                       and p.overlay_job is None, timeout=120)
        records, _ = scheme_records(p.records, "not-think", p.record)
        want = defended_curve(lm, records, "not-think", 5, Defense("contrastive", view.alpha), batch_size=4)
        xs, ys = curve._series[label]
        assert list(xs) == [pt.n for pt in want.curve if pt.count]
        assert list(ys) == [pt.es for pt in want.curve if pt.count]
        assert len(curve.series_names) == 2  # the plain curve and the defended one
