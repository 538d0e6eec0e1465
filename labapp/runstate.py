"""The state file each lab keeps in its run dir, and the sweep of labs whose owner died.

``lab.json`` names the lab's children, each by pid, start time, user and command line, so
a pid the system has since reused (or a process of someone else) is never mistaken for
ours. Who owns a lab is not read from the file: it is whoever holds the lab's lock
(:class:`labapp.rundir.LabLock`), which the kernel releases when that process dies.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any, Iterable

import psutil

from labapp import procs
from labapp import rundir

STATE_FILE = "lab.json"
DATA_DIR = "appendonlydir"  # valkey's AOF folder: a durable lab's data, kept by the sweep


def identity(pid: int) -> dict[str, Any] | None:
    """``{"pid", "create_time", "uid", "cmdline"}`` of a live process (None when it is gone)."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            return {"pid": pid, "create_time": proc.create_time(), "uid": proc.uids().real,
                    "cmdline": proc.cmdline()}
    except psutil.Error:
        return None


def is_alive(record: dict[str, Any] | None) -> bool:
    """True when ``record`` still names the same live process of ours.

    Same pid *and* start time (not a reused pid), our uid, and, when recorded, the same
    command line: anything else is somebody else's process and must not be signalled.
    """
    try:
        proc = psutil.Process(int(record["pid"]))  # type: ignore[index]
        with proc.oneshot():
            if abs(proc.create_time() - float(record["create_time"])) >= 0.01:  # type: ignore[index]
                return False
            if proc.uids().real != int(record.get("uid", os.getuid())):  # type: ignore[union-attr]
                return False
            if proc.uids().real != os.getuid():
                return False
            if "cmdline" in record and proc.cmdline() != list(record["cmdline"]):  # type: ignore[operator]
                return False
            return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, KeyError, TypeError, ValueError, AttributeError):
        return False


def write(run_dir: Path, name: str, children: dict[str, int | None]) -> None:
    """Record this process as the owner of lab ``name`` and its children (atomically)."""
    state = {"name": name, "owner": identity(os.getpid()),
             "children": {k: identity(v) if v else None for k, v in children.items()}}
    path = run_dir / STATE_FILE
    tmp = run_dir / f".{STATE_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(state))
    os.replace(tmp, path)


def read(run_dir: Path) -> dict[str, Any] | None:
    """The state of the lab in ``run_dir`` (None when it has none or it is unreadable)."""
    try:
        return json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def read_all(run_root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable state file in the run dirs queue-lab made under ``run_root``, by lab."""
    out = []
    try:
        folders = sorted(Path(run_root).iterdir())
    except OSError:
        return out
    for folder in folders:
        if not rundir.is_ours(folder):
            continue
        state = read(folder)
        if state is not None:
            out.append((folder / STATE_FILE, state))
    return out


def owner_alive(run_root: Path, name: str) -> bool:
    """True when some process holds lab ``name``'s lock (it is running)."""
    return not rundir.lock_is_free(run_root, name)


def kill_children(state: dict[str, Any]) -> None:
    """SIGKILL the process groups of a lab's children that are provably still ours."""
    for child in (state.get("children") or {}).values():
        if child and is_alive(child):
            procs.signal_group(int(child["pid"]), signal.SIGKILL)


def cleanup_stale(run_root: Path, keep: Iterable[str] = ()) -> list[str]:
    """Kill and remove labs nobody owns any more (e.g. a kernel killed with SIGKILL).

    Only folders carrying queue-lab's marker are touched, and only when their lab's lock is
    free; a durable lab's data folder stays. Names in ``keep`` are left alone.
    """
    removed: list[str] = []
    keep = set(keep)
    try:
        folders = list(Path(run_root).iterdir())
    except OSError:
        return removed
    for folder in folders:
        if folder.name in keep or not rundir.is_ours(folder):
            continue
        lock = rundir.LabLock(run_root, folder.name)
        try:
            if not lock.acquire():
                continue  # a live process owns it
        except OSError:
            continue
        try:
            state = read(folder)
            if state is not None:
                kill_children(state)
            if (folder / DATA_DIR).is_dir():
                for item in folder.iterdir():  # keep a durable lab's data and the marker
                    if item.name not in (DATA_DIR, rundir.MARKER):
                        _remove(item)
            else:
                shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        finally:
            lock.release()
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
