"""Grids: the parameters of one experiment at one level (``tiny`` for tests, ``quick`` for a 2-core CPU,
``paper`` for the paper's sweep), a read-only mapping; ``replace(**kw)`` / ``with_seeds(k)`` copy."""

from __future__ import annotations

from collections.abc import Mapping

from engine.errors import UserError

LEVELS = ("tiny", "quick", "paper")

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

    def replace(self, **changes) -> Grid:
        """A copy with some parameters changed; an unknown name raises UserError."""
        unknown = set(changes) - set(self._p)
        if unknown:
            raise UserError(f"unknown grid parameter(s) {', '.join(sorted(unknown))}; "
                            f"this grid has {', '.join(self._p)}")
        return Grid(self.level, **{**self._p, **changes})

    def with_seeds(self, k: int) -> Grid:
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
