"""A private, throw-away RabbitMQ node that the lab may crash (for the durability lesson).

The machine's own RabbitMQ (port 5672, epmd on 4369) is shared and is never touched. This
module starts a *second* node from the installed ``rabbitmq-server`` scripts, with its own
node name, AMQP port, distribution port, its own ``epmd`` on its own port, and every file
(data, logs, config, Erlang cookie) in a 0700 temporary folder. It listens on 127.0.0.1
only, with RabbitMQ's default ``guest`` user (which RabbitMQ admits from loopback only).

Process hygiene: ``epmd`` and the node are started through :func:`labapp.procs.spawn`, so the
kernel SIGKILLs them when the Python process that started them dies. The node is run with
``RABBITMQ_ALLOW_INPUT=1`` so the start script *execs* the Erlang VM (the signal follows the
exec) instead of forking it behind a shell; ``-noinput`` keeps the Erlang shell off. The VM's
helper processes (``erl_child_setup``) exit when the VM does.

Usage::

    with PrivateRabbit() as rabbit:      # ~3-6 s to boot
        url = rabbit.url                 # amqp://guest:guest@127.0.0.1:<port>//
        rabbit.crash()                   # SIGKILL every process of the node
        rabbit.start()                   # same data folder: durable data is replayed
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

import psutil

from labapp import procs

logger = logging.getLogger(__name__)

START_TIMEOUT = 60.0
#: Debian puts the real start script here; /usr/sbin/rabbitmq-server is a wrapper that
#: switches to the ``rabbitmq`` user and refuses anyone else.
CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/local/sbin/rabbitmq-server",
              "/opt/homebrew/sbin/rabbitmq-server", "/usr/local/opt/rabbitmq/sbin/rabbitmq-server")
INSTALL_HINT = ("install it (Debian/Ubuntu: `apt install rabbitmq-server`) or set "
                "LAB_RABBITMQ_SERVER=/path/to/rabbitmq-server")
_NODES: "weakref.WeakSet[PrivateRabbit]" = weakref.WeakSet()


class RabbitUnavailable(RuntimeError):
    """No usable ``rabbitmq-server``/``epmd`` here, or the node would not start; says what to do."""


def _is_debian_wrapper(path: Path) -> bool:
    try:
        return b"Only root or rabbitmq should run" in path.read_bytes()[:4096]
    except OSError:
        return False


def find_server() -> Path:
    """The ``rabbitmq-server`` start script to run, or :class:`RabbitUnavailable`."""
    override = os.environ.get("LAB_RABBITMQ_SERVER", "").strip()
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RabbitUnavailable(f"LAB_RABBITMQ_SERVER={override!r} is not an executable "
                                    "file: point it at rabbitmq-server or unset it")
        return path
    found = shutil.which("rabbitmq-server")
    for candidate in (*CANDIDATES, *([found] if found else [])):
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK) and not _is_debian_wrapper(path):
            return path
    raise RabbitUnavailable(f"rabbitmq-server is not installed: {INSTALL_HINT}")


def find_epmd() -> Path:
    """The Erlang port mapper daemon binary (installed with Erlang)."""
    found = shutil.which("epmd") or next(
        (str(p) for p in sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))), None)
    if not found:
        raise RabbitUnavailable(f"Erlang's epmd is not installed: {INSTALL_HINT}")
    return Path(found)


def available() -> tuple[bool, str]:
    """(True, "") when a private node can be started here, else (False, why in one line)."""
    try:
        find_server()
        find_epmd()
        import kombu  # noqa: F401 - the client the lab uses to talk to it
    except RabbitUnavailable as exc:
        return False, str(exc)
    except ImportError:
        return False, "the Python AMQP client kombu is not installed: run `make install`"
    return True, ""


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class PrivateRabbit:
    """One private RabbitMQ node in a temporary folder (see the module docstring).

    :param root: parent folder for the node's temporary folder (default: the system's).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.server = find_server()
        self.epmd_binary = find_epmd()
        self.dir = Path(tempfile.mkdtemp(prefix="queue-lab-rabbit-", dir=root))
        os.chmod(self.dir, 0o700)
        self.node = f"queue_lab_{uuid.uuid4().hex[:8]}@localhost"
        self.port, self.dist_port, self.epmd_port = _free_ports(3)
        self.epmd: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # The classic Erlang-term format: no config schema to translate at boot (faster).
        (self.dir / "rabbitmq.config").write_text(
            f'[{{rabbit, [{{tcp_listeners, [{{"127.0.0.1", {self.port}}}]}},\n'
            '            {loopback_users, [<<"guest">>]},\n'
            '            {disk_free_limit, 10000000}]}].\n')
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq/rabbitmq-env.conf
        _NODES.add(self)

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """AMQP URL of this node (loopback only, default guest user)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    def pids(self) -> list[int]:
        """Every live process of this node: epmd, the Erlang VM and its helpers."""
        out = []
        for proc in (self.epmd, self.proc):
            if proc is None or proc.poll() is not None:
                continue
            out.append(proc.pid)
            try:
                out += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
            except psutil.Error:
                pass
        return out

    def _env(self) -> dict[str, str]:
        d = self.dir
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_")) and k != "HOME"}
        env.update({
            "HOME": str(d),  # the Erlang cookie is created here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.config"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins"),
            "RABBITMQ_PID_FILE": str(d / "rabbit.pid"),
            # exec the VM (no shell in between: the parent-death signal follows the exec)
            "RABBITMQ_ALLOW_INPUT": "1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-noinput",
        })
        return env

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start epmd (once) and the node, wait until it accepts AMQP; returns seconds taken."""
        if self.running:
            return 0.0
        t0 = time.perf_counter()
        env = self._env()
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = procs.spawn([str(self.epmd_binary), "-port", str(self.epmd_port),
                                     "-address", "127.0.0.1"],
                                    log_path=self.dir / "epmd.log", env=env, cwd=self.dir)
            if not procs.wait_until(lambda: self.epmd.poll() is not None
                                    or _listening(self.epmd_port), 10):
                self.stop()
                raise RabbitUnavailable(f"epmd did not listen on port {self.epmd_port}")
        self.proc = procs.spawn([str(self.server)], log_path=self.log_path, env=env,
                                cwd=self.dir)
        self.starts += 1
        if not procs.wait_until(lambda: not self.running or self._answers(), timeout,
                                max_interval=0.2):
            self.stop()
            raise RabbitUnavailable(f"the private RabbitMQ node did not start within "
                                    f"{timeout:.0f} s; last log lines:\n{procs.tail(self.log_path)}")
        if not self.running:
            log = procs.tail(self.log_path)
            self.stop()
            raise RabbitUnavailable(f"the private RabbitMQ node exited at start; last log "
                                    f"lines:\n{log}")
        logger.info("private RabbitMQ %s on port %s (pid %s)", self.node, self.port,
                    self.proc.pid)
        return time.perf_counter() - t0

    def _answers(self) -> bool:
        if not _listening(self.port):
            return False
        import kombu
        try:
            with kombu.Connection(self.url, connect_timeout=1) as conn:
                conn.connect()
            return True
        except Exception:  # noqa: BLE001 - still booting
            return False

    def sync_definitions(self, timeout: float = 30.0) -> bool:
        """Ask the node to write its metadata log (queue definitions) to disk now.

        Runs ``rabbitmqctl eval 'mnesia:sync_log().'`` against this node. On a node created
        seconds earlier, RabbitMQ 3.10 did not always have a just-declared durable queue on
        disk yet, so a crash lost the queue itself (2 times in about 50 crashes here); the
        durability lesson is about messages, so it syncs first. False when it could not.
        """
        ctl = self.server.with_name("rabbitmqctl")
        if not self.running or not ctl.exists():
            return False
        try:
            done = subprocess.run([str(ctl), "-n", self.node, "eval", "mnesia:sync_log()."],
                                  env=self._env(), cwd=self.dir, capture_output=True,
                                  text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("rabbitmqctl eval failed: %s", exc)
            return False
        if done.returncode != 0 or done.stdout.strip() != "ok":
            logger.warning("rabbitmqctl eval: %s %s", done.stdout.strip(), done.stderr.strip())
            return False
        return True

    def crash(self) -> None:
        """SIGKILL the node's Erlang VM and its helper processes, as a power cut would.

        epmd (the port mapper, not part of the broker) keeps running for the restart.
        """
        if self.proc is None:
            return
        victims = []
        if self.proc.poll() is None:
            try:
                victims = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.Error:
                victims = []
            self.proc.send_signal(signal.SIGKILL)
        for child in victims:
            try:
                child.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        self.proc.wait(10)
        psutil.wait_procs(victims, timeout=5)

    def restart(self, timeout: float = START_TIMEOUT) -> float:
        """:meth:`crash`, then :meth:`start` on the same data; returns seconds it was down."""
        t0 = time.perf_counter()
        self.crash()
        self.start(timeout)
        return time.perf_counter() - t0

    def stop(self) -> None:
        """Kill the node and its epmd, delete its folder (safe to call twice)."""
        try:
            self.crash()
            procs.stop_group(self.epmd, signal.SIGTERM, grace=1.0)
        finally:
            self.proc = self.epmd = None
            shutil.rmtree(self.dir, ignore_errors=True)
            _NODES.discard(self)

    def __enter__(self) -> "PrivateRabbit":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running, pid {self.proc.pid}" if self.running else "stopped"
        return f"<PrivateRabbit {self.node} on 127.0.0.1:{self.port} ({state})>"


@atexit.register
def _stop_all() -> None:
    for node in list(_NODES):
        try:
            node.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            logger.exception("could not stop %r", node)


__all__ = ["PrivateRabbit", "RabbitUnavailable", "available", "find_epmd", "find_server"]
