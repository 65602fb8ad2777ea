"""One-line status bar: model, device, dtype, memory in use and running jobs, as given."""

from __future__ import annotations

from textual.widgets import Static


class StatusBar(Static):
    """``set_fields(model=..., device=..., dtype=..., memory=..., jobs=...)``; missing fields keep
    their value. Draws nothing it is not given."""

    ORDER = ("model", "device", "dtype", "memory", "jobs", "note")

    def __init__(self, **kw):
        super().__init__("", **kw)
        self.fields: dict[str, str] = {}
        self._text = ""

    def set_fields(self, **fields: str | None) -> None:
        for k, v in fields.items():
            if v is None:
                self.fields.pop(k, None)
            else:
                self.fields[k] = str(v)
        parts = []
        for k in self.ORDER:
            if k in self.fields:
                parts.append(self.fields[k] if k in ("model", "note") else f"{k} {self.fields[k]}")
        text = " · ".join(parts)
        if text != self._text:  # one line, fixed height: a repaint, never a relayout
            self._text = text
            self.update(text, layout=False)
