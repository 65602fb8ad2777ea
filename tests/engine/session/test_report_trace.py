"""The report draws causal traces: one prompt's curves, heat maps and table from its numbers, a
dataset trace's mean curves and head-ablation table; user text escaped, figures well-formed."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from engine.session.report import build_report, render_html
from engine.session.report.document import Heatmap, LineChart, Table
from engine.session.store import Session

PROMPT = "The Eiffel Tower is located in the city of"


@pytest.fixture(scope="module")
def session(tmp_path_factory, tiny_lm_dir):
    import torch

    from engine.experiments.mechanism import dataset_trace
    from engine.hijack import trace as T
    from engine.hijack.counterfact import FactRecord
    from engine.hijack.lm import load_lm

    torch.set_num_threads(1)
    lm = load_lm(str(tiny_lm_dir), device="cpu")
    s = Session.open(tmp_path_factory.mktemp("s") / "sess")
    pair = T.prepare(lm, PROMPT, "Do not think of London <script>alert(1)</script>. ", " Paris", " London")
    s.record_trace(T.trace(lm, pair).to_dict())
    recs = [FactRecord(case_id=i, subject=x, prompt="{} is located in the city of", relation_id="P131",
                       target_true="Paris", target_false="London") for i, x in enumerate(["Lyon", "Rome", "Toko"])]
    s.record_trace(dataset_trace(lm, recs, "not-think", 1))
    return s


def test_one_trace_block_is_its_numbers(session):
    one, data = session.items("trace")
    report = build_report(session, env={"python": "3", "packages": {}, "device": "cpu"})
    sec = report.section("traces")
    assert len(sec.blocks) == 2 and report.problems == []
    parts = sec.blocks[0].parts
    measures = next(p for p in parts if isinstance(p, Table))
    assert measures.rows[1][1:] == [one.data["hijacked"][k] for k in ("p_true", "p_false", "logit_diff")]
    (curves,) = [p for p in parts if isinstance(p, LineChart)]
    layers = one.data["layers"]
    assert curves.series["knockout: mentions, window"][1] == [e["knockout_mentions_window"]["logit_diff"]
                                                              for e in layers]
    assert curves.hlines["clean"] == one.data["clean"]["logit_diff"]
    restore, heads = [p for p in parts if isinstance(p, Heatmap)]
    unaligned = one.data["unaligned"]
    assert unaligned  # ' The' after the prepend is not the clean prompt's 'The'
    assert restore.xticks == ([one.data["tokens"][i] for i in unaligned] + [p["token"] for p in one.data["positions"]])
    assert restore.yticks == [0, 1]
    assert all(math.isnan(v) for row in restore.matrix for v in row[:len(unaligned)])  # blank: not restored
    text = " ".join(getattr(p, "text", "") for p in parts)
    assert "keep position 0" in text and "not restored" in text
    assert restore.matrix[1][-1] == layers[1]["restore"]["resid"][-1]["logit_diff"]
    assert heads.diverging and len(heads.matrix) == 2 and len(heads.matrix[0]) == 2
    ds = sec.blocks[1].parts
    (ablation,) = [p for p in ds if isinstance(p, Table)]
    assert [row[0] for row in ablation.rows] == [a["k"] for a in data.data["heads"]["ablation"]]


def test_html_escapes_the_prepend_and_draws_wellformed_figures(session):
    report = build_report(session, env={"python": "3", "packages": {}, "device": "cpu"})
    html = render_html(report)
    assert "Causal traces" in html and not re.search(r"<\s*script", html, re.IGNORECASE)
    assert "&lt;script&gt;" in html
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.DOTALL)
    assert len(svgs) == 4  # one trace: curves, restore map, head grid; the dataset: its curves
    for svg in svgs:
        ET.fromstring(svg)
