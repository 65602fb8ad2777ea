"""The experiment registry, grids, result dicts and the small statistics behind the verdicts."""

import json
import math

import pytest

from engine import experiments as E
from engine.errors import UserError
from engine.experiments.grids import Grid
from engine.experiments.results import ExperimentResult
from engine.experiments.stats import mean_std, paired_gap, sign_test_p, spearman

ALL = ["hijack-curves", "hijack-mechanism", "hijack-repair", "value-matrix", "value-swap", "value-angles", "embedding-dim", "embedding-geometry",
       "spectrum", "attention-cluster", "context-mixing", "context-length", "theorem1", "lemma2",
       "theorem3", "theorem4", "lemma5", "lemma6"]


def test_registry_lists_every_experiment_with_three_grids_and_a_claim():
    assert E.names() == ALL
    for name in ALL:
        exp = E.get(name)
        grids = exp.grids()
        assert set(grids) == {"tiny", "quick", "paper"}
        assert all(isinstance(g, Grid) and g.level == lvl for lvl, g in grids.items())
        assert callable(exp.function()) and exp.function().__name__ == "run_" + name.replace("-", "_")
        claim = E.claim(name)
        assert isinstance(claim, str) and len(claim) > 40


def test_unknown_experiment_and_level_are_user_errors():
    with pytest.raises(UserError, match="unknown experiment"):
        E.get("elephants")
    with pytest.raises(UserError, match="grid level"):
        E.grid("theorem1", "huge")


def test_paper_grids_follow_the_paper():
    vm = E.grid("value-matrix", "paper")
    assert tuple(vm["m"]) == (5, 6, 7, 8) and tuple(vm["L"]) == (64, 128)
    assert set(vm["lr"]) == {0.01, 0.001} and len(vm["seeds"]) >= 3
    sp = E.grid("spectrum", "paper")
    assert tuple(sp["m"]) == (7, 8) and tuple(sp["d"]) == (32, 64)
    ed = E.grid("embedding-dim", "paper")
    ms = E.grids.as_list(ed["m"])
    assert min(ed["d"]) < 2 ** min(ms) and max(ed["d"]) > 2 ** max(ms)  # both sides of V
    assert tuple(E.grid("attention-cluster", "paper")["k"]) == (1, 2)
    hj = E.grid("hijack-curves", "paper")
    assert "openai-community/gpt2" in hj["models"] and "P190" in hj["relations"]
    assert E.grid("hijack-curves", "quick")["models"] == ("smollm2-135m",)
    assert E.grid("hijack-curves", "quick")["max_prepends"] == 3


def test_quick_grids_are_cpu_sized():
    for name in ALL:
        g = E.grid(name, "quick")
        if "steps" in g:       # a plateau-stopped grid (patience) may have a larger cap
            assert g["steps"] <= (3000 if g.get("patience") else 500)
        if "m" in g:
            assert max(E.grids.as_list(g["m"])) <= 8


def test_build_grid_applies_seeds_device_and_overrides():
    g = E.build_grid("value-matrix", "tiny", seeds=3, device="cpu", overrides={"steps": 10})
    assert g["seeds"] == (0, 1, 2) and g["device"] == "cpu" and g["steps"] == 10
    with pytest.raises(UserError, match="unknown grid parameter"):
        E.build_grid("value-matrix", "tiny", overrides={"stepz": 10})
    with pytest.raises(UserError, match="seeds"):
        E.build_grid("value-matrix", "tiny", seeds=0)
    with pytest.raises(UserError, match="unknown device"):
        E.build_grid("value-matrix", "tiny", device="tpu")


def test_grid_is_read_only_and_serialisable():
    g = Grid("tiny", m=(3, 4), lr=[0.01], device="cpu")
    with pytest.raises(AttributeError):
        g.m = 5
    assert g["lr"] == (0.01,)
    assert g.to_dict() == {"level": "tiny", "m": [3, 4], "lr": [0.01], "device": "cpu"}
    assert g.replace(device="cuda")["device"] == "cuda" and g["device"] == "cpu"
    assert g == Grid("tiny", m=[3, 4], lr=(0.01,), device="cpu")


@pytest.mark.parametrize("text, value", [("3", 3), ("0.5", 0.5), ("true", True), ("null", None),
                                         ("[1, 2]", [1, 2]), ("1,2,4", [1, 2, 4]), ("P190", "P190"),
                                         ("P190,P103", ["P190", "P103"])])
def test_parse_value(text, value):
    assert E.parse_value(text) == value


def test_result_to_dict_is_strict_json_with_the_store_keys():
    r = ExperimentResult("x", "X", "a claim", "inconclusive", "a rule", {"level": "tiny"},
                         rows=[{"a": 1.0, "b": float("nan")}], curves={"s": {"x": [1, 2], "y": [0.5, float("inf")]}},
                         seconds=1.23456)
    d = r.to_dict()
    assert {"name", "title", "claim", "verdict", "rule", "grid", "rows", "curves", "seconds"} <= set(d)
    assert d["rows"] == [{"a": 1.0, "b": None}] and d["curves"]["s"]["y"] == [0.5, None]
    json.dumps(d, allow_nan=False)
    with pytest.raises(ValueError):
        ExperimentResult("x", "X", "c", "maybe", "r", {}, [])


def test_statistics():
    assert mean_std([1.0, 3.0]) == (2.0, math.sqrt(2.0))
    assert mean_std([2.0]) == (2.0, 0.0)
    assert math.isnan(mean_std([])[0])
    gap, se, n = paired_gap([1, 2, 3], [0, 1, 1])
    assert n == 3 and gap == pytest.approx(4 / 3) and se == pytest.approx(math.sqrt(1 / 3) / math.sqrt(3))
    assert spearman([1, 2, 3, 4], [0.1, 0.2, 0.5, 0.9]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, 3], [1, 1, 1]))
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(1 / 32)
    assert sign_test_p(3, 3) == pytest.approx(sum(math.comb(6, i) for i in range(3, 7)) / 64)
