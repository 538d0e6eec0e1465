"""What a worker process imports: ``huey_consumer labapp.worker.huey``.

Importing this module loads the demo tasks and any learner modules named in
``LAB_TASK_MODULES`` (found in ``LAB_TASK_PATH``, the notebook's folder), so the consumer's
registry knows them. The consumer itself is Huey's, see :mod:`labapp.consumer`.

The learner's folder goes at the *end* of ``sys.path``: a ``flask.py`` or ``redis.py`` next to
the notebook can never replace the real library in a worker (children also run with
``python -P``, so their working directory is not on the path either).
"""
from __future__ import annotations

import importlib
import os
import sys

from labapp import events
from labapp import procs
from labapp.consumer import LabConsumer
from labapp.tasks import huey
from labapp.tasks import lab_key
from labapp.tasks import recorder


@huey.on_startup()
def announce_worker() -> None:
    """Record this worker's name and identity (pid, start time, host), so the lab can list it."""
    huey.storage.conn.hset(lab_key("workers"), events.worker_label(), events.process_tag())


@huey.on_shutdown()
def flush_events() -> None:
    """Write any events still buffered before the worker exits."""
    recorder.flush()


def add_task_path(folder: str | None = None) -> str | None:
    """Put the learner's folder (``LAB_TASK_PATH``) at the end of ``sys.path``; returns it."""
    folder = folder if folder is not None else os.environ.get("LAB_TASK_PATH", "")
    if folder and folder not in sys.path:
        sys.path.append(folder)
    return folder or None


def load_task_modules(names: str | None = None) -> list[str]:
    """Import learner task modules (comma-separated ``LAB_TASK_MODULES``); returns their names."""
    raw = os.environ.get("LAB_TASK_MODULES", "") if names is None else names
    loaded = []
    for name in filter(None, (n.strip() for n in raw.split(","))):
        add_task_path()
        importlib.import_module(name)
        loaded.append(name)
    return loaded


if os.environ.get("LAB_ROLE") == "worker" and os.environ.get("LAB_PARENT_PID"):
    # Belt and braces next to PDEATHSIG: also covers platforms without it (macOS).
    procs.die_with_parent(int(os.environ["LAB_PARENT_PID"]))
load_task_modules()

__all__ = ["huey", "LabConsumer", "load_task_modules", "add_task_path"]
