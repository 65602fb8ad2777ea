"""Issue 23: the app ends on SIGTERM/SIGINT in a terminal (a pty) and when its web driver's stdin
hangs up, as textual-serve does when a tab goes. Deadlines are liveness limits, not timings."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

GONE_S = 15.0


def _env(tmp_path, **extra):
    return {**os.environ, "LCA_TUI_DATA_DIR": str(tmp_path / "data"), "LCA_TUI_CONFIG_DIR": str(tmp_path / "cfg"),
            "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40", **extra}


def _read_until(fd, needle: bytes, timeout: float) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end and needle not in out:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_terminal_app_cleanly(tmp_path, tiny_lm_dir, sig):
    """Under a pty: the app leaves the alternate screen (the terminal is restored) and exits 0,
    instead of dying mid-frame (SIGTERM's default) or ignoring the signal."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lca_tui", "--model", str(tiny_lm_dir)], stdin=slave,
                            stdout=slave, stderr=slave, env=_env(tmp_path), start_new_session=True)
    os.close(slave)
    try:
        seen = _read_until(master, b"Inspector", 90)
        assert b"Inspector" in seen, seen[-2000:]
        time.sleep(0.5)
        proc.send_signal(sig)
        tail = b""
        end = time.monotonic() + GONE_S
        while proc.poll() is None and time.monotonic() < end:
            tail += _read_until(master, b"\x1b[?1049l", 0.5)
        assert proc.poll() is not None, "the app did not exit on the signal"
        tail += _read_until(master, b"\x1b[?1049l", 1.0)
        assert proc.returncode == 0, proc.returncode
        assert b"\x1b[?1049l" in tail  # left the alternate screen: the terminal is usable again
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)


def test_the_web_app_exits_when_its_stdin_hangs_up(tmp_path, tiny_lm_dir):
    """textual-serve's side of a dropped tab: stdin closed. The web driver alone never exits on it."""
    env = _env(tmp_path, TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver", COLUMNS="120", ROWS="40")
    proc = subprocess.Popen([sys.executable, "-m", "lca_tui", "--model", str(tiny_lm_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        assert proc.stdout.readline() == b"__GANGLION__\n"
        resize = json.dumps({"type": "resize", "width": 120, "height": 40}).encode()
        proc.stdin.write(b"M" + len(resize).to_bytes(4, "big") + resize)
        proc.stdin.flush()
        end = time.monotonic() + 90
        got = b""
        while b"Inspector" not in got and time.monotonic() < end:
            got += os.read(proc.stdout.fileno(), 65536)
        assert b"Inspector" in got
        proc.stdin.close()  # what the server does; nothing else is sent
        deadline = time.monotonic() + GONE_S
        while proc.poll() is None and time.monotonic() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 0.2)
            if r:
                os.read(proc.stdout.fileno(), 65536)  # keep its stdout drained
        assert proc.poll() is not None, "the app kept running after its stdin closed"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_screen_lays_out_at_the_apps_size_not_a_stale_one():
    """The resize ping-pong: a screen that gets a Resize of a size other than the app's keeps the
    app's size (Textual 8.2 relaid it out at the stale size, which posted the other size back)."""
    import asyncio

    from textual import events
    from textual.app import App
    from textual.geometry import Size
    from textual.widgets import Static

    from lca_tui.lifecycle import install_resize_fix

    install_resize_fix()

    class Tiny(App):
        def compose(self):
            yield Static("x")

    async def run():
        app = Tiny()
        async with app.run_test(size=(80, 30)) as pilot:
            app.screen.post_message(events.Resize(Size(80, 20), Size(80, 20)))
            await pilot.pause()
            await pilot.pause()
            return app.screen._compositor.size, app.screen.region.size

    assert asyncio.run(run()) == (Size(80, 30), Size(80, 30))
