"""ES: Fig. 2 in the panel. The efficacy curve of every model evaluated for a scheme (engine
``EfficacyResult``s), with a progress bar while one runs and the flip points per model below; with a
defense chosen in the Repair view, its defended curve as one more series ("<model> + <defense> α=<a>")."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Label, ProgressBar, Static

from lca_tui.panels.hijack.views.base import View
from widgets import LiveCurve


def short_name(model: str) -> str:
    """A model's name for a legend: the last part of a path."""
    return str(model).rstrip("/").rsplit("/", 1)[-1] or str(model)


def flip_text(comparison: dict, results, records) -> str:
    """Per model: how many records flip at each n (a bar of block characters and the counts), the
    mean/median n to flip, and the records that flip earliest and never (``efficacy.compare``)."""
    from rich.markup import escape

    subject = {r.case_id: r.subject for r in records}

    def names(ids) -> str:
        shown = ", ".join(escape(subject.get(i, f"case {i}")) for i in ids[:3])
        return shown + (f" +{len(ids) - 3}" if len(ids) > 3 else "") if ids else "none"

    blocks = " ▁▂▃▄▅▆▇█"
    lines = []
    for result, s in zip(results, comparison["summaries"].values()):
        top = max(s.histogram, default=0) or 1
        bar = "".join(blocks[round(8 * h / top)] if h else "·" for h in s.histogram)
        mean = "—" if s.mean is None else f"{s.mean:.2f}"
        median = "—" if s.median is None else f"{s.median:g}"
        low = next((n for n, h in enumerate(s.histogram) if h), None)
        lines.append(f"[b]{escape(short_name(result.model))}[/b] flips per n=0..{len(s.histogram) - 1}: {bar} "
                     f"({' '.join(map(str, s.histogram))}) · mean {mean}, median {median} · "
                     f"earliest (n={low if low is not None else '—'}): {names(s.earliest)} · "
                     f"never ({s.never}/{s.records}): {names(s.never_ids)}")
    return "\n".join(lines)


class EfficacyView(View):
    ID, TITLE = "efficacy", "ES"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.overlay: tuple[str, object] | None = None  # (defense label, its defended EfficacyResult)

    def set_overlay(self, label: str, result) -> None:
        """The defended ES curve of the Repair view's defense, drawn as "<model> + <label>"."""
        self.overlay = (label, result)

    def compose(self) -> ComposeResult:
        # a total from the start: an indeterminate bar animates at 15 Hz even while hidden
        yield ProgressBar(total=1, id="eval-progress", classes="-idle", show_eta=True)
        yield Label("e evaluates ES(n) over the built-in records of this scheme", id="eval-info",
                    classes="hint")
        yield LiveCurve(title="ES vs n, one curve per model", xlabel="n prepended sentences",
                        ylabel="ES", y_range=(0.0, 1.0), id="eval-curve")
        yield Static("", id="flip-info")

    def started(self, scheme: str, n_records: int, top: int) -> None:
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.remove_class("-idle")
        bar.update(total=n_records, progress=0)
        self.overlay = None
        self.query_one("#eval-curve", LiveCurve).clear()
        self.query_one("#eval-info", Label).update(
            f"evaluating {scheme} over {n_records} records, n = 0..{top} — c cancels")

    def progressed(self, done: int, total: int) -> None:
        self.query_one("#eval-progress", ProgressBar).update(total=total, progress=done)

    def stopped(self) -> None:
        self.query_one("#eval-progress").add_class("-idle")

    def cancelled(self) -> None:
        self.query_one("#eval-info", Label).update("cancelled — e evaluates again")

    def finished(self, r, cancelled: bool) -> None:
        self.query_one("#eval-info", Label).update(
            f"{r.metric} over {r.n_records} records" + (" (cancelled: partial)" if cancelled else "")
            + " · " + "  ".join(f"n={p.n}: {p.es:.2f}" for p in r.curve))

    def draw(self, current, evaluated: dict, records) -> None:
        """The latest ES curve of every model evaluated (``evaluated``: (model, scheme) -> result)
        for ``current``'s scheme (``current`` itself, maybe partial, for its model), one colour each
        with a legend, and below them the flip points' distribution per model."""
        from engine.hijack.efficacy import compare

        shown = {m: r for (m, sch), r in evaluated.items() if sch == current.scheme}
        shown.pop(current.model, None)
        shown[current.model] = current
        c = self.query_one("#eval-curve", LiveCurve)
        c.clear()
        c.title = f"{current.metric} vs n · {current.scheme} · one curve per model"
        c.ylabel = "ES" if current.metric == "efficacy" else current.metric  # reverse schemes: accuracy
        for model, result in shown.items():
            c.set_series(short_name(model), [p.n for p in result.curve if p.count],
                         [p.es for p in result.curve if p.count])
        if self.overlay is not None and self.overlay[1].scheme == current.scheme:
            label, d = self.overlay
            c.set_series(f"{short_name(d.model)} + {label}", [p.n for p in d.curve if p.count],
                         [p.es for p in d.curve if p.count])
        results = list(shown.values())
        self.query_one("#flip-info", Static).update(flip_text(compare(results), results, records))
