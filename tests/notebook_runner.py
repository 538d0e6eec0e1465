"""Run a notebook headless in a fresh kernel and account for every lab process it started."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient


@dataclass
class Run:
    """An executed notebook, how long it took, and lab processes still alive afterwards."""

    notebook: nbformat.NotebookNode
    seconds: float
    leftovers: list[int]


def lab_processes_under(run_root: Path) -> list[int]:
    """Live server/web/worker processes whose lab lives in ``run_root``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if str(run_root) in cmd or str(run_root) in proc.environ().get("LAB_REDIS_URL", ""):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def run_notebook(path: Path, run_root: Path, timeout: int = 120, cwd: Path | None = None,
                 allow_errors: bool = False) -> Run:
    """Execute ``path`` top to bottom (LAB_AUTO_PREDICT=1, labs under ``run_root``)."""
    nb = nbformat.read(path, as_version=4)
    env_before = {k: os.environ.get(k) for k in ("LAB_AUTO_PREDICT", "LAB_RUN_DIR", "MPLBACKEND")}
    os.environ.update(LAB_AUTO_PREDICT="1", LAB_RUN_DIR=str(run_root), MPLBACKEND="agg")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                                resources={"metadata": {"path": str(cwd or path.parent)}})
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    deadline = time.monotonic() + 5  # the kernel is gone; its children follow within moments
    leftovers = lab_processes_under(run_root)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = lab_processes_under(run_root)
    return Run(nb, seconds, leftovers)
