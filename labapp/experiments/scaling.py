"""Scaling (06): how fast W workers drain a queue, against the ideal W/d tasks per second.

I/O-bound tasks (``sleep``) wait without using the CPU, so W workers can finish up to W times
as many per second whatever their type. CPU-bound tasks (``cpu``) hold the GIL while they run:
thread workers in one process take turns on one CPU, process workers can run in parallel on
as many CPUs as this process may use (:func:`available_cpus`: affinity and cgroup quota).
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import TYPE_CHECKING, Any, Sequence

import psutil

from labapp.config import available_cpus
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._control import arranged
from labapp.experiments._control import settle
from labapp.experiments._control import wait_for_events

if TYPE_CHECKING:
    from labapp.stack import Lab

BUDGET = 180.0
TASKS_PER_WORKER = 10  # default run length: each worker gets this many tasks
KINDS = ("io", "cpu")
CALIBRATE_N = 200_000
NEAR_IDEAL = 0.75   # "close to the limit": at least this share of it
NO_GAIN = 1.3       # a speedup below this is "no speedup" (noise on a shared machine)
CLEAR_GAIN = 1.5    # a speedup from this is a clear gain (2 workers on 2 free CPUs: ~2x)


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
    cpu_seconds: float = float("nan")  #: CPU time the worker processes used during the run
    cpu_wall: float = float("nan")     #: the wall-clock window ``cpu_seconds`` was measured in

    @property
    def cpu_share(self) -> float:
        """CPUs' worth of time the workers got: 1.0 = one CPU busy all the time (NaN: unknown)."""
        return self.cpu_seconds / self.cpu_wall if self.cpu_wall > 0 else float("nan")

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

    @property
    def utilisation(self) -> dict[str, float]:
        """Per worker that ran tasks: share of the makespan it spent running them (0 to 1)."""
        first = min(s.start for s in self.spans)
        total = self.makespan or float("nan")
        busy: dict[str, float] = {}
        for s in self.spans:
            busy[s.worker] = busy.get(s.worker, 0.0) + (s.end - max(s.start, first))
        return {w: b / total for w, b in sorted(busy.items(), key=lambda kv: (len(kv[0]), kv[0]))}

    def conclusions(self) -> list[str]:
        """What this run's timeline shows, computed from its spans."""
        use = self.utilisation
        lo, hi = min(use.values()), max(use.values())
        tasks = {w: sum(1 for s in self.spans if s.worker == w) for w in use}
        out = [f"{self.busy_workers} of {self.workers} workers ran tasks "
               f"({min(tasks.values())} to {max(tasks.values())} each) and drained "
               f"{len(self.spans)} tasks in {self.makespan:.2f} s."]
        if self.busy_workers < self.workers:
            out.append(f"{self.workers - self.busy_workers} worker(s) got no task at all: "
                       "the others took everything before they were ready.")
        if lo >= 0.8:
            out.append(f"Every worker that ran tasks was busy {lo:.0%} to {hi:.0%} of the "
                       "time: the gaps between bars are short.")
        else:
            out.append(f"Workers were busy between {lo:.0%} and {hi:.0%} of the time: the "
                       "least busy row has long gaps (it waited for a task, or started late).")
        return out


@dataclasses.dataclass(frozen=True)
class ScalingResult:
    """Drain rate per worker count for one task kind and worker type."""

    kind: str           #: ``io`` (sleep) or ``cpu`` (pure-Python loop)
    worker_type: str    #: ``thread`` or ``process``
    duration: float     #: seconds one task takes alone
    cores: int          #: CPUs this process may use (affinity and cgroup quota)
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
        """What the hardware allows: W/d for I/O, min(W, CPUs)/d for CPU-bound processes,
        and 1/d for CPU-bound threads (one GIL)."""
        if self.kind == "io":
            return self.ideal(workers)
        usable = 1 if self.worker_type == "thread" else min(workers, self.cores)
        return usable / self.task_seconds

    @property
    def efficiency(self) -> dict[int, float]:
        """Measured / the limit (W/d for I/O, what the CPUs allow for CPU-bound tasks)."""
        return {r.workers: r.throughput / self.limit(r.workers) for r in self.runs}

    def keeps_up(self, rate: float) -> int | None:
        """The smallest worker count measured that finished ``rate`` tasks/s or more."""
        return next((r.workers for r in self.runs if r.throughput >= rate), None)

    def conclusions(self, rate: float | None = None) -> list[str]:
        """What this run showed, as sentences computed from its numbers.

        :param rate: an arrival rate (tasks/s) to compare the workers against, e.g. 06's 60.
        """
        runs = self.runs
        one, top = runs[0], runs[-1]
        out = [f"{one.workers} worker{'s' * (one.workers != 1)}: {one.throughput:.1f} tasks/s; "
               f"{top.workers} workers: {top.throughput:.1f} tasks/s "
               f"({self.speedup[top.workers]:.1f}x)."]
        if rate is not None:
            need = self.keeps_up(rate)
            if one.throughput >= rate:
                out.append(f"{one.workers} worker{'s' * (one.workers != 1)} kept up with "
                           f"{rate:g} tasks/s.")
            else:
                out.append(f"{one.workers} worker{'s' * (one.workers != 1)} fell short of "
                           f"{rate:g} tasks/s: the queue would grow by about "
                           f"{rate - one.throughput:.0f} tasks every second.")
            out.append(f"The smallest count measured that keeps up: {need} workers "
                       f"({self.throughput[need]:.0f} tasks/s)." if need else
                       f"None of the counts measured kept up with {rate:g} tasks/s.")
        if self.kind == "io":
            eff = self.efficiency[top.workers]
            if eff >= NEAR_IDEAL:
                out.append(f"At {top.workers} workers that is {eff:.0%} of the ideal W/d: the "
                           "points stay close to the straight ideal line.")
            else:
                out.append(f"At {top.workers} workers that is only {eff:.0%} of the ideal W/d: "
                           "the points fall below the ideal line (each task also costs broker "
                           "round trips, and this machine's CPUs are shared).")
        return out

    @property
    def teaches_lesson(self) -> bool:
        """For I/O, 06's prediction: one worker is too slow for 60 tasks/s and more workers keep
        up. (How close the points come to the ideal line is reported, not taught: it depends
        on how busy the machine is.) For CPU-bound tasks see :class:`CpuComparison`."""
        return (self.kind == "io" and self.runs[0].throughput < BUSY_APP
                and self.keeps_up(BUSY_APP) is not None)

    @property
    def speedup(self) -> dict[int, float]:
        """Throughput relative to the smallest worker count measured."""
        base = self.runs[0].throughput
        return {r.workers: r.throughput / base for r in self.runs}

    def __repr__(self) -> str:
        what = "ideal" if self.kind == "io" else "the limit"
        cells = " · ".join(f"W={w}: {t:.1f}/s ({self.efficiency[w]:.0%} of {what})"
                           for w, t in self.throughput.items())
        return (f"ScalingResult({self.kind}-bound tasks of {self.duration * 1e3:.0f} ms on "
                f"{self.worker_type} workers, {self.cores} CPU{'s' * (self.cores != 1)}:"
                f"\n  {cells})")


def calibrate_cpu(lab: Lab, seconds: float, rounds: int = 3) -> int:
    """Loop count that makes the ``cpu`` task take about ``seconds`` in the lab's workers.

    Timed in a worker (from its executing/complete events), one task at a time, because
    the worker process is what runs the experiment; the fastest round counts, since a
    neighbour's burst of CPU use only slows some rounds down.
    """
    took = []
    for _ in range(rounds):
        cursor = lab.cursor()
        handle = lab.enqueue("cpu", n=CALIBRATE_N)
        evs = wait_for_events(lab, cursor, {handle.id}, timeout=30, label="calibrate",
                              progress=False)
        times = {e.kind: e.time for e in evs}
        if "executing" in times and "complete" in times:
            took.append(times["complete"] - times["executing"])
    if not took:
        raise RuntimeError("the calibration task did not run: see lab.logs('worker')")
    return max(1, int(CALIBRATE_N * seconds / min(took)))


def scaling(lab: Lab, workers: Sequence[int] = (1, 2, 4, 8), kind: str = "io",
            worker_type: str = "thread", tasks: int | None = None,
            duration: float = 0.05) -> ScalingResult:
    """Drain a burst of tasks with each worker count in ``workers``; measure tasks per second.

    :param workers: worker counts to try (each 1 to 16, run in increasing order); the lab's
        count is restored after. Start with 1 for a "one task alone" yardstick.
    :param kind: ``io`` (``sleep`` tasks) or ``cpu`` (``cpu`` tasks sized to ``duration``).
    :param worker_type: ``thread`` or ``process`` workers for these runs.
    :param tasks: tasks per run (1 to 5000); default 10 per worker, so every run lasts ~10 d.
    :param duration: seconds one task takes (0.005 to 5).
    """
    if isinstance(workers, int):
        workers = (workers,)
    workers = tuple(sorted(set(workers))) if all(isinstance(w, int) for w in workers) \
        else tuple(workers)
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
    cores = available_cpus()
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
            cpu0, t0 = _cpu_time(lab), time.monotonic()
            handles = [lab.enqueue(name, **params) for _ in range(counts[w])]
            evs = wait_for_events(lab, cursor, {h.id for h in handles},
                                  timeout=10 + 3 * counts[w] * duration / rate[w], label=f"W={w}",
                                  progress=False)
            cpu1, t1 = _cpu_time(lab), time.monotonic()
            runs.append(ScalingRun(w, _spans(evs), cpu1 - cpu0, t1 - t0))
            progress.update(1, note=f"(last: W={w}, {runs[-1].throughput:.1f} tasks/s)")
    return ScalingResult(kind, worker_type, duration, cores, tuple(runs))


BUSY_APP = 60.0   #: 06's lunchtime arrival rate (tasks/s) for 50 ms I/O tasks
NOTEBOOK_IO = {"workers": (1, 2, 4, 8), "kind": "io", "duration": 0.05}
NOTEBOOK_CPU = {"workers": (1, 2, 4), "kind": "cpu", "duration": 0.05, "tasks": 20}


@dataclasses.dataclass(frozen=True)
class CpuComparison:
    """CPU-bound tasks on thread workers and on process workers (06)."""

    threads: ScalingResult
    processes: ScalingResult

    @property
    def cpus(self) -> int:
        """CPUs the lab could use during the runs."""
        return self.processes.cores

    @property
    def at(self) -> int:
        """The worker count compared: the largest measured that does not exceed the CPUs
        (at least 2 when measured: on one CPU the comparison shows that nothing helps)."""
        common = [w for w in self.processes.workers if w in self.threads.workers and w > 1]
        fits = [w for w in common if w <= self.cpus]
        return max(fits) if fits else min(common, default=1)

    def conclusions(self) -> list[str]:
        """What the two runs showed, computed from their numbers."""
        at, t, p = self.at, self.threads.speedup, self.processes.speedup
        if at == 1:
            return ["Only one worker count was measured: nothing to compare."]
        out = [f"With {at} workers, threads did {t[at]:.1f}x the work per second of one thread, "
               f"processes {p[at]:.1f}x one process (this lab may use {self.cpus} "
               f"CPU{'s' * (self.cpus != 1)})."]
        tshare = self.threads.runs[self.threads.workers.index(at)].cpu_share
        used = f" (together {tshare:.1f} CPUs' worth of time)" if tshare == tshare else ""
        if t[at] < 0.8:
            out.append(f"Threads did not speed up at all{used}: one GIL, so they took turns on "
                       "one CPU, and this run got less CPU time than the 1-thread run (other "
                       "programs were busy).")
        elif t[at] < NO_GAIN:
            out.append(f"Threads stayed near 1x{used}: one GIL, so they took turns on one CPU.")
        else:
            out.append(f"Threads reached {t[at]:.1f}x, more than one GIL should allow: the "
                       "1-thread run was probably slowed by other programs on this machine.")
        if self.cpus == 1:
            out.append("With one CPU, process workers cannot run in parallel either: "
                       + (f"{p[at]:.1f}x is no clear gain." if p[at] < CLEAR_GAIN else
                          f"the {p[at]:.1f}x is noise from a slow 1-process run.")
                       + " On a machine with more CPUs they would scale up to that count.")
        elif p[at] >= CLEAR_GAIN and p[at] > t[at] * 1.2:
            out.append(f"Processes ran in parallel on the {self.cpus} CPUs; the most they can "
                       f"reach is {min(at, self.cpus)}x.")
        else:
            share = self.processes.runs[self.processes.workers.index(at)].cpu_share
            got = (f" the {at} worker processes together got only {share:.1f} CPUs' worth of "
                   "time," if share == share else "")
            out.append(f"This time processes did not beat threads clearly:{got} because other "
                       f"programs were using the {self.cpus} CPUs too. Run the cells again "
                       "when the machine is quiet.")
        big = [w for w in self.processes.workers if w > self.cpus]
        scaled = self.cpus > 1 and p[at] >= CLEAR_GAIN and p[at] > t[at] * 1.2
        if big and scaled:
            w = max(big)
            out.append(f"{w} processes on {self.cpus} CPUs: {p[w]:.1f}x, no better than "
                       f"{self.cpus} would allow: past the CPU count they take turns again."
                       if p[w] <= self.cpus * 1.15 else
                       f"{w} processes on {self.cpus} CPUs: {p[w]:.1f}x, above what "
                       f"{self.cpus} CPUs allow: the 1-process run was slow (a busy machine).")
        return out

    @property
    def teaches_lesson(self) -> bool:
        """True when the runs show 06's lesson for this machine: threads stay near 1x; with
        2+ CPUs processes clearly beat threads, with 1 CPU they do not."""
        at, t, p = self.at, self.threads.speedup, self.processes.speedup
        if at == 1 or t[at] >= NO_GAIN:
            return False
        if self.cpus == 1:
            return p[at] < CLEAR_GAIN
        return p[at] >= CLEAR_GAIN and p[at] > t[at] * 1.2


def notebook_sized(lab: Lab) -> ScalingResult:
    """06's I/O-bound run (``teaches_lesson``: one worker is not enough, more keep up)."""
    return scaling(lab, **NOTEBOOK_IO)


def notebook_sized_cpu(lab: Lab) -> CpuComparison:
    """06's CPU-bound runs on threads and on processes."""
    return CpuComparison(scaling(lab, worker_type="thread", **NOTEBOOK_CPU),
                         scaling(lab, worker_type="process", **NOTEBOOK_CPU))


def _cpu_time(lab: Lab) -> float:
    """User + system CPU seconds of the consumer and the worker processes it forked."""
    pid = lab.status().get("consumer")
    if not pid:
        return float("nan")
    try:
        root = psutil.Process(pid)
        procs_ = [root, *root.children(recursive=True)]
    except psutil.Error:
        return float("nan")
    total = 0.0
    for p in procs_:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a worker that exited between the two calls
            pass
    return total


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
