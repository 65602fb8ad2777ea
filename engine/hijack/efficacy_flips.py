"""Flip points: how many prepended sentences it takes to flip each record of an efficacy sweep
(``engine.hijack.efficacy``), their distribution, and the side-by-side view of several models (Fig. 2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from engine.hijack.efficacy_results import EfficacyResult


@dataclass(frozen=True)
class FlipPoint:
    """The smallest n at which a record counts towards the metric (forward schemes: P(false) > P(true)
    under the scoring rule; reverse schemes: P(true) > P(false)); ``None`` if it never does for
    n <= max_prepends."""

    record_index: int
    case_id: int
    n: int | None


@dataclass(frozen=True)
class FlipSummary:
    """Distribution of flip points over the records of one model and scheme."""

    records: int
    flipped: int
    never: int
    mean: float | None  # mean / median of n over the records that flip (None when none flips)
    median: float | None
    histogram: tuple[int, ...]  # histogram[n] = records whose flip point is n, for n = 0..max_prepends
    earliest: tuple[int, ...]  # case ids of the records that flip at the smallest n
    never_ids: tuple[int, ...]  # case ids of the records that never flip

    def to_dict(self) -> dict:
        return asdict(self)


def flip_points_of_rows(rows: Iterable[tuple[int, int, int, bool]]) -> list[FlipPoint]:
    """The one home of flip points: plain ``(record_index, case_id, n, success)`` rows (any order) ->
    one ``FlipPoint`` per record, in record order: the smallest n with ``success``, else None."""
    first: dict[int, int | None] = {}
    case: dict[int, int] = {}
    for index, case_id, n, success in sorted(rows, key=lambda r: (r[0], r[2])):
        case[index] = case_id
        first.setdefault(index, None)
        if success and first[index] is None:
            first[index] = n
    return [FlipPoint(i, case[i], first[i]) for i in sorted(first)]


def flip_points(result: EfficacyResult) -> list[FlipPoint]:
    """One ``FlipPoint`` per record of ``result``, in record order (``flip_points_of_rows``; a streamed
    result, ``efficacy_streamed``, carries them instead of its records)."""
    if result.flips and not result.records:
        return list(result.flips)
    return flip_points_of_rows((s.record_index, s.case_id, s.n, s.success) for s in result.records)


def flip_summary(points: Sequence[FlipPoint], max_prepends: int) -> FlipSummary:
    """Histogram, mean and median of the flip points; the records that flip earliest and never."""
    import statistics

    ns = [p.n for p in points if p.n is not None]
    hist = [0] * (max_prepends + 1)
    for n in ns:
        hist[n] += 1
    low = min(ns) if ns else None
    return FlipSummary(len(points), len(ns), len(points) - len(ns),
                       statistics.fmean(ns) if ns else None, float(statistics.median(ns)) if ns else None,
                       tuple(hist), tuple(p.case_id for p in points if ns and p.n == low),
                       tuple(p.case_id for p in points if p.n is None))


def compare(results: Sequence[EfficacyResult]) -> dict:
    """What a side-by-side view of several models (Fig. 2) draws, keyed by model name, in order:
    ``curves`` model -> [(n, ES)], ``flips`` model -> [flip point n or None per record] and
    ``summaries`` model -> ``FlipSummary`` (histogram, mean/median, earliest and never-flipping records).
    Results of one model for several schemes are keyed ``"<model> <scheme>"``."""
    several_schemes = len({r.scheme for r in results}) > 1
    out: dict = {"curves": {}, "flips": {}, "summaries": {}}
    for res in results:
        key = f"{res.model} {res.scheme}" if several_schemes else res.model
        points = flip_points(res)
        out["curves"][key] = [(p.n, p.es) for p in res.curve]
        out["flips"][key] = [p.n for p in points]
        out["summaries"][key] = flip_summary(points, res.max_prepends)
    return out
