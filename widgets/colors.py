"""Colour ramps (sequential viridis, diverging blue-white-red) as precomputed tables."""

from __future__ import annotations

from functools import cache

import numpy as np
from rich.color import Color

# Anchor points sampled from matplotlib's viridis and a ColorBrewer RdBu-like diverging map.
_VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c",
            "#28ae80", "#5ec962", "#addc30", "#fde725"]
_DIVERGING = ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
              "#fddbc7", "#f4a582", "#d6604d", "#b2182b"]
RAMPS = {"viridis": _VIRIDIS, "diverging": _DIVERGING}

NAN_COLOR = Color.from_rgb(128, 128, 128)
"""Neutral grey used for NaN cells."""


def _hex_to_rgb(h: str) -> tuple[int, int, int]:
    return int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)


@cache
def ramp(name: str = "viridis", n: int = 256) -> tuple[Color, ...]:
    """Return ``n`` colours interpolated linearly between the anchors of ramp ``name``."""
    anchors = np.array([_hex_to_rgb(h) for h in RAMPS[name]], dtype=float)
    pos = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, n)
    rgb = np.stack([np.interp(t, pos, anchors[:, c]) for c in range(3)], axis=1)
    rgb = np.rint(rgb).astype(int)
    return tuple(Color.from_rgb(*map(int, row)) for row in rgb)


def contrast_text(color: Color) -> Color:
    """Black or white, whichever reads better on ``color``."""
    r, g, b = color.get_truecolor()
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return Color.from_rgb(0, 0, 0) if luminance > 140 else Color.from_rgb(255, 255, 255)


def quantize(values, vmin: float, vmax: float, n_colors: int) -> np.ndarray:
    """Map values to colour indices 0..n_colors-1 (vmin -> 0, vmax -> n_colors-1); NaN -> -1."""
    v = np.asarray(values, dtype=float)
    span = float(vmax) - float(vmin)
    if not np.isfinite(span) or span <= 0:
        idx = np.zeros(v.shape, dtype=np.int16)
    else:
        with np.errstate(invalid="ignore"):
            scaled = (v - float(vmin)) / span * (n_colors - 1)
            idx = np.clip(np.floor(np.nan_to_num(scaled, nan=0.0) + 0.5), 0, n_colors - 1)
        idx = idx.astype(np.int16)
    idx[np.isnan(v)] = -1
    return idx
