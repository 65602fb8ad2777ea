"""Text fields that leave the panel keys to the app.

Digits are text in an editor, so the panels are also on alt+1/2/3. A terminal sends alt+N as
ESC N, which Textual reads as the character macOS types for option+N (¡ ™ £); editors would insert
it as text and hide the app's binding from the binding chain. These never consume the alt-keys of
every panel (``Panel.registered``; editors import no panel).
"""

from __future__ import annotations

from textual.widgets import Input, TextArea

from lca_tui.panels.base import Panel, alt_keys


class _LeavesPanelKeys:
    def check_consume_key(self, key: str, character: str | None) -> bool:
        pairs = alt_keys(Panel.registered)
        if any(key == k or character == c for k, c in pairs):
            return False
        return super().check_consume_key(key, character)


class Editor(_LeavesPanelKeys, TextArea):
    """A TextArea that leaves alt+1/2/3 to the app."""


class Field(_LeavesPanelKeys, Input):
    """An Input that leaves alt+1/2/3 to the app."""
