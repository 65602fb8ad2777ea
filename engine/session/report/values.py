"""How values read in a report: numbers, times, missing values."""

from __future__ import annotations

import time

from textnum import cell, finite

#: A table cell (``textnum.cell``): 4 decimals for ordinary floats, scientific for tiny/huge ones.
fmt_value = cell
#: A finite number as float, else None (``textnum.finite``).
num = finite


def fmt_time(t) -> str:
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
