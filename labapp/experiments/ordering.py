"""Myth 3, "tasks run in the order they were queued": enqueue order vs start vs completion order.

``N`` ``record`` tasks with seeded random durations go to ``W`` workers. The queue hands them
out first in, first out (Huey's Redis storage: ``LPUSH`` to enqueue, ``BRPOP`` to dequeue);
the recorded start order can still swap neighbours when several workers take tasks within
the same millisecond, and the completion order differs once two workers run tasks of
different lengths.
With one worker the order holds, until a task fails and is retried: Huey puts the retry at
the back of the queue (or into the schedule, with a delay), so it finishes after later tasks.
"""
from __future__ import annotations

import bisect
import dataclasses
import random
import time
from typing import TYPE_CHECKING, Any, Sequence

from labapp import events
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import inversions
from labapp.experiments._control import arranged
from labapp.experiments._control import wait_for_events

if TYPE_CHECKING:
    from labapp.stack import Lab

BUDGET = 120.0  # seconds of planned work allowed; beyond that: ValueError


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One execution of one task on one worker, from its ``executing`` to its end event."""

    seq: int        #: the task's enqueue index (0 = enqueued first)
    task_id: str
    worker: str     #: e.g. ``worker-2``
    start: float    #: ``time.time()`` of ``executing``
    end: float      #: ``time.time()`` of ``complete`` or ``error`` (NaN if it never ended)
    outcome: str    #: ``complete``, ``error`` or ``lost``


@dataclasses.dataclass(frozen=True)
class OrderingResult:
    """Per-task timestamps of one ordering run, with the three orders and their inversions."""

    n: int
    workers: int
    seed: int
    durations: tuple[float, ...]   #: seconds each task slept, by enqueue index
    retried: int | None            #: enqueue index of the task that failed once, if any
    enqueued: tuple[float, ...]    #: ``time.time()`` of each task's ``enqueued`` event
    attempts: tuple[Attempt, ...]

    def _first(self, outcome: str | None) -> dict[int, Attempt]:
        out: dict[int, Attempt] = {}
        for a in sorted(self.attempts, key=lambda a: a.start):
            if (outcome is None or a.outcome == outcome) and a.seq not in out:
                out[a.seq] = a
        return out

    @property
    def start_order(self) -> list[int]:
        """Enqueue indices in the order the tasks first started."""
        first = self._first(None)
        return sorted(first, key=lambda s: first[s].start)

    @property
    def completion_order(self) -> list[int]:
        """Enqueue indices in the order the tasks completed."""
        done = self._first("complete")
        return sorted(done, key=lambda s: done[s].end)

    @property
    def inversions(self) -> int:
        """Pairs of tasks that completed in the opposite order to their enqueueing."""
        return inversions(self.completion_order)

    @property
    def start_inversions(self) -> int:
        """Pairs of tasks that started in the opposite order to their enqueueing."""
        return inversions(self.start_order)

    @property
    def pairs(self) -> int:
        """How many pairs could be out of order: n(n-1)/2."""
        return self.n * (self.n - 1) // 2

    @property
    def out_of_place(self) -> int:
        """Tasks whose completion position differs from their enqueue position.

        One task moved to the end shifts every later task by one position, so this counts
        them all; :attr:`moved` counts only the task(s) that really changed place.
        """
        return sum(1 for pos, seq in enumerate(self.completion_order) if pos != seq)

    @property
    def moved(self) -> int:
        """The fewest tasks that must be taken out and re-inserted to restore queue order.

        ``n`` minus the longest run of tasks that completed in queue order (not necessarily
        adjacent): one retried task that ends up last counts as 1, not as every task it shifted.
        """
        return len(self.completion_order) - longest_in_order(self.completion_order)

    @property
    def moved_tasks(self) -> list[int]:
        """Enqueue indices of the tasks counted by :attr:`moved` (one choice, when several fit)."""
        keep = set(in_order_members(self.completion_order))
        return [s for s in self.completion_order if s not in keep]

    @property
    def completed(self) -> int:
        """Tasks that completed."""
        return len(self.completion_order)

    def conclusions(self) -> list[str]:
        """What this run showed, as sentences computed from its numbers."""
        workers = f"{self.workers} worker{'s' * (self.workers != 1)}"
        out = []
        if self.completed < self.n:
            out.append(f"Only {self.completed} of {self.n} tasks completed: see lab.logs('worker').")
        if self.inversions == 0:
            why = ("one worker ran them one after the other" if self.workers == 1 else
                   "this time no short task overtook a longer one (try another seed)")
            out.append(f"All {self.completed} tasks completed in the order they were queued "
                       f"(0 of {self.pairs} pairs swapped): {why}.")
        else:
            out.append(f"The tasks did not complete in queue order: {self.inversions} of "
                       f"{self.pairs} pairs completed the other way round; {self.moved} of "
                       f"{self.completed} tasks changed place (the fewest that must move to "
                       f"restore the order).")
        if self.start_inversions == 0:
            out.append("They started in queue order (0 swapped pairs): the queue hands tasks "
                       "out first in, first out.")
        else:
            out.append(f"Even the start order had {self.start_inversions} swapped "
                       f"pair{'s' * (self.start_inversions != 1)}: the queue hands tasks out in "
                       f"order, but with {workers} taking them within the same millisecond, "
                       f"which one records its start first is up to the operating system.")
        if self.retried is not None and self.retried in self.completion_order:
            pos = self.completion_order.index(self.retried)
            later = sum(1 for s in self.completion_order[:pos] if s > self.retried)
            out.append(f"Task {self.retried} failed once; its retry completed in position {pos} "
                       f"(counting from 0), after {later} task{'s' * (later != 1)} queued "
                       f"behind it.")
        return out

    @property
    def teaches_lesson(self) -> bool:
        """True when this run shows what 07 teaches: the completion order differs from the queue
        order (with a retried task: that task completed after some task queued behind it)."""
        if self.retried is not None:
            order = self.completion_order
            if self.retried not in order:
                return False
            return any(s > self.retried for s in order[:order.index(self.retried)])
        return self.inversions > 0

    @property
    def worker_names(self) -> list[str]:
        """Workers that ran at least one attempt, in natural order."""
        names = {a.worker for a in self.attempts}
        return sorted(names, key=lambda w: (len(w), w))

    def __repr__(self) -> str:
        retry = f", task {self.retried} failed once and was retried" if self.retried is not None \
            else ""
        workers = f"{self.workers} worker{'s' * (self.workers != 1)}"
        return (f"OrderingResult({self.n} tasks on {workers} (seed {self.seed}{retry}): "
                f"completion order has {self.inversions} inversions of {self.pairs} pairs, "
                f"{self.moved} tasks moved;\n  start order has "
                f"{self.start_inversions} inversions; completion order "
                f"{_preview(self.completion_order)})")


def longest_in_order(seq: Sequence[int]) -> int:
    """Length of the longest increasing subsequence of ``seq`` (O(n log n), patience sorting)."""
    tails: list[int] = []
    for x in seq:
        i = bisect.bisect_left(tails, x)
        if i == len(tails):
            tails.append(x)
        else:
            tails[i] = x
    return len(tails)


def in_order_members(seq: Sequence[int]) -> list[int]:
    """One longest increasing subsequence of ``seq`` (the tasks that kept their relative order)."""
    tails: list[int] = []       # index into seq of the smallest tail of each length
    parent: list[int] = [-1] * len(seq)
    for i, x in enumerate(seq):
        j = bisect.bisect_left([seq[t] for t in tails], x)
        parent[i] = tails[j - 1] if j else -1
        if j == len(tails):
            tails.append(i)
        else:
            tails[j] = i
    out, i = [], tails[-1] if tails else -1
    while i >= 0:
        out.append(seq[i])
        i = parent[i]
    return out[::-1]


def _preview(seq: list[int], limit: int = 12) -> str:
    head = ", ".join(map(str, seq[:limit]))
    return f"[{head}{', …' if len(seq) > limit else ''}]"


def ordering(lab: Lab, n: int = 20, workers: int = 4, seed: int = 0, max_seconds: float = 0.2,
             retried: int | None = None, worker_type: str | None = None) -> OrderingResult:
    """Enqueue ``n`` tasks with seeded random durations on ``workers`` workers; compare orders.

    :param n: tasks (2 to 500), enqueued one after the other.
    :param workers: workers for this run (1 to 16); the lab's own count is restored afterwards.
    :param seed: seed of the random durations (same seed, same durations).
    :param max_seconds: durations are drawn uniformly from 10 % to 100 % of this (0 to 5 s).
    :param retried: enqueue index of one task that fails once and is retried (``retries=1``,
        no delay) instead of sleeping; None for no failures.
    :param worker_type: ``thread`` or ``process`` (default: the lab's).
    """
    check_range("n", n, 2, 500, integer=True)
    check_range("workers", workers, 1, 16, integer=True)
    check_range("max_seconds", max_seconds, 0, 5)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed={seed!r} must be a whole number (the same seed repeats a run)")
    if retried is not None:
        check_range("retried", retried, 0, n - 1, integer=True)
    if worker_type not in (None, "thread", "process"):
        raise ValueError(f"worker_type={worker_type!r}: use 'thread' or 'process'")
    rng = random.Random(seed)
    durations = [round(rng.uniform(0.1 * max_seconds, max_seconds), 4) for _ in range(n)]
    if retried is not None:
        durations[retried] = 0.0  # the flaky task does not sleep
    planned = sum(durations) / workers
    if planned > BUDGET:
        raise ValueError(f"n x max_seconds / workers is too much work: about {planned:.0f} s "
                         f"planned, allowed up to {BUDGET:.0f} s; lower n or max_seconds")
    flaky_key = f"ordering-{time.time_ns()}"
    with arranged(lab, workers=workers, worker_type=worker_type) as cursor:
        lab.redis.delete(events.key(lab.name, "record"))  # so it shows this run's completion order
        handles = []
        with Progress("enqueue", n) as progress:
            for seq, seconds in enumerate(durations):
                if seq == retried:
                    handles.append(lab.enqueue("flaky", key=flaky_key, fail_times=1, retries=1))
                else:
                    handles.append(lab.enqueue("record", seq=seq, seconds=seconds))
                progress.update(1)
        seq_of = {h.id: seq for seq, h in enumerate(handles)}
        evs = wait_for_events(lab, cursor, set(seq_of), timeout=10 + 2 * planned + 0.05 * n,
                              label=f"ordering {n} tasks")
        lab.redis.delete(events.key(lab.name, "flaky", flaky_key))
    return OrderingResult(n, workers, seed, tuple(durations), retried,
                          _enqueue_times(evs, seq_of, n), _attempts(evs, seq_of))


NOTEBOOK = {"n": 20, "workers": 4, "max_seconds": 0.2}          #: 07, several workers
NOTEBOOK_RETRY = {"n": 8, "workers": 1, "max_seconds": 0.05, "retried": 2}  #: 07, one worker


def notebook_sized(lab: Lab) -> OrderingResult:
    """07's run with several workers (``teaches_lesson``: completion order differs)."""
    return ordering(lab, **NOTEBOOK)


def notebook_sized_retry(lab: Lab) -> OrderingResult:
    """07's run with one worker and one retried task (``teaches_lesson``: the retry lands late)."""
    return ordering(lab, **NOTEBOOK_RETRY)


def _enqueue_times(evs: list[Any], seq_of: dict[str, int], n: int) -> tuple[float, ...]:
    out = [float("nan")] * n
    for e in evs:
        # The first enqueued event is the producer's; a retry's re-enqueue comes later.
        if e.kind == "enqueued" and out[seq_of[e.task_id]] != out[seq_of[e.task_id]]:
            out[seq_of[e.task_id]] = e.time
    return tuple(out)


def _attempts(evs: list[Any], seq_of: dict[str, int]) -> tuple[Attempt, ...]:
    """Pair each ``executing`` event with the next complete/error event of the same task."""
    open_: dict[str, Any] = {}
    out: list[Attempt] = []
    for e in sorted(evs, key=lambda e: e.time):
        if e.kind == "executing":
            open_[e.task_id] = e
        elif e.kind in ("complete", "error") and e.task_id in open_:
            s = open_.pop(e.task_id)
            out.append(Attempt(seq_of[e.task_id], e.task_id, s.worker, s.time, e.time, e.kind))
    for s in open_.values():  # started, never ended: the worker died under it
        out.append(Attempt(seq_of[s.task_id], s.task_id, s.worker, s.time, float("nan"), "lost"))
    return tuple(sorted(out, key=lambda a: a.start))
