"""Start a real Jupyter server (or JupyterLab) for a test, and make sure it and its kernels die.

The server runs on a free loopback port with a random token, with jupyter-server-proxy (a
server extension enabled by its package) and with config, data, runtime and workspace
folders of its own, so the machine's Jupyter settings never leak in. Stopping asks the
server to shut down (kernels run their ``atexit`` hooks, which stop their labs), then
SIGTERM, then SIGKILL for every process it started.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import requests

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter() -> str:
    exe = Path(sys.executable).with_name("jupyter")
    return str(exe) if exe.exists() else "jupyter"


class JupyterServer:
    """``jupyter server`` or ``jupyter lab`` on 127.0.0.1 for the length of a ``with`` block."""

    def __init__(self, home: Path, app: str = "server", root_dir: Path = REPO,
                 env: dict[str, str] | None = None) -> None:
        self.home = Path(home)
        self.app = app
        self.root_dir = Path(root_dir)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = self.home / f"jupyter-{app}.log"
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped_family: set[int] = set()

    @property
    def url(self) -> str:
        """Base URL, ending in ``/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path`` (relative to the server root) with the token."""
        return requests.get(self.url + path.lstrip("/"), headers=self.headers, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST ``path`` (relative to the server root) with the token."""
        return requests.post(self.url + path.lstrip("/"), headers=self.headers, timeout=10, **kwargs)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = {name: self.home / name for name in ("config", "data", "runtime", "settings",
                                                    "workspaces", "ipython")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        # JupyterLab 4 asks whether to fetch news in a toast: answer no, so screenshots are clean.
        notif = dirs["settings"] / "@jupyterlab" / "apputils-extension"
        notif.mkdir(parents=True, exist_ok=True)
        (notif / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        # Render every cell (no virtual scrolling), so a test can find any cell's output.
        tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        env.update(JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
                   JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
                   JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
                   JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
                   IPYTHONDIR=str(dirs["ipython"]), JUPYTER_PLATFORM_DIRS="1",
                   PYTHONUNBUFFERED="1")
        env.pop("JUPYTERHUB_SERVICE_PREFIX", None)  # we test the plain server's /proxy/
        env.update(self.extra_env)
        return env

    def start(self) -> "JupyterServer":
        """Start the server and wait until its API answers (or fail with its log)."""
        self.home.mkdir(parents=True, exist_ok=True)
        args = [_jupyter(), self.app, "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root_dir}", "--ServerApp.open_browser=False"]
        if os.geteuid() == 0:  # CI containers run as root; Jupyter refuses that unless told
            args.append("--allow-root")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self._env(),
                                         cwd=self.root_dir, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                if self.get("api/status").status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)  # poll interval while the server boots
        self.stop()
        raise RuntimeError(f"jupyter {self.app} did not answer within {START_TIMEOUT:.0f} s:\n"
                           f"{self.log_tail()}")

    def descendants(self) -> set[int]:
        """PIDs of the server and everything it started (kernels, their labs)."""
        if self.proc is None:
            return set()
        try:
            parent = psutil.Process(self.proc.pid)
            return {parent.pid, *(c.pid for c in parent.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def stop(self) -> None:
        """Shut the server down politely, then by force; every process it started is gone after."""
        if self.proc is None:
            return
        family = self.descendants()
        if self.proc.poll() is None:
            try:
                self.post("api/shutdown")
            except requests.RequestException:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
        # Kernels live in sessions of their own: kill whatever is left by pid.
        for pid in family:
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs([p for p in map(_proc, family) if p is not None], timeout=5)
        self.stopped_family = family
        self.proc = None

    def survivors(self) -> list[int]:
        """Processes the server had started that are still alive after :meth:`stop`."""
        alive = []
        for pid in self.stopped_family:
            proc = _proc(pid)
            try:
                if proc is not None and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.Error:
                continue
        return alive

    def __enter__(self) -> "JupyterServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _proc(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None
