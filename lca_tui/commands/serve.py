"""``lca-tui serve [--port P]``: the same app in a web browser (textual-serve), on 127.0.0.1 only.

Each browser tab that opens the page starts its own ``lca-tui`` process (textual-serve runs the app
as a subprocess and streams its terminal over a websocket). The server listens on the loopback
interface only: on a GPU box, forward the port over SSH (``ssh -L P:127.0.0.1:P box``) and open
``http://localhost:P`` on your laptop.

At most ``--max-sessions`` tabs run an app at once (default 4: each app holds its own model, and a
browser that keeps reconnecting must not pile up processes); one more gets a page that says so.
The apps and the server end together (``lca_tui.serving``): a closed or dropped tab ends its app,
and SIGTERM/SIGINT to ``serve`` ends every app and then the server, within seconds.
"""

from __future__ import annotations

import argparse
import errno
import shlex
import sys

#: Host names ``--host`` accepts; both mean the IPv4 loopback, which is what the server binds.
LOOPBACK = ("127.0.0.1", "localhost")
BIND = "127.0.0.1"
DEFAULT_PORT = 8000
#: Browser tabs with an app running at once; each app loads its own model (issue 23).
DEFAULT_MAX_SESSIONS = 4

#: Global options the served app inherits from this command line (attribute, flag).
FORWARDED = (("session", "--session"), ("model", "--model"), ("threads", "--threads"), ("device", "--device"))


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="serve the app in a web browser on 127.0.0.1 (forward the port over SSH)",
        description="Serve the app in a web browser with textual-serve, bound to 127.0.0.1 only. "
                    "On a remote box run 'ssh -L P:127.0.0.1:P BOX' and open http://localhost:P. "
                    "Each browser tab runs its own app process with the global options given here.")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="P",
                   help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT})")
    p.add_argument("--host", default=BIND, metavar="H",
                   help="only 127.0.0.1 or localhost: the app is never exposed on other interfaces")
    p.add_argument("--public-url", metavar="URL",
                   help="the URL your browser uses when it differs from http://127.0.0.1:P "
                        "(e.g. a different local port in 'ssh -L'): the page connects its websocket there")
    p.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS, metavar="N",
                   help=f"most browser tabs with an app running at once (default {DEFAULT_MAX_SESSIONS}; "
                        "each app process loads its own model); one more tab gets a page saying so")
    return p


def app_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs for each browser session: this interpreter running the
    app with the global options of this command line."""
    argv = [sys.executable, "-m", "lca_tui"]
    for attr, flag in FORWARDED:
        value = getattr(args, attr, None)
        if value is not None:
            argv += [flag, str(value)]
    return shlex.join(argv)


def check_args(args: argparse.Namespace) -> None:
    from engine.errors import UserError

    if args.host not in LOOPBACK:
        raise UserError(f"lca-tui serve listens on 127.0.0.1 only (got --host {args.host}); "
                        f"forward the port instead: ssh -L {args.port}:127.0.0.1:{args.port} YOUR-BOX")
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}")
    if args.public_url is not None and not args.public_url.startswith(("http://", "https://")):
        raise UserError(f"--public-url must start with http:// or https://, got {args.public_url!r}")
    max_sessions = getattr(args, "max_sessions", DEFAULT_MAX_SESSIONS)
    if max_sessions < 1:
        raise UserError(f"--max-sessions must be at least 1, got {max_sessions}")


def make_server(args: argparse.Namespace):
    """The textual-serve ``Server`` for these arguments, bound to 127.0.0.1."""
    from lca_tui.serving import LcaServer

    check_args(args)
    public_url = args.public_url.rstrip("/") if args.public_url else None
    return LcaServer(app_command(args), host=BIND, port=args.port, title="lca-tui", public_url=public_url,
                     max_sessions=getattr(args, "max_sessions", DEFAULT_MAX_SESSIONS))


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserError

    server = make_server(args)
    print(f"lca-tui serve: http://{BIND}:{args.port} (this machine only); from elsewhere: "
          f"ssh -L {args.port}:127.0.0.1:{args.port} YOUR-BOX, then open http://localhost:{args.port}",
          file=sys.stderr, flush=True)
    try:
        server.serve()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {args.port} on 127.0.0.1 is in use; choose another with --port") from None
        raise
    return 0
