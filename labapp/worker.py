"""What a worker process imports: ``huey_consumer labapp.worker.huey``.

Importing this module loads the demo tasks and any learner modules named in
``LAB_TASK_MODULES``, so the consumer's registry knows them. The consumer itself is Huey's;
:class:`LabConsumer` only makes the processes it forks die with it.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

from huey.consumer import Consumer

from labapp import events
from labapp import procs
from labapp.tasks import huey
from labapp.tasks import lab_key
from labapp.tasks import recorder

logger = logging.getLogger(__name__)


class LabConsumer(Consumer):
    """Huey's consumer; forked worker/scheduler processes exit when the consumer dies."""

    def _create_process(self, process: Any, name: str) -> Any:
        if self.environment.forks:
            initialize = process.initialize
            consumer_pid = os.getpid()

            def initialize_in_child() -> None:
                procs.die_with_parent(consumer_pid)
                initialize()

            process.initialize = initialize_in_child
        return super()._create_process(process, name)


@huey.on_startup()
def announce_worker() -> None:
    """Record this worker's name and pid, so the lab can list and signal it."""
    huey.storage.conn.hset(lab_key("workers"), events.worker_label(), os.getpid())


@huey.on_shutdown()
def flush_events() -> None:
    """Write any events still buffered before the worker exits."""
    recorder.flush()


def load_task_modules(names: str | None = None) -> list[str]:
    """Import learner task modules (comma-separated ``LAB_TASK_MODULES``); returns their names."""
    raw = os.environ.get("LAB_TASK_MODULES", "") if names is None else names
    loaded = []
    for name in filter(None, (n.strip() for n in raw.split(","))):
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        importlib.import_module(name)
        loaded.append(name)
    return loaded


if os.environ.get("LAB_ROLE") == "worker" and os.environ.get("LAB_PARENT_PID"):
    # Belt and braces next to PDEATHSIG: also covers platforms without it (macOS).
    procs.die_with_parent(int(os.environ["LAB_PARENT_PID"]))
load_task_modules()

__all__ = ["huey", "LabConsumer", "load_task_modules"]
