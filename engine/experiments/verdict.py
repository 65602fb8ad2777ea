"""The verdict vocabulary, a leaf module: the verdict words, ``Effect`` (an effect size with its 95% CI)
and ``Judgement`` (what every ``judge_<name>(rows)`` returns). Imports nothing of the suite.

Besides "holds", "does not hold" and "inconclusive" there is "holds once corrected": the statement as
printed fails, a stated correction (an erratum in a formula, given in the reasons) holds, and the
paper's qualitative point survives it (Lemma 6)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.atomic import jsonable

HOLDS, FAILS, UNSURE = "holds", "does not hold", "inconclusive"
CORRECTED = "holds once corrected"
VERDICTS = (HOLDS, FAILS, UNSURE, CORRECTED)


def check_verdict(verdict: str) -> None:
    """ValueError unless ``verdict`` is one of ``VERDICTS``."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")


@dataclass(frozen=True)
class Effect:
    """An effect size with its 95% confidence interval (``lo``, ``hi``; NaN when it cannot be
    estimated, e.g. one seed)."""

    name: str
    value: float
    lo: float = float("nan")
    hi: float = float("nan")
    n: int = 0

    def to_dict(self) -> dict:
        return jsonable({"name": self.name, "value": self.value, "ci95": [self.lo, self.hi], "n": self.n})

    @property
    def degenerate(self) -> bool:
        """True when the interval is a single point (every run gave the same value): a constant, not
        a precise estimate."""
        return self.n >= 2 and math.isfinite(self.value) and self.lo == self.hi == self.value

    def text(self) -> str:
        def f(x):
            return "nan" if x is None or not math.isfinite(x) else f"{x:.4g}"
        if self.degenerate:
            return f"{self.name}: all {self.n} runs = {f(self.value)}"
        return f"{self.name} = {f(self.value)} (95% CI [{f(self.lo)}, {f(self.hi)}], n = {self.n})"


@dataclass(frozen=True)
class Judgement:
    """The verdict of one experiment on its rows, the reasons (one sentence each, with numbers) and
    the effect sizes. Unpacks as ``verdict, reasons = judge_<name>(rows)``."""

    verdict: str
    reasons: tuple[str, ...]
    effects: tuple[Effect, ...] = ()

    def __post_init__(self):
        check_verdict(self.verdict)

    def __iter__(self):
        return iter((self.verdict, list(self.reasons)))
