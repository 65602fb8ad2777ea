"""The tracked-targets table of the hijack panel: one row per target (its probability, rank,
first-token probability and role), the false target marked when it beats the true one."""

from __future__ import annotations

from textnum import probability as pct
from widgets import visible_token

#: The columns of the panel's RowTable of targets (its ``set_rows`` repaints; a new row count relays out).
COLUMNS = ("target", "P(target)", "rank", "P(1st token)", "")


def target_rows(targets, roles: dict[str, str]) -> tuple[list[tuple[str, ...]], bool | None]:
    """The table's rows for a probe's tracked targets, and whether the false target's probability
    beats the true one's (None unless both roles are set). Roles follow the target strings, not the
    rows, so removing a row never shifts them."""
    role_of = {tp.target: roles.get(tp.target, "") for tp in targets}
    prob = {role: tp.prob for tp in targets if (role := role_of[tp.target])}
    hijacked = prob["false"] > prob["true"] if {"true", "false"} <= prob.keys() else None
    rows = []
    for tp in targets:
        role = role_of[tp.target]
        if role == "false" and hijacked:
            role = "▲ hijacked"
        rows.append((visible_token(tp.target), pct(tp.prob), str(tp.rank), pct(tp.first_token_prob), role))
    return rows, hijacked
