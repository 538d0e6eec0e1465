"""Notebook 00's measurements: who runs a task, and a small burst on two workers.

:func:`who_runs` sends one task through the Flask app's HTTP API, as a browser would; the
result says how long the app took to answer and which process (by pid) recorded
``executing``. :func:`burst` enqueues a few tasks at once and measures, from the task events,
how many ran at the same time and how long the others waited in the queue.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from labapp.experiments._common import check_range

if TYPE_CHECKING:
    from labapp.stack import Lab

ROLES = ("the Flask app", "this notebook", "a worker")


@dataclasses.dataclass(frozen=True)
class WhoRunsResult:
    """What one task sent through the Flask app measured."""

    seconds: float        #: how long the task itself sleeps
    answered_s: float     #: time until the Flask app answered the HTTP request
    finished: bool        #: the task completed within the timeout
    pid: int | None       #: pid that recorded ``executing`` (None if it never started)
    worker: str           #: the worker's name as recorded (``worker-1``, ...)
    web_pid: int | None
    kernel_pid: int
    worker_pids: tuple[int, ...]

    @property
    def ran_in(self) -> str | None:
        """Which of :data:`ROLES` ran the task (None when it did not run)."""
        if self.pid is None:
            return None
        if self.pid == self.web_pid:
            return "the Flask app"
        if self.pid == self.kernel_pid:
            return "this notebook"
        return "a worker" if self.pid in self.worker_pids or self.worker.startswith("worker") else None

    @property
    def teaches_lesson(self) -> bool:
        """The notebook's lesson holds: a worker ran it and Flask answered before it was done."""
        return self.ran_in == "a worker" and self.answered_s < self.seconds

    def conclusions(self) -> list[str]:
        """What this run showed, in sentences built from its numbers."""
        answered = (f"The Flask app (pid {self.web_pid}) answered the request in "
                    f"{self.answered_s * 1000:.1f} ms with a task id")
        if self.pid is None:
            return [answered + ", but no worker started the task within the time allowed: "
                    "look at lab.logs('worker')."]
        out = [f"{answered}; {self.worker} (pid {self.pid}) ran the {self.seconds:g} s task, "
               f"so {self.ran_in or 'another process'} did the work."]
        if self.answered_s < self.seconds:
            out.append(f"The answer came {self.seconds / max(self.answered_s, 1e-6):.0f}× faster "
                       "than the task took: the request did not wait for the work.")
        else:
            out.append(f"This time the answer took {self.answered_s:.2f} s, no faster than the "
                       f"{self.seconds:g} s task: the machine was busy, or the app waited.")
        if not self.finished:
            out.append("The task had not completed when the run ended.")
        return out


def who_runs(lab: Lab, seconds: float = 0.5, timeout: float = 10.0) -> WhoRunsResult:
    """Enqueue one ``sleep(seconds)`` through ``POST /api/enqueue/sleep``; report who ran it."""
    check_range("seconds", seconds, 0.05, 5.0)
    cursor = lab.cursor()
    request = urllib.request.Request(lab.url + "api/enqueue/sleep",
                                     data=json.dumps({"seconds": seconds}).encode(),
                                     headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            task_id = json.load(reply)["id"]
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        raise RuntimeError(f"the Flask app did not accept the task ({exc}): check "
                           "lab.logs('web'), or restart the lab with Lab.start()") from None
    answered = time.perf_counter() - t0
    finished = lab.wait(task_id, timeout=timeout)
    ran = next((e for e in lab.events(since=cursor)
                if e.kind == "executing" and e.task_id == task_id), None)
    status = lab.status()
    return WhoRunsResult(seconds=seconds, answered_s=answered, finished=finished,
                         pid=None if ran is None else ran.pid,
                         worker="" if ran is None else ran.worker, web_pid=status["web"],
                         kernel_pid=os.getpid(), worker_pids=tuple(status["workers"]))


def notebook_sized(lab: Lab) -> WhoRunsResult:
    """The run notebook 00 makes."""
    return who_runs(lab, seconds=0.5)


@dataclasses.dataclass(frozen=True)
class BurstResult:
    """``count`` tasks enqueued at once: when each was enqueued, started and finished."""

    seconds: float
    workers: int
    spans: tuple[tuple[float, float, float], ...]   #: (enqueued, started, finished) per task
    finished: bool

    @property
    def took_s(self) -> float:
        """From the first enqueue to the last completion."""
        if not self.spans:
            return 0.0
        return max(f for _, _, f in self.spans) - min(e for e, _, _ in self.spans)

    @property
    def max_running(self) -> int:
        """The most tasks that were executing at the same moment."""
        edges = sorted([(s, 1) for _, s, _ in self.spans] + [(f, -1) for _, _, f in self.spans],
                       key=lambda x: (x[0], x[1]))
        now = best = 0
        for _, step in edges:
            now += step
            best = max(best, now)
        return best

    @property
    def longest_wait_s(self) -> float:
        """The longest time a task waited in the queue before a worker took it."""
        return max((s - e for e, s, _ in self.spans), default=0.0)

    def conclusions(self) -> list[str]:
        """What this run showed, in sentences built from its numbers."""
        n = len(self.spans)
        if not n:
            return ["No task finished: look at lab.logs('worker')."]
        out = [f"{n} tasks of {self.seconds:g} s took {self.took_s:.2f} s from the first "
               f"enqueue to the last completion with {self.workers} worker"
               f"{'s' if self.workers != 1 else ''}."]
        out.append(f"At most {self.max_running} ran at the same moment; the longest wait in the "
                   f"queue was {self.longest_wait_s:.2f} s.")
        if self.max_running < min(self.workers, n):
            out.append("Fewer tasks ran at once than there are workers: the machine was busy "
                       "or the workers were still starting.")
        if not self.finished:
            out.append("Some tasks had not completed when the run ended.")
        return out


def burst(lab: Lab, count: int = 8, seconds: float = 0.5, timeout: float = 60.0) -> BurstResult:
    """Enqueue ``count`` ``sleep(seconds)`` tasks at once and time them from their events."""
    check_range("count", count, 1, 100, integer=True)
    check_range("seconds", seconds, 0.01, 5.0)
    workers = len(lab.status()["workers"])
    if not workers:
        raise ValueError("no worker is running, so the tasks would only wait: start some with "
                         "lab.scale(2) (or the worker control), then run this again")
    cursor = lab.cursor()
    handles = lab.enqueue_many("sleep", count, seconds=seconds)
    if count * seconds / max(workers, 1) > 2:   # a cell this long says what it waits for
        print(f"enqueued {count} tasks; waiting for them to finish (the monitor shows them)…",
              flush=True)
    finished = lab.wait(handles, timeout=timeout)
    ids = {h.id for h in handles}
    times: dict[str, dict[str, float]] = {i: {} for i in ids}
    for e in lab.events(since=cursor):
        if e.task_id in ids:
            times[e.task_id].setdefault(e.kind, e.time)
    spans = tuple(sorted((t["enqueued"], t["executing"], t["complete"]) for t in times.values()
                         if {"enqueued", "executing", "complete"} <= set(t)))
    return BurstResult(seconds=seconds, workers=workers, spans=spans, finished=finished)
