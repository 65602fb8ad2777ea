"""Registered Textual themes and the app stylesheet (``app.tcss``).

Three themes: ``lca-dark`` (default), ``lca-light`` and ``lca-high-contrast``.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

STYLESHEET = Path(__file__).with_name("app.tcss")

THEMES = {
    "lca-dark": Theme(
        name="lca-dark", dark=True, primary="#5fafff", secondary="#af87ff", accent="#ffaf5f",
        warning="#ffd75f", error="#ff5f5f", success="#5fd787", background="#121212", surface="#1c1c1c",
        panel="#262626", foreground="#e4e4e4"),
    "lca-light": Theme(
        name="lca-light", dark=False, primary="#005fd7", secondary="#8700af", accent="#d75f00",
        warning="#af8700", error="#d70000", success="#008700", background="#fafafa", surface="#ffffff",
        panel="#e4e4e4", foreground="#1c1c1c"),
    "lca-high-contrast": Theme(
        name="lca-high-contrast", dark=True, primary="#00ffff", secondary="#ff00ff", accent="#ffff00",
        warning="#ffff00", error="#ff0000", success="#00ff00", background="#000000", surface="#000000",
        panel="#000000", foreground="#ffffff", boost="#ffffff"),
}
DEFAULT_THEME = "lca-dark"
