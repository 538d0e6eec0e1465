"""Producer side of the tools comparison: worker command lines, setup size, one client API.

Huey, RQ and Celery submit and report results differently; :class:`Client` hides that so
the experiment (:func:`labapp.experiments.tools`) reads the same for all three.
"""
from __future__ import annotations

import ast
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from labapp import compare
from labapp import procs

logger = logging.getLogger(__name__)

RQ_WORKERS = {"fork": "rq.worker.Worker", "simple": "rq.worker.SimpleWorker"}
_loaded: dict[str, str] = {}   # tool -> socket its compare module was imported for


def worker_command(tool: str, sock: str, rq_worker: str = "fork") -> list[str]:
    """The command line that starts one worker of ``tool`` on the compare database."""
    py = sys.executable
    if tool == "huey":
        return [py, "-m", "huey.bin.huey_consumer", "labapp.compare.huey_tasks.huey", "-w", "1"]
    if tool == "rq":
        return [py, "-m", "rq.cli", "worker", "--url", f"unix://{sock}?db={compare.DB}",
                "-w", RQ_WORKERS[rq_worker], "-n", f"ql-compare-rq-{os.getpid()}", "compare"]
    return [py, "-m", "celery", "-A", "labapp.compare.celery_tasks", "worker", "--pool", "solo",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
            "-n", f"ql-compare-celery-{os.getpid()}@%h"]


def setup_lines(path: str) -> int:
    """Code lines of a compare module above its measurement-only marker.

    Blank lines, comments and docstrings are not counted: only what the tool makes you write.
    """
    text = Path(path).read_text().split(compare.MARKER)[0]
    skip: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for i, line in enumerate(text.splitlines(), 1)
               if i not in skip and line.strip() and not line.strip().startswith("#"))


def load(tool: str, sock: str) -> Any:
    """Import (or re-import for another lab's socket) the compare module of ``tool``."""
    name = f"labapp.compare.{tool}_tasks"
    if sys.modules.get(name) is not None and _loaded.get(tool) == sock:
        return sys.modules[name]
    before = os.environ.get(compare.SOCKET_ENV)
    os.environ[compare.SOCKET_ENV] = sock  # the modules read it at import, as a user's would
    try:
        if name in sys.modules:
            Client(tool, sys.modules[name]).close()
            module = importlib.reload(sys.modules[name])
        else:
            module = importlib.import_module(name)
    finally:
        if before is None:
            os.environ.pop(compare.SOCKET_ENV, None)
        else:
            os.environ[compare.SOCKET_ENV] = before
    _loaded[tool] = sock
    return module


class Client:
    """Producer-side calls that differ between the tools: submit, poll a result, close."""

    def __init__(self, tool: str, module: Any) -> None:
        self.tool, self.module = tool, module

    def submit(self, task: str, *args: Any) -> Any:
        """Enqueue ``task(*args)``; returns the tool's own handle."""
        fn = getattr(self.module, task)
        if self.tool == "huey":
            return fn(*args)
        if self.tool == "rq":
            return self.module.queue.enqueue(fn, *args)
        return fn.delay(*args)

    def _poll(self, handle: Any) -> tuple[bool, Any]:
        if self.tool == "huey":
            value = handle.get()  # None until the task stored its (non-None) result
            return value is not None, value
        if self.tool == "rq":
            status = handle.get_status()
            if status == "failed":
                raise RuntimeError(f"RQ job {handle.id} failed: {handle.latest_result()}")
            return status == "finished", (handle.return_value() if status == "finished" else None)
        state = handle.state
        if state == "FAILURE":
            raise RuntimeError(f"Celery task {handle.id} failed: {handle.result!r}")
        return state == "SUCCESS", (handle.result if state == "SUCCESS" else None)

    def wait(self, handle: Any, timeout: float, proc: Any, log: Path) -> Any:
        """The task's return value; raises if the worker died or ``timeout`` passed."""
        box: list[Any] = []

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"the {self.tool} worker exited (code {proc.returncode}); "
                                   f"last lines of {log}:\n{procs.tail(log)}")
            ok, value = self._poll(handle)
            if ok:
                box.append(value)
            return ok

        if not procs.wait_until(ready, timeout, interval=0.002, max_interval=0.02):
            raise TimeoutError(f"{self.tool}: no result within {timeout} s; last lines of "
                               f"{log}:\n{procs.tail(log)}")
        return box[0]

    def close(self) -> None:
        """Drop the producer's connections to a server that may soon be gone."""
        try:
            if self.tool == "huey":
                self.module.huey.storage.pool.disconnect()
            elif self.tool == "rq":
                self.module.queue.connection.close()
            else:
                self.module.app.close()
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real error
            logger.debug("closing %s client: %s", self.tool, exc)
