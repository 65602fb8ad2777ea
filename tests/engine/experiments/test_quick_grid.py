"""Every synthetic experiment runs at its ``--quick`` grid and reproduces the committed result.

``results/quick/<name>.json`` is what EXPERIMENTS.md shows for the quick grid; these tests rerun each
experiment exactly as committed (same grid, 2 worker processes, fixed seeds, one torch thread a job)
and require the same verdict and the same main effects. Seeds fix every number on a given machine;
the tolerance only covers another CPU's floating-point order (a few samples of a held-out set).
Trained models are shared between the experiments of this module through one model cache, as
``lca-tui experiment all`` does (results do not depend on it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine import experiments as E

ROOT = Path(__file__).resolve().parents[3]
SYNTHETIC = [e.name for e in E.EXPERIMENTS.values() if not e.uses_lm]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("train-cache")


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and (math.isnan(a) or math.isnan(b)):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= max(0.02, 0.05 * abs(b))


@pytest.mark.parametrize("name", SYNTHETIC)
def test_quick_grid_reproduces_the_committed_result(name, model_cache, monkeypatch):
    path = ROOT / "results" / "quick" / f"{name}.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `lca-tui experiment all --quick --jobs 2 --results results`")
    committed = json.loads(path.read_text(encoding="utf-8"))
    monkeypatch.setenv("LCA_TUI_TRAIN_CACHE", str(model_cache))
    grid = {k: v for k, v in committed["grid"].items() if k != "level"}
    assert grid == {k: v for k, v in E.grid(name, "quick").to_dict().items() if k != "level"}, \
        "the committed quick result was made with another grid: rerun it"
    now = E.run(name, "quick", jobs=2).to_dict()
    assert now["verdict"] == committed["verdict"], (now["reasons"], committed["reasons"])
    assert len(now["effects"]) == len(committed["effects"])
    for e_now, e_then in zip(now["effects"], committed["effects"]):
        assert e_now["name"] == e_then["name"] and e_now["n"] == e_then["n"]
        assert _close(e_now["value"], e_then["value"]), (e_now, e_then)
