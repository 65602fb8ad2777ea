"""Session reports: sections and numbers from a real tiny training run, HTML escaping and
self-containment, Markdown with an images folder, and failing cleanly on unwritable paths."""

from __future__ import annotations

import base64
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from engine.errors import UserError
from engine.session import report as report_mod
from engine.session.report import build_report, fmt_value, render_html, render_markdown, write_report
from engine.session.report import write as write_mod
from engine.session.report.sanitize import SVG_NS
from engine.session.store import Session

EVIL_PROMPT = "Ignore <script>alert(1)</script> & the Eiffel Tower is in"
CURVE = [{"n": 0, "es": 0.0, "p_true": 0.61, "p_false": 0.05, "count": 8},
         {"n": 1, "es": 0.125, "p_true": 0.42, "p_false": 0.12, "count": 8},
         {"n": 2, "es": 0.375, "p_true": 0.30, "p_false": 0.25, "count": 8},
         {"n": 4, "es": 0.625, "p_true": 0.18, "p_false": 0.33, "count": 8}]


def _screenshot() -> str:
    from rich.console import Console

    console = Console(record=True, width=48, file=open(os.devnull, "w"))
    console.print(EVIL_PROMPT, markup=False, highlight=False)
    svg = console.export_svg(title="hijack panel")
    return svg.replace("</svg>", '<script>alert("shot")</script><rect onclick="alert(2)" width="2" height="2"/></svg>')


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from engine.lca.config import RunConfig
    from engine.lca.runner import TrainingRun

    s = Session.create(tmp_path_factory.mktemp("root"), "Report <demo>")
    cfg = RunConfig.from_flat(dict(m=3, L=8, d=8, d_a=8, steps=30, eval_every=10, batch_size=64,
                                   eval_size=256, device="cpu"))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is ~50x faster on a busy shared machine
    try:
        TrainingRun.start(cfg, s.new_run_dir(cfg), device="cpu").run()
    finally:
        torch.set_num_threads(threads)
    s.record_hijack({"model": "smollm2-135m", "scheme": "not-think", "metric": "efficacy", "records": 8,
                     "curve": CURVE, "dataset": "builtin", "relation": "P190"})
    s.record_sweep({"model": "smollm2-135m", "scheme": "relation",
                    "record": {"subject": "Eiffel <Tower>", "prompt": EVIL_PROMPT, "target_true": "Paris",
                               "target_false": "Chicago", "relation_id": "P131"},
                    "points": [{"n": n, "p_true": 0.6 - 0.05 * n, "p_false": 0.1 + 0.05 * n} for n in range(9)]})
    s.pin_probe({"model": "smollm2-135m", "prompt": EVIL_PROMPT,
                 "top_k": [{"token": " Paris", "prob": 0.4321}, {"token": "<b>", "prob": 0.01}],
                 "targets": [{"target": "Paris", "prob": 0.4321, "first_token_prob": 0.4321, "rank": 1},
                             {"target": "Chicago", "prob": 0.0123, "first_token_prob": 0.0123, "rank": 7}],
                 "svg": _screenshot()})
    from engine.lca.hijack_mirror import mirror_sweep, trace_mirror
    from engine.lca.inspection import load_model_from_run

    (run,) = s.runs()
    run_cfg, model, step = load_model_from_run(s.run_path(run.id))
    s.pin_mirror({**trace_mirror(run_cfg, model, "000", "111", 0.5, seed=1).to_dict(), "run": run.id,
                  "step": step, "config": run_cfg.summary(),
                  "sweep": mirror_sweep(run_cfg, model, 0, 7, ratios=(0.0, 0.5, 1.0), n=32).to_dict()})
    s.record_experiment({"name": "wv-frozen", "title": "Trained vs frozen W_V", "xlabel": "L", "ylabel": "acc",
                         "rows": [{"L": 64, "trained": 0.91, "frozen": 0.42}, {"L": 128, "trained": 0.95,
                                                                              "frozen": 0.47}],
                         "curves": {"trained": {"x": [64, 128], "y": [0.91, 0.95]},
                                    "frozen": {"x": [64, 128], "y": [0.42, 0.47]}},
                         "heatmaps": {"gram": {"matrix": [[1.0, 0.2], [0.2, 1.0]]}}})
    return Session.open(s.path)


@pytest.fixture(scope="module")
def report(session):
    return build_report(session)


@pytest.fixture(scope="module")
def html_text(report):
    return render_html(report)


def _final_eval(session):
    (run,) = session.runs()
    evals = [m for m in session.metrics(run.id) if m["event"] == "eval"]
    return run, evals[-1]


def test_report_sections_and_numbers(session, report):
    assert [s.key for s in report.sections] == ["runs", "hijack", "sweeps", "probes", "traces", "repairs", "mirrors",
                                                "experiments",
                                                "environment"]
    assert report.problems == []
    run, last = _final_eval(session)
    assert run.status == "completed" and run.step == 30
    overview = report.section("runs").blocks[0].parts[0]
    (row,) = overview.rows
    assert row[0] == run.id and row[2] == "completed" and row[3] == "30 / 30"
    assert row[5] == last["accuracy"] and row[6] == last["bayes_accuracy"] and row[7] == last["loss"]
    charts = [p for p in report.section("runs").blocks[1].parts if isinstance(p, report_mod.LineChart)]
    loss, acc = charts
    assert set(loss.series) == {"train loss", "eval loss"} and loss.series["train loss"][0] == list(range(1, 31))
    assert acc.series["eval accuracy"][0] == [10, 20, 30] and acc.hlines == {"Bayes accuracy": last["bayes_accuracy"]}

    hij = report.section("hijack")
    table, chart = hij.blocks[0].parts
    assert table.rows[0][2] == "not-think" and table.rows[0][-1] == 0.625 and table.rows[0][-2] == 4
    (series,) = chart.series.values()
    assert series == ([0, 1, 2, 4], [0.0, 0.125, 0.375, 0.625])
    assert len(report.section("sweeps").blocks) == 1 and len(report.section("experiments").blocks) == 1
    env = report.environment
    assert env["python"] and "torch" in env["packages"] and env["device"]


def test_report_draws_the_pinned_hijack_mirror(session, report):
    (item,) = session.items("mirror")
    d = item.data
    (block,) = report.section("mirrors").blocks
    measures = next(p for p in block.parts if isinstance(p, report_mod.Table))
    assert [row[0] for row in measures.rows] == ["clean (r = 0)", "hijacked", "knockout: ỹ tokens",
                                                 "knockout: the rest"]
    assert measures.rows[1][1:4] == [d["hijacked"]["p_true"], d["hijacked"]["p_false"], d["hijacked"]["logit_diff"]]
    (bars,) = [p for p in block.parts if isinstance(p, report_mod.BarChart)]
    xs = sorted(x for xs_, _ in bars.series.values() for x in xs_)
    assert xs == list(range(1, 9)) and d["k"] == len(bars.series["drawn for ỹ"][0]) == round(0.5 * 7)
    total = sum(y for _, ys in bars.series.values() for y in ys)
    assert total == pytest.approx(d["hijacked"]["logit_diff"], abs=1e-9)   # the bars add up to the logit diff
    (sweep,) = [p for p in block.parts if isinstance(p, report_mod.LineChart)]
    assert sweep.series["P(y)"] == ([0.0, 0.5, 1.0], [p["hijacked"]["p_true"] for p in d["sweep"]["points"]])
    from engine.session.report.figures import figure_svg

    assert figure_svg(bars).startswith("<svg")


def test_html_has_the_numbers_and_escapes_user_text(session, html_text):
    _, last = _final_eval(session)
    h = html_text
    assert f"{last['accuracy']:.4f}" in h and f"{last['bayes_accuracy']:.4f}" in h
    for es in ("0.1250", "0.3750", "0.6250"):
        assert es in h
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in h
    assert "Report &lt;demo&gt;" in h and "Eiffel &lt;Tower&gt;" in h
    assert not re.search(r"<\s*script", h, re.IGNORECASE)
    assert "http://" not in h and "https://" not in h
    for key in ("Training runs", "Context hijacking", "Per-record sweeps", "Pinned probes", "Experiments",
                "Environment", "Hijack mirror"):
        assert key in h


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k, v or "") for k, v in attrs)


def test_html_is_self_contained_and_svgs_are_wellformed(html_text):
    p = _Collect()
    p.feed(html_text)
    csp = [v for tag, k, v in p.attrs if tag == "meta" and k == "content" and "default-src" in v]
    assert csp and "default-src 'none'" in csp[0] and "script-src 'none'" in csp[0]
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert not [a for a in p.attrs if a[1].startswith("on")]
    for tag, k, v in p.attrs:
        if k in ("src", "href"):
            allowed = ("data:image/svg+xml;base64,", "#") + (("data:image/png;base64,",) if tag == "image" else ())
            assert v.startswith(allowed), (tag, k, v[:40])
    svgs = re.findall(r"<svg\b.*?</svg>", html_text, re.DOTALL)
    assert len(svgs) == 8  # loss, accuracy, ES against n, the sweep, the mirror's bars and sweep, experiment curves, its heatmap
    for s in svgs:
        ET.fromstring(s)
    # the pinned screenshot: an <img> of the sanitised SVG, scripts and handlers gone
    imgs = [v for tag, k, v in p.attrs if tag == "img" and k == "src"]
    assert len(imgs) == 1
    shot = base64.b64decode(imgs[0].split(",", 1)[1]).decode()
    root = ET.fromstring(shot)
    assert root.tag == f"{{{SVG_NS}}}svg"
    assert "<script" not in shot and "onclick" not in shot and "https://" not in shot
    assert "alert(1)" in shot  # the panel text is still there, escaped


def test_markdown_and_images(report):
    text, images = render_markdown(report, "my report_files")
    assert "<script" not in text and "&lt;script&gt;" in text
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(refs) == len(images) == 9  # the 8 figures and the probe's screenshot
    assert all(r.startswith("my%20report_files/") for r in refs)
    for svg in images.values():
        assert ET.fromstring(svg.split("?>", 1)[1]).tag == f"{{{SVG_NS}}}svg"
    assert "| 4 | 0.6250 |" in text


def test_write_html_and_md(session, tmp_path):
    out = write_report(session, "html", tmp_path / "nested" / "r.html")
    assert out == tmp_path / "nested" / "r.html" and out.read_text().startswith("<!DOCTYPE html>")
    md = write_report(session, "md", tmp_path / "r.md")
    folder = tmp_path / "r_files"
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 9
    for ref in re.findall(r"\]\(r_files/([^)]+)\)", md.read_text()):
        assert (folder / ref).exists()
    # exporting again replaces the images folder; nothing temporary stays behind
    write_report(session, "md", tmp_path / "r.md")
    assert sorted(p.name for p in folder.iterdir()) == names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nested", "r.md", "r_files"]
    # a folder as --out: the file is named after the session
    auto = write_report(session, "html", tmp_path / "nested")
    assert auto.parent == tmp_path / "nested" and auto.name.endswith("-report.html")


def test_same_session_gives_the_same_file(session, tmp_path):
    """Reproducible exports: the report shows the session's last recorded time (not the export
    time) and the figures have fixed ids, so exporting twice writes identical bytes."""
    a = write_report(session, "html", tmp_path / "a.html").read_bytes()
    b = write_report(Session.open(session.path), "html", tmp_path / "b.html").read_bytes()
    assert a == b
    md_a = write_report(session, "md", tmp_path / "a.md")
    md_b = write_report(session, "md", tmp_path / "b.md")
    assert md_a.read_text() == md_b.read_text().replace("b_files", "a_files")
    for f in (tmp_path / "a_files").iterdir():
        assert f.read_bytes() == (tmp_path / "b_files" / f.name).read_bytes()


def test_figure_ids_are_unique_in_the_page(html_text):
    ids = re.findall(r'\sid="([^"]+)"', html_text)
    assert len(ids) == len(set(ids)) and len(ids) > 50


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_unwritable_path_fails_cleanly(session, tmp_path, fmt):
    (tmp_path / "afile").write_text("x")
    before = _listing(tmp_path)
    with pytest.raises(UserError, match="cannot write"):
        write_report(session, fmt, tmp_path / "afile" / "sub" / f"r.{fmt}")
    with pytest.raises(UserError, match="cannot write"):
        write_report(session, fmt, tmp_path / "afile" / f"r.{fmt}")
    assert _listing(tmp_path) == before
    if os.path.isdir("/proc/self"):  # a file system nobody can create files in, root included
        with pytest.raises(UserError, match="cannot write"):
            write_report(session, fmt, f"/proc/lca-tui-report.{fmt}")
        assert not os.path.exists(f"/proc/lca-tui-report.{fmt}")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
@pytest.mark.parametrize("fmt", ["html", "md"])
def test_read_only_folder_fails_cleanly(session, tmp_path, fmt):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(UserError, match="cannot write"):
            write_report(session, fmt, ro / f"r.{fmt}")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_md_failure_restores_the_previous_export(session, tmp_path, monkeypatch):
    md = write_report(session, "md", tmp_path / "r.md")
    old_text = md.read_text()
    old_images = {p.name: p.read_text() for p in (tmp_path / "r_files").iterdir()}

    def boom(path, text):
        raise UserError(f"cannot write {path}: disk full")

    monkeypatch.setattr(write_mod, "atomic_write_text", boom)
    with pytest.raises(UserError, match="disk full"):
        write_report(session, "md", tmp_path / "r.md")
    assert md.read_text() == old_text
    assert {p.name: p.read_text() for p in (tmp_path / "r_files").iterdir()} == old_images
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md", "r_files"]

    # a first export that fails leaves nothing at all
    with pytest.raises(UserError):
        write_report(session, "md", tmp_path / "new" / "x.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md", "r_files"]


def test_report_lists_damaged_files(tmp_path):
    s = Session.open(tmp_path / "s")
    s.record_hijack({"model": "m", "scheme": "not-think", "curve": CURVE})
    bad = s.record_hijack({"model": "m", "scheme": "relation", "curve": CURVE})
    bad.write_text("{not json")
    probe = s.pin_probe({"model": "m", "prompt": "p", "svg": "<svg><unclosed></svg>"})
    r = build_report(Session.open(s.path), env={"python": "3", "packages": {}, "device": "cpu"})
    assert any(bad.name in p for p in r.problems)
    assert any(probe.name in p and "screenshot" in p for p in r.problems)
    h = render_html(r)
    assert "Problems" in h and bad.name in h
    assert len(r.section("hijack").blocks) == 2  # overview + the sound evaluation


def test_empty_session_report(tmp_path):
    s = Session.open(tmp_path / "empty")
    h = render_html(build_report(s, env={"python": "3", "packages": {}, "device": "cpu"}))
    assert "No training runs in this session." in h and "No hijack evaluations" in h


def test_fmt_value():
    assert fmt_value(0.8125) == "0.8125" and fmt_value(0.0) == "0.0000" and fmt_value(None) == "—"
    assert fmt_value(3) == "3" and fmt_value(1.5e-6) == "1.500e-06" and fmt_value(True) == "yes"
    assert fmt_value(float("nan")) == "—" and fmt_value(float("-inf")) == "−∞"  # textnum: one way


def _fake_result(model: str, scheme: str, flips: list, max_n: int = 3, scoring: str = "first"):
    """An EfficacyResult built by the engine's own ``_finish`` from made-up per-record scores: record i
    counts towards the metric from n = flips[i] on (never when None). The whole-target probabilities
    always say P(true) > P(false), so only the recorded ``success`` (the scoring rule's verdict) flips."""
    from types import SimpleNamespace

    from engine.hijack.efficacy import RecordScore, _finish

    scores = [RecordScore(case_id=1000 + i, n=n, prompt="p", p_true=0.6, p_false=0.1, first_true=0.5,
                          first_false=0.2, nll_true=1.0, nll_false=2.0,
                          success=f is not None and n >= f, record_index=i)
              for n in range(max_n + 1) for i, f in enumerate(flips)]
    return _finish(SimpleNamespace(name=model), scheme, scoring, max_n, None, scores, len(flips), False)


def test_report_compares_models_and_flip_points(tmp_path):
    """Two models' evaluations in a session (as the app records them): one chart per scheme with every
    model's latest curve, and the engine's flip points (scoring rule and reverse schemes respected,
    records in numeric order) in the histogram and the mean/median table."""
    import statistics

    from engine.hijack.efficacy import flip_points as engine_flips

    flips_a = [0, 1, None, 2, 1, 3, None, 0, 2, 1, None, 3]  # 12 records: index 10, 11 sort after 9
    flips_b = [1, 1, 0, None, None, 2, 3, 1, 0, None, 2, 1]
    stale = _fake_result("model-a", "not-think", [None] * 12)
    results = [stale, _fake_result("model-a", "not-think", flips_a), _fake_result("model-b", "not-think", flips_b),
               _fake_result("model-b", "reverse-not-think", flips_a[::-1])]
    s = Session.create(tmp_path, "compare")
    for res in results:
        s.record_hijack({**res.to_dict(per_record=True), "dataset": "builtin", "relation": None})
    rep = build_report(Session.open(s.path))
    parts = rep.section("hijack").blocks[0].parts
    (fig2,) = [p for p in parts if isinstance(p, report_mod.LineChart) and "one curve per model" in p.title]
    assert "not-think" in fig2.title and set(fig2.series) == {"model-a", "model-b"}
    for res in results[1:3]:  # the latest evaluation of each model, not the stale one
        assert fig2.series[res.model] == ([p.n for p in res.curve], [p.es for p in res.curve])
    (hist,) = [p for p in parts if isinstance(p, report_mod.Histogram)]
    expected = {f"{r.scheme} · {r.model}": [p.n for p in engine_flips(r)] for r in results[1:]}
    assert hist.samples == expected
    assert expected["not-think · model-a"] == flips_a and expected["reverse-not-think · model-b"] == flips_a[::-1]
    (table,) = [p for p in parts if isinstance(p, report_mod.Table) and "mean n to flip" in p.columns]
    for row in table.rows:
        label, model, scheme, records, flipped, never, mean, median = row
        hit = [v for v in expected[label] if v is not None]
        assert (model, scheme) == tuple(label.split(" · ")[::-1])
        assert (records, flipped, never) == (12, len(hit), 12 - len(hit))
        assert mean == pytest.approx(statistics.mean(hit)) and median == statistics.median(hit)
    assert len(table.rows) == 3
    assert "one curve per model" in render_html(rep) and "mean n to flip" in render_markdown(rep, "img")[0]
