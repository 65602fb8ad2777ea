"""``lca-tui report [SESSION] --format html|md --out PATH``: export a session as a report.

SESSION is a session folder, a session name under the sessions root, or (omitted) the session
given by the top-level ``--session`` option, else the last used one. HTML is one self-contained
file; Markdown writes its images to ``<name>_files/`` beside the ``.md`` file.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report", help="export a session as an HTML or Markdown report",
        description="Export a session (training runs, hijack curves, sweeps, pinned probes, experiments) "
                    "as one self-contained HTML file or as Markdown with an images folder.")
    p.add_argument("session_ref", nargs="?", metavar="SESSION",
                   help="session folder or name (default: --session, else the last used session)")
    p.add_argument("--format", "-f", choices=("html", "md"), default=None,
                   help="html (default; md when --out ends in .md)")
    p.add_argument("--out", "-o", metavar="PATH",
                   help="file or folder to write (default: <session>-report.<fmt> in the current folder)")
    return p


def resolve_session_path(ref: str | None, top_level: str | None = None) -> Path:
    """The session folder a command should read: ``ref``, else ``--session``, else the last used."""
    from engine.errors import UserError
    from engine.session.store import default_sessions_root, find_session, last_session

    root = default_sessions_root()
    if ref:
        return find_session(ref, root)
    if top_level:
        return find_session(top_level, root)
    last = last_session(root)
    if last is None:
        raise UserError(f"no sessions yet under {root}; name a session folder")
    return last


def run(args: argparse.Namespace) -> int:
    from engine.session.report import write_report
    from engine.session.store import Session

    path = resolve_session_path(args.session_ref, getattr(args, "session", None))
    session = Session.open(path, create=False)
    fmt = args.format
    if fmt is None:
        fmt = "md" if args.out and str(args.out).lower().endswith((".md", ".markdown")) else "html"
    out = write_report(session, fmt, args.out)
    print(out.resolve())
    return 0
