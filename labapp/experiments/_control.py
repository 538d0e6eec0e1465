"""Setting the lab up for one experiment and putting it back afterwards, also after an interrupt."""
from __future__ import annotations

import contextlib
import io
import logging
from typing import TYPE_CHECKING, Any, Iterator

from labapp import events
from labapp import procs
from labapp.experiments._common import Progress

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)

SETTLE_TIMEOUT = 5.0  # longest wait for tasks a previous cell left running


def require_running(lab: Lab) -> None:
    """Raise a one-line RuntimeError when ``lab`` is not running."""
    if not lab.healthy():
        raise RuntimeError(f"lab {lab.name!r} is not running (or a process died): "
                           "run lab.restart() first")


def drop_pending(lab: Lab) -> None:
    """Empty the queue and the schedule (retries waiting for their time), nothing else."""
    storage = lab.huey.storage
    storage.flush_queue()
    storage.flush_schedule()


def settle(lab: Lab, timeout: float = SETTLE_TIMEOUT) -> bool:
    """Drop pending tasks and wait until no live worker is still running one; True when idle.

    A measurement needs an idle lab: leftovers from an earlier cell would queue ahead of
    the experiment's tasks. Events and results stay, so a monitor keeps its history.
    """
    drop_pending(lab)

    def idle() -> bool:
        # A worker killed mid-task leaves its entry behind forever: only live workers count.
        return all(b.lost for b in events.busy(lab.redis, lab.name))

    ok = procs.wait_until(idle, timeout, interval=0.01)
    if not ok:
        logger.warning("workers of %s are still busy after %.0f s; measuring anyway",
                       lab.name, timeout)
    return ok


@contextlib.contextmanager
def arranged(lab: Lab, *, workers: int | None = None, worker_type: str | None = None,
             web_threads: int | None = None) -> Iterator[str]:
    """Run the block on an idle lab with these workers / web threads; yields an events cursor.

    Whatever happens in the block (an exception, the notebook's Interrupt button), the
    worker count, worker type and web pool are restored (a consumer that died in the block,
    e.g. thread workers killed on purpose, is replaced), and after a failure the
    experiment's still-pending tasks are dropped so the lab is idle and usable again.
    """
    require_running(lab)
    old_workers, old_type = lab.config.workers, lab.config.worker_type
    old_threads = lab.config.web_threads
    want_workers = old_workers if workers is None else workers
    want_type = worker_type or old_type
    ok = False
    try:
        if (want_workers, want_type) != (old_workers, old_type):
            lab.scale(want_workers, want_type)
        if web_threads is not None and web_threads != old_threads:
            lab.restart_web(web_threads)
        settle(lab)
        yield lab.cursor()
        ok = True
    finally:
        if not ok:
            drop_pending(lab)
        lab.scale(old_workers, old_type)  # no-op unless changed or the consumer died
        if lab.config.web_threads != old_threads:
            lab.restart_web(old_threads)


def wait_for_events(lab: Lab, cursor: str, task_ids: set[str] | list[str], timeout: float,
                    label: str = "tasks", progress: bool = True) -> list[Any]:
    """Follow the events stream until every task in ``task_ids`` finished (or ``timeout``).

    Returns those tasks' events since ``cursor``, oldest first, and shows progress meanwhile
    (``progress=False``: silent, for a caller that shows its own progress line).
    """
    want = set(task_ids)
    pending = set(want)
    found: list[Any] = []
    with Progress(label, len(want), stream=None if progress else io.StringIO()) as shown:
        for event in events.follow(lab.redis, lab.name, cursor, timeout) if pending else ():
            if event is None or event.task_id not in want:
                continue
            found.append(event)
            if event.terminal and event.task_id in pending:
                pending.discard(event.task_id)
                shown.update(1)
                if not pending:
                    break
    if pending:
        logger.warning("%d of %d tasks did not finish within %.1f s", len(pending), len(want),
                       timeout)
    return found
