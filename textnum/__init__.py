"""Numbers as text, one way everywhere (a leaf package: the engine, the widgets and the app may all
import it; it imports nothing of ours).

The one rule: a missing value (None) and NaN read ``MISSING`` ("—"); an infinity reads "∞" / "−∞";
negative zero reads as zero. Every function here takes None, NaN and infinities; each keeps its own
style for the finite numbers (the places that use it pin those texts)."""

from __future__ import annotations

import math
import numbers

MISSING = "—"


def finite(x) -> float | None:
    """A finite real number as float (negative zero as 0.0); None for anything else (None, NaN, ±∞,
    a bool, a string)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return None
    x = float(x)
    return x + 0.0 if math.isfinite(x) else None


def special(x) -> str | None:
    """The text of a value that is not a finite number: ``MISSING`` for None and NaN, "∞" / "−∞" for
    the infinities; None for anything else (a finite number or another value, for the caller)."""
    if x is None:
        return MISSING
    if isinstance(x, (bool, str)) or not (isinstance(x, numbers.Real) or hasattr(x, "__float__")):
        return None  # a tensor or an array of one element goes through float()
    x = float(x)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return None


def number(x, spec: str = ".3g") -> str:
    """A number by a format spec (".3g", "+.2f", ...)."""
    return special(x) or format(float(x) + 0.0, spec)


def percent(p, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals: 0.5 -> "50.0%"."""
    return special(p) or f"{100 * float(p) + 0.0:.{digits}f}%"


def probability(p) -> str:
    """A probability in a table: a percentage with 2 decimals, scientific below 1e-4 ("3.2e-05")."""
    text = special(p)
    if text:
        return text
    p = float(p) + 0.0
    return f"{100 * p:.2f}%" if p >= 1e-4 else f"{p:.1e}"


def short_percent(p) -> str:
    """A probability beside a bar: "50.0%", "3.12%", "<0.01%", "0.00%"."""
    text = special(p)
    if text:
        return text
    pct = 100.0 * float(p)
    if pct >= 10.0:
        return f"{pct:.1f}%"
    if pct >= 0.01:
        return f"{pct:.2f}%"
    return "<0.01%" if pct > 0 else "0.00%"


def fixed(x, digits: int = 3) -> str:
    """``digits`` decimals, or ``digits`` significant digits from 1000 on (a verdict's numbers)."""
    text = special(x)
    if text:
        return text
    x = float(x) + 0.0
    return f"{x:.{digits}g}" if abs(x) >= 1e3 else f"{x:.{digits}f}"


def cell(v) -> str:
    """A table cell: yes/no, integers as they are, 4 decimals for ordinary floats, scientific for tiny or
    huge ones; lists and dicts item by item; anything else as ``str``."""
    text = special(v)
    if text:
        return text
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        v += 0.0
        if v == 0:
            return "0.0000"
        if 1e-3 <= abs(v) < 1e5:
            return f"{v:.4f}"
        return f"{v:.3e}"
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={cell(x)}" for k, x in v.items())
    return str(v)
