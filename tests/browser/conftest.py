"""Real-browser fixtures: Debian's ``chromium`` driven by Playwright's Python API (no browser
download: Playwright launches the system binary through ``executable_path``).

Where no Chromium or no Playwright is installed, the browser tests skip with the reason. ``.ci/run``
installs Chromium (apt) before the test command, so CI runs them. ``LCA_TUI_CHROMIUM`` names
another binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: Where Debian puts the real binary (``/usr/bin/chromium`` is a shell wrapper around it).
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    env = os.environ.get("LCA_TUI_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for c in CANDIDATES:
        path = c if os.path.isabs(c) else shutil.which(c)
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            yield b
        finally:
            b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            out = log.read_text(errors="replace") if log.exists() else ""
            raise AssertionError(f"lca-tui serve exited with {proc.returncode}:\n{out[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"lca-tui serve did not listen on 127.0.0.1:{port} within {timeout} s")


def stop_group(proc: subprocess.Popen) -> None:
    """Stop the server and the app processes it started (one process group, started by the test)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    try:  # app processes the server left behind (same group)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_lm_dir):
    """``lca-tui --model <tiny LM> serve --port P`` running in its own process group, with its own
    data and config folders; yields the base URL."""
    tmp = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "LCA_TUI_DATA_DIR": str(tmp / "data"), "LCA_TUI_CONFIG_DIR": str(tmp / "config"),
           "PYTHONUNBUFFERED": "1"}
    port = free_port()
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lca_tui", "--model", str(tiny_lm_dir), "serve",
                                 "--port", str(port)], env=env, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)
