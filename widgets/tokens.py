"""Make tokens readable: whitespace and control characters get visible stand-ins."""

from __future__ import annotations

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "→", "\r": "␍"}


def visible_token(s: str) -> str:
    """Return ``s`` with whitespace made visible (space ␣, newline ↵, tab →, CR ␍).

    Other control characters become their escaped form (e.g. ``\\x00``); the
    empty string becomes "∅" so that it still takes up a cell.
    """
    if s == "":
        return "∅"
    out = []
    for ch in s:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ascii(ch)[1:-1])
    return "".join(out)
