"""Results: ``ExperimentResult`` (what every ``run_<name>`` returns; ``Judgement`` and ``Effect`` live in
``engine.experiments.verdict``) and the committed ``results/<level>/<name>.json`` files that
EXPERIMENTS.md is rendered from (``engine.experiments.render``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.atomic import jsonable
from engine.experiments.verdict import Judgement, check_verdict

_clean = jsonable  # the project's one JSON serialiser (engine/atomic.py)


@dataclass
class ExperimentResult:
    """The outcome of one experiment. ``verdict`` comes from the experiment's ``judge_<name>(rows)``
    under ``rule``; ``reasons`` and ``effects`` are that judgement's numbers."""

    name: str
    title: str
    claim: str
    verdict: str
    rule: str
    grid: dict
    rows: list[dict]
    curves: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    figure: str = ""
    notes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    effects: list[dict] = field(default_factory=list)

    def __post_init__(self):
        check_verdict(self.verdict)

    @classmethod
    def judged(cls, name: str, title: str, claim: str, judgement: Judgement, rule: str, grid: dict,
               rows: list[dict], curves: dict, seconds: float, figure: str = "",
               notes: Sequence[str] = ()) -> ExperimentResult:
        return cls(name, title, claim, judgement.verdict, rule, grid, rows, curves, seconds, figure,
                   list(notes), list(judgement.reasons), [e.to_dict() for e in judgement.effects])

    def to_dict(self) -> dict:
        """{"name", "title", "figure", "claim", "verdict", "rule", "reasons", "effects", "grid", "rows",
        "curves", "seconds", "notes"}: strict JSON values (NaN becomes null)."""
        return _clean({"name": self.name, "title": self.title, "figure": self.figure,
                       "claim": self.claim, "verdict": self.verdict, "rule": self.rule,
                       "reasons": list(self.reasons), "effects": list(self.effects),
                       "grid": self.grid, "rows": self.rows, "curves": self.curves,
                       "seconds": round(float(self.seconds), 3), "notes": list(self.notes)})


def curve(x: Sequence, y: Sequence) -> dict:
    return {"x": [_clean(v) for v in x], "y": [_clean(v) for v in y]}


# ----------------------------------------------------------------------------------- results/ folder
def result_path(root: str | Path, level: str, name: str) -> Path:
    """Where the committed result of ``name`` at ``level`` lives: ``root/<level>/<name>.json``."""
    return Path(root) / level / f"{name}.json"


def save_result(root: str | Path, data: dict, extra: dict | None = None) -> Path:
    """Write ``data`` (an ``ExperimentResult.to_dict()``) to ``result_path`` atomically, with
    ``extra`` (e.g. the command, jobs, load average) under "run"."""
    from engine.atomic import atomic_write_json

    level = (data.get("grid") or {}).get("level") or "custom"
    out = dict(data)
    if extra:
        out["run"] = _clean(dict(extra))
    return Path(atomic_write_json(result_path(root, level, data["name"]), out))


def load_results(root: str | Path, level: str) -> dict[str, dict]:
    """name -> result dict for every ``root/<level>/*.json`` (empty when the folder is missing)."""
    d = Path(root) / level
    out = {}
    if d.is_dir():
        for p in sorted(d.glob("*.json")):
            out[p.stem] = json.loads(p.read_text(encoding="utf-8"))
    return out


def rejudge(data: dict) -> dict:
    """``data`` with its verdict, reasons, effects and rule recomputed from its rows by the current
    ``judge_<name>`` (the rows are the evidence; a changed rule needs no rerun)."""
    from engine.experiments import judges

    j = getattr(judges, "judge_" + data["name"].replace("-", "_"))(data.get("rows") or [])
    return {**data, "verdict": j.verdict, "rule": judges.RULES[data["name"]], "reasons": list(j.reasons),
            "effects": [_clean(e.to_dict()) for e in j.effects]}
