"""The ``lca-tui`` command line: ``lca-tui`` alone opens the app; subcommands run headless.

A user mistake (``engine.errors.UserError``) prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys

from lca_tui import __version__

#: Subcommand modules under ``lca_tui.commands``, in the order ``--help`` lists them.
COMMANDS = ["train", "probe", "hijack", "trace", "schemes", "report", "sessions", "experiment", "serve",
            "mirror", "doctor", "repair"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, exit 2 (argparse's own convention)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lca-tui", description=(
        "Terminal workbench for latent concept association and context hijacking "
        "(Jiang et al., NeurIPS 2024). Run without a command to open the app."))
    parser.add_argument("--version", action="version", version=f"lca-tui {__version__}")
    parser.add_argument("--session", metavar="DIR", help="session directory to open or record into")
    parser.add_argument("--model", metavar="M", help="language model for the app: alias, HF id or local path")
    parser.add_argument("--threads", metavar="N", type=_threads, help=(
        "torch threads (default: the free cores; or set LCA_TUI_THREADS)"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"lca_tui.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"lca_tui.commands.{name}":
                raise
            continue
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
        _share_global_options(parser, p)
    return parser


def _threads(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _share_global_options(parser: argparse.ArgumentParser, sub: argparse.ArgumentParser) -> None:
    """Accept every global option (``--session``, ``--model``, ``--threads``, ...) after the
    subcommand too: ``lca-tui train --session DIR`` = ``lca-tui --session DIR train``. The copy has
    no default, so a value given before the subcommand is kept; a subcommand that defines the
    same flag itself keeps its own."""
    group = None
    for action in parser._actions:
        if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if any(flag in sub._option_string_actions for flag in action.option_strings):
            continue
        if group is None:
            group = sub.add_argument_group("global options (also accepted before the command)")
        shared = copy.copy(action)
        shared.default = argparse.SUPPRESS
        group._add_action(shared)


def main(argv: list[str] | None = None) -> int:
    from engine.errors import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None) is not None:  # read by engine.threads.choose, here and in workers
        os.environ["LCA_TUI_THREADS"] = str(args.threads)
    try:
        if args.command is None:
            from lca_tui.app import run_app

            return run_app(args)
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"lca-tui: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lca-tui: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
