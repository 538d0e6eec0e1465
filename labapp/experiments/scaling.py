"""Scaling (06): how fast W workers drain a queue, against the ideal W/d tasks per second.

I/O-bound tasks (``sleep``) wait without using the CPU, so W workers finish W times as many
per second whatever their type. CPU-bound tasks (``cpu``) hold the GIL: thread workers in one
process stay at one core's rate, process workers scale up to the number of cores.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import statistics
from typing import Any, Sequence

from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._control import arranged
from labapp.experiments._control import settle
from labapp.experiments._control import wait_for_events

logger = logging.getLogger(__name__)

BUDGET = 180.0
TASKS_PER_WORKER = 10  # default run length: each worker gets this many tasks
KINDS = ("io", "cpu")
CALIBRATE_N = 200_000


@dataclasses.dataclass(frozen=True)
class TaskSpan:
    """One task of a scaling run: which worker ran it, from when to when."""

    worker: str
    enqueued: float
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class ScalingRun:
    """Draining ``len(spans)`` tasks with ``workers`` workers."""

    workers: int
    spans: tuple[TaskSpan, ...]

    @property
    def makespan(self) -> float:
        """Seconds from the first task starting to the last one completing."""
        return max(s.end for s in self.spans) - min(s.start for s in self.spans)

    @property
    def throughput(self) -> float:
        """Tasks completed per second over the makespan."""
        return len(self.spans) / self.makespan

    @property
    def busy_workers(self) -> int:
        """Workers that ran at least one task."""
        return len({s.worker for s in self.spans})


@dataclasses.dataclass(frozen=True)
class ScalingResult:
    """Drain rate per worker count for one task kind and worker type."""

    kind: str           #: ``io`` (sleep) or ``cpu`` (pure-Python loop)
    worker_type: str    #: ``thread`` or ``process``
    duration: float     #: seconds one task takes alone
    cores: int          #: CPU cores this machine has
    runs: tuple[ScalingRun, ...]

    @property
    def workers(self) -> list[int]:
        """Worker counts measured."""
        return [r.workers for r in self.runs]

    @property
    def throughput(self) -> dict[int, float]:
        """Measured tasks per second, by worker count."""
        return {r.workers: r.throughput for r in self.runs}

    @property
    def task_seconds(self) -> float:
        """Seconds one task really took alone: the median run time in the first (smallest) run.

        The yardstick for CPU-bound tasks, whose loop count was calibrated once and may run
        faster or slower than ``duration`` when a neighbour competes for the cores.
        """
        first = self.runs[0].spans
        return statistics.median(s.end - s.start for s in first)

    def ideal(self, workers: int) -> float:
        """Tasks per second if W workers never waited on each other: W/d.

        d is ``duration`` for I/O-bound tasks and the measured :attr:`task_seconds` for
        CPU-bound ones (the smallest run should use one worker for that to mean "alone").
        """
        return workers / (self.duration if self.kind == "io" else self.task_seconds)

    def limit(self, workers: int) -> float:
        """What the hardware allows: W/d for I/O, min(W, cores)/d for CPU-bound processes,
        and 1/d for CPU-bound threads (one GIL)."""
        if self.kind == "io":
            return self.ideal(workers)
        usable = 1 if self.worker_type == "thread" else min(workers, self.cores)
        return usable / self.task_seconds

    @property
    def efficiency(self) -> dict[int, float]:
        """Measured / ideal (W/d) per worker count: 1.0 is perfect scaling."""
        return {r.workers: r.throughput / self.ideal(r.workers) for r in self.runs}

    @property
    def speedup(self) -> dict[int, float]:
        """Throughput relative to the smallest worker count measured."""
        base = self.runs[0].throughput
        return {r.workers: r.throughput / base for r in self.runs}

    def __repr__(self) -> str:
        cells = " · ".join(f"W={w}: {t:.1f}/s ({self.efficiency[w]:.0%} of ideal)"
                           for w, t in self.throughput.items())
        return (f"ScalingResult({self.kind}-bound tasks of {self.duration * 1e3:.0f} ms on "
                f"{self.worker_type} workers, {self.cores} cores:\n  {cells})")


def calibrate_cpu(lab: Any, seconds: float, rounds: int = 3) -> int:
    """Loop count that makes the ``cpu`` task take about ``seconds`` in the lab's workers.

    Timed in a worker (from its executing/complete events), one task at a time, because
    the worker process is what runs the experiment; the fastest round counts, since a
    neighbour's burst of CPU use only slows some rounds down.
    """
    took = []
    for _ in range(rounds):
        cursor = lab.cursor()
        handle = lab.enqueue("cpu", n=CALIBRATE_N)
        evs = wait_for_events(lab, cursor, {handle.id}, timeout=30, label="calibrate")
        times = {e.kind: e.time for e in evs}
        if "executing" in times and "complete" in times:
            took.append(times["complete"] - times["executing"])
    if not took:
        raise RuntimeError("the calibration task did not run: see lab.logs('worker')")
    return max(1, int(CALIBRATE_N * seconds / min(took)))


def scaling(lab: Any, workers: Sequence[int] = (1, 2, 4, 8), kind: str = "io",
            worker_type: str = "thread", tasks: int | None = None,
            duration: float = 0.05) -> ScalingResult:
    """Drain a burst of tasks with each worker count in ``workers``; measure tasks per second.

    :param workers: worker counts to try (each 1 to 16); the lab's count is restored after.
    :param kind: ``io`` (``sleep`` tasks) or ``cpu`` (``cpu`` tasks sized to ``duration``).
    :param worker_type: ``thread`` or ``process`` workers for these runs.
    :param tasks: tasks per run (1 to 5000); default 10 per worker, so every run lasts ~10 d.
    :param duration: seconds one task takes (0.005 to 5).
    """
    if isinstance(workers, int):
        workers = (workers,)
    workers = tuple(workers)
    if not workers or len(workers) > 8:
        raise ValueError(f"workers={workers!r}: give 1 to 8 worker counts, e.g. (1, 2, 4, 8)")
    for w in workers:
        check_range("workers", w, 1, 16, integer=True)
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: use 'io' (sleep tasks) or 'cpu' (a Python loop)")
    if worker_type not in ("thread", "process"):
        raise ValueError(f"worker_type={worker_type!r}: use 'thread' or 'process'")
    check_range("duration", duration, 0.005, 5)
    if tasks is not None:
        check_range("tasks", tasks, 1, 5000, integer=True)
    counts = {w: tasks or TASKS_PER_WORKER * w for w in workers}
    cores = os.cpu_count() or 1
    rate = {w: (w if kind == "io" else (1 if worker_type == "thread" else min(w, cores)))
            for w in workers}
    planned = sum(counts[w] * duration / rate[w] + 1.0 for w in workers)  # + ~1 s to rescale
    if planned > BUDGET:
        raise ValueError(f"tasks x duration is too much work: about {planned:.0f} s planned, "
                         f"allowed up to {BUDGET:.0f} s; use fewer tasks or a shorter duration")
    runs = []
    # One arrangement around all runs: the lab's own workers come back once, at the end.
    with arranged(lab), Progress(f"scaling {kind}", len(workers)) as progress:
        for w in workers:
            lab.scale(w, worker_type)
            settle(lab)
            if kind == "io":
                name, params = "sleep", {"seconds": duration}
            elif w == workers[0]:
                name, params = "cpu", {"n": calibrate_cpu(lab, duration)}
            cursor = lab.cursor()
            handles = [lab.enqueue(name, **params) for _ in range(counts[w])]
            evs = wait_for_events(lab, cursor, {h.id for h in handles},
                                  timeout=10 + 3 * counts[w] * duration / rate[w], label=f"W={w}")
            runs.append(ScalingRun(w, _spans(evs)))
            progress.update(1, note=f"W={w}: {runs[-1].throughput:.1f} tasks/s")
    return ScalingResult(kind, worker_type, duration, cores, tuple(runs))


def _spans(evs: list[Any]) -> tuple[TaskSpan, ...]:
    enq: dict[str, float] = {}
    start: dict[str, Any] = {}
    out = []
    for e in sorted(evs, key=lambda e: e.time):
        if e.kind == "enqueued":
            enq.setdefault(e.task_id, e.time)
        elif e.kind == "executing":
            start[e.task_id] = e
        elif e.kind == "complete" and e.task_id in start:
            s = start.pop(e.task_id)
            out.append(TaskSpan(s.worker, enq.get(e.task_id, s.time), s.time, e.time))
    if not out:
        raise RuntimeError("no task completed: are the workers running? see lab.logs('worker')")
    return tuple(out)
