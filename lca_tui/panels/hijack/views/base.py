"""What a hijack view is: one tab of the hijack panel, a Textual widget (a ``TabPane``) that owns its
state and draws what it is given.

A view names its tab (``ID``, ``TITLE``), yields its widgets (``compose``), may ask the probe for one
optional field (``PROBE``: one of ``engine.hijack.probe.ANALYSES``, e.g. ``"surprise"``; the panel
adds ``"target_lens"`` for its right column) and draws a probe answer (``draw_probe(res, ctx)``: the
engine ``ProbeResult`` and a ``ProbeContext``, what the panel knows beside it: the record, the
scheme, the model's name, the shown view). Views that draw a job's result (sweep, ES) have their
own ``draw`` method, which the panel calls. A view never reads or writes the panel or the app: what
it asks for goes out as a message it posts with ``ask`` (``ModelJobWanted``, ``CancelModelJob``,
``RecordResult``, ``ShowView``), which bubbles to the panel and the app; a view that asks for its
own model-thread jobs (trace) is their ``reply_to`` and takes ``JobFinished`` itself.

Keys: a view's keys are its ``BINDINGS`` (with ids ``hijack.*``). The panel lifts them into its own
(``view_bindings``: a view's keys work wherever the focus is in the panel, and the help screen and
keymap see them) as ``view_key('<view id>', '<action>')``, which runs the action on the view. The
panel's ``p`` and ``c`` go to every view as ``pin()`` / ``cancel()``. A new view is one module here
and one line in ``VIEWS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TabPane

from textnum import probability as pct  # noqa: F401 -- the views' one percent format


@dataclass(frozen=True)
class ProbeContext:
    """What the panel tells every view beside a probe answer."""

    record: Any = None         # the CounterFact record chosen (None: none)
    scheme: str = "relation"   # the hijack scheme (``engine.hijack.schemes.SCHEMES``)
    model: str | None = None   # the loaded model's name (None: not known yet)
    shown: str = ""            # the id of the view shown now
    n: int = 0                 # the panel's n (sentences of the scheme prepended)


class ShowView(Message):
    """A view asks the panel to show its tab (e.g. ``l`` and ``k`` show what they switch)."""

    def __init__(self, view_id: str) -> None:
        super().__init__()
        self.view_id = view_id


class View(TabPane):
    ID: str = ""
    TITLE: str = ""
    #: The ProbeRequest flag this view needs while it is shown (None: the basic probe is enough).
    PROBE: str | None = None

    def __init__(self, **kw) -> None:
        super().__init__(self.TITLE, id=self.ID, **kw)

    def draw_probe(self, res, ctx: ProbeContext) -> None:
        """Draw what this view shows of a probe answer (an engine ``ProbeResult``)."""

    def pin(self) -> bool:
        """The panel's ``p`` while this view is shown: pin what it shows (True), or leave the probe's
        pin to the panel (False)."""
        return False

    def cancel(self) -> None:
        """The panel's ``c``: cancel the model-thread jobs this view asked for itself."""

    def ask(self, message: Message) -> None:
        """Post ``message`` from this view, to bubble up to the panel and the app. It is marked as
        the view's own (``set_sender``): made while the panel calls the view (``draw_probe``,
        ``pin``, ``cancel``) it would count as the panel's, and Textual stops a message that
        bubbles back to its sender there, short of the app."""
        self.post_message(message.set_sender(self))

    def show(self) -> None:
        """Ask the panel to show this view's tab."""
        self.ask(ShowView(self.ID))


def view_bindings(views: Iterable[type[View]]) -> list[Binding]:
    """Every view's ``BINDINGS`` as the panel's: same keys, ids and descriptions, the action run on
    the view (``HijackPanel.action_view_key``)."""
    return [dataclasses.replace(b, action=f"view_key({v.ID!r}, {b.action!r})")
            for v in views for b in v.BINDINGS if isinstance(b, Binding)]
