"""Latency experiments: doing slow work inside the request vs handing it to the queue (02, 09).

``latency`` times real HTTP requests from concurrent clients running in a separate process
(:mod:`labapp.experiments._load`), against the lab's Flask app with a bounded pool of
request threads, and reads the queued tasks' time to completion from the events stream.
``overhead`` shows the other side: for a ~1 ms job the queue costs more than it saves.

Each result says what its run showed with ``conclusions()`` (sentences computed from the
numbers, also when a run contradicts the usual lesson). ``notebook_sized_*`` run the
configurations the notebooks use; the matching ``teaches_*`` properties say whether a run
supports the lesson the notebook states (for ``benchmarks/stability.py``).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any, Sequence

from labapp import tasks
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import percentile
from labapp.experiments._control import arranged
from labapp.experiments._control import wait_for_events
from labapp.units import duration

if TYPE_CHECKING:
    from labapp.stack import Lab

MODES = {  # mode -> (method, path template); {task} is the task that is timed
    "hello": ("GET", "/api/hello"),
    "inline": ("POST", "/api/inline/{task}"),
    "queued": ("POST", "/api/enqueue/{task}"),
}
BUDGET = 120.0         # seconds an experiment may plan to take; beyond that: ValueError
DEFAULT_PHASE = 2.0    # seconds the default request count aims at for the slowest mode
ANNOUNCE = 5.0         # runs planned longer than this say so before they start
PROBE_PATH = "/api/hello"
PROBE_INTERVAL = 0.05  # seconds between a probe client's empty requests
PROBE_CLIENTS = 2      # probe clients: enough samples for a median within a short phase
PROBE_PREFIX = "probe:"  # mode of the probe samples taken while mode X ran: "probe:X"


@dataclasses.dataclass(frozen=True)
class RequestSample:
    """One HTTP request as the client saw it."""

    mode: str             #: ``hello``, ``inline``, ``queued``, or ``probe:<mode>`` (an empty
                          #: request sent while ``<mode>``'s clients were busy; client -1)
    client: int
    seq: int              #: request number within this client
    start: float          #: ``time.time()`` when it was sent
    latency: float        #: seconds until the whole response arrived (``perf_counter``)
    status: int           #: HTTP status (0 = connection failed)
    task_id: str | None   #: the queued task's id (``queued`` only)


@dataclasses.dataclass(frozen=True)
class LatencyResult:
    """Request latencies per mode plus, for queued requests, each task's time to completion."""

    duration: float
    clients: int
    requests_per_client: int
    web_threads: int
    workers: int
    requests: tuple[RequestSample, ...]
    #: (task id, enqueued time, complete time or NaN) for every queued request
    completions: tuple[tuple[str, float, float], ...]

    @property
    def modes(self) -> list[str]:
        """Modes measured, in the order they ran (probe samples are listed by :attr:`probes`)."""
        return list(dict.fromkeys(r.mode for r in self.requests
                                  if not r.mode.startswith(PROBE_PREFIX)))

    @property
    def probes(self) -> list[str]:
        """Modes during which a probe client sent empty requests (``probe=True``)."""
        return list(dict.fromkeys(r.mode[len(PROBE_PREFIX):] for r in self.requests
                                  if r.mode.startswith(PROBE_PREFIX)))

    def probe_latencies(self, mode: str) -> list[float]:
        """Latencies (s) of the empty requests sent while ``mode``'s clients were busy."""
        return self.latencies(PROBE_PREFIX + mode)

    def latencies(self, mode: str) -> list[float]:
        """Client-side latencies (s) of the successful requests of ``mode``."""
        return [r.latency for r in self.requests if r.mode == mode and 200 <= r.status < 300]

    def p50(self, mode: str) -> float:
        """Median latency (s) of ``mode``."""
        return percentile(self.latencies(mode), 50)

    def p95(self, mode: str) -> float:
        """95th-percentile latency (s) of ``mode``."""
        return percentile(self.latencies(mode), 95)

    @property
    def failed(self) -> int:
        """Requests that did not get a 2xx answer."""
        return sum(1 for r in self.requests if not 200 <= r.status < 300)

    @property
    def completion_times(self) -> list[float]:
        """Seconds from enqueue to completion of each queued task that completed."""
        return [done - enq for _, enq, done in self.completions if done == done]

    @property
    def speedup(self) -> float:
        """How many times faster the queued request answers than the inline one (p50 ratio)."""
        return self.p50("inline") / self.p50("queued")

    def table(self) -> list[dict[str, Any]]:
        """One row per mode (and for queued tasks' completion): n, p50/p95/max in ms."""
        rows = [(mode, self.latencies(mode)) for mode in self.modes]
        rows += [(f"hello during {mode}", self.probe_latencies(mode)) for mode in self.probes]
        if self.completions:
            rows.append(("queued task done", self.completion_times))
        return [{"what": name, "n": len(v), "p50_ms": percentile(v, 50) * 1e3,
                 "p95_ms": percentile(v, 95) * 1e3, "max_ms": max(v, default=float("nan")) * 1e3}
                for name, v in rows]

    def __repr__(self) -> str:
        parts = [f"{m} p50 {duration(self.p50(m))} (p95 {duration(self.p95(m))})"
                 for m in self.modes]
        head = (f"LatencyResult(d={self.duration:g} s, {self.clients} clients, {self.web_threads} "
                f"web threads: {' · '.join(parts)}")
        tail = []
        if {"inline", "queued"} <= set(self.modes):
            tail.append(f"queued answers {self.speedup:.0f}x sooner")
        if self.completion_times:
            tail.append(f"but its tasks finish {duration(percentile(self.completion_times, 50))} "
                        f"(p50) after enqueue on {self.workers} workers")
        if self.failed:
            tail.append(f"{self.failed} requests failed")
        return head + ("\n  " + "; ".join(tail) if tail else "") + ")"

    # -------------------------------------------------------------- what this run showed
    def closest(self, choices: Sequence[float], mode: str = "inline") -> float | None:
        """The value of ``choices`` (seconds) nearest, by ratio, to this run's median ``mode``
        latency (a Predict's ``truth``); None when nothing of ``mode`` was measured."""
        p50 = self.p50(mode)
        if not p50 > 0:
            return None
        return min(choices, key=lambda c: abs(math.log(c / p50)))

    @property
    def thread_wait(self) -> float:
        """Median seconds an inline request spent beyond the work itself (waiting for a thread)."""
        return self.p50("inline") - self.duration

    @property
    def waits_for_threads(self) -> bool:
        """True when inline requests took at least twice the work: they queued for a thread."""
        return self.p50("inline") >= 2 * self.duration + 0.01

    @property
    def queued_sooner(self) -> bool:
        """True when the queued request answered in under half the inline time (p50)."""
        return self.p50("queued") < self.p50("inline") / 2

    @property
    def work_not_faster(self) -> bool:
        """True when the queued tasks finished no sooner than the work takes (p50)."""
        return percentile(self.completion_times, 50) >= self.duration * 0.95

    @property
    def others_wait(self) -> bool:
        """True when empty requests sent during the inline load took longer than the work."""
        return percentile(self.probe_latencies("inline"), 50) >= self.duration

    @property
    def teaches_alone(self) -> bool:
        """One client (02): the queued request answers far sooner than the inline one."""
        return self.queued_sooner

    @property
    def teaches_crowd(self) -> bool:
        """Many clients, small pool (02): inline requests wait for a thread, everybody else
        waits too, the queued request still answers at once, the work itself is not faster."""
        probed = "inline" not in self.probes or self.others_wait
        return self.waits_for_threads and self.queued_sooner and self.work_not_faster and probed

    @property
    def teaches_not_faster(self) -> bool:
        """Myth 1 (07): the request answers sooner, the task does not finish sooner."""
        return self.queued_sooner and self.work_not_faster

    def conclusions(self) -> list[str]:
        """What this run showed, in plain sentences with its numbers."""
        out: list[str] = []
        work = f"{duration(self.duration)} of work"
        if "inline" in self.modes:
            inline = self.p50("inline")
            pool = (f"{self.clients} client{'s' if self.clients != 1 else ''} and "
                    f"{self.web_threads} request thread{'s' if self.web_threads != 1 else ''}")
            if self.waits_for_threads:
                out.append(f"With {pool}, an inline request took {duration(inline)} (median) for "
                           f"{work}: about {duration(self.thread_wait)} of it was waiting for a "
                           f"free request thread.")
            else:
                why = (" (there were enough threads for every client)"
                       if self.clients <= self.web_threads else "")
                out.append(f"With {pool}, an inline request took {duration(inline)} (median) for "
                           f"{work}: it hardly waited for a thread this time{why}.")
        for mode in self.probes:
            probe = self.probe_latencies(mode)
            if not probe:
                continue
            idle = (f", against {duration(self.p50('hello'))} when nothing else ran"
                    if "hello" in self.modes else "")
            line = (f"An empty request (/api/hello) sent while the {mode} requests ran took "
                    f"{duration(percentile(probe, 50))} (median of {len(probe)}){idle}")
            if mode == "inline":
                line += (": slow work in the handler made everybody wait."
                         if self.others_wait else
                         ": this time the slow requests did not hold it up noticeably.")
            else:
                line += "."
            out.append(line)
        if {"inline", "queued"} <= set(self.modes):
            queued, inline = self.p50("queued"), self.p50("inline")
            if self.queued_sooner:
                out.append(f"A queued request answered in {duration(queued)} (median), "
                           f"{inline / queued:.0f}x sooner than inline: it only writes a "
                           "message to the broker.")
            else:
                out.append(f"This run, a queued request ({duration(queued)}) was not clearly "
                           f"faster than an inline one ({duration(inline)}): with so little work "
                           "there is little to hand off.")
        done = self.completion_times
        if done:
            p50 = percentile(done, 50)
            if self.work_not_faster:
                out.append(f"The queued tasks themselves finished {duration(p50)} after they were "
                           f"enqueued (median, {self.workers} workers): the work took as long "
                           "as ever, plus its wait in the queue.")
            else:
                out.append(f"The queued tasks finished {duration(p50)} after they were enqueued "
                           f"(median), sooner than {work}: the clock readings look wrong; run "
                           "it again.")
            missing = len(self.completions) - len(done)
            if missing:
                out.append(f"{missing} queued tasks did not finish in time.")
        if self.failed:
            out.append(f"{self.failed} requests got no 2xx answer.")
        return out


def run_load(lab: Lab, phases: list[dict[str, Any]], label: str = "requests",
             deadline: float = BUDGET) -> dict[str, list[list[Any]]]:
    """Run HTTP ``phases`` against the lab from a separate client process; samples per phase."""
    spec = {"host": "127.0.0.1", "port": lab.port, "deadline": deadline, "phases": phases}
    total = sum(p["clients"] * p["requests_per_client"] for p in phases)
    result: dict[str, Any] | None = None
    # stderr goes to a file: a pipe nobody reads while stdout streams could fill and stall it.
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "labapp.experiments._load"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                text=True)
        try:
            proc.stdin.write(json.dumps(spec))
            proc.stdin.close()
            with Progress(label, total) as progress:
                for line in proc.stdout:
                    msg = json.loads(line)
                    if "progress" in msg:
                        progress.update(msg["progress"] - progress.done)
                    else:
                        result = msg
            proc.wait(10)
        finally:
            if proc.poll() is None:  # interrupted: the clients must not keep hammering the app
                proc.kill()
                proc.wait()
            proc.stdout.close()
        errors.seek(0)
        stderr = errors.read()
    if result is None:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode}): "
                           f"{stderr.strip()[-500:]}")
    out = {p["name"]: p["samples"] for p in result["phases"]}
    out.update({PROBE_PREFIX + p["name"]: p["probe_samples"] for p in result["phases"]
                if p.get("probe_samples")})
    return out


def _default_requests(duration: float, clients: int, web_threads: int) -> int:
    # Aim at about DEFAULT_PHASE seconds of inline work: enough samples, short enough cells.
    per_round = duration * clients / min(clients, web_threads)
    return max(2, min(50, math.ceil(DEFAULT_PHASE / per_round))) if per_round > 0 else 50


def planned_seconds(duration: float, clients: int, requests_per_client: int, web_threads: int,
                    workers: int, modes: Sequence[str] = ("inline", "queued")) -> float:
    """Seconds of work a :func:`latency` run plans: inline on the web pool, queued on the workers."""
    total = clients * requests_per_client
    return (("inline" in modes) * total * duration / min(clients, web_threads)
            + ("queued" in modes) * total * duration / max(1, workers))


def latency(lab: Lab, duration: float = 0.2, clients: int = 8,
            requests_per_client: int | None = None, web_threads: int = 2,
            modes: Sequence[str] = ("inline", "queued"), task: str = "sleep",
            probe: bool = False) -> LatencyResult:
    """Time ``/api/inline/sleep`` against ``/api/enqueue/sleep`` from ``clients`` concurrent clients.

    :param duration: seconds each task sleeps (0 to 30).
    :param clients: concurrent clients (1 to 64); each sends its requests back to back.
    :param requests_per_client: requests per client and mode (default: about 2 s of inline work).
    :param web_threads: the Flask app's request-thread pool for this run (restored afterwards).
    :param modes: any of ``hello`` (empty baseline), ``inline``, ``queued``, run in that order.
    :param task: ``sleep`` (the default) or ``send_email`` — any task with a ``seconds`` argument.
    :param probe: also send empty requests (``GET /api/hello``, every 50 ms, from two more
        clients) while the ``inline`` clients run: what their slow requests cost a visitor
        who wants something else (:meth:`LatencyResult.probe_latencies`). Compare with the
        ``hello`` mode, which runs alone.
    """
    check_range("duration", duration, 0, 30)
    check_range("clients", clients, 1, 64, integer=True)
    check_range("web_threads", web_threads, 1, 32, integer=True)
    if requests_per_client is None:
        requests_per_client = _default_requests(duration, clients, web_threads)
    check_range("requests_per_client", requests_per_client, 1, 10_000 // clients, integer=True)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes or len(set(modes)) != len(modes):
        raise ValueError(f"modes={tuple(modes)!r}: choose distinct modes from {', '.join(MODES)}")
    if task not in ("sleep", "send_email"):
        raise ValueError(f"task={task!r}: use 'sleep' or 'send_email' (tasks with seconds=)")
    workers = lab.config.workers
    planned = planned_seconds(duration, clients, requests_per_client, web_threads, workers, modes)
    if planned > BUDGET:
        raise ValueError(f"clients x requests_per_client x duration is too much work: about "
                         f"{planned:.0f} s planned, allowed up to {BUDGET:.0f} s; "
                         "use fewer requests or a shorter duration")
    phases = _phases(modes, task, duration, clients, requests_per_client, probe)
    if planned > ANNOUNCE:
        print(f"latency: about {planned:.0f} s of work planned "
              f"({clients} clients x {requests_per_client} requests per mode)", flush=True)
    with arranged(lab, web_threads=web_threads) as cursor:
        raw = run_load(lab, phases, label=f"latency d={duration:g}s x {clients} clients",
                       deadline=30 + 2 * planned)
        samples = tuple(RequestSample(mode, c, s, start, lat, status, tid)
                        for mode in raw for c, s, start, lat, status, tid in raw[mode])
        ids = {r.task_id for r in samples if r.task_id}
        completions: list[tuple[str, float, float]] = []
        if ids and workers > 0:
            evs = wait_for_events(lab, cursor, ids, timeout=30 + 2 * planned,
                                  label="queued tasks")
            enq = {e.task_id: e.time for e in reversed(evs) if e.kind == "enqueued"}
            done = {e.task_id: e.time for e in evs if e.kind == "complete"}
            completions = [(i, enq.get(i, float("nan")), done.get(i, float("nan")))
                           for i in sorted(ids, key=lambda i: enq.get(i, 0.0))]
    return LatencyResult(duration, clients, requests_per_client, web_threads, workers,
                         samples, tuple(completions))


def _phases(modes: Sequence[str], task: str, duration: float, clients: int,
            requests_per_client: int, probe: bool) -> list[dict[str, Any]]:
    """The load generator's phases: one per mode, in order; probes beside ``inline``."""
    phases = []
    for mode in modes:
        method, path = MODES[mode]
        phases.append({"name": mode, "method": method, "path": path.format(task=task),
                       "body": None if mode == "hello" else {"seconds": duration},
                       "clients": clients, "requests_per_client": requests_per_client})
        if probe and mode == "inline":
            phases[-1]["probe"] = {"path": PROBE_PATH, "interval": PROBE_INTERVAL,
                                   "clients": PROBE_CLIENTS}
    return phases


#: The configurations notebook 02 runs (also used by ``benchmarks/stability.py``).
NB02_ALONE = dict(duration=0.2, clients=1, requests_per_client=5, web_threads=2)
NB02_CROWD = dict(duration=0.2, clients=8, requests_per_client=3, web_threads=2,
                  modes=("hello", "inline", "queued"), probe=True)


def notebook_sized_alone(lab: Lab) -> LatencyResult:
    """Notebook 02's one-client run (lesson: :attr:`LatencyResult.teaches_alone`)."""
    return latency(lab, **NB02_ALONE)


def notebook_sized_crowd(lab: Lab) -> LatencyResult:
    """Notebook 02's eight-client run (lesson: :attr:`LatencyResult.teaches_crowd`)."""
    return latency(lab, **NB02_CROWD)


# ----------------------------------------------------------------------------- overhead
@dataclasses.dataclass(frozen=True)
class OverheadResult:
    """Per run of a tiny task: how long the caller was blocked and how long until it was done."""

    task_seconds: float
    #: mode -> tuple of (caller blocked s, done after s) per run; modes inline, thread, queue
    samples: dict[str, tuple[tuple[float, float], ...]]

    def blocked(self, mode: str) -> list[float]:
        """Seconds the caller could not do anything else, per run."""
        return [b for b, _ in self.samples[mode]]

    def done(self, mode: str) -> list[float]:
        """Seconds from the call until the work had finished, per run."""
        return [d for _, d in self.samples[mode]]

    def p50(self, mode: str) -> float:
        """Median time to done (s)."""
        return percentile(self.done(mode), 50)

    @property
    def extra_ms(self) -> dict[str, float]:
        """Median time to done minus the inline median, in ms: what each hand-off adds."""
        base = self.p50("inline")
        return {m: (self.p50(m) - base) * 1e3 for m in self.samples}

    def __repr__(self) -> str:
        n = len(next(iter(self.samples.values())))
        done = " · ".join(f"{m} {self.p50(m) * 1e3:.2f}" for m in self.samples)
        blocked = " · ".join(f"{m} {percentile(self.blocked(m), 50) * 1e3:.2f}"
                             for m in self.samples)
        return (f"OverheadResult({n} runs of a {self.task_seconds * 1e3:g} ms job, p50 until "
                f"done: {done} ms;\n  caller blocked: {blocked} ms; the queue adds "
                f"{self.extra_ms['queue']:.1f} ms per job)")

    @property
    def teaches_overhead(self) -> bool:
        """For a tiny job (09) the queue is the slowest way to get it done (p50)."""
        return self.p50("queue") > max(self.p50("inline"), self.p50("thread"))

    def conclusions(self) -> list[str]:
        """What this run showed, in plain sentences with its numbers."""
        job = f"a {self.task_seconds * 1e3:g} ms job"
        done = ", ".join(f"{_MODE_WORDS.get(m, m)} {duration(self.p50(m))}" for m in self.samples)
        out = [f"Until {job} was done (median of {len(self.done('inline'))} runs): {done}."]
        extra = self.extra_ms.get("queue", float("nan"))
        if self.teaches_overhead:
            out.append(f"The queue added {extra:.1f} ms per job over doing it inline: "
                       "writing the message, a worker taking it, storing the result, reading "
                       "it back. For work this small that costs more than the work.")
        else:
            out.append(f"This run the queue was not the slowest way ({extra:+.1f} ms against "
                       "inline): the machine was probably busy with something else; run it "
                       "again.")
        blocked = percentile(self.blocked("queue"), 50)
        out.append(f"The caller itself was blocked only {duration(blocked)} by the enqueue.")
        return out


_MODE_WORDS = {"inline": "inline", "thread": "thread pool", "queue": "through the queue"}


def overhead(lab: Lab, n: int = 100, task_seconds: float = 0.001) -> OverheadResult:
    """A tiny task done inline, in a thread pool and through the queue, ``n`` times each.

    :param n: runs per mode (1 to 2000), one at a time.
    :param task_seconds: how long the task takes (0 to 0.1 s; default 1 ms).
    """
    check_range("n", n, 1, 2000, integer=True)
    check_range("task_seconds", task_seconds, 0, 0.1)
    if lab.config.workers < 1:
        raise ValueError("overhead needs at least 1 worker: run lab.scale(2) first")
    fn = tasks.TASKS["sleep"].call_local
    out: dict[str, list[tuple[float, float]]] = {"inline": [], "thread": [], "queue": []}
    with arranged(lab), Progress("overhead", 3 * n) as progress, \
            concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn, 0).result()  # start the pool's thread before timing it
        for _ in range(n):
            t0 = time.perf_counter()
            fn(task_seconds)
            t1 = time.perf_counter()
            out["inline"].append((t1 - t0, t1 - t0))

            t0 = time.perf_counter()
            future = pool.submit(fn, task_seconds)
            t1 = time.perf_counter()
            future.result()
            out["thread"].append((t1 - t0, time.perf_counter() - t0))

            t0 = time.perf_counter()
            handle = lab.enqueue("sleep", seconds=task_seconds)
            t1 = time.perf_counter()
            # Wait on the task's result, as an app would: the events stream is written by
            # workers in small batches (a few ms late), which would inflate the queue's cost.
            try:
                lab.result(handle, timeout=10)
            except Exception as exc:  # huey raises ResultTimeout (or the task's error)
                raise RuntimeError(f"a queued task did not finish within 10 s ({exc}): "
                                   "are the workers up?") from None
            out["queue"].append((t1 - t0, time.perf_counter() - t0))
            progress.update(3)
    return OverheadResult(task_seconds, {m: tuple(v) for m, v in out.items()})


def notebook_sized_overhead(lab: Lab) -> OverheadResult:
    """Notebook 09's run: 100 one-millisecond jobs per hand-off (lesson: ``teaches_overhead``)."""
    return overhead(lab, n=100)
