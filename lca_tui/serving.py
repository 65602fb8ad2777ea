"""textual-serve's ``Server``, made to end its apps (issue 23).

textual-serve 1.1 runs each tab's app with ``create_subprocess_shell`` and, when the websocket
ends, sends the app a ``quit`` packet and waits for its stdout to end, with no time limit and no
kill; SIGTERM to the server waits (aiohttp's 60 s shutdown) for every open websocket. Here:

* every app runs in its own process group (``start_new_session``), so the shell and the app go
  together with one ``killpg``;
* when a tab goes (clean close, dropped connection, heartbeat lost) the app gets ``quit``, then its
  stdin is closed (the app's own hang-up watch, ``lca_tui.lifecycle``), then SIGTERM, then SIGKILL,
  each after a short wait: ``STOP_GRACE_S`` seconds in all at most;
* SIGTERM/SIGINT to the server sends SIGTERM to every app group, closes the websockets, and stops
  within ``SHUTDOWN_S``; apps still alive after their grace get SIGKILL;
* at most ``max_sessions`` apps run at once; one more tab gets a plain page (HTTP 503) and, if its
  websocket comes anyway, one line on its terminal, and no process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import GracefulExit, Server, to_int

log = logging.getLogger("textual-serve")

#: Seconds a departing tab's app gets to exit on its own before SIGTERM, and then before SIGKILL.
QUIT_WAIT_S = 1.5
TERM_WAIT_S = 1.5
STOP_GRACE_S = QUIT_WAIT_S + TERM_WAIT_S
#: aiohttp's shutdown limit for handlers still running after the server was asked to stop.
SHUTDOWN_S = 2.0
#: Websocket ping interval: a dropped connection (a dead SSH tunnel) is noticed within 1.5 x this.
HEARTBEAT_S = 3.0

FULL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>lca-tui: all sessions in use</title></head>
<body style="font-family: monospace; background: #0c181f; color: #e0e0e0; padding: 2em">
<h1>lca-tui: all {n} sessions are in use</h1>
<p>This server runs at most {n} app sessions at once (<code>lca-tui serve --max-sessions {n}</code>);
each browser tab is one session with its own model.</p>
<p>Close another lca-tui tab, then reload this page.</p>
</body></html>
"""


def full_message(n: int) -> str:
    return (f"lca-tui: all {n} sessions are in use (lca-tui serve --max-sessions {n}); "
            "close another lca-tui tab, then reload this page.")


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class GroupAppService(AppService):
    """An app process in its own process group, stopped for sure."""

    async def _open_app_process(self, width: int = 80, height: int = 24):
        self._process = process = await asyncio.create_subprocess_shell(
            self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._build_environment(width=width, height=height),
            start_new_session=True)
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def terminate(self) -> None:
        """SIGTERM to the app's group (from the signal handler: no waiting)."""
        if self._process is not None and self._process.returncode is None:
            _kill_group(self._process.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self._process is not None:
            _kill_group(self._process.pid, signal.SIGKILL)

    async def _exited(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self._process.wait()), seconds)
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            try:
                await asyncio.wait_for(self.send_meta({"type": "quit"}), 0.5)
            except (TimeoutError, Exception):  # noqa: BLE001 - its stdin may be gone
                pass
            try:
                self.stdin.close()  # the app's hang-up watch exits on this
            except Exception:  # noqa: BLE001
                pass
            if not await self._exited(QUIT_WAIT_S):
                self.terminate()
                if not await self._exited(TERM_WAIT_S):
                    self.kill()
                    await self._exited(1.0)
        self.kill()  # the shell's group: nothing of it may outlive the tab
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, 1.0)
            except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                task.cancel()
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)


class LcaServer(Server):
    def __init__(self, *args, max_sessions: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_sessions = max_sessions
        self.services: set[GroupAppService] = set()  # the tabs with an app now
        self._started: list[GroupAppService] = []  # every app started, to be sure none outlives us
        self._sockets: set[web.WebSocketResponse] = set()
        self._stopping = False

    @property
    def full(self) -> bool:
        return len(self.services) >= self.max_sessions

    # ------------------------------------------------------------------ stopping
    def request_exit(self) -> None:
        """SIGTERM/SIGINT: every app gets SIGTERM at once, then the server stops."""
        self._stopping = True
        for service in list(self.services):
            service.terminate()
        raise GracefulExit()

    async def on_shutdown(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            try:
                await asyncio.wait_for(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping"), 0.5)
            except (TimeoutError, Exception):  # noqa: BLE001
                pass
        end = time.monotonic() + TERM_WAIT_S
        while any(s._process is not None and s._process.returncode is None for s in self.services) \
                and time.monotonic() < end:
            await asyncio.sleep(0.05)
        for service in list(self.services):
            service.kill()

    def serve(self, debug: bool = False) -> None:
        """``Server.serve`` with a short shutdown (aiohttp waits 60 s for open websockets)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_exit)
            except NotImplementedError:
                pass
        try:
            web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop,
                        print=lambda *args: None, shutdown_timeout=SHUTDOWN_S)
        finally:
            for service in self._started:
                if service._process is not None and service._process.returncode is None:
                    service.kill()

    # ------------------------------------------------------------------ sessions
    async def handle_index(self, request: web.Request):
        if self.full:
            return web.Response(status=503, text=FULL_PAGE.format(n=self.max_sessions), content_type="text/html")
        return await super().handle_index(request)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        await websocket.prepare(request)
        if self.full or self._stopping:
            await websocket.send_bytes(("\r\n " + full_message(self.max_sessions) + "\r\n").encode())
            await websocket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"all sessions in use")
            return websocket
        service = GroupAppService(self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                  close=websocket.close, download_manager=self.download_manager,
                                  debug=self.debug)
        self.services.add(service)
        self._started.append(service)
        self._sockets.add(websocket)
        try:
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            pass
        except Exception as error:
            log.exception(error)
        finally:
            self._sockets.discard(websocket)
            try:
                await asyncio.shield(service.stop())
            finally:
                self.services.discard(service)
                if not websocket.closed:
                    try:
                        await asyncio.wait_for(websocket.close(), 0.5)
                    except (TimeoutError, Exception):  # noqa: BLE001
                        pass
        return websocket
