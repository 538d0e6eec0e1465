"""Huey, RQ and Celery side by side: the same tasks, the same server, the same run.

Each tool gets its minimal setup (a module in :mod:`labapp.compare`), one worker that runs
one task at a time, and database 1 of the lab's own server. Throughput is measured on the
worker's clock: a ``gate`` task holds the worker while the producer enqueues the batch, then
``throughput = tasks / (last task's finish time − gate's finish time)``, so it is the
worker's pace, not the producer's.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import redis

from labapp import compare
from labapp import procs
from labapp.broker import BrokerError
from labapp.compare.runner import RQ_WORKERS
from labapp.compare.runner import Client
from labapp.compare.runner import load
from labapp.compare.runner import setup_lines
from labapp.compare.runner import worker_command
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import percentile

logger = logging.getLogger(__name__)

TOOLS = ("huey", "rq", "celery")
MAX_SECONDS = 300.0


@dataclasses.dataclass
class ToolRun:
    """One tool: worker command, setup size, startup time and raw per-task timings."""

    tool: str
    command: list[str]          #: the worker's command line
    setup_lines: int            #: code lines of the minimal setup module (no blanks/comments)
    startup_s: float            #: worker spawn → first task's result visible to the producer
    enqueue_s: list[float]      #: seconds per no-op enqueue call (producer side)
    gate_end: float             #: worker time.time() when the no-op batch was released
    noop_done: list[float]      #: worker time.time() at the end of each no-op
    sleep_seconds: float
    sleep_gate_end: float = float("nan")
    sleep_done: list[float] = dataclasses.field(default_factory=list)

    @property
    def noop_throughput_per_s(self) -> float:
        """No-op tasks per second, as the worker ran them."""
        return _rate(self.noop_done, self.gate_end)

    @property
    def sleep_throughput_per_s(self) -> float:
        """sleep(d) tasks per second (ideal: 1/d with one worker)."""
        return _rate(self.sleep_done, self.sleep_gate_end)

    @property
    def enqueue_p50_ms(self) -> float:
        """Median enqueue call, in milliseconds."""
        return percentile(self.enqueue_s, 50) * 1000

    @property
    def overhead_ms(self) -> float:
        """Per-task time beyond the sleep itself, in milliseconds (NaN without sleep tasks)."""
        rate = self.sleep_throughput_per_s
        return (1 / rate - self.sleep_seconds) * 1000 if rate == rate and rate > 0 else float("nan")


def _rate(done: list[float], start: float) -> float:
    if not done or not start == start or max(done) <= start:
        return float("nan")
    return len(done) / (max(done) - start)


@dataclasses.dataclass
class ToolsResult:
    """Every tool's run, plus summary dictionaries keyed by tool name."""

    n: int
    sleep_tasks: int
    sleep_seconds: float
    rq_worker: str
    runs: dict[str, ToolRun]

    @property
    def throughput_per_s(self) -> dict[str, float]:
        """No-op throughput (tasks/s) per tool."""
        return {t: r.noop_throughput_per_s for t, r in self.runs.items()}

    @property
    def startup_s(self) -> dict[str, float]:
        """Worker startup (s) per tool."""
        return {t: r.startup_s for t, r in self.runs.items()}

    @property
    def enqueue_p50_ms(self) -> dict[str, float]:
        """Median enqueue latency (ms) per tool."""
        return {t: r.enqueue_p50_ms for t, r in self.runs.items()}

    def __repr__(self) -> str:
        head = (f"Tools: {self.n} no-ops and {self.sleep_tasks} × sleep({self.sleep_seconds}) "
                f"on one worker each, same server (RQ worker: {self.rq_worker})")
        rows = [f"  {'tool':<7} {'setup':>5} {'startup':>9} {'no-op/s':>9} {'enqueue p50':>12} "
                f"{'sleep/s':>8} {'overhead':>9}"]
        for t, r in self.runs.items():
            rows.append(f"  {t:<7} {r.setup_lines:>3} ln {r.startup_s:>7.2f} s "
                        f"{r.noop_throughput_per_s:>9.0f} {r.enqueue_p50_ms:>9.3f} ms "
                        f"{r.sleep_throughput_per_s:>8.1f} {r.overhead_ms:>6.1f} ms")
        return "\n".join([head, *rows])


def tools(lab: Any, n: int = 50, sleep_tasks: int = 10, sleep_seconds: float = 0.05,
          which: Sequence[str] = TOOLS, rq_worker: str = "fork",
          timeout: float = 60.0) -> ToolsResult:
    """Run ``n`` no-ops and ``sleep_tasks`` × ``sleep(sleep_seconds)`` on Huey, RQ and Celery.

    One worker per tool (Huey ``-w 1``, RQ's default forking worker or ``rq_worker="simple"``,
    Celery ``--pool solo``), started with :func:`labapp.procs.spawn` and stopped afterwards,
    all against database 1 of the lab's own server over its unix socket.
    """
    check_range("n", n, 1, 5000, integer=True)
    check_range("sleep_tasks", sleep_tasks, 0, 500, integer=True)
    check_range("sleep_seconds", sleep_seconds, 0.0, 2.0)
    check_range("timeout", timeout, 5.0, 600.0)
    which = tuple(which)
    if not which or any(t not in TOOLS for t in which) or len(set(which)) != len(which):
        raise ValueError(f"which={which!r}: choose from {TOOLS}")
    if rq_worker not in RQ_WORKERS:
        raise ValueError(f"rq_worker={rq_worker!r}: use one of {tuple(RQ_WORKERS)}")
    # RQ's forking worker spends ~30 ms per task on a small machine: budget for the slowest.
    budget = len(which) * (3 + (n + sleep_tasks) * 0.04 + sleep_tasks * sleep_seconds)
    if budget > MAX_SECONDS:
        raise ValueError(f"n={n}, sleep_tasks={sleep_tasks}, sleep_seconds={sleep_seconds} "
                         f"would take ~{budget:.0f} s: keep it under {MAX_SECONDS:.0f} s")
    missing = [t for t in which if t != "huey" and importlib.util.find_spec(t) is None]
    if missing:
        raise ImportError(f"{' and '.join(missing)} not installed: the comparison needs the "
                          f"'compare' extra: pip install -e '.[compare]'")
    if lab.config.external:
        raise BrokerError(f"tools() runs RQ and Celery on the lab's own server, and this lab "
                          f"uses an external one ({lab.redis_url}): unset REDIS_URL")
    sock = str(lab.broker.socket_path)
    db = redis.Redis(unix_socket_path=sock, db=compare.DB)
    runs: dict[str, ToolRun] = {}
    progress = Progress("tools", len(which))
    try:
        for tool in which:
            db.flushdb()  # database 1 belongs to this experiment alone
            runs[tool] = _run_tool(tool, lab, db, sock, n, sleep_tasks, sleep_seconds,
                                   rq_worker, timeout)
            progress.update(1, tool)
    finally:
        try:
            db.flushdb()
            db.close()
        except redis.RedisError as exc:
            logger.warning("could not clean database %s: %s", compare.DB, exc)
        progress.close()
    return ToolsResult(n=n, sleep_tasks=sleep_tasks, sleep_seconds=sleep_seconds,
                       rq_worker=rq_worker, runs=runs)


def _run_tool(tool: str, lab: Any, db: redis.Redis, sock: str, n: int, sleep_tasks: int,
              sleep_seconds: float, rq_worker: str, timeout: float) -> ToolRun:
    module = load(tool, sock)
    client = Client(tool, module)
    command = worker_command(tool, sock, rq_worker)
    env = dict(os.environ, **{compare.SOCKET_ENV: sock})
    root = str(Path(compare.__file__).resolve().parents[2])  # so workers import labapp
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    log = lab.config.run_dir / f"compare-{tool}.log"
    t0 = time.perf_counter()
    proc = procs.spawn(command, log_path=log, env=env)
    try:
        client.wait(client.submit("noop"), timeout, proc, log)
        startup = time.perf_counter() - t0
        gate_end, done, enqueue_s = _gated(client, db, "noop", (), n, timeout, proc, log)
        run = ToolRun(tool=tool, command=command, setup_lines=setup_lines(module.__file__),
                      startup_s=startup, enqueue_s=enqueue_s, gate_end=gate_end,
                      noop_done=done, sleep_seconds=sleep_seconds)
        if sleep_tasks:
            run.sleep_gate_end, run.sleep_done, _ = _gated(
                client, db, "sleep", (sleep_seconds,), sleep_tasks, timeout, proc, log)
        return run
    finally:
        procs.stop_group(proc, signal.SIGTERM, grace=3.0)
        client.close()


def _gated(client: Client, db: redis.Redis, task: str, args: tuple[Any, ...], count: int,
           timeout: float, proc: Any, log: Path) -> tuple[float, list[float], list[float]]:
    """Hold the worker in a gate, enqueue ``count`` tasks, release it; return worker times."""
    key = f"gate-{uuid.uuid4().hex[:8]}"
    gate = client.submit("gate", key)
    handles, enqueue_s = [], []
    for _ in range(count):
        t = time.perf_counter()
        handles.append(client.submit(task, *args))
        enqueue_s.append(time.perf_counter() - t)
    db.lpush(key, "go")
    gate_end = client.wait(gate, timeout, proc, log)
    done = [client.wait(h, timeout, proc, log) for h in handles]
    return gate_end, done, enqueue_s
