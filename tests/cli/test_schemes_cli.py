"""``lca-tui schemes``: the table and the JSON form."""

from __future__ import annotations

import json

from lca_tui.cli import main


def test_schemes_json(capsys):
    assert main(["schemes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["schemes"]) == {"not-think", "relation", "reverse-not-think",
                                    "reverse-relation", "custom"}
    assert len(data["relations"]) == 34
    assert data["relations"]["P190"]["negative"] == "The twin city of {subject} is not {target_false}."


def test_schemes_table(capsys):
    assert main(["schemes"]) == 0
    out = capsys.readouterr().out
    for word in ("not-think", "reverse-relation", "custom", "P190", "P1412", "accuracy"):
        assert word in out
