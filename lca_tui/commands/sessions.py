"""``lca-tui sessions``: list the sessions under the sessions root, most recently active first."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sessions", help="list recorded sessions",
        description="List the sessions under the sessions root (LCA_TUI_DATA_DIR/sessions or the "
                    "platform's user data folder), most recently active first; * marks the last used.")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    return p


def run(args: argparse.Namespace) -> int:
    from engine.session.report.values import fmt_time
    from engine.session.store import default_sessions_root, last_session, list_sessions

    root = default_sessions_root()
    sessions = list_sessions(root)
    last = last_session(root)
    if args.json:
        for s in sessions:
            print(json.dumps({"name": s.name, "path": str(s.path), "created": s.created, "updated": s.updated,
                              "runs": s.runs, "items": s.items, "last": s.path == last,
                              "problem": s.problem}, ensure_ascii=False))
        return 0
    if not sessions:
        print(f"no sessions under {root}")
        return 0

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Sessions in {root}", title_justify="left")
    show_folder = any(s.name != s.path.name for s in sessions)
    show_problem = any(s.problem for s in sessions)
    cols = ["", "name"] + (["folder"] if show_folder else []) + ["last active", "runs", "results"]
    cols += ["problem"] if show_problem else []
    for col in cols:
        table.add_column(col, no_wrap=col in ("name", "folder", "last active"))
    for s in sessions:
        row = ["*" if s.path == last else "", Text(s.name)]
        row += [Text(s.path.name if s.name != s.path.name else "")] if show_folder else []
        row += [fmt_time(s.updated), str(s.runs), str(s.items)]
        row += [Text(s.problem or "")] if show_problem else []
        table.add_row(*row)
    Console().print(table)
    return 0
