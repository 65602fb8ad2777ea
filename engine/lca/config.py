"""Run configuration: the task (TaskConfig), the model (ModelConfig) and the optimiser (TrainConfig).

Pure data: importing this module does not import torch, so the app can validate forms at once.

Frozen dataclasses validated on construction; a bad value raises ConfigError with one sentence.
``RunConfig.flat()`` / ``RunConfig.from_flat()`` give the one-level view the CLI flags and the
trainer form use; ``to_dict`` / ``from_dict`` the nested JSON written to ``config.json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from engine.errors import ConfigError
from engine.lca.latent import LatentSpace, parse_neighborhood


def _int(name, v, lo=None):
    if not isinstance(v, int) or isinstance(v, bool) or (lo is not None and v < lo):
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}", field=name)


def _pos(name, v, allow_zero=False):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or v < 0 or (v == 0 and not allow_zero):
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {v!r}",
                          field=name)


@dataclass(frozen=True)
class TaskConfig:
    """Parameters of the synthetic task. Defaults are ours (the paper's appendix values are
    not known): ω = 0.5 (half the context is noise), β = 1, every other token a neighbour."""

    m: int = 6
    L: int = 64
    omega: float = 0.5
    beta: float = 1.0
    neighborhood: str = "all"

    def __post_init__(self):
        LatentSpace(self.m)  # validates m
        if not isinstance(self.L, int) or self.L < 1:
            raise ConfigError(f"L (context length) must be an integer >= 1, got {self.L!r}", field="L")
        if not (isinstance(self.omega, (int, float)) and 0.0 <= float(self.omega) <= 1.0):
            raise ConfigError(f"omega must lie in [0, 1], got {self.omega!r}", field="omega")
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta > 0):
            raise ConfigError(f"beta must be a positive number, got {self.beta!r}", field="beta")
        parse_neighborhood(self.neighborhood, self.m)

    @property
    def V(self) -> int:  # noqa: N802
        return 2 ** self.m

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelConfig:
    d: int = 64
    d_a: int = 64
    freeze_value: bool = False
    freeze_embedding: bool = False
    uniform_attention: bool = False

    def __post_init__(self):
        for name in ("d", "d_a"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}", field=name)
        if self.d > 16384 or self.d_a > 16384:
            raise ConfigError("d and d_a must be at most 16384", field="d" if self.d > 16384 else "d_a")

    def to_dict(self) -> dict:
        return asdict(self)


SCHEDULES = ("constant", "cosine", "wsd")


@dataclass(frozen=True)
class TrainConfig:
    """AdamW on cross-entropy at the last position. ``train_size = 0`` draws fresh samples every
    step (the default); a positive value fixes a training set of that many samples. The learning
    rate warms up linearly over ``warmup`` steps, then stays (``constant``), decays to 0 at
    ``steps`` (``cosine``), or stays and then decays linearly over the last 1/6 of the run (``wsd``,
    whose decay a driver may start earlier: ``Trainer.begin_decay``)."""

    lr: float = 0.003
    schedule: str = "constant"
    warmup: int = 0
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    batch_size: int = 256
    steps: int = 2000
    eval_every: int = 100
    eval_size: int = 2048
    train_size: int = 0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        _pos("lr", self.lr)
        _pos("weight_decay", self.weight_decay, allow_zero=True)
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v < 1.0):
                raise ConfigError(f"{name} must lie in [0, 1), got {v!r}", field=name)
        _int("batch_size", self.batch_size, 1)
        _int("steps", self.steps, 1)
        _int("eval_every", self.eval_every, 1)
        _int("eval_size", self.eval_size, 1)
        _int("train_size", self.train_size, 0)
        _int("seed", self.seed, 0)
        _int("warmup", self.warmup, 0)
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}: choose "
                              f"{', '.join(SCHEDULES[:-1])} or {SCHEDULES[-1]}",
                              field="schedule")
        from engine.device import DEVICE_CHOICES

        base = (self.device or "").split(":", 1)[0]
        if base not in DEVICE_CHOICES:
            raise ConfigError(f"unknown device {self.device!r}: choose auto, cpu, cuda, cuda:N or mps",
                              field="device")


#: Settings the default recipe fills in (the "tuning flags"); everything else keeps its default.
RECIPE_FIELDS = ("d", "d_a", "lr", "schedule", "warmup", "steps", "batch_size", "weight_decay", "beta2")


def recipe(m: int, L: int) -> dict:
    """The default training recipe for V = 2^m tokens and context length L (flat RunConfig
    fields): AdamW (β2 = 0.99, no weight decay) with a linear warm-up and a cosine decay, an
    over-parameterised d = min(2V, 256) (a linear read-out of the counts needs nearly rank V at
    m = 8, L = 64) and a batch and step count growing with V. bench/recipe.py measures that it
    reaches >= 0.98 x the Bayes accuracy on held-out data for every m in {5, 6, 7, 8},
    L in {64, 128} (bench/results/recipe.json); m outside that range extrapolates."""
    V = 2 ** m
    big = m >= 8
    return {"d": max(64, min(2 * V, 256)), "d_a": 64, "lr": 0.03 if big else 0.02, "schedule": "cosine",
            "warmup": 100, "steps": RECIPE_STEPS.get(m, 1000 if m < 5 else 3000),
            "batch_size": 1024 if big else 512, "weight_decay": 0.0, "beta2": 0.99}


RECIPE_STEPS = {5: 1000, 6: 1500, 7: 2000, 8: 3000}


def recipe_config(given: dict | None = None) -> RunConfig:
    """A RunConfig from the ``given`` flat values, the default recipe for their m and L filling
    every tuning field not given, and the dataclass defaults for the rest."""
    given = dict(given or {})
    base = RunConfig().flat()
    m, L = given.get("m", base["m"]), given.get("L", base["L"])
    TaskConfig(m=m, L=L)  # a bad m or L is reported as itself, before the recipe looks at it
    filled = {k: v for k, v in recipe(m, L).items() if k not in given}
    if "d" in given and "d_a" not in given:
        filled["d_a"] = given["d"]
    if "warmup" not in given and "steps" in given:  # a short run warms up for a tenth of it at most
        filled["warmup"] = min(filled["warmup"], given["steps"] // 10)
    if "eval_every" not in given:  # about 20 evaluations a run
        filled["eval_every"] = max(10, given.get("steps", filled.get("steps", base["steps"])) // 20)
    return RunConfig.from_flat({**base, **filled, **given})


_SECTIONS = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


@dataclass(frozen=True)
class RunConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return {name: asdict(getattr(self, name)) for name in _SECTIONS}

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError("a run config must be a JSON object")
        parts = {}
        for name, klass in _SECTIONS.items():
            sec = data.get(name, {}) or {}
            known = {f.name for f in fields(klass)}
            unknown = set(sec) - known
            if unknown:
                raise ConfigError(f"unknown {name} setting(s): {', '.join(sorted(unknown))}")
            parts[name] = klass(**sec)
        return cls(**parts)

    def flat(self) -> dict:
        out = {}
        for name in _SECTIONS:
            out.update(asdict(getattr(self, name)))
        return out

    @classmethod
    def from_flat(cls, values: dict) -> RunConfig:
        """Build from one flat mapping (CLI flags, form fields); unknown keys raise ConfigError."""
        nested = {name: {} for name in _SECTIONS}
        owner = {f.name: name for name, k in _SECTIONS.items() for f in fields(k)}
        for key, v in values.items():
            if key not in owner:
                raise ConfigError(f"unknown setting {key!r}")
            nested[owner[key]][key] = v
        return cls.from_dict(nested)

    @staticmethod
    def field_types() -> dict:
        """Flat field name -> (type, default), for building CLI flags and form fields."""
        out = {}
        for klass in _SECTIONS.values():
            for f in fields(klass):
                out[f.name] = (type(f.default), f.default)
        return out

    def summary(self) -> str:
        t, m, r = self.task, self.model, self.train
        parts = [f"m={t.m}", f"L={t.L}", f"ω={t.omega:g}", f"β={t.beta:g}", t.neighborhood,
                 f"d={m.d}", f"lr={r.lr:g}"]
        if m.freeze_value:
            parts.append("W_V=I")
        if m.freeze_embedding:
            parts.append("W_E frozen")
        if m.uniform_attention:
            parts.append("uniform attn")
        return " ".join(parts)


def parse_flat(texts: dict[str, str]) -> tuple[RunConfig | None, dict[str, str]]:
    """Validate form text: returns (config, {}) or (None, {field: reason}).

    Each value is parsed to its field's type (``true``/``false`` for flags); a value that parses
    but breaks a rule is blamed on the field the ConfigError names (``""`` for the whole form).
    """
    types = RunConfig.field_types()
    values, errors = {}, {}
    for name, text in texts.items():
        if name not in types:
            errors[""] = f"unknown setting {name!r}"
            continue
        typ, _ = types[name]
        raw = text.strip() if isinstance(text, str) else text
        try:
            if typ is bool:
                values[name] = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
            elif typ is int:
                values[name] = int(raw)
            elif typ is float:
                values[name] = float(raw)
            else:
                values[name] = str(raw)
        except (TypeError, ValueError):
            errors[name] = f"{name} must be {'an integer' if typ is int else 'a number'}, got {raw!r}"
    if errors:
        return None, errors
    base = RunConfig().flat()
    try:
        return RunConfig.from_flat({**base, **values}), {}
    except ConfigError as exc:
        errors[exc.field or ""] = str(exc)
    # Blame every other field that is wrong on its own too, so the form shows all reasons at once.
    for name, v in values.items():
        try:
            RunConfig.from_flat({**base, "m": values.get("m", base["m"]), name: v})
        except ConfigError as exc:
            errors.setdefault(exc.field or name, str(exc))
    return None, errors
