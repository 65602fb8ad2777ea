"""engine.atomic: the one JSON serialiser (``jsonable``) and strict JSON files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from engine.atomic import atomic_write_json, dumps, jsonable


@dataclass
class _Point:
    n: int
    es: float


class _WithToDict:
    def to_dict(self):
        return {"a": (1, 2), "nan": float("nan")}


def _reference(obj):
    """A plain reference: what each input must become, spelled out case by case."""
    return json.loads(json.dumps(obj, allow_nan=True).replace("NaN", "null").replace("-Infinity", "null")
                      .replace("Infinity", "null"))


def test_jsonable_values():
    assert jsonable({"p": _Point(2, 0.5), "t": (1, 2.5), 3: None}) == {"p": {"n": 2, "es": 0.5}, "t": [1, 2.5],
                                                                      "3": None}
    assert jsonable(_WithToDict()) == {"a": [1, 2], "nan": None}
    assert jsonable([float("inf"), -float("inf"), float("nan"), True, "x"]) == [None, None, None, True, "x"]
    assert jsonable(Path("/a/b")) == "/a/b"
    assert jsonable(np.float32(0.25)) == 0.25 and type(jsonable(np.int64(7))) is int
    assert jsonable(np.array([[1.0, np.nan], [2.0, 3.0]])) == [[1.0, None], [2.0, 3.0]]
    assert jsonable(np.bool_(True)) is True
    assert jsonable(_Point) == str(_Point)  # a class is not a dataclass instance


def test_jsonable_matches_a_plain_reference_on_plain_data():
    data = {"rows": [{"L": 64, "acc": 0.91, "x": float("nan")}], "curve": [[0, 0.0], [1, math.inf]], "ok": True}
    assert jsonable(data) == _reference(data)


def test_torch_values():
    torch = pytest.importorskip("torch")
    assert jsonable({"w": torch.tensor([1.5, float("nan")]), "s": torch.tensor(3)}) == {"w": [1.5, None], "s": 3}


def test_files_are_strict_json(tmp_path):
    p = atomic_write_json(tmp_path / "a" / "x.json", {"v": float("nan"), "name": "Köln", "t": (1,)})
    text = p.read_text(encoding="utf-8")
    assert json.loads(text) == {"v": None, "name": "Köln", "t": [1]} and "NaN" not in text and "Köln" in text
    assert dumps({"x": np.float64(1.0)}) == '{"x": 1.0}'
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_new_files_get_the_usual_permissions_and_replaced_files_keep_theirs(tmp_path):
    import stat

    from engine import atomic

    p = atomic_write_json(tmp_path / "n.json", {})
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~atomic._UMASK  # like open(), not mkstemp's 0o600
    p.chmod(0o640)
    atomic_write_json(p, {"a": 1})
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
