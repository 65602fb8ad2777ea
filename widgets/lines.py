"""Repaint only the lines that changed, for the Line-API widgets an answer redraws on every keystroke.

``LinesWidget`` is the one pattern of these widgets: line ``y`` is ``strips[y]`` of its ``_build``
(blank past the end), built once per data change and size. When its data change it builds the new
strips at once and hands the old and the new list to ``repaint_changed``: only the lines that
differ are marked dirty, so Textual re-renders and re-sends those alone (its per-line styling, not
the widget's own drawing, is most of a frame: issue 22). With nothing drawn before, the whole
widget is repainted.
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


class LinesWidget(Widget):
    """A Line-API widget that draws line ``y`` as the ``y``-th strip of ``_build(width, height)`` (blank
    past the end), built once per data change and size. A subclass changes its data, then calls
    ``_redraw(layout)``: a layout when its height may change, else a repaint of the changed lines."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._cache: dict[tuple[int, int], list[Strip]] = {}

    def _build(self, width: int, height: int) -> list[Strip]:
        raise NotImplementedError

    def _blank_style(self):
        return self.rich_style

    def _strips(self) -> list[Strip]:
        key = (self.size.width, self.size.height)
        strips = self._cache.get(key)
        if strips is None:
            strips = self._build(*key)
            self._cache = {key: strips}
        return strips

    def _redraw(self, layout: bool = False) -> None:
        key = (self.size.width, self.size.height)
        old = self._cache.get(key)
        self._cache.clear()
        if layout or old is None:
            self.refresh(layout=layout)
            return
        new = self._cache[key] = self._build(*key)
        repaint_changed(self, old, new)

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        if y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width, self._blank_style())

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
