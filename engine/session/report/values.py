"""How values read in a report: numbers, times, missing values."""

from __future__ import annotations

import math
import time


def fmt_value(v) -> str:
    """Table formatting: 4 decimals for ordinary floats, scientific for tiny/huge ones."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == 0:
            return "0.0000"
        if 1e-3 <= abs(v) < 1e5:
            return f"{v:.4f}"
        return f"{v:.3e}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_value(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt_value(x)}" for k, x in v.items())
    return str(v)


def fmt_time(t) -> str:
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def num(v) -> float | None:
    """A finite number as float, else None."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
