"""Child processes that never outlive the Python process that started them.

Two mechanisms, because each covers a hole in the other:

* On Linux every child gets ``PR_SET_PDEATHSIG=SIGKILL`` before ``exec``. The kernel sends it
  when the *thread* that forked the child exits, so all children are forked from one
  long-lived daemon thread (:func:`spawn`), never from a widget callback or request thread.
* Python children that fork again (a ``-k process`` Huey consumer) call :func:`die_with_parent`
  in each forked process, since PDEATHSIG is not inherited across ``fork``. Elsewhere (macOS)
  :func:`die_with_parent` polls ``getppid()`` from a thread and kills its process group.

Children run in their own session (``start_new_session=True``): the notebook's Interrupt
button (SIGINT to the kernel's group) never reaches them, and :func:`stop_group` can signal
a consumer together with the worker processes it forked.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any

import psutil

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
WATCHDOG_INTERVAL = 0.2

_libc: Any = None
if sys.platform.startswith("linux"):
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread dies (Linux only)."""
    if _libc is None:
        return False
    return _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make the calling process exit when ``parent_pid`` (default: current parent) goes away."""
    parent_pid = parent_pid or os.getppid()
    if set_pdeathsig():
        # The parent may have died before prctl took effect: then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_INTERVAL)
        try:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="lab-parent-watchdog", daemon=True).start()


def _preexec(parent_pid: int) -> None:  # runs in the child between fork and exec
    if set_pdeathsig() and os.getppid() != parent_pid:
        os._exit(1)


class _Spawner:
    """One daemon thread that performs every fork, so PDEATHSIG follows the process."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Any, Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = 0

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._jobs = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="lab-spawner",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    fut.set_exception(exc)

    def submit(self, fn: Any) -> Future[Any]:
        self._ensure_thread()
        fut: Future[Any] = Future()
        self._jobs.put((fn, fut))
        return fut


_spawner = _Spawner()


def spawn(args: list[str], *, log_path: os.PathLike[str] | str, env: dict[str, str] | None = None,
          cwd: os.PathLike[str] | str | None = None) -> subprocess.Popen[bytes]:
    """Start ``args`` in its own session, tied to this process, with output appended to ``log_path``."""
    parent = os.getpid()
    with open(log_path, "ab", buffering=0) as log:
        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True, close_fds=True,
                preexec_fn=lambda: _preexec(parent))
        fut = _spawner.submit(start)
        try:
            return fut.result()
        except KeyboardInterrupt:
            # Interrupt pressed while the spawner forked: the child exists but nobody would
            # hold its handle, so it could never be stopped. Finish the fork, then kill it.
            stop_group(fut.result(), signal.SIGKILL, grace=0)
            raise


def group_pids(pid: int) -> list[int]:
    """Every live process in ``pid``'s process group (the consumer and what it forked)."""
    out = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pid and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return out


def signal_group(pid: int, sig: int) -> bool:
    """Send ``sig`` to the process group led by ``pid``; False when it is already gone."""
    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_group(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM,
               grace: float = 1.0) -> None:
    """Signal a child's process group, wait up to ``grace`` seconds, then SIGKILL the group."""
    if proc is None:
        return
    if proc.poll() is None:
        signal_group(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            logger.info("pid %s ignored %s for %.1fs, killing", proc.pid,
                        signal.Signals(sig).name, grace)
    # Also kill leftovers in the group (forked workers), even when the leader exited.
    signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not reap it
        logger.warning("pid %s did not exit after SIGKILL", proc.pid)


def wait_until(predicate: Any, timeout: float, interval: float = 0.005,
               max_interval: float = 0.1) -> bool:
    """Poll ``predicate`` with backoff until it is truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 2, max_interval)


def tail(path: os.PathLike[str] | str, lines: int = 15) -> str:
    """Last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
