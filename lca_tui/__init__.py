"""lca-tui: the terminal workbench application (App, screens, CLI)."""

import os

__version__ = "0.1.0"

#: Textual repaints dirty widgets on a 1 / TEXTUAL_FPS grid (60 by default): an answer that lands
#: just after the keystroke's echo frame waits up to 16.7 ms for the next slot. 120 halves that
#: wait (issue 22, bench/results/app_latency_tiny*.json); nothing here repaints on its own, so the
#: higher ceiling costs nothing while idle. Read when Textual is first imported; a user's value wins.
os.environ.setdefault("TEXTUAL_FPS", "120")
