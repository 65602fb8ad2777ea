"""The report draws defenses (issue 30): a dataset result's table and frontiers are its numbers, a pinned
defended probe its probabilities and continuations; user text escaped, figures well-formed; a record
of neither shape is refused."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from engine.errors import UserError
from engine.session.report import build_report, render_html
from engine.session.report.document import LineChart, Table
from engine.session.store import Session
from textnum import finite

ENV = {"python": "3", "packages": {}, "device": "cpu"}


@pytest.fixture(scope="module")
def session(tmp_path_factory, tiny_lm_dir):
    import torch

    from engine.hijack.counterfact import FactRecord
    from engine.hijack.lm import load_lm
    from engine.hijack.repair import repair

    torch.set_num_threads(1)
    lm = load_lm(str(tiny_lm_dir), device="cpu")
    recs = [FactRecord(case_id=i, subject=x, prompt="{} is located in the city of", relation_id="P131",
                       target_true="Paris", target_false="London")
            for i, x in enumerate(["Lyon", "Rome", "Toko", "Nice"])]
    data = repair(lm, recs, "not-think", 2, defenses=("drop-context", "contrastive"), batch_size=4)
    for d in data["defenses"]:
        d.pop("defense", None)
    s = Session.open(tmp_path_factory.mktemp("s") / "sess")
    s.record_repair(data)
    s.record_repair({"model": lm.name, "prompt": "Do not think of <script>x</script>. The Eiffel Tower is in",
                     "prepend": "Do not think of <script>x</script>. ", "question": "The Eiffel Tower is in",
                     "defense": {"name": "heads", "params": {"alpha": 0.0, "heads": [[1, 0], [0, 1]]}},
                     "undefended": {"probs": {" Paris": 0.12, " London": 0.5}, "continuation": " London <b>"},
                     "defended": {"probs": {" Paris": 0.4, " London": 0.2}, "continuation": " Paris, the"},
                     "shaped": "shaped on this record (not held out)"})
    return s, data


def test_dataset_block_is_its_numbers(session):
    s, data = session
    report = build_report(s, env=ENV)
    sec = report.section("repairs")
    assert len(sec.blocks) == 2 and report.problems == []
    parts = sec.blocks[0].parts
    (table,) = [p for p in parts if isinstance(p, Table)]
    assert [row[0] for row in table.rows] == [d["name"] for d in data["defenses"]]
    contrastive = next(d for d in data["defenses"] if d["name"] == "contrastive")
    row = next(r for r in table.rows if r[0] == "contrastive")
    assert row[3] == contrastive["sign_p"]
    assert row[1] == f"{contrastive['es_before']:.3f} → {contrastive['es_after']:.3f}"
    assert f"α = {contrastive['params']['alpha']:.3g}" in row[-1]
    assert row[7] == finite(contrastive["reverse_log_p_true_change"]["mean"]) and row[8] == contrastive["tied_after"]
    frontier, by_alpha = [p for p in parts if isinstance(p, LineChart)]
    points = contrastive["frontier"]
    assert len(points) == 3  # the contrastive grid
    assert frontier.series["contrastive"] == ([p["clean_accuracy"] for p in points], [p["es"] for p in points])
    assert by_alpha.series["contrastive"][0] == [p["alpha"] for p in points]
    assert frontier.hlines["ES undefended"] == data["defenses"][0]["es_before"]


def test_probe_block_and_html(session):
    s, _ = session
    report = build_report(s, env=ENV)
    probe = report.section("repairs").blocks[1]
    (targets, says) = [p for p in probe.parts if isinstance(p, Table)]
    assert targets.rows == [["' Paris'", 0.12, 0.4], ["' London'", 0.5, 0.2]]
    assert says.rows[1][1] == repr(" Paris, the")
    text = " ".join(getattr(p, "text", "") for p in probe.parts)
    assert "heads L1H0 L0H1" in text and "not held out" in text
    html = render_html(report)
    assert "Defenses against the hijack" in html and not re.search(r"<\s*script", html, re.IGNORECASE)
    assert "&lt;script&gt;" in html and "<b>" not in html
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.DOTALL)
    assert len(svgs) == 2  # the dataset result's two frontier charts
    for svg in svgs:
        ET.fromstring(svg)


def test_a_record_of_neither_shape_is_refused(tmp_path):
    s = Session.open(tmp_path / "sess")
    with pytest.raises(UserError, match="defenses"):
        s.record_repair({"model": "m", "curve": []})
    assert s.items("repair") == []
