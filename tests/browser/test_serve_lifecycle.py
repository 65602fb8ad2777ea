"""Issue 23: a served app never outlives its browser, and ``serve`` ends with its apps.

Each test starts its own ``lca-tui serve`` (its own process group) and watches the app processes
it starts (children of the server with ``-m lca_tui`` and no ``serve``) with psutil. Deadlines
here are liveness deadlines (poll until gone), not performance assertions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import psutil
import pytest

from tests.browser.conftest import free_port, stop_group, wait_for_port

#: How long the tests wait for processes to go (the product's own limits are a few seconds).
GONE_S = 10.0


def _chromium_args(chromium_path, url, shot):
    return [chromium_path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tempfile.mkdtemp(prefix='lca-chromium-')}", f"--screenshot={shot}",
            "--window-size=1200,800", "--virtual-time-budget=8000", url]


class Served:
    def __init__(self, proc, port, log):
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def apps(self) -> list[psutil.Process]:
        """The app processes this server started (alive, not zombies)."""
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            kids = []
        seen = {k.pid for k in kids}
        # apps in their own session/group are still children; also catch orphans re-parented to init
        for p in psutil.process_iter(["pid", "cmdline", "environ"]):
            try:
                cmd = p.info["cmdline"] or []
                if p.pid in seen or "lca_tui" not in cmd or "serve" in cmd:
                    continue
                if (p.info["environ"] or {}).get("LCA_TUI_DATA_DIR") == self.data_dir:
                    kids.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        out = []
        for k in kids:
            try:
                if k.status() != psutil.STATUS_ZOMBIE and "lca_tui" in " ".join(k.cmdline()):
                    out.append(k)
            except psutil.NoSuchProcess:
                pass
        return out

    def wait_apps(self, n_min=1, timeout=90.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len([a for a in self.apps() if "python" in a.name()]) >= n_min:
                return
            time.sleep(0.2)
        raise AssertionError(f"fewer than {n_min} app processes started:\n{self.log.read_text()[-2000:]}")

    def wait_no_apps(self, timeout=GONE_S):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            left = self.apps()
            if not left:
                return
            time.sleep(0.2)
        raise AssertionError("app processes left: " + "; ".join(
            f"{p.pid} {p.cpu_percent(0.2):.0f}% {' '.join(p.cmdline())}" for p in left))


@pytest.fixture
def serve(tmp_path, tiny_lm_dir):
    started = []

    def start(*extra):
        env = {**os.environ, "LCA_TUI_DATA_DIR": str(tmp_path / "data"),
               "LCA_TUI_CONFIG_DIR": str(tmp_path / "config"), "PYTHONUNBUFFERED": "1"}
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "lca_tui", "--model", str(tiny_lm_dir), "serve",
                                     "--port", str(port), *extra], env=env, start_new_session=True,
                                    stdout=out, stderr=subprocess.STDOUT)
        s = Served(proc, port, log)
        s.data_dir = str(tmp_path / "data")
        started.append(s)
        wait_for_port(port, proc, log)
        return s

    yield start
    for s in started:
        apps = s.apps()
        stop_group(s.proc)
        for a in apps:
            try:
                a.kill()
            except psutil.NoSuchProcess:
                pass


def _screenshot(chromium_path, served, tmp_path, i=0):
    subprocess.run(_chromium_args(chromium_path, served.url + "/", tmp_path / f"shot{i}.png"),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90)


def test_a_headless_screenshot_leaves_no_app_behind(serve, chromium_path, tmp_path):
    """The reported case: Chromium takes a screenshot and exits without closing the websocket."""
    served = serve()
    _screenshot(chromium_path, served, tmp_path)
    served.wait_no_apps()
    assert served.proc.poll() is None


@pytest.mark.slow
def test_ten_abrupt_exits_in_a_row_leave_nothing_and_the_server_answers(serve, chromium_path, tmp_path):
    served = serve()
    for i in range(10):
        _screenshot(chromium_path, served, tmp_path, i)
    served.wait_no_apps()
    with urllib.request.urlopen(served.url + "/", timeout=30) as r:
        assert r.status == 200


def _open_tab(browser, served):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(served.url)
               else route.abort())
    page.goto(served.url + "/")
    page.wait_for_function("() => document.body.classList.contains('-first-byte')", timeout=90_000)
    served.wait_apps()
    return context, page


def test_a_tab_closed_cleanly_ends_its_app(serve, browser):
    served = serve()
    context, page = _open_tab(browser, served)
    page.close()
    context.close()
    served.wait_no_apps()


def test_a_browser_killed_mid_session_ends_its_app(serve, chromium_path, tmp_path):
    """A live Chromium tab (no screenshot: it stays), then SIGKILL to the whole browser: nothing
    closes the websocket, the kernel drops the socket."""
    served = serve()
    args = [a for a in _chromium_args(chromium_path, served.url + "/", tmp_path / "x.png")
            if not a.startswith(("--screenshot", "--virtual-time-budget"))]
    browser = subprocess.Popen(args[:-1] + ["--remote-debugging-port=0", args[-1]], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        served.wait_apps()
        time.sleep(1.0)  # mid-session: the app is up and talking to the page
    finally:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.wait()
    served.wait_no_apps()


def test_sigterm_to_the_server_with_a_tab_open_ends_it_and_its_apps(serve, browser):
    served = serve()
    context, _ = _open_tab(browser, served)
    apps = served.apps()
    assert apps
    served.proc.send_signal(signal.SIGTERM)
    try:
        served.proc.wait(timeout=GONE_S)
    except subprocess.TimeoutExpired:
        pytest.fail("lca-tui serve did not stop on SIGTERM with a tab open")
    gone, alive = psutil.wait_procs(apps, timeout=GONE_S)
    assert not [a for a in alive if a.status() != psutil.STATUS_ZOMBIE], alive
    context.close()


def test_max_sessions_reached_gives_a_clear_page(serve, browser):
    served = serve("--max-sessions", "1")
    context, _ = _open_tab(browser, served)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(served.url + "/", timeout=30)
    assert err.value.code == 503
    body = err.value.read().decode()
    assert "all 1 sessions are in use" in body and "--max-sessions 1" in body
    other = browser.new_context()
    page = other.new_page()
    response = page.goto(served.url + "/")
    assert response.status == 503
    assert "Close another lca-tui tab" in page.content()
    other.close()
    assert len([a for a in served.apps() if "python" in a.name()]) == 1
    context.close()
    served.wait_no_apps()
