"""How the app ends: on a signal, on a lost browser, and never later than ``EXIT_DEADLINE_S``.

Issue 23 (a served app never outlived its browser). Three things kept a served app alive:

* **A resize ping-pong in Textual's Screen** (8.2.x). ``Screen._refresh_layout`` posts a ``Resize``
  to every widget whose region changed, the screen included, and ``Screen._on_resize`` takes that
  event's size as the new *terminal* size. When the browser's first resize (e.g. 133x44) lands
  while the first layout still runs at the size of the environment (``ROWS``: 133x36), the screen
  lays itself out at 36 rows, posts itself 44, lays out at 44, posts itself 36, ... forever: 96 %
  of a core in ``Compositor.render_full_update`` and not one frame written. Our first layout is
  slow (three panels), which opens the window a headless Chromium screenshot hits every time.
  :func:`install_resize_fix` makes a screen resize use the app's size, the one source of truth.
* **No exit when the browser goes.** textual-serve closes the app's stdin on a dropped websocket
  (or the server dies), but the web driver's input thread just ends on EOF; nothing tells the app.
  :func:`watch_input` turns EOF on stdin into an exit.
* **An exit that can hang.** Shutdown waits for every screen's message queue to drain (a busy or
  looping screen never drains) and for worker threads. :func:`arm_deadline` ends the process with
  ``os._exit`` ``EXIT_DEADLINE_S`` seconds after an exit was asked for. Training runs are asked to
  stop first; a run still going is left exactly as after a crash (its pid is dead, so the session
  shows it ``interrupted``, resumable).

SIGTERM and SIGINT (also SIGHUP) ask the app to exit, in the terminal and in the browser alike.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

#: Seconds from an exit request (signal, lost browser, quit key) to the process being gone.
EXIT_DEADLINE_S = 3.0
#: Exit status of a forced exit: 128 + SIGTERM, as a shell reports a terminated process.
FORCED_STATUS = 128 + signal.SIGTERM

_fix_installed = False


def install_resize_fix() -> None:
    """Screens lay out at the app's size, never at a size a screen posted to itself (see above)."""
    global _fix_installed
    if _fix_installed:
        return
    from textual.screen import Screen

    original = Screen._screen_resized

    def _screen_resized(self, size):
        app_size = getattr(self.app, "size", None)
        return original(self, app_size if app_size else size)

    Screen._screen_resized = _screen_resized
    _fix_installed = True


def arm_deadline(seconds: float = EXIT_DEADLINE_S, status: int = FORCED_STATUS) -> threading.Timer:
    """Force the process out ``seconds`` from now unless it has exited by then."""
    def force() -> None:
        try:
            sys.stderr.write(f"lca-tui: exit did not finish within {seconds:g} s; forcing it\n")
            sys.stderr.flush()
        finally:
            os._exit(status)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.name = "lca-exit-deadline"
    timer.start()
    return timer


class Lifecycle:
    """Ties one running app to signals, to its driver's input and to the exit deadline."""

    def __init__(self, app, deadline: float = EXIT_DEADLINE_S, enforce: bool = False):
        self.app = app
        self.deadline = deadline
        #: Only the app that *is* the process (``run_app``) installs signal handlers and a deadline
        #: that ends the process; an app under ``run_test`` (the tests) leaves both alone.
        self.enforce = enforce
        self.exiting = threading.Event()
        self.reason: str | None = None
        self._loop = None

    # -------------------------------------------------------------- exit, from any thread
    def request_exit(self, reason: str) -> None:
        """Stop training runs, ask the app to exit, and arm the deadline (once)."""
        if self.exiting.is_set():
            return
        self.exiting.set()
        self.reason = reason
        if self.enforce:
            arm_deadline(self.deadline)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._exit_on_loop)
        except RuntimeError:  # the loop is closing: the deadline ends the process
            pass

    def _exit_on_loop(self) -> None:
        app = self.app
        try:
            for panel in (app.panels() if app.screen_stack else []):
                getattr(panel, "stop_all", lambda **_: None)(wait=0)
        except Exception:  # noqa: BLE001 - a half-built app: exit all the same
            pass
        app.exit()

    # -------------------------------------------------------------- wiring (on the app's loop)
    def on_mount(self) -> None:
        """Install the signal handlers and, under textual-serve, the stdin watch."""
        import asyncio

        self._loop = asyncio.get_running_loop()
        if not self.enforce:
            return
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:  # replaces the web driver's own handler (an ExitApp that can hang)
                self._loop.add_signal_handler(sig, self.request_exit, signal.Signals(sig).name)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        if getattr(self.app, "is_web", False):
            watch_input(self)

    def on_unmount(self) -> None:
        """The app is closing by itself (quit key): keep it to the deadline as well."""
        if not self.exiting.is_set():
            self.exiting.set()
            self.reason = self.reason or "quit"
            if self.enforce:
                arm_deadline(self.deadline)


def watch_input(life: Lifecycle, poll_s: float = 0.25) -> threading.Thread:
    """Exit when the driver's stdin hangs up (textual-serve closed it, or died).

    The web driver's own input thread reads stdin; this one only polls it for a hang-up, which
    needs no read and so takes nothing from the driver."""
    import select

    fd = sys.__stdin__.fileno() if sys.__stdin__ is not None else 0

    def run() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLHUP | select.POLLERR | select.POLLNVAL)
        while not life.exiting.is_set():
            for _, event in poller.poll(int(poll_s * 1000)):
                if event & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    life.request_exit("browser gone (stdin closed)")
                    return

    t = threading.Thread(target=run, name="lca-stdin-watch", daemon=True)
    t.start()
    return t
