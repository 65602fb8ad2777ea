"""Repaint only the lines that changed, for the Line-API widgets an answer redraws on every keystroke.

A widget that draws line ``y`` as ``strips[y]`` (blank past the end) builds its new strips when its
data change and hands the old and the new list here: only the lines that differ are marked dirty,
so Textual re-renders and re-sends those alone (its per-line styling, not the widget's own drawing,
is most of a frame: issue 22). With nothing drawn before, the whole widget is repainted.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


def changed_runs(old: Sequence[Strip], new: Sequence[Strip]) -> list[tuple[int, int]]:
    """(first line, line count) of each run of consecutive lines whose strips differ."""
    runs: list[tuple[int, int]] = []
    for y in range(max(len(old), len(new))):
        if y < len(old) and y < len(new) and old[y] == new[y]:
            continue
        if runs and runs[-1][0] + runs[-1][1] == y:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((y, 1))
    return runs


def repaint_changed(widget: Widget, old: Sequence[Strip] | None, new: Sequence[Strip]) -> None:
    """Mark the lines of ``widget`` that differ between ``old`` and ``new`` dirty (all of it when ``old`` is None)."""
    if old is None:
        widget.refresh()
        return
    width = widget.size.width
    regions = [Region(0, y, width, n) for y, n in changed_runs(old, new)]
    if regions:
        widget.refresh(*regions)
