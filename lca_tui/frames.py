"""One frame per answer: the screen waits for a probe that is about to answer.

A keystroke dirties the prompt editor; Textual would draw that echo at once and the answer's bars
one frame later, two frames on the same cores and GIL as the probe (issue 22). When the model is
expected to answer within ``HOLD_S`` (its last probe took no longer, and the model thread serves
this one at once), the panel holds the screen's frames (a Textual batch) until the answer is drawn:
the echo and the bars then reach the terminal in one frame. The hold never lasts longer than
``HOLD_S``, so a typed character is on screen within that time whatever the model does.
"""

from __future__ import annotations

#: The longest a typed character's echo waits for the answer (seconds).
HOLD_S = 0.05


class FrameHold:
    """Holds the app's frames (``App.batch_update``) from ``hold()`` until ``release()`` or ``limit`` seconds."""

    def __init__(self, app, limit: float = HOLD_S) -> None:
        self.app = app
        self.limit = limit
        self._batch = None  # the open batch_update() context while holding
        self._timer = None
        self.holds = 0  # how many holds began (for tests and the bench)
        self.expired = 0  # how many ended at the deadline instead of on the answer

    @property
    def active(self) -> bool:
        return self._batch is not None

    def hold(self) -> None:
        """Hold frames until ``release`` or the deadline; a hold already running keeps its deadline."""
        if self._batch is not None:
            return
        self._batch = self.app.batch_update()
        self._batch.__enter__()
        self.holds += 1
        self._timer = self.app.set_timer(self.limit, self._expire, name="frame-hold")

    def _expire(self) -> None:
        if self._batch is not None:
            self.expired += 1
        self._timer = None
        self.release()

    def release(self) -> None:
        """Let the next frame carry everything drawn during the hold (a no-op when not holding)."""
        if self._batch is None:
            return
        batch, self._batch = self._batch, None
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        batch.__exit__(None, None, None)
        if self.app.screen_stack:
            self.app.screen.check_idle()  # its idle handler schedules the frame for what is dirty
