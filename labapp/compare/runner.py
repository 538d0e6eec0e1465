"""Producer side of the tools comparison: load a minimal setup, talk to its tool, run ``bare.py``.

Huey, RQ and Celery submit and report results differently; :class:`Client` hides that so
the experiment (:func:`labapp.experiments.tools`) reads the same for all three. The calls
themselves are the ones ``minimal/bare.py`` makes, so the lab and the plain script measure
the same thing.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from labapp import compare
from labapp.compare.minimal import bare

logger = logging.getLogger(__name__)

RQ_WORKERS = ("fork", "simple")
_loaded: dict[str, tuple[str, Any]] = {}   # tool -> (REDIS_URL, module) imported in this kernel


def worker_command(tool: str, socket_path: str, rq_worker: str = "fork") -> list[str]:
    """The command line that starts one worker of ``tool`` (run it in :data:`compare.MINIMAL`)."""
    return bare.worker(tool, rq_worker, compare.redis_url(tool, socket_path))


def worker_env(tool: str, socket_path: str) -> dict[str, str]:
    """The worker's environment: ``REDIS_URL`` in the tool's spelling, only the setup on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REDIS_URL")}
    env.update(REDIS_URL=compare.redis_url(tool, socket_path), PYTHONPATH=str(compare.MINIMAL))
    return env


def setup_lines(path: os.PathLike[str] | str) -> int:
    """Code lines of a setup module: blank lines, comments and docstrings are not counted."""
    text = Path(path).read_text()
    skip: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for i, line in enumerate(text.splitlines(), 1)
               if i not in skip and line.strip() and not line.strip().startswith("#"))


def load(tool: str, socket_path: str) -> Any:
    """The setup module of ``tool``, imported under its own name (``huey_tasks``…) for this server.

    The tools name tasks after their module, so the producer must know it by the name the
    worker imports. ``REDIS_URL`` is set only while the module is imported.
    """
    url = compare.redis_url(tool, socket_path)
    if tool in _loaded and _loaded[tool][0] == url:
        return _loaded[tool][1]
    if tool in _loaded:
        Client(tool, _loaded.pop(tool)[1]).close()
    spec = importlib.util.spec_from_file_location(f"{tool}_tasks", compare.setup_path(tool))
    module = importlib.util.module_from_spec(spec)
    before = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = url   # the module reads it at import, as a user's would
    try:
        spec.loader.exec_module(module)
    finally:
        if before is None:
            os.environ.pop("REDIS_URL", None)
        else:
            os.environ["REDIS_URL"] = before
    _loaded[tool] = (url, module)
    return module


class Client:
    """Producer-side calls that differ between the tools: submit, finished, purge, close."""

    def __init__(self, tool: str, module: Any) -> None:
        self.tool, self.module = tool, module

    def __repr__(self) -> str:
        return f"Client({self.tool!r})"

    def submit(self, task: str, *args: Any) -> Any:
        """Enqueue ``task(*args)``; returns the tool's own handle."""
        return bare.submit(self.tool, self.module, task, *args)

    def finished(self, handle: Any) -> Any:
        """The task's return value, or None while it runs; raises if the task failed."""
        if self.tool == "celery" and handle.failed():
            raise RuntimeError(f"Celery task {handle.id} failed: {handle.result!r}")
        value = bare.finished(self.tool, handle)  # Huey raises TaskException itself
        if value is None and self.tool == "rq" and handle.get_status() == "failed":
            raise RuntimeError(f"RQ job {handle.id} failed: {handle.latest_result()}")
        return value

    def purge(self) -> None:
        """Drop the tasks still waiting in the queue (not those a worker already holds)."""
        if self.tool == "huey":
            self.module.huey.storage.flush_queue()
        elif self.tool == "rq":
            self.module.queue.empty()
        else:
            self.module.app.control.purge()

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


def run_bare(tool: str, socket_path: str, n: int, window: float, rq_worker: str = "fork",
             timeout: float = 120.0) -> dict[str, Any]:
    """Run ``minimal/bare.py`` for ``tool`` in a plain Python process; its JSON line as a dict.

    ``bare.py`` stops its worker when it is stopped (SIGTERM) or when this process dies.
    """
    args = [sys.executable, str(compare.MINIMAL / "bare.py"), tool, "--n", str(n),
            "--window", str(window), "--rq-worker", rq_worker]
    env = worker_env(tool, socket_path)
    env.pop("PYTHONPATH")
    proc = subprocess.Popen(args, env=env, cwd=compare.MINIMAL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:  # a timeout or the notebook's Interrupt: stop it and its worker
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"bare.py {tool} failed (exit {proc.returncode}): "
                           f"{err.strip().splitlines()[-1] if err.strip() else 'no message'}")
    return json.loads(out.strip().splitlines()[-1])
