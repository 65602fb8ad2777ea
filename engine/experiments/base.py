"""Shared machinery of the experiment suite: grids, results, the job runner and small statistics.

- ``Grid``: the parameters of one experiment at one level (``tiny`` for tests, ``quick`` for a
  2-core CPU, ``paper`` for a GPU), a read-only mapping; ``replace(**kw)`` and ``with_seeds(k)``
  give modified copies.
- ``ExperimentResult``: what every ``run_<name>`` returns; ``to_dict()`` is the JSON object the
  session stores (``experiments/<name>-<id>.json``) and ``lca-tui experiment --json`` prints.
- ``run_jobs(fn, specs, jobs, progress, cancel)``: runs independent jobs (a config x seed, a model x
  relation) in this process, in ``jobs`` spawned worker processes, and/or sharded over the ranks of
  a ``torchrun`` launch (see ``engine.experiments.distributed``). Results come back in spec order
  and do not depend on how the jobs were split: every job carries its own seed and runs
  single-threaded on the CPU.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from engine.errors import UserError

LEVELS = ("tiny", "quick", "paper")
VERDICTS = ("holds", "does not hold", "inconclusive")

Progress = Callable[[int, int], None]


class Cancelled(Exception):
    """Raised by ``run_jobs`` (and so by every ``run_<name>``) when ``cancel.is_set()``."""


# ----------------------------------------------------------------------------------- grids
def _freeze(v):
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v):
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


class Grid(Mapping):
    """Read-only parameters of one experiment run (lists are stored as tuples)."""

    __slots__ = ("level", "_p")

    def __init__(self, level: str = "custom", **params):
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "_p", {k: _freeze(v) for k, v in params.items()})

    def __setattr__(self, key, value):
        raise AttributeError("Grid is read-only; use replace(**kw)")

    def __getitem__(self, key):
        try:
            return self._p[key]
        except KeyError:
            raise KeyError(f"grid has no parameter {key!r}") from None

    def __iter__(self):
        return iter(self._p)

    def __len__(self):
        return len(self._p)

    def __eq__(self, other):
        return isinstance(other, Grid) and self._p == other._p

    def __hash__(self):
        return hash(tuple(sorted(self._p.items(), key=lambda kv: kv[0])))

    def __repr__(self):
        return f"Grid({self.level!r}, {', '.join(f'{k}={v!r}' for k, v in self._p.items())})"

    def __reduce__(self):  # picklable / deep-copyable despite being read-only
        return (_make_grid, (self.level, dict(self._p)))

    def replace(self, **changes) -> "Grid":
        """A copy with some parameters changed; an unknown name raises UserError."""
        unknown = set(changes) - set(self._p)
        if unknown:
            raise UserError(f"unknown grid parameter(s) {', '.join(sorted(unknown))}; "
                            f"this grid has {', '.join(self._p)}")
        return Grid(self.level, **{**self._p, **changes})

    def with_seeds(self, k: int) -> "Grid":
        """Seeds 0..k-1 instead of the grid's own."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise UserError(f"the number of seeds must be a positive integer, not {k!r}")
        if "seeds" not in self._p:
            raise UserError("this experiment has no seeds to set")
        return self.replace(seeds=tuple(range(k)))

    def to_dict(self) -> dict:
        return {"level": self.level, **{k: _thaw(v) for k, v in self._p.items()}}


def _make_grid(level: str, params: dict) -> Grid:
    return Grid(level, **params)


def as_list(v) -> list:
    """A grid value as a list (a scalar becomes a one-element list)."""
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


# ----------------------------------------------------------------------------------- results
def _clean(v):
    """JSON-ready: numpy/torch scalars to Python, tuples to lists, NaN/inf to None."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if hasattr(v, "tolist"):
        return _clean(v.tolist())
    if hasattr(v, "item"):
        return _clean(v.item())
    return str(v)


@dataclass
class ExperimentResult:
    """The outcome of one experiment. ``verdict`` is computed from the numbers by ``rule``."""

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

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict:
        """{"name", "title", "figure", "claim", "verdict", "rule", "grid", "rows", "curves",
        "seconds", "notes"}: strict JSON values (NaN becomes null)."""
        return _clean({"name": self.name, "title": self.title, "figure": self.figure,
                       "claim": self.claim, "verdict": self.verdict, "rule": self.rule,
                       "grid": self.grid, "rows": self.rows, "curves": self.curves,
                       "seconds": round(float(self.seconds), 3), "notes": list(self.notes)})


def curve(x: Sequence, y: Sequence) -> dict:
    return {"x": [_clean(v) for v in x], "y": [_clean(v) for v in y]}


# ----------------------------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value; NaN for none)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return float("nan"), float("nan")
    mu = sum(vals) / len(vals)
    if len(vals) == 1:
        return mu, 0.0
    var = sum((v - mu) ** 2 for v in vals) / (len(vals) - 1)
    return mu, math.sqrt(var)


def paired_gap(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, int]:
    """Mean of a_i - b_i, its standard error (NaN for fewer than two pairs) and the pair count."""
    d = [float(x) - float(y) for x, y in zip(a, b)]
    mu, sd = mean_std(d)
    n = len(d)
    se = sd / math.sqrt(n) if n > 1 else float("nan")
    return mu, se, n


def _ranks(v: Sequence[float]) -> list[float]:
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (ties get mean ranks); NaN when either side is constant."""
    if len(x) != len(y) or len(x) < 2:
        return float("nan")
    rx, ry = _ranks(list(x)), _ranks(list(y))
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return float("nan")
    return sxy / math.sqrt(sxx * syy)


def sign_test_p(k_up: int, k_down: int) -> float:
    """One-sided exact sign test: P(X >= k_up) for X ~ Bin(k_up + k_down, 1/2); 1 with no pairs."""
    n = k_up + k_down
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k_up, n + 1)) / 2 ** n


# ----------------------------------------------------------------------------------- jobs
_cancel_var: contextvars.ContextVar = contextvars.ContextVar("lca_experiment_cancel", default=None)


def current_cancel():
    """The cancel event of the job running in this process (None in worker processes)."""
    return _cancel_var.get()


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run with one intra-op torch thread (restored afterwards), so CPU numbers do not depend on
    the machine's thread count or on how jobs are spread over processes."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _worker_init():
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


def _call(fn, spec):
    with single_threaded():
        return fn(spec)


def _run_local(fn, specs: list[dict], jobs: int, progress, cancel) -> list:
    total = len(specs)
    out: list = [None] * total
    if total == 0:
        return out
    if jobs <= 1 or total == 1:
        for i, spec in enumerate(specs):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            token = _cancel_var.set(cancel)
            try:
                out[i] = _call(fn, spec)
            finally:
                _cancel_var.reset(token)
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if progress:
                progress(i + 1, total)
        return out

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    done = 0
    with ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=ctx, initializer=_worker_init) as pool:
        futures = {pool.submit(_call, fn, spec): i for i, spec in enumerate(specs)}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for f in finished:
                    out[futures[f]] = f.result()
                    done += 1
                    if progress:
                        progress(done, total)
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
        except BaseException:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out


def run_jobs(fn: Callable[[dict], Any], specs: Sequence[dict], jobs: int = 1,
             progress: Progress | None = None, cancel=None) -> list:
    """Run ``fn(spec)`` for every spec; results in spec order.

    ``fn`` must be a module-level function (worker processes import it) and its result plain
    Python data (numbers, strings, lists, dicts). ``jobs > 1`` uses a ``ProcessPoolExecutor``
    with the ``spawn`` context, one torch thread per worker. Under ``torchrun`` (``WORLD_SIZE`` > 1)
    job i runs on rank i % world and every rank receives all the results (rank 0 reports).
    A spec whose ``device`` is ``"auto"`` gets the rank's device (``cuda:LOCAL_RANK``) there.
    ``progress(done, total)`` counts this rank's jobs; ``cancel.is_set()`` stops between jobs
    (and between training steps for jobs run in this process) with ``Cancelled``.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UserError(f"--jobs must be a positive integer, not {jobs!r}")
    from engine.experiments import distributed

    specs = [dict(s) for s in specs]
    ctx = distributed.auto_init()
    if ctx is None:
        return _run_local(fn, specs, jobs, progress, cancel)
    mine = distributed.shard(len(specs), ctx.rank, ctx.world_size)
    local_specs = []
    for i in mine:
        s = specs[i]
        if s.get("device", "auto") in (None, "auto") and ctx.device is not None:
            s = {**s, "device": ctx.device}
        local_specs.append(s)
    local = _run_local(fn, local_specs, jobs, progress, cancel)
    return distributed.gather_in_order(ctx, list(zip(mine, local)), len(specs))


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0


# ----------------------------------------------------------------------------------- training
def lca_config(spec: Mapping[str, Any]):
    """A RunConfig from the RunConfig fields present in a job spec (others are ignored)."""
    from engine.lca.config import RunConfig

    known = RunConfig.field_types()
    flat = {k: v for k, v in spec.items() if k in known}
    if "d" in flat and "d_a" not in flat:
        flat["d_a"] = flat["d"]
    if "steps" in flat and "eval_every" not in flat:
        flat["eval_every"] = flat["steps"]
    return RunConfig.from_flat(flat)


def make_trainer(spec: Mapping[str, Any]):
    """A Trainer for a job spec (weights initialised from the spec's seed, not yet trained)."""
    from engine.lca.trainer import Trainer

    return Trainer(lca_config(spec))


def run_trainer(tr):
    """Train to the end; stops between steps when the in-process cancel event is set."""
    cancel = current_cancel()

    def on_event(ev):
        if cancel is not None and cancel.is_set():
            tr.stop()

    tr.run(on_event)
    return tr


def train(spec: Mapping[str, Any]):
    """Train one eq. 4.1 model for a job spec and return the Trainer (evaluated at the end)."""
    return run_trainer(make_trainer(spec))


def lca_specs(grid: Grid, axes: Mapping[str, Sequence], fixed: Mapping[str, Any] | None = None,
              base_keys: Sequence[str] = ("omega", "beta", "neighborhood", "d", "d_a", "batch_size",
                                          "steps", "eval_size", "weight_decay", "device")) -> list[dict]:
    """The cartesian product of ``axes`` (name -> values) plus the grid's scalar settings named in
    ``base_keys`` (when present) and ``fixed``. Axis order = nesting order (last varies fastest)."""
    import itertools

    base = {k: grid[k] for k in base_keys if k in grid}
    base.update(fixed or {})
    names = list(axes)
    out = []
    for combo in itertools.product(*(as_list(axes[n]) for n in names)):
        out.append({**base, **dict(zip(names, combo))})
    return out


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise UserError(f"unknown grid level {level!r}: choose {', '.join(LEVELS)}")
    return level
