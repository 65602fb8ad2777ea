"""textnum: numbers as text, one way (None and NaN "—", infinities "∞" / "−∞", negative zero as zero)."""

import math

import numpy as np
import pytest
import torch

import textnum as tn

NAN, INF = float("nan"), float("inf")


def test_finite_keeps_finite_reals_only():
    assert tn.finite(3) == 3.0 and isinstance(tn.finite(3), float) and tn.finite(np.float32(0.5)) == 0.5
    assert [tn.finite(x) for x in (None, NAN, INF, -INF, True, "1", [1])] == [None] * 7
    z = tn.finite(-0.0)
    assert z == 0.0 and math.copysign(1, z) == 1


def test_special_names_what_is_not_a_finite_number():
    assert [tn.special(x) for x in (None, NAN, np.nan, torch.tensor(NAN), INF, -INF)] == ["—", "—", "—", "—", "∞", "−∞"]
    assert [tn.special(x) for x in (0.0, -0.0, 1, True, "nan", [NAN])] == [None] * 6


@pytest.mark.parametrize(("fn", "finite_cases"), [
    (tn.number, [(1234.5, "1.23e+03"), (-0.25, "-0.25"), (-0.0, "0"), (np.float64(2.0), "2"), (torch.tensor(0.5), "0.5")]),
    (tn.percent, [(0.5, "50.0%"), (1, "100.0%"), (-0.0, "0.0%"), (0.1234, "12.3%")]),
    (tn.probability, [(0.5, "50.00%"), (1e-4, "0.01%"), (3.2e-5, "3.2e-05"), (0.0, "0.0e+00"), (-0.0, "0.0e+00")]),
    (tn.short_percent, [(0.52, "52.0%"), (1.0, "100.0%"), (0.0312, "3.12%"), (0.00005, "<0.01%"), (0.0, "0.00%"), (-0.0, "0.00%")]),
    (tn.fixed, [(0.12345, "0.123"), (12345.0, "1.23e+04"), (-0.0, "0.000"), (-2, "-2.000")]),
    (tn.cell, [(0.8125, "0.8125"), (0.0, "0.0000"), (-0.0, "0.0000"), (3, "3"), (1.5e-6, "1.500e-06"), (True, "yes"), (False, "no"), ("x", "x")]),
])
def test_each_format_takes_none_nan_and_infinities_one_way(fn, finite_cases):
    assert [fn(x) for x in (None, NAN, INF, -INF)] == ["—", "—", "∞", "−∞"]
    assert [(x, fn(x)) for x, _ in finite_cases] == finite_cases


def test_number_spec_and_percent_digits():
    assert tn.number(0.5, "+.2f") == "+0.50" and tn.number(-0.0, "+.2f") == "+0.00" and tn.number(None, "+.2f") == "—"
    assert tn.percent(0.12345, 2) == "12.35%" and tn.fixed(0.5, 1) == "0.5"


def test_cell_goes_item_by_item():
    assert tn.cell([1, NAN, None, 0.5]) == "1, —, —, 0.5000"
    assert tn.cell({"a": INF, "b": 2}) == "a=∞, b=2"
