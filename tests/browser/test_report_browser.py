"""An exported HTML report opened in a real browser (Debian's Chromium via Playwright) under its own
Content-Security-Policy: every chart is an inline SVG that lays out with a nonzero size and draws
marks. Skips where no Chromium is installed."""

from __future__ import annotations

import pytest

CURVE = [{"n": n, "es": es, "p_true": 0.6 - 0.1 * n, "p_false": 0.05 + 0.1 * n, "count": 8}
         for n, es in enumerate((0.0, 0.125, 0.375, 0.625))]

#: Per top-level inline SVG: its laid-out size and how many of its shapes have a nonzero box.
CHARTS_JS = """() => Array.from(document.querySelectorAll('svg')).filter(s => !s.parentElement.closest('svg'))
  .map(s => {
    const r = s.getBoundingClientRect();
    const marks = Array.from(s.querySelectorAll('path, polyline, line, rect, circle, polygon')).filter(e => {
      const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length;
    return {width: r.width, height: r.height, marks: marks,
            label: s.getAttribute('aria-label') || (s.querySelector('title') || {}).textContent || ''};
  })"""


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    """A session with a hijack ES curve, a P(true)/P(false) sweep and an experiment (curves and a
    heatmap), exported as HTML by the engine."""
    from engine.session.report import write_report
    from engine.session.store import Session

    root = tmp_path_factory.mktemp("sessions")
    s = Session.create(root, "browser report")
    s.record_hijack({"model": "smollm2-135m", "scheme": "not-think", "metric": "efficacy", "records": 8,
                     "curve": CURVE, "dataset": "builtin", "relation": "P190"})
    s.record_sweep({"model": "smollm2-135m", "scheme": "relation",
                    "record": {"subject": "Eiffel Tower", "prompt": "The Eiffel Tower is in",
                               "target_true": "Paris", "target_false": "Chicago", "relation_id": "P131"},
                    "points": [{"n": n, "p_true": 0.6 - 0.05 * n, "p_false": 0.1 + 0.05 * n} for n in range(9)]})
    s.record_experiment({"name": "wv-frozen", "title": "Trained vs frozen W_V", "xlabel": "L", "ylabel": "acc",
                         "rows": [{"L": 64, "trained": 0.91, "frozen": 0.42},
                                  {"L": 128, "trained": 0.95, "frozen": 0.47}],
                         "curves": {"trained": {"x": [64, 128], "y": [0.91, 0.95]},
                                    "frozen": {"x": [64, 128], "y": [0.42, 0.47]}},
                         "heatmaps": {"gram": {"matrix": [[1.0, 0.2], [0.2, 1.0]]}}})
    return write_report(Session.open(s.path), "html", root / "report.html")


@pytest.mark.slow
def test_report_charts_render_in_the_browser(browser, report_html, tmp_path):
    html = report_html.read_text(encoding="utf-8")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(report_html.as_uri())
        page.wait_for_load_state("load")
        charts = page.evaluate(CHARTS_JS)
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    finally:
        context.close()
    # the ES curve, the sweep, the experiment's curves and its heatmap: at least four charts
    assert len(charts) >= 4, charts
    assert len(charts) == html.count("<svg"), "every inline SVG of the file is a chart on the page"
    for c in charts:
        assert c["width"] > 100 and c["height"] > 50, c
        assert c["marks"] >= 3, c  # frame, axes or cells, and the data
    assert requests == [report_html.as_uri()], "a self-contained file loads nothing else"
