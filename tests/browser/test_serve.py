"""``lca-tui serve``: the app in a real browser (Debian's Chromium via Playwright), bound to
127.0.0.1 only; bad options are one clear error. The browser tests skip where no Chromium is."""

from __future__ import annotations

import argparse
import shlex
import socket
import sys
import time
import urllib.request

import pytest

from lca_tui.cli import build_parser, main
from lca_tui.commands.serve import app_command, make_server

#: Every panel's name: the first frame must show all three (issue 13: panels always named).
PANEL_NAMES = ("Hijack", "Trainer", "Inspector")

#: Catches the page's xterm.js Terminal when textual.js assigns ``this.terminal = new Terminal()``,
#: so the test can read the screen the browser shows (it draws on a canvas, not in the DOM).
XTERM_HOOK = """
Object.defineProperty(Object.prototype, 'terminal', {configurable: true, set(v) {
  Object.defineProperty(this, 'terminal', {value: v, writable: true, configurable: true, enumerable: true});
  if (v && v.buffer && v.loadAddon && !window.__xterm) window.__xterm = v;
}});
"""
SCREEN_TEXT = """() => {
  const t = window.__xterm; if (!t) return '';
  const b = t.buffer.active, out = [];
  for (let i = 0; i < t.rows; i++) { const l = b.getLine(b.viewportY + i); out.push(l ? l.translateToString(true) : ''); }
  return out.join('\\n');
}"""


def _args(argv):
    return build_parser().parse_args(argv)


# ---------------------------------------------------------------- command line (no browser)
@pytest.mark.parametrize("argv, needle", [
    (["serve", "--host", "0.0.0.0"], "127.0.0.1 only"),
    (["serve", "--host", "192.168.1.5", "--port", "9000"], "ssh -L 9000:127.0.0.1:9000"),
    (["serve", "--port", "0"], "--port must be between 1 and 65535"),
    (["serve", "--port", "70000"], "--port must be between 1 and 65535"),
    (["serve", "--public-url", "example.org:80"], "--public-url must start with http"),
    (["serve", "--max-sessions", "0"], "--max-sessions must be at least 1"),
])
def test_bad_options_are_one_clear_error(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_server_binds_loopback_and_runs_the_app_with_the_global_options(tmp_path):
    args = _args(["--session", str(tmp_path / "s"), "--model", "my model", "serve", "--port", "8123",
                  "--host", "localhost"])
    server = make_server(args)
    assert (server.host, server.port) == ("127.0.0.1", 8123)
    assert server.public_url == "http://127.0.0.1:8123"
    argv = shlex.split(server.command)
    assert argv[:3] == [sys.executable, "-m", "lca_tui"]
    assert argv[argv.index("--session") + 1] == str(tmp_path / "s")
    assert argv[argv.index("--model") + 1] == "my model"  # quoted for the shell, one argument
    assert "serve" not in argv
    assert shlex.split(app_command(argparse.Namespace())) == [sys.executable, "-m", "lca_tui"]
    forwarded = make_server(_args(["serve", "--port", "8123", "--public-url", "http://localhost:9000/"]))
    assert forwarded.public_url == "http://localhost:9000"


def test_a_port_in_use_is_one_clear_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_served_page_listens_on_loopback_only(served):
    """The page names its websocket on 127.0.0.1, and another loopback address (what any other
    interface would be) is refused: the socket is bound to 127.0.0.1, not to every interface."""
    with urllib.request.urlopen(served + "/", timeout=30) as r:
        page = r.read().decode()
    port = int(served.rsplit(":", 1)[1])
    assert f'data-session-websocket-url="ws://127.0.0.1:{port}/ws"' in page
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), 2).close()


# ---------------------------------------------------------------- in a real browser
@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.add_init_script(XTERM_HOOK)
    # the page asks for a web font; nothing but our server is reachable (or needed)
    pg.route("**/*", lambda route: route.continue_() if route.request.url.startswith(served)
             else route.abort())
    try:
        yield pg
    finally:
        context.close()


def _wait_for_text(page, *needles, timeout_s=90.0):
    """The browser's screen once it shows every needle (the last screen seen if it never does)."""
    end = time.monotonic() + timeout_s
    while True:
        screen = page.evaluate(SCREEN_TEXT)
        if all(n in screen for n in needles):
            return screen
        assert time.monotonic() < end, f"never saw {needles} in the browser; its screen:\n{screen}"
        page.wait_for_timeout(100)


@pytest.mark.slow
def test_browser_shows_the_apps_first_frame_and_keys_reach_the_app(page, served, tmp_path, tiny_lm_dir):
    page.goto(served + "/")
    page.wait_for_function("() => document.body.classList.contains('-first-byte') && window.__xterm",
                           timeout=90_000)
    screen = _wait_for_text(page, *PANEL_NAMES, "The Eiffel Tower is in")
    cols, rows = page.evaluate("() => [window.__xterm.cols, window.__xterm.rows]")
    assert cols >= 80 and rows >= 24, (cols, rows)
    page.screenshot(path=str(tmp_path / "served.png"))
    # keys typed in the browser reach the app, and its redraw comes back: the prompt gains a word
    page.evaluate("() => window.__xterm.focus()")  # the page tells the app it has focus again
    _wait_for_text(page, "n+1")  # the footer of the focused prompt editor
    page.keyboard.type("Rome ")
    screen = _wait_for_text(page, "Rome")
    prompt_lines = [line for line in screen.splitlines() if "Eiffel Tower is in" in line and "Rome" in line]
    assert prompt_lines, screen
    # the served app got the global options: `lca-tui --model <tiny LM> serve` runs it on that model
    _wait_for_text(page, tiny_lm_dir.name)
