"""A signed value per layer as diverging horizontal bars around a centre line (Line API, cheap to redraw).

Made for the logit lens of a true/false target pair: ``logit(true) − logit(false)`` per layer, a bar to the
right (the "true" style) where the true target is ahead and to the left (the "false" style) where the false
one is. Everything is built once per update and size; ``render_line`` only looks a strip up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from .lines import LinesWidget
from .tokens import visible_token

_EIGHTHS = " ▏▎▍▌▋▊▉"  # left-aligned partial cells, 0..7 eighths
_FULL = "█"
_MAX_NAME = 14
EMPTY_MESSAGE = "no true/false pair to compare"
TOO_SHORT = "per-layer bars: no room (3 rows needed)"


def layer_groups(n: int, rows: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` layer ranges, one per row: every layer alone when ``n <= rows``,
    else ``rows`` groups whose sizes differ by at most one (the first ``n % rows`` groups one larger)."""
    if n <= 0 or rows <= 0:
        return []
    if n <= rows:
        return [(i, i + 1) for i in range(n)]
    size, extra = divmod(n, rows)
    out, start = [], 0
    for g in range(rows):
        stop = start + size + (1 if g < extra else 0)
        out.append((start, stop))
        start = stop
    return out


def group_label(start: int, stop: int) -> str:
    """1-based label of layers ``[start, stop)``: "L4" or "L1–3"."""
    return f"L{start + 1}" if stop - start == 1 else f"L{start + 1}–{stop}"


def grouped_values(values: Sequence[float], rows: int) -> list[tuple[str, float]]:
    """(label, mean of the group's values) per row (``layer_groups``); NaNs are left out of a mean,
    a group of NaNs only is NaN."""
    out = []
    for start, stop in layer_groups(len(values), rows):
        part = [float(v) for v in values[start:stop] if not math.isnan(float(v))]
        out.append((group_label(start, stop), sum(part) / len(part) if part else math.nan))
    return out


def diverging_eighths(value: float, scale: float, half: int) -> int:
    """Signed bar length in eighths of a cell: ``value / scale`` of ``half`` cells (clipped); 0 for NaN."""
    if not math.isfinite(value) or scale <= 0 or half <= 0:
        return 0
    frac = max(-1.0, min(1.0, value / scale))
    return int(round(frac * half * 8))


def format_value(value: float) -> str:
    """"+1.3", "−0.4" (a true minus sign), "0.0" when it rounds to zero, "—" for NaN."""
    if not math.isfinite(value):
        return "—"
    text = f"{value:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text.replace("-", "−")


class LayerBars(LinesWidget):
    """One row per layer: the label, a diverging bar around a centre line and the signed value.

    Positive values grow right in the ``true`` style, negative ones left in the ``false`` style, all on
    one scale: the largest |value| shown (after grouping) fills half the bar area, and the header says
    so (``−s … +s`` at the bar ends). A title line names the quantity (with the two target strings
    where the width allows) and a legend line puts each target on its side of the centre line; below 6
    rows the title goes, below 3 one dim line says there is no room.

    When there are more layers than rows, consecutive layers share a row (``layer_groups``: sizes
    differ by at most one, labelled "L1–3") that shows their **mean**. Without values (``set_empty``,
    or no pair) it shows one dim line saying so.
    """

    DEFAULT_CSS = """
    LayerBars { height: auto; min-height: 1; }
    LayerBars > .layer-bars--true { color: $success; }
    LayerBars > .layer-bars--false { color: $error; }
    LayerBars > .layer-bars--axis { color: $text-muted; }
    LayerBars > .layer-bars--label { color: $text-muted; }
    LayerBars > .layer-bars--title { color: $text-muted; }
    LayerBars > .layer-bars--dim { color: $text-muted; text-style: italic; }
    """
    COMPONENT_CLASSES = {
        "layer-bars--true", "layer-bars--false", "layer-bars--axis", "layer-bars--label",
        "layer-bars--title", "layer-bars--dim",
    }

    def __init__(self, *, title: str = "logit(true) − logit(false) per layer", name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self._values: list[float] = []
        self._true = ""
        self._false = ""
        self._message = EMPTY_MESSAGE
        self._styles: dict[str, Style] | None = None  # resolved once per style change (rich_style is slow)

    @property
    def values(self) -> list[float]:
        """The per-layer values now shown (ungrouped); empty in the empty state."""
        return list(self._values)

    def set_values(self, values: Sequence[float], *, true: str = "", false: str = "") -> None:
        """Show ``values[i]`` for layer ``i + 1``; ``true``/``false`` name the two sides (target strings)."""
        values = [float(v) for v in values]
        relayout = len(values) != len(self._values)
        self._values, self._true, self._false = values, true, false
        self._redraw(relayout)

    def set_empty(self, message: str = EMPTY_MESSAGE) -> None:
        """No values: one dim line, ``message``."""
        if not self._values and message == self._message:
            return
        relayout = bool(self._values)
        self._values, self._message = [], message
        self._redraw(relayout)

    def get_content_height(self, container, viewport, width: int) -> int:
        return 2 + len(self._values) if self._values else 1

    # ------------------------------------------------------------------ drawing
    def _style_table(self) -> dict[str, Style]:
        if self._styles is None:
            base = self.rich_style
            self._styles = {"base": base, **{name: base + self.get_component_rich_style(f"layer-bars--{name}")
                                             for name in ("true", "false", "axis", "label", "title", "dim")}}
        return self._styles

    def _title(self, width: int, suffix: str = "") -> str | None:
        """The longest title that fits with ``suffix``; None if none does (then without a suffix, cut)."""
        t, f = visible_token(self._true), visible_token(self._false)
        for text in (f"logit({t}) − logit({f}) per layer" if t and f else "", self.title,
                     "logit(true) − logit(false)", "logit true − false", "true − false"):
            if text and len(text) + len(suffix) <= width:
                return text + suffix
        return None if suffix else self.title[:width]

    def _names_fit(self, left_w: int, right_w: int, scale: str) -> bool:
        """Whether both target names fit uncut in the legend beside the scale at the ends."""
        need = [len(scale) + 4 + min(_MAX_NAME, len(visible_token(name))) for name in (self._false, self._true)]
        return need[0] <= left_w and need[1] <= right_w

    def _build(self, width: int, height: int) -> list[Strip]:
        styles = self._style_table()
        base = styles["base"]
        if not self._values:
            return [Strip([Segment(self._message[:width], styles["dim"])]).adjust_cell_length(width, base)]
        if height < 3:
            return [Strip([Segment(TOO_SHORT[:width], styles["dim"])]).adjust_cell_length(width, base)]
        header = 2 if height >= 6 else 1  # the title goes first when fewer than 4 rows of bars would remain
        rows = grouped_values(self._values, max(1, height - header))
        finite = [abs(v) for _, v in rows if math.isfinite(v)]
        scale = max(finite, default=0.0)
        texts = [format_value(v) for _, v in rows]
        label_w = max(len(label) for label, _ in rows)
        value_w = max(5 if width >= 30 else 4, *(len(t) for t in texts))  # "+10.1" without moving the centre line
        area = max(3, width - label_w - value_w - 2)
        half = (area - 1) // 2
        exact = label_w + value_w + 2 + area == width  # every row is exactly ``width`` cells
        strips = []
        s = format_value(scale).lstrip("+")
        if header == 2:  # a narrow legend leaves its ends to the names, the title says the scale
            left_w = label_w + 1 + half
            title = None if self._names_fit(left_w, width - left_w - 1, "−" + s) else self._title(width, f" · ±{s}")
            strips.append(Strip([Segment(title or self._title(width), styles["title"])])
                          .adjust_cell_length(width, base))
            s = None if title else s
        strips.append(self._legend(width, label_w, half, s, styles))
        for (label, value), text in zip(rows, texts):
            n = diverging_eighths(value, scale, half)
            side = styles["true"] if n > 0 else styles["false"]
            segs = [Segment(f"{label:>{label_w}} ", styles["label"])]
            segs += self._left(-n, half, styles["false"], base) if n < 0 else [Segment(" " * half, base)]
            segs.append(Segment("│", styles["axis"]))
            right = _FULL * (n // 8) + (_EIGHTHS[n % 8] if n % 8 else "") if n > 0 else ""
            segs.append(Segment(f"{right:<{area - half - 1}} ", side))
            segs.append(Segment(f"{text:>{value_w}}", side if n else styles["label"]))
            strips.append(Strip(segs, width) if exact else Strip(segs).adjust_cell_length(width, base))
        return strips

    @staticmethod
    def _left(eighths: int, half: int, style: Style, base: Style) -> list[Segment]:
        """A bar of ``eighths`` growing leftwards from the centre line in a ``half``-cell field: its partial
        cell is a left-aligned block in the background colour over the bar colour."""
        full, rem = divmod(eighths, 8)
        bg = base.bgcolor
        segs = []
        if rem and bg is None:  # no known background: round to whole cells
            full, rem = full + (rem >= 4), 0
        pad = half - full - (1 if rem else 0)
        if pad > 0:
            segs.append(Segment(" " * pad, base))
        if rem:
            segs.append(Segment(_EIGHTHS[8 - rem], style + Style(color=bg, bgcolor=style.color)))
        if full:
            segs.append(Segment(_FULL * full, style))
        return segs

    def _legend(self, width: int, label_w: int, half: int, scale: str | None, styles) -> Strip:
        """``−s ◀ false│true ▶ +s``: each target on its side of the centre line, the scale ``s`` at the outer
        ends (over the label and value columns where they are wide enough; a name is cut to make room);
        ``scale=None``: the names only (the title states the scale)."""
        left_w = label_w + 1 + half
        right_w = width - left_w - 1
        lo, hi = (f"−{scale}", f"+{scale}") if scale else ("", "")

        def field(name: str, arrow: str, scale_text: str, room: int, left: bool) -> list[Segment]:
            name = visible_token(name)
            fit = min(_MAX_NAME, room - len(scale_text) - (3 if scale_text else 2))  # the arrow, a space, a gap
            if not name or fit < 2:
                name, fit = "", room - len(scale_text) - 2
            label = name if len(name) <= fit else name[: fit - 1] + "…"
            text = (f"{arrow} {label}" if left else f"{label} {arrow}") if label else arrow
            side = styles["false"] if left else styles["true"]
            if len(scale_text) + 1 + len(text) > room:
                scale_text = ""
            gap = Segment(" " * max(0, room - len(scale_text) - len(text)), styles["base"])
            if left:
                return [Segment(scale_text, styles["label"]), gap, Segment(text[:room], side)]
            return [Segment(text[:room], side), gap, Segment(scale_text, styles["label"])]

        segs = field(self._false, "◀", lo, left_w, True) + [Segment("│", styles["axis"])]
        segs += field(self._true, "▶", hi, right_w, False)
        return Strip(segs).adjust_cell_length(width, styles["base"])

    def _blank_style(self) -> Style:
        return self._style_table()["base"]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
