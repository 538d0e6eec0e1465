"""Experiments behind 07's beliefs, each returning a result that says what its run showed.

* :func:`faster`: does handing work to a queue make it finish sooner? Built on
  :func:`labapp.experiments.latency.latency` (its public API) plus the queued tasks' own run
  times from the events stream and, per queued request, the time from the click to the
  task's completion.
* belief 2 (do the workers die with the Flask app?) is 03's
  :func:`labapp.experiments.survival.flask_stopped` with ``crash=True`` (SIGKILL).
* :func:`flask_alone`: stop every worker, hand tasks to the Flask app over HTTP: does anything
  run them? If Flask had a task queue of its own, they would run with no worker at all.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from labapp import events
from labapp.experiments._common import check_range
from labapp.experiments._control import arranged
from labapp.experiments._control import wait_for_events
from labapp.experiments.latency import LatencyResult
from labapp.experiments.latency import latency
from labapp.experiments.survival import StopResult
from labapp.experiments.survival import flask_stopped
from labapp.units import duration

if TYPE_CHECKING:
    from labapp.stack import Lab

#: 07's belief 1: eight requests (4 users clicking twice) for 0.3 s of work, 4 web threads
NOTEBOOK_FASTER = {"duration": 0.3, "clients": 4, "requests_per_client": 2, "web_threads": 4}


# ----------------------------------------------------------------------------- belief 1
@dataclasses.dataclass(frozen=True)
class FasterResult:
    """The same work done inside the request and through the queue, timed three ways."""

    latency: LatencyResult
    worker_seconds: tuple[float, ...]   #: each queued task's run time, executing → complete
    queued_done: tuple[float, ...]      #: per queued request: click → its task complete (s)

    @property
    def inline_done(self) -> list[float]:
        """Per inline request: click → response, when the work inside it was finished (s)."""
        return self.latency.latencies("inline")

    @property
    def answer(self) -> str | None:
        """``yes`` when the queued work finished sooner after the click (median), else ``no``."""
        if not self.inline_done or not self.queued_done:
            return None
        return "yes" if statistics.median(self.queued_done) < statistics.median(self.inline_done) \
            else "no"

    def conclusions(self) -> list[str]:
        """What this run showed, as sentences computed from its numbers."""
        if self.answer is None:
            return ["Some requests or tasks failed, so this run settles nothing: see "
                    "lab.logs('web') and lab.logs('worker')."]
        r = self.latency
        inline, queued = statistics.median(self.inline_done), statistics.median(self.queued_done)
        work = statistics.median(self.worker_seconds)
        out = [f"From the click until the work was finished (median): inline {duration(inline)}, "
               f"queued {duration(queued)}: the queued work finished "
               f"{'later' if queued >= inline else 'sooner'}."]
        same = abs(work - r.duration) <= 0.1 * r.duration + 0.01
        out.append(f"The work itself ran {duration(work)} in a worker for {r.duration:g} s of "
                   "work: "
                   + ("the same time it takes inside the request." if same else
                      "not the time it takes inside the request (a busy machine?)."))
        if queued >= inline:
            out.append(f"{len(self.queued_done)} tasks arrived at once for {r.workers} worker"
                       f"{'s' * (r.workers != 1)}, so most waited in the queue: the last "
                       f"finished {duration(max(self.queued_done))} after its click.")
        else:
            out.append(f"With {r.workers} workers for {len(self.queued_done)} tasks, hardly any "
                       "waited, and the inline requests paid HTTP and thread waiting on top.")
        out.append(f"What did come sooner is the response: {duration(r.p50('queued'))} "
                   f"instead of {duration(r.p50('inline'))} (median), {r.speedup:.0f}x sooner.")
        return out

    @property
    def teaches_lesson(self) -> bool:
        """True when the run shows 07's lesson: the work did not finish sooner, the response did."""
        return self.answer == "no" and self.latency.speedup > 1

    def __repr__(self) -> str:
        return "FasterResult(" + " ".join(self.conclusions()).replace("", "").replace(
            "", "") + ")"


def faster(lab: Lab, duration: float = 0.3, clients: int = 4, requests_per_client: int = 2,
           web_threads: int = 4) -> FasterResult:
    """Time the same work inline and queued: the response, the work itself, click → done.

    The arguments are :func:`~labapp.experiments.latency.latency`'s.
    """
    cursor = lab.cursor()
    r = latency(lab, duration=duration, clients=clients, requests_per_client=requests_per_client,
                web_threads=web_threads, modes=("inline", "queued"))
    started: dict[str, float] = {}
    ran = []
    for e in lab.events(since=cursor):
        if e.kind == "executing":
            started[e.task_id] = e.time
        elif e.kind == "complete" and e.task_id in started:
            ran.append(e.time - started[e.task_id])
    done_at = {tid: done for tid, _, done in r.completions if done == done}
    queued_done = tuple(done_at[q.task_id] - q.start for q in r.requests
                        if q.mode == "queued" and q.task_id in done_at)
    return FasterResult(r, tuple(ran), queued_done)


# ----------------------------------------------------------------------------- belief 2
#: 07's belief 2: :func:`labapp.experiments.survival.flask_stopped` with SIGKILL (``crash``)
NOTEBOOK_WITHOUT_FLASK = {"tasks": 6, "seconds": 0.3, "crash": True}


# ----------------------------------------------------------------------------- belief 4
@dataclasses.dataclass(frozen=True)
class FlaskAloneResult:
    """Tasks handed to the Flask app while no worker ran, then a worker started."""

    accepted: int            #: tasks the Flask app answered 202 for
    sent: int
    reply_ms: float          #: median time the Flask app took to accept one (ms)
    watched: float           #: seconds we watched with no worker running
    started_alone: int       #: tasks that started while no worker ran
    queued: int              #: tasks waiting in the broker at the end of that window
    done_after: float | None  #: seconds from starting a worker until all completed
    completed: int           #: tasks completed once a worker ran

    @property
    def answer(self) -> str:
        """``yes`` when a task ran with only Flask (and the broker) running, else ``no``."""
        return "yes" if self.started_alone else "no"

    def conclusions(self) -> list[str]:
        """What this run showed, computed from its numbers."""
        out = [f"The Flask app accepted {self.accepted} of {self.sent} tasks "
               f"({self.reply_ms:.1f} ms per request, median)."]
        if self.started_alone:
            out.append(f"{self.started_alone} of them started within {self.watched:.1f} s "
                       "although no worker was running: something else runs tasks here.")
        else:
            out.append(f"In the {self.watched:.1f} s that followed, with no worker running, "
                       f"none of them started; {self.queued} waited in the broker.")
        if self.done_after is not None:
            out.append(f"Once a worker process started, all {self.completed} completed within "
                       f"{self.done_after:.1f} s (that includes the worker's own start-up).")
        else:
            out.append(f"After starting the workers, {self.completed} of {self.accepted} "
                       "completed: see lab.logs('worker').")
        return out

    @property
    def teaches_lesson(self) -> bool:
        """True when nothing ran without workers and everything ran once they were back."""
        return (self.answer == "no" and self.accepted == self.sent
                and self.completed == self.accepted)


def _post(lab: Lab, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    request = urllib.request.Request(lab.url + path, data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, json.load(reply), time.perf_counter() - t0


def flask_alone(lab: Lab, tasks: int = 4, watch: float = 2.0) -> FlaskAloneResult:
    """Stop every worker, POST ``tasks`` tasks to the Flask app, watch ``watch`` s, restart.

    :param tasks: tasks to hand to the Flask app (1 to 20), each a 0.1 s sleep.
    :param watch: seconds to watch for any of them starting with no worker (0.5 to 10).
    The lab's workers are back (same count and type) when this returns, also after an error.
    """
    check_range("tasks", tasks, 1, 20, integer=True)
    check_range("watch", watch, 0.5, 10)
    workers = lab.config.workers or 2
    with arranged(lab, workers=0) as cursor:
        replies = [_post(lab, "api/enqueue/sleep", {"seconds": 0.1}) for _ in range(tasks)]
        ids = {body["id"] for status, body, _ in replies if status == 202 and "id" in body}
        after = lab.cursor()
        started = set()
        # The measurement window: with no worker, nothing should start. A task queue inside
        # Flask would start them here.
        for e in events.follow(lab.redis, lab.name, after, watch):
            if e is not None and e.kind == "executing" and e.task_id in ids:
                started.add(e.task_id)
        queued = lab.queue_length()
        t0 = time.monotonic()
        lab.scale(workers)
        evs = wait_for_events(lab, cursor, ids, timeout=20, label="after starting a worker")
        took = time.monotonic() - t0
    completed = len({e.task_id for e in evs if e.kind == "complete"})
    return FlaskAloneResult(
        accepted=len(ids), sent=tasks,
        reply_ms=statistics.median(t for _, _, t in replies) * 1e3, watched=watch,
        started_alone=len(started), queued=queued,
        done_after=took if completed == len(ids) else None, completed=completed)


def notebook_sized_faster(lab: Lab) -> FasterResult:
    """07's belief 1 run."""
    return faster(lab, **NOTEBOOK_FASTER)


def notebook_sized_without_flask(lab: Lab) -> StopResult:
    """07's belief 2 run (its lesson: ``answer == "run"``)."""
    return flask_stopped(lab, **NOTEBOOK_WITHOUT_FLASK)


def notebook_sized_flask_alone(lab: Lab) -> FlaskAloneResult:
    """07's belief 4 run."""
    return flask_alone(lab)
