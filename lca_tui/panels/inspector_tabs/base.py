"""What an inspector tab is: one tab of the inspector panel, a Textual widget (a ``TabPane``) that
composes its widgets and draws the run it is given (``draw(InspectedRun)``). A new tab is one module
here and one line in ``TABS`` (``__init__.py``); the inspector composes them in that order and
``v`` cycles through them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.widgets import TabPane

from textnum import number as _num  # noqa: F401 -- the tabs' number formats (textnum)
from textnum import percent as _pct  # noqa: F401


@dataclass(frozen=True)
class InspectedRun:
    """What the inspector shows: the engine's ``InspectionReport`` of a model, the run's label, step
    and config, and the model copy it was computed on (None when not kept)."""

    label: str
    step: int | None
    cfg: Any
    report: Any
    model: Any = None


class InspectorTab(TabPane):
    ID: str = ""
    TITLE: str = ""

    def __init__(self, **kw) -> None:
        super().__init__(self.TITLE, id=self.ID, **kw)

    def draw(self, run: InspectedRun) -> None:
        """Draw what this tab shows of an inspected run."""


def bit_labels(m: int) -> list[str]:
    """Token labels in bit order: token t as its m-bit vector, z_1 first."""
    return [format(t, f"0{m}b") for t in range(2 ** m)]
