"""The tracked-targets table of the hijack panel: one row per target (its probability, rank,
first-token probability and role), the false target marked when it beats the true one."""

from __future__ import annotations

from textual.widgets import DataTable

from lca_tui.panels.hijack.views.base import pct
from widgets import visible_token


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


def fill_table(t: DataTable, rows: list[tuple[str, ...]]) -> None:
    """Show the rows: cells updated in place while the targets stay the same (a repaint per
    keystroke), the table rebuilt when they change."""
    if t.row_count != len(rows) or any(t.get_row_at(i)[0] != row[0] for i, row in enumerate(rows)):
        t.clear()
        for row in rows:
            t.add_row(*row)
        return
    widths = [c.content_width for c in t.ordered_columns]
    for i, row in enumerate(rows):
        old = t.get_row_at(i)
        for j, value in enumerate(row):
            if old[j] != value:
                t.update_cell_at((i, j), value, update_width=len(value) > widths[j])
