"""The panel base: what the app needs of every panel, and the bindings it builds from the panel list.

A panel has a name (its widget id, tab id and binding ids), a key (the digit that shows it; the tab
strip shows it too), command-palette entries, a count of the jobs it runs and a way to stop them.
The app calls these on every panel of ``lca_tui.panels.PANEL_CLASSES``, the one list of panels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual.binding import Binding
from textual.widget import Widget

#: Textual's key name and the character a terminal's alt+N (macOS option+N) arrives as, per digit.
ALT_DIGIT_KEYS = {
    "1": ("inverted_exclamation_mark", "¡"),
    "2": ("trade_mark_sign", "™"),
    "3": ("pound_sign", "£"),
    "4": ("cent_sign", "¢"),
    "5": ("infinity", "∞"),
    "6": ("section_sign", "§"),
    "7": ("pilcrow_sign", "¶"),
    "8": ("bullet", "•"),
    "9": ("feminine_ordinal_indicator", "ª"),
}


class Panel(Widget):
    """One panel of the app. Subclasses set ``PANEL_NAME`` and ``PANEL_KEY`` and override what
    they have: palette entries, running jobs, stopping them."""

    PANEL_NAME: str = ""
    PANEL_KEY: str = ""
    #: Every panel class, as defined (editors read their alt-keys without importing a panel).
    registered: list[type[Panel]] = []

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        if cls.PANEL_KEY:
            Panel.registered.append(cls)

    @classmethod
    def title(cls) -> str:
        return cls.PANEL_NAME.capitalize()

    def commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        """This panel's command-palette entries: (label, help, callback)."""
        return []

    def running_jobs(self) -> int:
        """Threads this panel runs torch on now (training runs); the model thread is not counted."""
        return 0

    def stop_all(self) -> None:
        """Stop what this panel runs (at quit): between steps, keeping checkpoints."""


def alt_keys(panels: Iterable[type[Panel]]) -> list[tuple[str, str]]:
    """(key name, character) of each panel's alt+key, in panel order."""
    return [ALT_DIGIT_KEYS[p.PANEL_KEY] for p in panels]


def panel_bindings(panels: Iterable[type[Panel]]) -> list[Binding]:
    """The app's bindings that show a panel: its digit, and alt+digit (from editors, where digits
    are text; a terminal's alt+N arrives as ¡ ™ £ …, see editors.py)."""
    panels = list(panels)
    return [
        *[Binding(p.PANEL_KEY, f"panel('{p.PANEL_NAME}')", p.title(), id=f"app.panel.{p.PANEL_NAME}")
          for p in panels],
        *[Binding(f"alt+{p.PANEL_KEY},{key}", f"panel('{p.PANEL_NAME}')", p.title(),
                  id=f"app.panel.{p.PANEL_NAME}.alt", key_display=f"alt+{p.PANEL_KEY}", show=False, priority=True)
          for p, (key, _char) in zip(panels, alt_keys(panels))],
    ]
