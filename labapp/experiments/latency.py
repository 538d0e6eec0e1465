"""Latency experiments: doing slow work inside the request vs handing it to the queue (02, 09).

``latency`` times real HTTP requests from concurrent clients running in a separate process
(:mod:`labapp.experiments._load`), against the lab's Flask app with a bounded pool of
request threads, and reads the queued tasks' time to completion from the events stream.
``overhead`` shows the other side: for a ~1 ms job the queue costs more than it saves.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

from labapp import tasks
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import percentile
from labapp.experiments._control import arranged
from labapp.experiments._control import wait_for_events

logger = logging.getLogger(__name__)

MODES = {  # mode -> (method, path template); {task} is the task that is timed
    "hello": ("GET", "/api/hello"),
    "inline": ("POST", "/api/inline/{task}"),
    "queued": ("POST", "/api/enqueue/{task}"),
}
BUDGET = 120.0         # seconds an experiment may plan to take; beyond that: ValueError
DEFAULT_PHASE = 2.0    # seconds the default request count aims at for the slowest mode


@dataclasses.dataclass(frozen=True)
class RequestSample:
    """One HTTP request as the client saw it."""

    mode: str             #: ``hello``, ``inline`` or ``queued``
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
        """Modes measured, in the order they ran."""
        return list(dict.fromkeys(r.mode for r in self.requests))

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
        if self.completions:
            rows.append(("queued task done", self.completion_times))
        return [{"what": name, "n": len(v), "p50_ms": percentile(v, 50) * 1e3,
                 "p95_ms": percentile(v, 95) * 1e3, "max_ms": max(v, default=float("nan")) * 1e3}
                for name, v in rows]

    def __repr__(self) -> str:
        parts = [f"{m} p50 {_ms(self.p50(m))} (p95 {_ms(self.p95(m))})" for m in self.modes]
        head = (f"LatencyResult(d={self.duration:g} s, {self.clients} clients, {self.web_threads} "
                f"web threads: {' · '.join(parts)}")
        tail = []
        if {"inline", "queued"} <= set(self.modes):
            tail.append(f"queued answers {self.speedup:.0f}x sooner")
        if self.completion_times:
            tail.append(f"but its tasks finish {_ms(percentile(self.completion_times, 50))} "
                        f"(p50) after enqueue on {self.workers} workers")
        if self.failed:
            tail.append(f"{self.failed} requests failed")
        return head + ("\n  " + "; ".join(tail) if tail else "") + ")"


def _ms(seconds: float) -> str:
    if seconds != seconds:
        return "n/a"
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.0995 else f"{seconds * 1e3:.1f} ms"


def run_load(lab: Any, phases: list[dict[str, Any]], label: str = "requests",
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
    return {p["name"]: p["samples"] for p in result["phases"]}


def _default_requests(duration: float, clients: int, web_threads: int) -> int:
    # Aim at about DEFAULT_PHASE seconds of inline work: enough samples, short enough cells.
    per_round = duration * clients / min(clients, web_threads)
    return max(2, min(50, math.ceil(DEFAULT_PHASE / per_round))) if per_round > 0 else 50


def latency(lab: Any, duration: float = 0.2, clients: int = 8,
            requests_per_client: int | None = None, web_threads: int = 2,
            modes: Sequence[str] = ("inline", "queued"), task: str = "sleep") -> LatencyResult:
    """Time ``/api/inline/sleep`` against ``/api/enqueue/sleep`` from ``clients`` concurrent clients.

    :param duration: seconds each task sleeps (0 to 30).
    :param clients: concurrent clients (1 to 64); each sends its requests back to back.
    :param requests_per_client: requests per client and mode (default: about 2 s of inline work).
    :param web_threads: the Flask app's request-thread pool for this run (restored afterwards).
    :param modes: any of ``hello`` (empty baseline), ``inline``, ``queued``, run in that order.
    :param task: ``sleep`` (the default) or ``send_email`` — any task with a ``seconds`` argument.
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
    total = clients * requests_per_client
    workers = lab.config.workers
    planned = (("inline" in modes) * total * duration / min(clients, web_threads)
               + ("queued" in modes) * total * duration / max(1, workers))
    if planned > BUDGET:
        raise ValueError(f"clients x requests_per_client x duration is too much work: about "
                         f"{planned:.0f} s planned, allowed up to {BUDGET:.0f} s; "
                         "use fewer requests or a shorter duration")
    phases = []
    for mode in modes:
        method, path = MODES[mode]
        phases.append({"name": mode, "method": method, "path": path.format(task=task),
                       "body": None if mode == "hello" else {"seconds": duration},
                       "clients": clients, "requests_per_client": requests_per_client})
    with arranged(lab, web_threads=web_threads) as cursor:
        raw = run_load(lab, phases, label=f"latency d={duration:g}s x {clients} clients",
                       deadline=30 + 2 * planned)
        samples = tuple(RequestSample(mode, c, s, start, lat, status, tid)
                        for mode in modes for c, s, start, lat, status, tid in raw[mode])
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


def overhead(lab: Any, n: int = 100, task_seconds: float = 0.001) -> OverheadResult:
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
