"""Small statistics behind the verdicts: means, paired gaps, 95% confidence intervals (Student t),
Spearman's rank correlation, the exact sign test, least-squares lines and Wilson intervals. Pure Python / numpy."""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.experiments.verdict import Effect

#: Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (beyond: 1.96 + 2.4/df, within 0.002).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (NaN for df < 1)."""
    if df < 1:
        return float("nan")
    if df <= len(_T975):
        return _T975[df - 1]
    return 1.959964 + 2.4 / df


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


def mean_ci(name: str, values: Sequence[float]) -> Effect:
    """The mean of ``values`` with its 95% t confidence interval (NaN bounds for fewer than 2)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    mu, sd = mean_std(vals)
    n = len(vals)
    if n < 2:
        return Effect(name, mu, float("nan"), float("nan"), n)
    half = t975(n - 1) * sd / math.sqrt(n)
    return Effect(name, mu, mu - half, mu + half, n)


def paired_ci(name: str, a: Sequence[float], b: Sequence[float]) -> Effect:
    """Mean of a_i - b_i with its 95% t confidence interval."""
    return mean_ci(name, [float(x) - float(y) for x, y in zip(a, b)])


def line_fit(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """Least squares y ≈ slope·x + intercept: (slope, intercept, R²); R² is NaN when y is constant,
    everything NaN with fewer than two distinct x."""
    import numpy as np

    xx, yy = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(xx) & np.isfinite(yy)
    xx, yy = xx[ok], yy[ok]
    if len(xx) < 2 or np.ptp(xx) == 0:
        return float("nan"), float("nan"), float("nan")
    xm, ym = xx.mean(), yy.mean()
    slope = float(((xx - xm) * (yy - ym)).sum() / ((xx - xm) ** 2).sum())
    icept = float(ym - slope * xm)
    ss_tot = float(((yy - ym) ** 2).sum())
    ss_res = float(((yy - (slope * xx + icept)) ** 2).sum())
    return slope, icept, (1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval for a proportion k/n ((nan, nan) for n = 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)
