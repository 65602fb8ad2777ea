"""Which keys and blocks an attention knockout masks (``engine.hijack.trace``): the prepended
positions of a prepared pair by variant (``all``, ``mentions``, ``rest``, each also over a window of
blocks), never position 0 unless the sink is masked too; the window's width and blocks."""

from __future__ import annotations

from engine.errors import UserError

DEFAULT_WINDOW = 5


def knocked(pair, variant: str, sink: bool = False) -> list[int]:
    """The hijacked positions a knockout variant masks: the prepended tokens (``all``), those of them
    that mention the target (``mentions``) or the others (``rest``); never position 0 unless ``sink``
    (the first token is the attention sink, BOS or not: masking it would remove the sink, not the
    prepended content)."""
    pre, men = pair.prepended, pair.mentions
    which = variant.removesuffix("_window")
    which = "all" if which == "window" else which
    pick = {"all": pre, "mentions": [p and m for p, m in zip(pre, men)],
            "rest": [p and not m for p, m in zip(pre, men)]}[which]
    return [i for i, on in enumerate(pick) if on and (sink or i > 0)]


def knock_keys(pair, variant: str, sink: bool = False):
    """``knocked`` as a bool tensor over the hijacked tokens (True = may not be attended)."""
    import torch

    keys = torch.zeros(len(pair.ids), dtype=torch.bool)
    keys[knocked(pair, variant, sink)] = True
    return keys


def knock_layers(layer: int, variant: str, window: int, n_layers: int) -> range:
    """The blocks a knockout at ``layer`` covers: the block alone, or ``window`` blocks centred on it."""
    if not variant.endswith("window"):
        return range(layer, layer + 1)
    lo = max(0, min(layer - window // 2, n_layers - window))
    return range(lo, min(n_layers, lo + window))


def knock_window(window: int | None, n_layers: int) -> int:
    """The windowed knockouts' width: ``DEFAULT_WINDOW`` blocks (or every block of a smaller model)
    when None; anything but 1..n_layers raises ``UserError``."""
    if window is None:
        return min(DEFAULT_WINDOW, n_layers)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= n_layers:
        raise UserError(f"the knockout window must be 1..{n_layers} blocks, not {window!r}")
    return window
