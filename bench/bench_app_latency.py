"""Keystroke -> redrawn top-k bars (issue 13), the app as a real terminal program in a
pseudo-terminal with the embedded model: (a) typing at the end of an ~80-token prompt and (b)
editing its first word, each beside the engine's own probe for the same edit and beside one cached
single-token forward (a) / one full forward (b) of the model; with the time per stage (key -> probe
request -> model thread -> panel -> bars rebuilt -> frame flushed to the terminal). Written to
bench/results/app_latency.json.

Usage: python bench/bench_app_latency.py [--keys N] [--threads T] [--repeats R] [--pause S] [--model M] [--tiny]
       python bench/bench_app_latency.py --markdown RESULT.json
       python bench/bench_app_latency.py --goals LABEL=RESULT.json [LABEL=RESULT.json ...]  (issue 22's goals)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from app_harness import RESULTS, PtyApp, bench_main, machine, pct, write_result

# ------------------------------------------------------------------ keystroke -> redrawn bars (issue 13)
# The app runs as a real terminal program in a pseudo-terminal (120 x 40, Textual's Linux driver,
# the embedded model); this process types into the terminal like a user and reads everything the
# app writes. Timestamps are CLOCK_MONOTONIC in both processes. The app logs its stages through its
# own off-by-default instrumentation (LCA_TUI_INSTRUMENT, lca_tui/instrument.py): the probe request,
# the probe on the model thread, the answer drawn by the panel, the frame after it handed to the
# writer thread. Keystroke -> bars = the first read of the app's output after that frame minus the
# moment the key bytes were written.

PROMPT = "The Eiffel Tower is not in Chicago. " * 8 + "The Eiffel Tower is in"  # ~80 tokens (Fig. 1, n = 8)
TYPE_AT_END = " Paris, the capital of France and"   # (a) each key extends the last token(s)
TYPE_AT_START = "Indeed, so "                        # (b) each key edits the first word
KEYS = {"pageup": "\x1b[5~", "pagedown": "\x1b[6~", "home": "\x1b[H", "end": "\x1b[F"}


def open_view(view: str, threads: int, model: str | None = None, **env: str) -> PtyApp:
    """This file's app (``child_main``) in a pseudo-terminal showing the hijack view ``view`` on ``PROMPT``
    (``LCA_BENCH_*`` settings in ``env``), ready, the cursor at the prompt's very start."""
    os.environ["LCA_BENCH_VIEW"] = view
    for key, value in env.items():
        os.environ[f"LCA_BENCH_{key.upper()}"] = value
    if model:
        os.environ["LCA_BENCH_MODEL"] = model
    app = PtyApp(__file__, threads=threads)
    try:
        app.wait(lambda ev: ev["ev"] == "ready", timeout=900)
        app.type(KEYS["pageup"] * 4 + KEYS["home"])
        time.sleep(1.0)
    except BaseException:
        app.close()
        raise
    return app


def child_main(log_path: str) -> None:
    """The app in the pseudo-terminal this process was started in, its instrumentation writing to
    ``log_path``. The subclass only types the prompt, waits for its first answer and logs ``ready``;
    with ``LCA_BENCH_PROFILE`` it also cProfiles the UI thread from then on."""
    os.environ["LCA_TUI_INSTRUMENT"] = log_path  # read when lca_tui.instrument is first imported
    from lca_tui import instrument
    from lca_tui.app import LcaApp

    class BenchApp(LcaApp):
        _bench_evaluated = False

        def _bench_keep_evaluating(self):
            """Once the benchmark has started an ES evaluation (``e``), start the next when one ends."""
            hp = self.main("#hijack")
            if hp.eval_job is not None:
                self._bench_evaluated = True
            elif self._bench_evaluated:
                hp.action_evaluate()

        def on_mount(self):
            self.set_timer(0.2, self._bench_setup)

        def _bench_setup(self):
            if self.model_info is None:
                if self.model_error:
                    instrument.emit("error", error=self.model_error)
                    self.exit()
                    return
                self.set_timer(0.2, self._bench_setup)
                return
            hp = self.main("#hijack")
            editor = self.main("#prompt")
            if editor.text != PROMPT:
                editor.text = PROMPT
                editor.focus()
                self.set_timer(0.5, self._bench_setup)
                return
            if hp.last_request is None or hp.shown_seq != hp.last_request.seq:
                self.set_timer(0.2, self._bench_setup)
                return
            view = os.environ.get("LCA_BENCH_VIEW")  # e.g. "trace" (bench_trace_view.py)
            if view and hp.view != view:
                self.main("#hijack-views").active = view
            tv = hp.views["trace"]
            if view == "trace" and (tv.result is None or tv.estimated or tv.job is not None):  # the exact trace
                self.set_timer(0.2, self._bench_setup)
                return
            rv = hp.views["repair"]
            defense = os.environ.get("LCA_BENCH_DEFENSE")  # e.g. "heads" (bench_repair_view.py)
            if view == "repair" and defense and rv.defense_name != defense:
                rv.defense_name = defense
                hp.request_probe()
                self.set_timer(0.2, self._bench_setup)
                return
            if view == "repair" and (rv.result is None or rv.job is not None):  # its first defended probe
                self.set_timer(0.2, self._bench_setup)
                return
            editor.move_cursor(editor.document.end)
            if os.environ.get("LCA_BENCH_JOB") == "efficacy":  # bench_probe_priority.py
                self.set_interval(0.1, self._bench_keep_evaluating)
            if os.environ.get("LCA_BENCH_PROFILE"):  # the UI thread, from here to the exit
                import cProfile

                self._bench_profile = cProfile.Profile()
                self._bench_profile.enable()
            instrument.emit("ready", prompt=editor.text, view=hp.view)

    app = BenchApp(model=os.environ.get("LCA_BENCH_MODEL") or None)
    try:
        app.run()
    finally:
        prof = getattr(app, "_bench_profile", None)
        if prof is not None:
            prof.disable()
            prof.dump_stats(os.environ["LCA_BENCH_PROFILE"])


def _percentile(values, q):
    return pct(values, q) if values else None


def _ui_work(events, t0: float, t1: float) -> dict:
    """What the UI thread did between the key and the bars frame: full layouts (reflow of the
    widget tree, their own frame excluded) and frames rendered (compositor update + segments)."""
    ui = [ev for ev in events if ev["ev"] == "ui" and t0 <= ev["t0"] <= t1]
    lays = [(ev["t0"], ev["t"]) for ev in ui if ev["what"] == "_refresh_layout"]
    frames = [(ev["t0"], ev["t"]) for ev in ui if ev["what"] == "_compositor_refresh"]
    nested = sum(b - a for a, b in frames if any(la <= a and b <= lb for la, lb in lays))
    return {"layouts": len(lays), "layout_s": sum(b - a for a, b in lays) - nested,
            "frames_rendered": len(frames), "render_s": sum(b - a for a, b in frames)}


def _edit_rows(app: PtyApp, chars: str, before: str, after: str, pause: float, engine: Engine,
               repeats: int) -> list[dict]:
    """Type ``chars`` one key at a time at the cursor (between ``before`` and ``after``); one row
    per key: its latency stages, the probe request the app made for it, and the engine alone on
    the same edit (measured while the app is idle, before the next key)."""
    rows = []
    for ch in chars:
        prev = before + after
        before += ch
        want = before + after
        t_key = app.type(ch)
        frame = app.wait(lambda ev, w=want, t=t_key: ev["ev"] == "frame" and ev["prompt"] == w and ev["t"] > t)
        t_seen = app.read_after(frame["t"])
        evs = app.events()
        probe = [ev for ev in evs if ev["ev"] == "probe" and ev["prompt"] == want and ev["t0"] > t_key]
        req = [ev for ev in evs if ev["ev"] == "request" and ev["prompt"] == want and ev["t"] > t_key]
        ans = [ev for ev in evs if ev["ev"] == "answer" and ev["seq"] == frame["seq"] and ev["t"] > t_key][-1]
        rows.append({"key": ch, "prev_prompt": prev, "prompt": want, "n_tokens": frame["n_tokens"],
                     "reused_prefix": frame["reused"], "targets": frame["targets"], "top_k": frame["top_k"],
                     "analyses": frame["analyses"], "threads": probe[-1]["threads"] if probe else None,
                     "key_to_bars_s": t_seen - t_key,
                     "key_to_request_s": req[0]["t"] - t_key if req else None,
                     "request_to_probe_start_s": probe[-1]["t0"] - req[0]["t"] if probe and req else None,
                     "engine_probe_in_app_s": frame["engine_s"],
                     "probe_end_to_panel_s": frame["t_answer"] - probe[-1]["t"] if probe else None,
                     "panel_draw_s": ans["t"] - frame["t_answer"],
                     "drawn_to_frame_out_s": frame["t"] - ans["t"],
                     "frame_out_to_terminal_s": t_seen - frame["t"],
                     "probes_for_this_key": len(probe),
                     **_ui_work(evs, t_key, t_seen)})
        time.sleep(0.2)  # the app's frame is out; let it settle before the engine runs
        rows[-1]["engine_probe_alone_s"] = engine.probe_edit(rows[-1], repeats)
        engine.references()
        time.sleep(pause)  # isolated edits: the model thread is idle again (leading-edge debounce)
    return rows


class Engine:
    """The engine alone, in this process, measured right after each of the app's edits while the
    app sits idle (so both see the same machine load): the Prober on the same edit (primed with
    the previous prompt, then timed on the edit), one cached single-token forward and one full
    forward of the ~80-token prompt (logits at every position, as ``model(ids)`` computes them)."""

    def __init__(self, model: str | None, threads: int):
        import torch
        from transformers import DynamicCache

        from engine.hijack.lm import load_lm
        from engine.hijack.probe import Prober

        torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        self.lm = lm = load_lm(model, device="cpu")
        self.prober = Prober(lm)
        self.ids = ids = torch.tensor([lm.encode(PROMPT)])
        with torch.inference_mode():
            past = lm.model(ids[:, :-1], use_cache=True).past_key_values
        kv = [(layer.keys, layer.values) for layer in past.layers]

        def single():
            with torch.inference_mode():
                lm.model(ids[:, -1:], past_key_values=DynamicCache(ddp_cache_data=kv), use_cache=True)

        def full():
            with torch.inference_mode():
                lm.model(ids, use_cache=True)

        self._single, self._full = single, full
        self.singles, self.fulls = [], []
        for _ in range(2):  # warm-up
            single()
            full()

    def probe_edit(self, row: dict, repeats: int) -> float:
        kw = dict(top_k=row["top_k"], analyses=tuple(row["analyses"]))
        times = []
        for _ in range(repeats):
            self.prober.reset()
            self.prober.probe(row["prev_prompt"], row["targets"], **kw)
            t0 = time.perf_counter()
            self.prober.probe(row["prompt"], row["targets"], **kw)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def references(self) -> None:
        for fn, out in ((self._single, self.singles), (self._full, self.fulls)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)


def latency_bench(n_end: int, n_start: int, threads: int, repeats: int, pause: float,
                  model: str | None = None) -> dict:
    """Keystroke -> redrawn bars for (a) typing at the end and (b) editing the first word."""
    engine = Engine(model, threads)
    load_before = os.getloadavg()
    if model:
        os.environ["LCA_BENCH_MODEL"] = model
    app = PtyApp(__file__, threads=threads)
    try:
        ready = app.wait(lambda ev: ev["ev"] == "ready", timeout=600)
        time.sleep(1.0)
        assert ready["prompt"] == PROMPT
        rows_end = _edit_rows(app, (TYPE_AT_END * 4)[:n_end], PROMPT, "", pause, engine, repeats)
        prompt = rows_end[-1]["prompt"] if rows_end else PROMPT
        app.type(KEYS["pageup"] * 4 + KEYS["home"])  # to the very start of the prompt
        time.sleep(pause)
        rows_start = _edit_rows(app, (TYPE_AT_START * 4)[:n_start], "", prompt, pause, engine, repeats)
    finally:
        app.close()
    load_after = os.getloadavg()
    refs = {"threads": engine.threads, "prompt_tokens": engine.ids.shape[1],
            "cached_single_token_forward_s": statistics.median(engine.singles),
            "full_forward_s": statistics.median(engine.fulls),
            "cached_single_token_forward_all_s": engine.singles, "full_forward_all_s": engine.fulls}

    def summary(rows, ref_key, ref_s, goal):
        lat = [r["key_to_bars_s"] for r in rows]
        eng_app = [r["engine_probe_in_app_s"] for r in rows]
        eng = [r["engine_probe_alone_s"] for r in rows]
        stages = ["key_to_request_s", "request_to_probe_start_s", "engine_probe_in_app_s", "probe_end_to_panel_s",
                  "panel_draw_s", "drawn_to_frame_out_s", "frame_out_to_terminal_s"]
        p50 = statistics.median(lat)
        return {"keys": len(rows), "prompt_tokens_p50": statistics.median(r["n_tokens"] for r in rows),
                "reused_prefix_p50": statistics.median(r["reused_prefix"] for r in rows),
                "key_to_bars_p50_s": p50, "key_to_bars_p95_s": _percentile(lat, 0.95),
                "engine_probe_in_app_p50_s": statistics.median(eng_app),
                "engine_probe_alone_p50_s": statistics.median(eng),
                "reference": ref_key, "reference_s": ref_s,
                "ratio_to_reference_p50": p50 / ref_s, "goal_ratio": goal, "goal_met": p50 / ref_s <= goal,
                "ratio_app_to_engine_alone_p50": p50 / statistics.median(eng),
                "stages_p50_s": {k: statistics.median(r[k] for r in rows if r[k] is not None) for k in stages},
                "ui_thread_p50": {k: statistics.median(r[k] for r in rows)
                                  for k in ("layouts", "layout_s", "frames_rendered", "render_s")}}

    return {
        "what": "keystroke -> redrawn top-k bars, app in a pseudo-terminal (120x40), embedded model, CPU",
        "model": model or "smollm2-135m (embedded)", "prompt": PROMPT, "view": ready["view"], "threads": threads, "pause_between_keys_s": pause,
        "load_average": {"before": load_before, "after": load_after},
        "references": refs,
        "a_type_at_end": summary(rows_end, "cached_single_token_forward", refs["cached_single_token_forward_s"], 1.3),
        "b_edit_first_word": summary(rows_start, "full_forward", refs["full_forward_s"], 1.2),
        "rows": {"a_type_at_end": rows_end, "b_edit_first_word": rows_start},
    }


def print_latency(res: dict) -> None:
    ref = res["references"]
    print(f"references ({ref['prompt_tokens']}-token prompt, {ref['threads']} threads): cached single-token "
          f"forward {1000 * ref['cached_single_token_forward_s']:.1f} ms, full forward "
          f"{1000 * ref['full_forward_s']:.1f} ms")
    for name in ("a_type_at_end", "b_edit_first_word"):
        s = res[name]
        print(f"{name}: key -> bars p50 {1000 * s['key_to_bars_p50_s']:.1f} ms (p95 "
              f"{1000 * s['key_to_bars_p95_s']:.1f}); engine probe in app {1000 * s['engine_probe_in_app_p50_s']:.1f}"
              f" ms, alone {1000 * s['engine_probe_alone_p50_s']:.1f} ms; {s['ratio_to_reference_p50']:.2f}x "
              f"the {s['reference']} (goal <= {s['goal_ratio']}x: {'met' if s['goal_met'] else 'MISSED'})")
        print("   stages p50 (ms): " + ", ".join(f"{k[:-2]} {1000 * v:.1f}" for k, v in s["stages_p50_s"].items()))
        u = s["ui_thread_p50"]
        print(f"   UI thread between key and bars, p50: {u['layouts']:.0f} layouts ({1000 * u['layout_s']:.1f} ms), "
              f"{u['frames_rendered']:.0f} frames rendered ({1000 * u['render_s']:.1f} ms)")
    print(f"load average before / after: {res['load_average']}")


def latency_markdown(res: dict) -> str:
    """The BENCHMARKS.md rows for the keystroke -> bars measurement, from its JSON."""
    ref = res["references"]
    a, b = res["a_type_at_end"], res["b_edit_first_word"]
    ms = lambda v: f"{1000 * v:.1f} ms"  # noqa: E731
    la = res["load_average"]
    lines = [
        f"Measured {res['machine']['date']} with `{res.get('command', 'python bench/bench_app.py --only latency')}`; "
        f"model {res['model']}, view `{res['view']}`, torch threads: {res['threads']}, {a['keys']} + {b['keys']} "
        f"isolated keys ({res['pause_between_keys_s']} s apart); load average (1 min) {la['before'][0]:.1f} before, "
        f"{la['after'][0]:.1f} after; the engine-alone numbers are measured between the app's keys.",
        "",
        "| what (p50 over the keys) | (a) typing at the end | (b) editing the first word |",
        "|---|---|---|",
        f"| prompt tokens / tokens served from the KV cache | {a['prompt_tokens_p50']:.0f} / {a['reused_prefix_p50']:.0f} "
        f"| {b['prompt_tokens_p50']:.0f} / {b['reused_prefix_p50']:.0f} |",
        f"| **keystroke → redrawn bars** (key bytes into the terminal → frame with the new bars flushed), p50 / p95 "
        f"| **{ms(a['key_to_bars_p50_s'])}** / {ms(a['key_to_bars_p95_s'])} "
        f"| **{ms(b['key_to_bars_p50_s'])}** / {ms(b['key_to_bars_p95_s'])} |",
        f"| the engine's probe for the same edit, inside the app / alone | {ms(a['engine_probe_in_app_p50_s'])} / "
        f"{ms(a['engine_probe_alone_p50_s'])} | {ms(b['engine_probe_in_app_p50_s'])} / {ms(b['engine_probe_alone_p50_s'])} |",
        f"| reference: one cached single-token forward / one full forward ({ref['prompt_tokens']} tokens) "
        f"| {ms(ref['cached_single_token_forward_s'])} | {ms(ref['full_forward_s'])} |",
        f"| **ratio keystroke → bars / reference** (goal) | **{a['ratio_to_reference_p50']:.2f}x** (≤ 1.3x "
        f"{'✓' if a['goal_met'] else '✗'}) | **{b['ratio_to_reference_p50']:.2f}x** (≤ 1.2x {'✓' if b['goal_met'] else '✗'}) |",
        f"| ratio keystroke → bars / engine probe alone | {a['ratio_app_to_engine_alone_p50']:.2f}x "
        f"| {b['ratio_app_to_engine_alone_p50']:.2f}x |",
    ]
    names = {"key_to_request_s": "key → probe request (input thread, TextArea, Changed)",
             "request_to_probe_start_s": "request → probe starts on the model thread",
             "engine_probe_in_app_s": "probe (model thread)",
             "probe_end_to_panel_s": "answer → panel handler",
             "panel_draw_s": "panel handler (bars, table, strip, toolbar)",
             "drawn_to_bars_built_s": "→ next frame rebuilds the bars (frame timer, layout)",
             "bars_built_to_frame_out_s": "→ rest of the frame rendered and flushed",
             "drawn_to_frame_out_s": "→ the next frame rendered and handed to the writer thread",
             "frame_out_to_terminal_s": "→ its bytes read by the terminal"}
    for k, label in names.items():
        if k not in a["stages_p50_s"]:  # results of an older harness name other stages
            continue
        lines.append(f"| stage: {label} | {ms(a['stages_p50_s'][k])} | {ms(b['stages_p50_s'][k])} |")
    ua, ub = a["ui_thread_p50"], b["ui_thread_p50"]
    lines.append(f"| UI thread between key and bars: full layouts (time) / frames rendered (time) "
                 f"| {ua['layouts']:.0f} ({ms(ua['layout_s'])}) / {ua['frames_rendered']:.0f} ({ms(ua['render_s'])}) "
                 f"| {ub['layouts']:.0f} ({ms(ub['layout_s'])}) / {ub['frames_rendered']:.0f} ({ms(ub['render_s'])}) |")
    return "\n".join(lines)


def goal_table(results: list[tuple[str, dict]]) -> str:
    """Issue 22's goals, one row per (label, result) and case, from result files: keystroke -> bars
    p50 / p95, that minus the engine's probe alone (the UI's share: goal <= 20 ms p50, <= 40 ms p95),
    the probe inside the app over alone (goal <= 1.1x), the frames and layouts rendered between key
    and bars, the FPS the app ran at, and the load. The p95 of the UI's share is taken per key."""
    ms = lambda v: f"{1000 * v:.1f} ms"  # noqa: E731
    lines = ["| run | case | key → bars p50 / p95 | UI share p50 / p95 (goal ≤ 20 / ≤ 40 ms) "
             "| probe in app / alone (goal ≤ 1.1x) | frames / layouts | load |",
             "|---|---|---|---|---|---|---|"]
    for label, res in results:
        la = res["load_average"]
        for case, name in (("a_type_at_end", "(a) typing at the end"), ("b_edit_first_word", "(b) editing the first word")):
            s, rows = res[case], res["rows"][case]
            share = [r["key_to_bars_s"] - r["engine_probe_alone_s"] for r in rows]
            p50, p95 = statistics.median(share), pct(share, 0.95)
            ratio = s["engine_probe_in_app_p50_s"] / s["engine_probe_alone_p50_s"]
            u = s["ui_thread_p50"]
            ok = lambda met: "✓" if met else "✗"  # noqa: E731
            lines.append(f"| {label} | {name} | {ms(s['key_to_bars_p50_s'])} / {ms(s['key_to_bars_p95_s'])} "
                         f"| {ms(p50)} {ok(p50 <= 0.020)} / {ms(p95)} {ok(p95 <= 0.040)} "
                         f"| {ratio:.2f}x {ok(ratio <= 1.1)} | {u['frames_rendered']:.0f} / {u['layouts']:.0f} "
                         f"| {la['before'][0]:.2f} → {la['after'][0]:.2f} |")
    return "\n".join(lines)


def tiny_model() -> str:
    """A tiny random Llama (the test suite's ``make_tiny_lm``, a 512-token window) in a temporary
    folder: its probe takes a few milliseconds, standing in for a GPU (issue 22)."""
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import make_tiny_lm

    return str(make_tiny_lm(tempfile.mkdtemp(prefix="lca-bench-tiny-"), "llama", max_positions=512))


def run(args) -> None:
    if args.tiny:
        args.model = tiny_model()
    if args.profile:
        os.environ["LCA_BENCH_PROFILE"] = os.path.abspath(args.profile)
    res = latency_bench(args.keys, args.keys, args.threads, args.repeats, args.pause, args.model)
    res.update(machine("python bench/bench_app_latency.py " + " ".join(sys.argv[1:])))
    print_latency(res)
    write_result(args.out, res)


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--keys", type=int, default=20, help="keys typed for each latency case")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, app and engine alike")
    ap.add_argument("--repeats", type=int, default=5, help="engine-alone repeats per edit (median)")
    ap.add_argument("--pause", type=float, default=0.6, help="seconds between keys (isolated edits)")
    ap.add_argument("--tiny", action="store_true", help="a tiny random model built like the tests' (a GPU's few-ms probe)")
    ap.add_argument("--profile", metavar="PSTATS", help="cProfile the app's UI thread while the keys are typed")
    ap.add_argument("--out", default=str(RESULTS / "app_latency.json"))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--goals":  # --goals LABEL=RESULT.json ...
        import json
        from pathlib import Path

        pairs = [arg.split("=", 1) for arg in sys.argv[2:]]
        print(goal_table([(label, json.loads(Path(path).read_text())) for label, path in pairs]))
        return
    bench_main(__doc__, latency_markdown, add_args, run, child=child_main)


if __name__ == "__main__":
    main()
