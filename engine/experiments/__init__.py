"""The experiment suite: the paper's figures as engine functions (``lca-tui experiment NAME``).

Every experiment is ``run_<name>(grid, ctx=None, jobs=1) -> ExperimentResult`` in
one family module, with three grids: ``tiny`` (tests, seconds), ``quick`` (a 2-core CPU, minutes
for the whole suite) and ``paper`` (the paper's sweep, for a GPU). ``ExperimentResult.to_dict()``
is what the session stores and ``--json`` prints: {"name", "title", "figure", "claim", "verdict",
"rule", "grid", "rows", "curves", "seconds", "notes"}.

Registry API (importing this module does not import torch):

    names() -> list[str]
    get(name) -> ExperimentSpec           (UserError for an unknown name)
    grid(name, level="quick") -> Grid      (level: tiny | quick | paper)
    run(name, level="quick", seeds=None, jobs=1, device=None, overrides=None,
        ctx=None) -> ExperimentResult     (ctx: an engine.job_context.JobContext; progress counts jobs)

Families: ``hijack`` (hijack-curves), ``mechanism`` (hijack-mechanism: the causal trace over records),
``repair`` (hijack-repair: defenses chosen on half the records, scored on the other half),
``value`` (value-matrix, value-swap, value-angles), ``embedding`` (embedding-dim, embedding-geometry,
spectrum), ``attention`` (attention-cluster),
``context`` (context-mixing, context-length), ``theory`` (theorem1, lemma2, theorem3, theorem4, lemma5,
lemma6). Shared pieces, one thing per module: ``specs`` (``ExperimentSpec``: name, title, figure, claim,
chart, declared once per experiment), ``verdict`` (Effect, Judgement, the verdict words; a leaf),
``grids`` (Grid), ``results`` (ExperimentResult, the results/ folder), ``judges`` (``judge_<name>(rows)``,
the verdict rules), ``stats``, ``jobs``
(``run_jobs``, parallel and torchrun), ``training`` (specs, the accuracy job, best lr), ``render``
(EXPERIMENTS.md from results/).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import Cancelled, UserError  # noqa: F401
from engine.experiments.grids import LEVELS, Grid  # noqa: F401
from engine.experiments.results import ExperimentResult
from engine.experiments.specs import SPECS, Chart, ExperimentSpec  # noqa: F401

Experiment = ExperimentSpec  # the registry's entries are the specs
EXPERIMENTS: dict[str, ExperimentSpec] = SPECS


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
    return get(name).claim


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
        overrides: Mapping[str, Any] | None = None, ctx=None) -> ExperimentResult:
    """Build the grid (see ``build_grid``) and run the experiment."""
    exp = get(name)
    g = build_grid(exp.name, level, seeds, device, overrides)
    return exp.function()(g, ctx=ctx, jobs=jobs)
