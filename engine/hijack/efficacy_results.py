"""What an efficacy sweep returns (``engine.hijack.efficacy``): a point of the ES curve, one record's
scores at one n, the whole result and its JSON forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class CurvePoint:
    n: int
    es: float  # efficacy (or accuracy for reverse schemes)
    p_true: float  # mean P(target_true) (first-token probability when scoring == "first")
    p_false: float
    count: int


@dataclass(frozen=True)
class RecordScore:
    """One record at one n, kept for drill-down."""

    case_id: int
    n: int
    prompt: str
    p_true: float
    p_false: float
    first_true: float
    first_false: float
    nll_true: float
    nll_false: float
    success: bool  # counts towards the metric (hijacked, or correct for reverse schemes)
    record_index: int = 0  # position of the record in the input list
    exact: bool = True  # both targets scored by the ids that follow the prompt (see the module doc)


@dataclass(frozen=True)
class EfficacyResult:
    model: str
    scheme: str
    metric: str  # "efficacy" or "accuracy"
    scoring: str
    max_prepends: int
    n_records: int
    curve: tuple[CurvePoint, ...]
    records: tuple[RecordScore, ...] = field(repr=False)
    cancelled: bool = False
    template: str | None = None
    notes: tuple[str, ...] = ()  # what the user should know (fallback tokenisation, sharing off)
    flips: tuple = field(default=(), repr=False)  # FlipPoints of a streamed sweep, which keeps no records

    def point(self, n: int) -> CurvePoint:
        return next(p for p in self.curve if p.n == n)

    def to_dict(self, per_record: bool = False) -> dict:
        out = {"model": self.model, "scheme": self.scheme, "metric": self.metric, "scoring": self.scoring,
               "records": self.n_records, "curve": [asdict(p) for p in self.curve], "notes": list(self.notes)}
        if self.template is not None:  # a custom scheme is only reproducible with its template
            out["template"] = self.template
        if per_record:
            out["per_record"] = [asdict(r) for r in self.records]
        return out

    def sweep_dict(self, record) -> dict:
        """A one-record sweep (``jobs.sweep``) as the session stores it: P(true), P(false) per n."""
        return {"kind": "sweep", "model": self.model, "scheme": self.scheme, "record": record.to_dict(),
                "points": [{"n": p.n, "p_true": p.p_true, "p_false": p.p_false} for p in self.curve]}
