"""Huey's consumer with one change: the processes it forks die with it.

Kept apart from :mod:`labapp.tasks` and :mod:`labapp.worker` so that imports go one way:
``worker`` → ``tasks`` → ``consumer``.
"""
from __future__ import annotations

import os
from typing import Any

from huey.consumer import Consumer

from labapp import procs


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
