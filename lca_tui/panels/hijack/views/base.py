"""What a hijack view is: one tab of the hijack panel that draws a result it is given.

A view names its tab (``ID``, ``TITLE``), yields its widgets (``compose``, straight into the tab),
may ask the probe for one optional field (``PROBE``: one of ``engine.hijack.probe.ANALYSES``, e.g.
``"surprise"``; the panel adds ``"target_lens"`` for its right column) and draws a probe answer
(``draw_probe``). Views that draw a job's result (sweep, ES) have their own ``draw`` method, which the
panel calls; a view that asks for its own jobs (trace) takes their answers in ``job_finished``. A new
view is one module here and one line in ``VIEWS``.
"""

from __future__ import annotations

from textual.app import ComposeResult


class View:
    ID: str = ""
    TITLE: str = ""
    #: The ProbeRequest flag this view needs while it is shown (None: the basic probe is enough).
    PROBE: str | None = None

    def __init__(self, panel) -> None:
        self.panel = panel

    def query_one(self, *args):
        return self.panel.query_one(*args)

    def compose(self) -> ComposeResult:
        yield from ()

    def draw_probe(self, res) -> None:
        """Draw what this view shows of a probe answer (an engine ``ProbeResult``)."""

    def job_finished(self, msg) -> bool:
        """Take a finished model job this view asked for itself (True: handled, the panel stops)."""
        return False
