"""The experiment suite: the paper's figures as engine functions (``lca-tui experiment NAME``).

Every experiment is ``run_<name>(grid, progress=None, cancel=None, jobs=1) -> ExperimentResult`` in
one family module, with three grids: ``tiny`` (tests, seconds), ``quick`` (a 2-core CPU, minutes
for the whole suite) and ``paper`` (the paper's sweep, for a GPU). ``ExperimentResult.to_dict()``
is what the session stores and ``--json`` prints: {"name", "title", "figure", "claim", "verdict",
"rule", "grid", "rows", "curves", "seconds", "notes"}.

Registry API (importing this module does not import torch):

    names() -> list[str]
    get(name) -> Experiment               (UserError for an unknown name)
    grid(name, level="quick") -> Grid      (level: tiny | quick | paper)
    run(name, level="quick", seeds=None, jobs=1, device=None, overrides=None,
        progress=None, cancel=None) -> ExperimentResult

Families: ``hijack`` (hijack-curves), ``value`` (value-matrix, value-swap, value-angles),
``embedding`` (embedding-dim, embedding-geometry, spectrum), ``attention`` (attention-cluster),
``context`` (context-mixing, context-length), ``theory`` (theorem1, lemma2, theorem3, theorem4, lemma5,
lemma6). Shared pieces, one thing per module: ``grids`` (Grid), ``results`` (ExperimentResult, Judgement,
the results/ folder), ``judges`` (``judge_<name>(rows)``, the verdict rules), ``stats``, ``jobs``
(``run_jobs``, parallel and torchrun), ``training`` (specs, the accuracy job, best lr), ``render``
(EXPERIMENTS.md from results/).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from engine.errors import UserError
from engine.experiments.grids import LEVELS, Grid  # noqa: F401
from engine.experiments.jobs import Cancelled  # noqa: F401
from engine.experiments.results import ExperimentResult  # noqa: F401


@dataclass(frozen=True)
class Chart:
    """How a terminal chart of the result's curves is drawn."""

    xlabel: str
    ylabel: str
    xlog: bool = False
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    figure: str
    module: str
    chart: Chart
    uses_lm: bool = False

    @property
    def function_name(self) -> str:
        return "run_" + self.name.replace("-", "_")

    def function(self):
        mod = importlib.import_module(f"engine.experiments.{self.module}")
        return getattr(mod, self.function_name)

    def grids(self) -> dict[str, Grid]:
        mod = importlib.import_module(f"engine.experiments.{self.module}")
        return mod.GRIDS[self.name]

    def grid(self, level: str = "quick") -> Grid:
        if level not in LEVELS:
            raise UserError(f"unknown grid level {level!r}: choose {', '.join(LEVELS)}")
        return self.grids()[level]


_ACC = (0.0, 1.0)
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("hijack-curves", "Context hijacking: ES against prepended sentences, every scheme",
               "Fig. 2, C.1, C.3, C.4", "hijack", Chart("n prepended sentences", "ES / accuracy", ylim=_ACC),
               uses_lm=True),
    Experiment("value-matrix", "Trained W_V vs W_V frozen at I", "Fig. 3a, C.1", "value",
               Chart("m", "accuracy", ylim=_ACC)),
    Experiment("value-swap", "Trained W_V swapped for the constructed / random-constructed one", "Fig. C.2",
               "value", Chart("m", "accuracy", ylim=_ACC)),
    Experiment("value-angles", "Smallest principal angle between rank-m W_V approximations", "Fig. C.3",
               "value", Chart("m", "angle (degrees)")),
    Experiment("embedding-dim", "Trained vs frozen W_E across the embedding dimension d", "Fig. C.4",
               "embedding", Chart("d", "accuracy", xlog=True, ylim=_ACC)),
    Experiment("embedding-geometry", "Mean ⟨W_E(t), W_E(t')⟩ against Hamming distance (eq. 5.2)",
               "Fig. 3b, C.5, C.6", "embedding", Chart("Hamming distance", "mean inner product")),
    Experiment("spectrum", "Singular values of the trained W_E", "Fig. C.9-C.12", "embedding",
               Chart("index", "s_i / s_1")),
    Experiment("attention-cluster", "Attention on the last token's cluster", "Fig. 3c, C.7, C.8",
               "attention", Chart("Hamming distance to t_L", "L x mean attention weight")),
    Experiment("context-mixing", "Contexts mixing two outputs: misclassification against the mix ratio",
               "Fig. C.5 (Sec. 5.5)", "context", Chart("r (share of p(.|y2) tokens)", "rate", ylim=_ACC)),
    Experiment("context-length", "Accuracy against context length, beside Bayes", "Fig. C.6", "context",
               Chart("L", "accuracy", xlog=True, ylim=_ACC)),
    Experiment("theorem1", "Theorem 1: constructed model accuracy against L", "Thm 1", "theory",
               Chart("L", "accuracy", xlog=True, ylim=_ACC)),
    Experiment("lemma2", "Lemma 2: constructed W_V vs W_V = I", "Lemma 2", "theory",
               Chart("L", "accuracy", xlog=True, ylim=_ACC)),
    Experiment("theorem3", "Theorem 3: W_V = I, ω = 1 trained embeddings linear in D_H", "Thm 3", "theory",
               Chart("Hamming distance", "mean inner product")),
    Experiment("theorem4", "Theorem 4: eq. 5.2 embeddings, error against b_0 and L", "Thm 4", "theory",
               Chart("L", "error", xlog=True, ylim=_ACC)),
    Experiment("lemma5", "Lemma 5: eq. 5.2 with b = b_0 has rank <= m + 2", "Lemma 5", "theory",
               Chart("m", "rank")),
    Experiment("lemma6", "Lemma 6: attention-score gradient, closed form vs autograd", "Lemma 6", "theory",
               Chart("m", "relative error")),
]}


def names() -> list[str]:
    return list(EXPERIMENTS)


def get(name: str) -> Experiment:
    key = str(name).strip().lower()
    if key not in EXPERIMENTS:
        raise UserError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)} "
                        "(or `lca-tui experiment list`)")
    return EXPERIMENTS[key]


def grid(name: str, level: str = "quick") -> Grid:
    return get(name).grid(level)


def claim(name: str) -> str:
    """The paper's statement the experiment checks (one sentence)."""
    exp = get(name)
    mod = importlib.import_module(f"engine.experiments.{exp.module}")
    return mod.CLAIMS[exp.name]


def parse_value(text: str) -> Any:
    """A ``--set KEY=VALUE`` value: JSON when it parses (numbers, true, null, [..]), a comma list
    of such values, else the string itself."""
    import json

    def one(s: str):
        s = s.strip()
        try:
            return json.loads(s)
        except ValueError:
            return s

    if "," in text and not text.strip().startswith("["):
        return [one(p) for p in text.split(",") if p.strip()]
    return one(text)


def build_grid(name: str, level: str = "quick", seeds: int | None = None, device: str | None = None,
               overrides: Mapping[str, Any] | None = None) -> Grid:
    """The experiment's grid at ``level`` with seeds 0..seeds-1, the device and other overrides."""
    g = grid(name, level)
    if overrides:
        g = g.replace(**dict(overrides))
    if seeds is not None:
        g = g.with_seeds(seeds)
    if device is not None:
        if "device" not in g:
            raise UserError(f"experiment {name!r} has no device setting")
        from engine.device import DEVICE_CHOICES

        if (device or "").split(":", 1)[0] not in DEVICE_CHOICES:
            raise UserError(f"unknown device {device!r}: choose auto, cpu, cuda, cuda:N or mps")
        g = g.replace(device=device)
    return g


def run(name: str, level: str = "quick", seeds: int | None = None, jobs: int = 1, device: str | None = None,
        overrides: Mapping[str, Any] | None = None, progress=None, cancel=None) -> ExperimentResult:
    """Build the grid (see ``build_grid``) and run the experiment."""
    exp = get(name)
    g = build_grid(exp.name, level, seeds, device, overrides)
    return exp.function()(g, progress=progress, cancel=cancel, jobs=jobs)
