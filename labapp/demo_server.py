"""Small demo apps served for real: waitress in a child process, a free port, plain HTTP calls.

Notebook 04 serves Flask apps next to the lab's own (an app that starts a thread in its view,
an app that uses Flask's after-response hooks) and restarts them as a deploy would.

>>> server = DemoServer("thread_app:app", cwd=".", threads=2).start()
>>> request(server.url + "signup/a@example.com", "POST").status
202
>>> server.stop()
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from labapp import procs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Reply:
    """One HTTP response: status, body (parsed JSON when it is JSON) and seconds it took."""

    status: int
    body: Any
    seconds: float


def request(url: str, method: str = "GET", data: Any = None, timeout: float = 30.0) -> Reply:
    """Send one HTTP request (``data`` as a JSON body); HTTP errors are replies, not exceptions."""
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body else {})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except urllib.error.URLError as err:
        raise ConnectionError(f"{method} {url}: {err.reason} (is the server running?)") from None
    seconds = time.perf_counter() - t0
    text = raw.decode("utf-8", "replace")
    try:
        return Reply(status, json.loads(text), seconds)
    except ValueError:
        return Reply(status, text, seconds)


class DemoServer:
    """A WSGI app (``"module:app"``) served by waitress with ``threads`` threads, in a child process.

    The module is imported from ``cwd``. The process dies with the kernel; :meth:`restart` stops
    it with SIGTERM and starts a new one on the same port, as a deploy does.
    """

    def __init__(self, app: str, *, cwd: os.PathLike[str] | str = ".", threads: int = 4,
                 port: int = 0, log: os.PathLike[str] | str | None = None) -> None:
        if ":" not in app:
            raise ValueError(f"app={app!r}: name it as 'module:variable', e.g. 'thread_app:app'")
        if not 1 <= int(threads) <= 64:
            raise ValueError(f"threads={threads!r} must be from 1 to 64")
        self.app, self.cwd, self.threads = app, Path(cwd).resolve(), int(threads)
        self.port = port or free_port()
        self.log = Path(log) if log else self.cwd / f"{app.split(':')[0]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL, ending in ``/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        state = f"pid {self.proc.pid}" if self.running else "stopped"
        return f"DemoServer({self.app!r}, {self.url}, {self.threads} threads, {state})"

    def start(self, timeout: float = 15.0) -> "DemoServer":
        """Start waitress and wait until it accepts connections; returns ``self``."""
        if self.running:
            return self
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(self.cwd), os.environ.get("PYTHONPATH")])))
        self.proc = procs.spawn([sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{self.port}",
                                 f"--threads={self.threads}", self.app],
                                log_path=self.log, env=env, cwd=self.cwd)
        if not procs.wait_until(self._accepts, timeout, interval=0.01):
            self.stop()
            raise RuntimeError(f"{self.app} did not start within {timeout:g} s; last lines of "
                               f"{self.log}:\n{procs.tail(self.log)}")
        return self

    def _accepts(self) -> bool:
        if not self.running:
            raise RuntimeError(f"{self.app} exited (code {self.proc.returncode}); last lines of "
                               f"{self.log}:\n{procs.tail(self.log)}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, as a deploy does; SIGKILL after 5 s)."""
        procs.stop_group(self.proc, signal.SIGTERM, grace=5.0)

    def restart(self) -> "DemoServer":
        """Stop and start again on the same port (what every deploy does)."""
        self.stop()
        return self.start()

    def __enter__(self) -> "DemoServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
