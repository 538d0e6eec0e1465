"""Draining the queue (01): start workers on a queue full of tasks and watch its length fall.

A sampler thread reads the queue length (``LLEN``) every ``interval`` seconds from before
the workers are asked to start until the queue is empty; the workers' events say when each
task started and finished. The result says what the run showed (:meth:`DrainResult.conclusions`).
"""
from __future__ import annotations

import dataclasses
import math
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Sequence

import redis

from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import percentile
from labapp.experiments._common import started_and_completed

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)

INTERVAL = 0.05   # seconds between two LLEN samples


@dataclasses.dataclass(frozen=True)
class DrainResult:
    """Queue length over time and every task's start and end, in seconds since the scale call."""

    workers: int
    tasks: int                                   #: tasks the run waited for
    waiting: int                                 #: tasks in the queue when the workers were asked to start
    samples: tuple[tuple[float, int], ...]       #: (seconds, tasks waiting), oldest first
    workers_ready: float                         #: when ``lab.scale`` returned: workers running
    #: (start, end or NaN) per task, seconds since the scale call, in start order
    runs: tuple[tuple[float, float], ...]

    @property
    def began(self) -> list[float]:
        """When each task started (seconds)."""
        return [b for b, _ in self.runs]

    @property
    def done(self) -> list[float]:
        """When each finished task finished (seconds), in order."""
        return sorted(e for _, e in self.runs if e == e)

    @property
    def emptied(self) -> float:
        """First time the queue was seen empty (NaN if never)."""
        return next((t for t, n in self.samples if n == 0), float("nan"))

    @property
    def last_done(self) -> float:
        """When the last task finished (NaN if none did)."""
        return max(self.done, default=float("nan"))

    @property
    def task_seconds(self) -> float:
        """Median time one task took on a worker."""
        return percentile([e - b for b, e in self.runs if e == e], 50)

    @property
    def max_running(self) -> int:
        """The most tasks running at the same moment."""
        edges = sorted([(b, 1) for b, e in self.runs if e == e] +
                       [(e, -1) for b, e in self.runs if e == e])
        running = best = 0
        for _, step in edges:  # at equal times an end (-1) sorts before a start (+1)
            running += step
            best = max(best, running)
        return best

    @property
    def rate(self) -> float:
        """Tasks finished per second, from the first start to the last end."""
        done = self.done
        if len(done) < 1 or not self.began:
            return float("nan")
        span = self.last_done - min(self.began)
        return len(done) / span if span > 0 else float("nan")

    @property
    def max_rate(self) -> float:
        """The most tasks per second the workers can finish back to back (only as many workers
        as there are tasks can be busy)."""
        busy = min(self.workers, self.tasks)
        return busy / self.task_seconds if self.task_seconds > 0 else float("nan")

    @property
    def teaches_lesson(self) -> bool:
        """01's lesson: every task finished, never more at once than workers (and all workers
        were used), and the queue was empty before the last task ended."""
        return (len(self.done) == self.tasks
                and self.max_running == min(self.workers, self.tasks)
                and self.emptied <= self.last_done)

    def conclusions(self) -> list[str]:
        """What this run showed, in plain sentences with its numbers."""
        workers = _n(self.workers, "worker")
        out = [f"{_n(self.waiting, 'task')} waited while no worker ran; {workers} "
               f"{'was' if self.workers == 1 else 'were'} running {self.workers_ready:.2f} s "
               "after the start."]
        missing = self.tasks - len(self.done)
        if missing:
            out.append(f"{missing} of {self.tasks} tasks did not finish: see lab.logs('worker').")
        if self.emptied == self.emptied and self.done:
            if self.emptied <= self.last_done:
                out.append(f"The queue was empty at {self.emptied:.2f} s, but the last task "
                           f"finished at {self.last_done:.2f} s: a worker takes a task off the "
                           "list when it starts it, not when it finishes.")
            else:
                out.append(f"The last task finished at {self.last_done:.2f} s, before the queue "
                           f"was seen empty at {self.emptied:.2f} s (the samples are "
                           f"{INTERVAL * 1000:.0f} ms apart).")
        if self.done:
            most, busy = self.max_running, min(self.workers, self.tasks)
            line = f"At most {_n(most, 'task')} ran at the same moment with {workers}"
            if most == busy and self.tasks < self.workers:
                line += (f": only {self.tasks} tasks for {workers}, so "
                         f"{self.workers - self.tasks} had nothing to do.")
            elif most == busy:
                line += "."
            else:
                line += ": fewer than there was work for, so some workers sat idle."
            out.append(line)
            out.append(f"They finished {self.rate:.1f} tasks per second; {busy} busy "
                       f"worker{'s' if busy != 1 else ''} doing {self.task_seconds:.2f} s tasks "
                       f"back to back can finish at most {self.max_rate:.1f} "
                       f"({self.rate / self.max_rate:.0%} of that).")
        return out

    def __repr__(self) -> str:
        return (f"DrainResult({self.tasks} tasks, {self.workers} workers: empty at "
                f"{self.emptied:.2f} s, last done at {self.last_done:.2f} s, "
                f"{self.rate:.1f} tasks/s)")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def drain(lab: Lab, handles: Sequence[Any], workers: int = 2, interval: float = INTERVAL,
          timeout: float = 60.0) -> DrainResult:
    """Start ``workers`` workers and sample the queue length until it is empty, then wait for
    ``handles`` to finish. Call it with the workers stopped (``lab.scale(0)``) and tasks queued.

    :param handles: the tasks to wait for (``lab.enqueue_many(...)``'s return value).
    :param workers: workers to start (1 to 16).
    :param interval: seconds between queue-length samples (0.01 to 1).
    """
    check_range("workers", workers, 1, 16, integer=True)
    check_range("interval", interval, 0.01, 1.0)
    ids = [getattr(h, "id", h) for h in handles]
    if not ids:
        raise ValueError("drain needs the handles of the tasks you enqueued: "
                         "handles = lab.enqueue_many('sleep', 20, seconds=0.25)")
    if lab.status()["workers"]:
        raise RuntimeError("workers are already running, so there is nothing to watch: "
                           "run lab.scale(0), enqueue the tasks again, then drain()")
    queue = lab.huey.storage.queue_key
    cursor = lab.cursor()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    start = time.time()

    def sample() -> None:
        # Its own connection: the notebook's client is not meant to be shared across threads.
        conn = redis.Redis.from_url(lab.redis_url)
        try:
            while True:
                samples.append((time.time() - start, conn.llen(queue)))
                if samples[-1][1] == 0 or stop.wait(interval):
                    break
        finally:
            conn.close()

    sampler = threading.Thread(target=sample, name="llen-sampler", daemon=True)
    sampler.start()
    try:
        with Progress("drain", 3) as progress:
            lab.scale(workers)
            ready = time.time() - start
            progress.update(1, "workers running")
            sampler.join(timeout)
            progress.update(1, "queue empty")
            if not lab.wait(ids, timeout=timeout):
                logger.warning("drain: not every task finished within %.0f s", timeout)
            progress.update(1, "tasks done")
    finally:
        stop.set()
        sampler.join(5)
    began, ended = started_and_completed(lab.events(since=cursor), ids)
    runs = tuple(sorted((b - start, ended.get(t, math.nan) - start) for t, b in began.items()))
    return DrainResult(workers=workers, tasks=len(ids), waiting=samples[0][1] if samples else 0,
                       samples=tuple(samples), workers_ready=ready, runs=runs)


def notebook_sized(lab: Lab) -> DrainResult:
    """Notebook 01's run: 20 tasks of 0.25 s drained by 2 workers (lesson: ``teaches_lesson``)."""
    lab.scale(0)
    handles = lab.enqueue_many("sleep", 20, seconds=0.25)
    return drain(lab, handles, workers=2)
