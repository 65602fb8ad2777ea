"""What the app benchmarks share: a private data and config directory, percentiles, waits on a
Pilot-driven app, key latency and UI-loop lag probes, the app in a pseudo-terminal (``PtyApp``)
and the machine line every result file carries.

One benchmark a file: ``bench_app_latency.py`` (keystroke -> redrawn bars), ``bench_app_ui.py``
(first frame, UI key latency under load), ``bench_app_training.py`` (training throughput in the
app); ``bench_app.py`` runs them together as before.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LCA_TUI_DATA_DIR", tempfile.mkdtemp(prefix="lca-bench-data-"))
os.environ.setdefault("LCA_TUI_CONFIG_DIR", tempfile.mkdtemp(prefix="lca-bench-config-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
RESULTS = Path(__file__).parent / "results"


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def wait_for(pilot, pred, timeout=120.0):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError
        await pilot.pause(0.005)


async def key_latencies(pilot, keys, n):
    """Time from a key event entering the app's message queue to its handler having run.

    ``pilot.press`` itself waits for the screen to settle (~200-400 ms even on an idle app), so it
    is no latency measure; instead the key is posted with a timestamp and the app's key hook
    records when the binding's action has run. The UI loop's own lag is what load adds."""
    from textual import events

    app = pilot.app
    lat = []
    for i in range(n):
        done = asyncio.Event()
        t0 = time.perf_counter()
        key = keys[i % len(keys)]

        def after(_t0=t0, _done=done):
            lat.append(time.perf_counter() - _t0)
            _done.set()

        app.post_message(events.Key(key, None))
        app.call_later(after)  # runs after the key message has been processed
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.05)
    return lat


async def loop_lag(seconds: float, tick: float = 0.01) -> list[float]:
    """How late a 10 ms timer fires on the UI loop: the delay any key would see before handling."""
    lags, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        await asyncio.sleep(tick)
        lags.append(time.perf_counter() - t0 - tick)
    return lags


async def quiet_wait(pred, timeout=900.0, poll=0.1):
    """Wait without touching the app: ``pilot.pause`` forces a screen update on every call, so
    polling with it every few ms (as ``wait_for`` does) keeps the UI thread rendering and starves
    the training thread of the GIL (measured here: 20k instead of 117k samples/s). A user who
    watches the app does not do that."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError
        await asyncio.sleep(poll)


class PtyApp:
    """``script --child LOG`` (an instrumented app) in a pseudo-terminal; ``type`` writes keys,
    ``events`` reads the JSON lines the app logs."""

    def __init__(self, script: str, cols=120, rows=40, threads: int | None = None):
        import pty
        import threading

        self.log_path = tempfile.mktemp(prefix="lca-bench-latency-", suffix=".jsonl")
        open(self.log_path, "w").close()
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
        if threads:
            env["LCA_TUI_THREADS"] = str(threads)
        pid, fd = pty.fork()
        if pid == 0:  # the app process
            import fcntl
            import struct
            import termios

            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execve(sys.executable, [sys.executable, os.path.abspath(script), "--child", self.log_path], env)
        self.pid, self.fd, self._pos, self._buf = pid, fd, 0, []
        self.output_bytes = 0

        self.reads: list[float] = []  # when each chunk of the app's output was read

        def drain():  # a terminal reads everything the app writes
            while True:
                try:
                    data = os.read(fd, 1 << 16)
                except OSError:
                    return
                if not data:
                    return
                self.reads.append(time.monotonic())
                self.output_bytes += len(data)

        threading.Thread(target=drain, daemon=True).start()

    def read_after(self, t: float, timeout: float = 10.0) -> float:
        """When the terminal first read the app's output at or after ``t`` (a frame handed to the
        writer thread at ``t`` is on screen then)."""
        import bisect

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            i = bisect.bisect_left(self.reads, t)
            if i < len(self.reads):
                return self.reads[i]
            time.sleep(0.0005)
        raise TimeoutError("the app wrote nothing after its frame")

    def events(self):
        import json

        with open(self.log_path, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        done = data.rfind(b"\n") + 1  # a line still being written is read next time, whole
        for line in data[:done].splitlines():
            self._buf.append(json.loads(line))
        self._pos += done
        return self._buf

    def wait(self, pred, timeout=600.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for ev in self.events():
                if ev["ev"] == "error":
                    raise RuntimeError(f"the app failed: {ev['error']}")
                if pred(ev):
                    return ev
            time.sleep(0.002)
        raise TimeoutError(f"the app did not answer in time (see its log: {self.log_path})")

    def type(self, text: str) -> float:
        t0 = time.monotonic()
        os.write(self.fd, text.encode())
        return t0

    def close(self):
        import signal

        try:
            os.write(self.fd, b"\x11")  # ctrl+q: Textual's quit
            for _ in range(50):
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    break
                time.sleep(0.1)
            else:
                os.kill(self.pid, signal.SIGTERM)
        except (ProcessLookupError, ChildProcessError, OSError):
            pass
        for _ in range(50):
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break
            time.sleep(0.1)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)
        os.unlink(self.log_path)


def bench_main(doc: str, markdown, add_args, run, child=None, out: Path | None = None) -> None:
    """One benchmark's command line: ``--markdown RESULT.json`` prints its BENCHMARKS.md rows,
    ``--child LOG`` (where the benchmark runs an app in a pseudo-terminal) is that app, and anything
    else is parsed by ``add_args`` (plus ``--model``) and given to ``run``. With ``out`` (the default
    result file) there is an ``--out`` option too, and the result ``run`` returns is written there
    and printed as markdown."""
    import argparse
    import json

    if len(sys.argv) == 3 and sys.argv[1] == "--child" and child is not None:
        child(sys.argv[2])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        print(markdown(json.loads(Path(sys.argv[2]).read_text())))
        return
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model the app loads (default: the embedded one)")
    if out is not None:
        ap.add_argument("--out", default=str(out), help=f"result file (default {out})")
    add_args(ap)
    args = ap.parse_args()
    res = run(args)
    if out is not None:
        write_result(args.out, res)
        print(markdown(res))


def machine(command: str) -> dict:
    """The machine line of a result file, and the command that made it."""
    return {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                        "date": time.strftime("%Y-%m-%d %H:%M")}, "command": command}


def write_result(path, res: dict) -> None:
    from engine.atomic import atomic_write_json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, res)
    print(f"written {path}")
