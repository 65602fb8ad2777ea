"""The runs the trainer panel knows (``RunState``, touched only on the UI thread) and its runs table."""

from __future__ import annotations

import textwrap
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

BUFFER = 20_000


@dataclass
class RunState:
    """One run as the UI knows it (touched only on the UI thread): its TrainingRun handle once
    started, its events so far and summary numbers."""

    run_id: str
    path: Path
    summary: str
    steps: int
    run: object = None  # engine.lca.runner.TrainingRun once started
    status: str = "starting"
    step: int = 0
    best: float | None = None
    bayes: float | None = None
    rate: float | None = None
    started: float = field(default_factory=time.monotonic)
    train: deque = field(default_factory=lambda: deque(maxlen=BUFFER))
    evals: list = field(default_factory=list)
    error: str | None = None
    overlay: bool = False
    #: A run from the session that F5 can resume: the step its checkpoint holds (None otherwise).
    resume_from: int | None = None
    updated: float | None = None  # when its state was last written (the newest is offered on F5)

    @property
    def resumable(self) -> bool:
        """A session's run that is not training here and can be resumed from its checkpoint."""
        return self.run is None and self.resume_from is not None and self.status not in ("starting", "error")

    def eta(self) -> str:
        if not self.rate or self.status not in ("running",):
            return "—"
        left = (self.steps - self.step) * self._batch / self.rate
        return f"{left:,.0f} s"

    _batch: int = 1

    def started_run(self, run, bayes, batch_size: int, step: int, resumed: bool) -> None:
        """The worker's run started (a resumed one at its checkpoint's step: later events of the
        earlier attempt are gone)."""
        self.run, self.bayes, self._batch, self.status = run, bayes, batch_size, "running"
        self.resume_from = None
        if resumed:
            self.train = deque((e for e in self.train if e["step"] <= step), maxlen=BUFFER)
            self.evals = [e for e in self.evals if e["step"] <= step]
            self.step = step

    def fold(self, events: list[dict], status: str) -> None:
        """Fold a snapshot's events (and the trainer's status) into this run."""
        for ev in events:
            kind = ev["event"]
            if kind == "train":
                self.train.append(ev)
                self.step, self.rate = ev["step"], ev["samples_per_s"]
            elif kind == "eval":
                self.evals.append(ev)
                self.best = ev["accuracy"] if self.best is None else max(self.best, ev["accuracy"])
                self.bayes = ev["bayes_accuracy"]
            elif kind == "status":
                self.status = ev["status"]
            elif kind == "done":
                self.step = ev.get("step", self.step)
        self.status = status


#: Runs table columns (key -> header). The config wraps onto lines of ``CONFIG_W`` characters.
COLUMN_LABELS = {"run": "run", "config": "config", "status": "status", "step": "step", "best": "best",
                 "bayes": "Bayes", "overlay": "ovl"}
TABLE_COLUMNS = tuple(COLUMN_LABELS)
NARROW_COLUMNS = ("run", "status", "step", "best", "bayes")
CONFIG_W = 20
FULL_TABLE_W = 80  # cells the full table needs: 11 + 20 + 11 + 9 + 5 + 5 + 3, plus 2 of padding a column


def short_run_id(run_id: str) -> str:
    """``20261130-073724-m6-L64-39fc`` -> ``073724-39fc``: the time and the random suffix (the
    config has its own column)."""
    parts = run_id.split("-")
    return f"{parts[1]}-{parts[-1]}" if len(parts) >= 3 and parts[1].isdigit() else run_id[-12:]


def newest_resumable(runs) -> RunState | None:
    """The resumable run (``RunState.resumable``) whose state was written last, or None."""
    found = [st for st in runs if st.resumable]
    return max(found, key=lambda st: (st.updated or 0.0, st.run_id)) if found else None


def run_row(st: RunState) -> dict[str, str]:
    """One row's cells; a resumable run's status says, on a second line, where a resume starts."""
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    status = f"{st.status}\nresume {st.resume_from}" if st.resumable else st.status
    return {"run": short_run_id(st.run_id), "config": "\n".join(textwrap.wrap(st.summary, CONFIG_W)) or "—",
            "status": status, "step": f"{st.step}/{st.steps}", "best": fmt(st.best), "bayes": fmt(st.bayes),
            "overlay": "●" if st.overlay else ""}


def row_height(row: dict[str, str], columns) -> int:
    return max(row[c].count("\n") for c in columns) + 1


def table_columns(width: int) -> tuple[str, ...]:
    """The runs table's columns for its width: all of them from ``FULL_TABLE_W`` cells, else
    without config and overlay (the stats line above names the selected run's config)."""
    return TABLE_COLUMNS if width == 0 or width >= FULL_TABLE_W else NARROW_COLUMNS


def refresh_table(t, runs: dict[str, RunState], selected: str | None) -> None:
    """Update the runs table ``t`` (a DataTable) in place (rebuilt only when runs or its columns change)."""
    columns = table_columns(t.size.width)
    rows = {st.run_id: run_row(st) for st in runs.values()}
    heights = [row_height(row, columns) for row in rows.values()]
    if ([k.value for k in t.rows] != list(rows) or [c.value for c in t.columns] != list(columns)
            or [r.height for r in t.rows.values()] != heights):
        t.clear(columns=True)
        for key in columns:
            t.add_column(COLUMN_LABELS[key], key=key)
        for (key, row), height in zip(rows.items(), heights):
            t.add_row(*[row[c] for c in columns], key=key, height=height)
        if selected in rows:
            t.move_cursor(row=list(rows).index(selected), animate=False)
        return
    for key, row in rows.items():
        for col in columns:
            if t.get_cell(key, col) != row[col]:
                t.update_cell(key, col, row[col], update_width=True)
