"""Text fields that leave the panel keys to the app.

Digits are text in an editor, so the panels are also on alt+1/2/3. A terminal sends alt+N as
ESC N, which Textual reads as the character macOS types for option+N (¡ ™ £); editors would insert
it as text and hide the app's binding from the binding chain. These never consume those three.
"""

from __future__ import annotations

from textual.widgets import Input, TextArea

#: Textual's key names for a terminal's alt+1, alt+2, alt+3 (and macOS option+1..3).
PANEL_ALT_KEYS = ("inverted_exclamation_mark", "trade_mark_sign", "pound_sign")
PANEL_ALT_CHARS = frozenset("¡™£")


class _LeavesPanelKeys:
    def check_consume_key(self, key: str, character: str | None) -> bool:
        if key in PANEL_ALT_KEYS or character in PANEL_ALT_CHARS:
            return False
        return super().check_consume_key(key, character)


class Editor(_LeavesPanelKeys, TextArea):
    """A TextArea that leaves alt+1/2/3 to the app."""


class Field(_LeavesPanelKeys, Input):
    """An Input that leaves alt+1/2/3 to the app."""
