"""The state file each lab keeps in its run dir, and the sweep of labs whose owner died.

``lab.json`` names the process that owns the lab (a kernel, a CLI) and its children, each
by pid *and* start time, so a pid the system has since reused is never mistaken for ours.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Iterable

import psutil

from labapp import procs

STATE_FILE = "lab.json"
FRESH = 5.0  # seconds: a run dir this young may be a lab another process is creating


def identity(pid: int) -> dict[str, float] | None:
    """``{"pid", "create_time"}`` of a live process (None when it is gone)."""
    try:
        return {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    except psutil.Error:
        return None


def is_alive(record: dict[str, Any] | None) -> bool:
    """True when ``record`` (pid + create time) still names a live process (not a reused pid)."""
    try:
        proc = psutil.Process(int(record["pid"]))  # type: ignore[index]
        return (abs(proc.create_time() - float(record["create_time"])) < 0.01  # type: ignore[index]
                and proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def write(run_dir: Path, name: str, children: dict[str, int | None]) -> None:
    """Record this process as the owner of lab ``name`` and its children's pids (atomically)."""
    state = {"name": name, "owner": identity(os.getpid()),
             "children": {k: identity(v) if v else None for k, v in children.items()}}
    path = run_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def read_all(run_root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable state file under ``run_root`` with its contents, sorted by lab."""
    out = []
    for path in sorted(run_root.glob(f"*/{STATE_FILE}")):
        try:
            out.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return out


def kill_children(state: dict[str, Any]) -> None:
    """SIGKILL the process groups of a lab's children that are still alive."""
    for child in (state.get("children") or {}).values():
        if child and is_alive(child):
            procs.signal_group(int(child["pid"]), signal.SIGKILL)


def cleanup_stale(run_root: Path, keep: Iterable[str] = ()) -> list[str]:
    """Kill and remove labs whose owning process died (e.g. a kernel killed with SIGKILL).

    Run dirs of stopped labs (logs only) are removed too, except the names in ``keep``.
    """
    removed: list[str] = []
    if not run_root.is_dir():
        return removed
    for path, state in read_all(run_root):
        if is_alive(state.get("owner")):
            continue
        kill_children(state)
        shutil.rmtree(path.parent, ignore_errors=True)
        removed.append(path.parent.name)
    keep = set(keep)
    for folder in run_root.iterdir():  # stopped labs keep their logs until the next start
        if (folder.is_dir() and not (folder / STATE_FILE).exists() and folder.name not in keep
                and time.time() - folder.stat().st_mtime > FRESH):
            shutil.rmtree(folder, ignore_errors=True)
    return removed
