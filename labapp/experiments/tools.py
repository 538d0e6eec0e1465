"""Huey, RQ and Celery side by side: the same tasks, the same server, the same run.

Each tool gets its minimal setup (:mod:`labapp.compare.minimal`, which imports nothing of the
lab), one worker started with the tool's own command line that runs one task at a time, and
database 1 of the lab's own server. For each tool the experiment queues no-ops, starts the
worker, and measures the worker's pace on its own clock (each no-op returns ``time.time()``).
Right after, the same tool is measured *bare*: ``minimal/bare.py``, a plain script a user of
the tool would write, against the same server. The two figures should agree; when they do
not, the lab's harness (not the tool) is what was measured, and the result says so.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
import signal
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import redis

from labapp import compare
from labapp import procs
from labapp.broker import BrokerError
from labapp.compare.minimal.bare import pace
from labapp.compare.runner import RQ_WORKERS
from labapp.compare.runner import Client
from labapp.compare.runner import load
from labapp.compare.runner import run_bare
from labapp.compare.runner import setup_lines
from labapp.compare.runner import worker_command
from labapp.compare.runner import worker_env
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import percentile

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)

TOOLS = compare.TOOLS
#: No-ops queued per tool: a bit more than ``window`` seconds of work on a laptop, so the
#: worker drains for the whole window. RQ's fork-per-job worker is the slowest by far.
DEFAULT_N = {"huey": 4000, "celery": 1000, "rq": 300}
DEFAULT_N_RQ_SIMPLE = 1000
USUAL_RANKING = ("huey", "celery", "rq")   #: fastest first, as it comes out on most machines
AGREEMENT = 0.20                           #: in-lab and bare figures agree within 20 %
MAX_SECONDS = 300.0


def available_cpus() -> int:
    """CPUs this process may run on."""
    # TODO: labapp.config.available_cpus
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # macOS: no affinity masks


@dataclasses.dataclass
class ToolRun:
    """One tool: worker command, setup size, startup, raw finish times, and its bare reference."""

    tool: str
    command: list[str]          #: the worker's command line (run in the setup's folder)
    setup_lines: int            #: code lines of the minimal setup module (no blanks/comments)
    queued: int                 #: no-ops queued before the worker started
    startup_s: float            #: worker spawn → first no-op finished
    enqueue_s: list[float]      #: seconds per no-op enqueue call (producer side)
    noop_done: list[float]      #: worker time.time() at the end of each finished no-op
    sleep_seconds: float
    sleep_done: list[float] = dataclasses.field(default_factory=list)
    bare: dict[str, Any] | None = None  #: what ``bare.py`` printed for the same tool

    @property
    def noop_throughput_per_s(self) -> float:
        """No-op tasks per second on the worker's clock (median of ten slices)."""
        return pace(self.noop_done)

    @property
    def bare_throughput_per_s(self) -> float:
        """The same figure measured by the plain script (NaN when it did not run)."""
        return float(self.bare["rate"]) if self.bare else math.nan

    @property
    def agreement(self) -> float:
        """In-lab figure divided by the bare one (1.0 = identical; NaN without a bare run)."""
        bare = self.bare_throughput_per_s
        return self.noop_throughput_per_s / bare if bare > 0 else math.nan

    @property
    def agrees(self) -> bool:
        """True when the in-lab and bare figures differ by at most :data:`AGREEMENT`."""
        return abs(self.agreement - 1) <= AGREEMENT

    @property
    def sleep_throughput_per_s(self) -> float:
        """sleep(d) tasks per second (ideal: 1/d with one worker)."""
        return pace(self.sleep_done)

    @property
    def enqueue_p50_ms(self) -> float:
        """Median enqueue call, in milliseconds."""
        return percentile(self.enqueue_s, 50) * 1000

    @property
    def overhead_ms(self) -> float:
        """Per-task time beyond the sleep itself, in milliseconds (NaN without sleep tasks)."""
        rate = self.sleep_throughput_per_s
        return (1 / rate - self.sleep_seconds) * 1000 if rate > 0 else math.nan


@dataclasses.dataclass
class ToolsResult:
    """Every tool's run, summaries keyed by tool name, and what this run showed."""

    n: dict[str, int]
    window: float
    sleep_tasks: int
    sleep_seconds: float
    rq_worker: str
    runs: dict[str, ToolRun]
    cpus: int = 0

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

    @property
    def ranking(self) -> list[str]:
        """Tools by no-op throughput in this run, fastest first."""
        return _rank({t: r.noop_throughput_per_s for t, r in self.runs.items()})

    @property
    def bare_ranking(self) -> list[str]:
        """The same ranking from the bare figures (empty when they were not measured)."""
        if not all(r.bare for r in self.runs.values()):
            return []
        return _rank({t: r.bare_throughput_per_s for t, r in self.runs.items()})

    @property
    def fair(self) -> bool:
        """True when every tool's in-lab figure agrees with its bare figure."""
        return bool(self.runs) and all(r.agrees for r in self.runs.values())

    @property
    def winner(self) -> str | None:
        """The fastest tool, when the plain scripts (if measured) put the same tool first."""
        if not self.runs:
            return None
        bare = self.bare_ranking
        return self.ranking[0] if not bare or bare[0] == self.ranking[0] else None

    @property
    def teaches_lesson(self) -> bool:
        """True when the run ranks the tools in the order notebook 04 discusses."""
        usual = [t for t in USUAL_RANKING if t in self.runs]
        return len(usual) > 1 and self.ranking == usual

    def _rq_name(self) -> str:
        return ("RQ's default Worker (a fresh fork per job)" if self.rq_worker == "fork"
                else "RQ's SimpleWorker (no fork)")

    def conclusions(self) -> list[str]:
        """What this run showed, in sentences built from its numbers."""
        if not self.runs:
            return ["No tool was measured."]
        tp = self.throughput_per_s
        order = self.ranking
        out = ["Fastest to slowest at no-ops in this run: " + ", ".join(
            f"{t} ({tp[t]:,.0f}/s)" for t in order) + "."]
        if len(order) > 1 and tp[order[-1]] > 0:
            out.append(f"{order[0]} ran {tp[order[0]] / tp[order[-1]]:.1f}× as many no-ops per "
                       f"second as {order[-1]}.")
        if "rq" in self.runs:
            out.append(f"RQ was measured with {self._rq_name()}.")
        bad = [t for t, r in self.runs.items() if r.bare and not r.agrees]
        if all(r.bare for r in self.runs.values()):
            if bad:
                same = self.bare_ranking == order
                out.append("The plain-script figures did not agree within "
                           f"{AGREEMENT:.0%} with the lab's for "
                           + ", ".join(f"{t} ({self.runs[t].bare_throughput_per_s:,.0f}/s, the lab "
                                       f"{self.runs[t].agreement:.0%} of it)" for t in bad)
                           + ": the machine's load changed between the two measurements"
                           + ("; run it again on a quieter machine." if len(order) < 2 else
                              ", but they rank the tools the same way." if same else
                              " and they rank the tools differently: do not trust this ranking; "
                              "run it again on a quieter machine."))
            else:
                out.append("Each figure agrees within "
                           f"{AGREEMENT:.0%} with the same tool run by a plain script ("
                           + ", ".join(f"{t} {r.bare_throughput_per_s:,.0f}/s"
                                       for t, r in self.runs.items()) + ").")
                if self.bare_ranking and self.bare_ranking != order:
                    out.append("The plain scripts ranked them differently ("
                               + " > ".join(self.bare_ranking) + "): the gap is within the "
                               "noise.")
        usual = [t for t in USUAL_RANKING if t in self.runs]
        if len(usual) > 1 and order != usual:
            out.append("This is not the usual order (" + " > ".join(usual) + "); on a busy "
                       "machine or another version of a tool it can change.")
        if self.sleep_tasks and self.sleep_seconds > 0:
            ideal = 1 / self.sleep_seconds
            sl = {t: r.sleep_throughput_per_s for t, r in self.runs.items()}
            worst = min(sl.values()) / ideal
            out.append(f"With a {self.sleep_seconds * 1000:.0f} ms task the tools ran "
                       + ", ".join(f"{t} {v:.1f}/s" for t, v in sl.items())
                       + f" against an ideal of {ideal:.1f}/s: the slowest reached "
                       f"{worst:.0%} of it, so once tasks take that long the tool's own cost "
                       + ("matters little." if worst >= 0.9 else
                          "still shows, but the task's own time dominates." if worst >= 0.5 else
                          "still dominates: tasks this short are too small for that tool."))
        return out

    def __repr__(self) -> str:
        sleeps = (f", {self.sleep_tasks} × sleep({self.sleep_seconds:g})" if self.sleep_tasks
                  else "")
        head = (f"Tools: queued no-ops drained for up to {self.window:g} s by one worker each"
                f"{sleeps}, same server, {self.cpus} CPU(s); RQ: {self._rq_name()}")
        rows = [f"  {'tool':<7} {'setup':>5} {'startup':>8} {'no-op/s':>8} {'bare':>8} "
                f"{'enqueue p50':>11} {'sleep/s':>8} {'overhead':>9}"]
        def num(value: float, fmt: str, width: int) -> str:
            return format(value, fmt).rjust(width) if math.isfinite(value) else "–".rjust(width)

        for t, r in self.runs.items():
            rows.append(f"  {t:<7} {r.setup_lines:>3} ln {r.startup_s:>6.2f} s "
                        f"{num(r.noop_throughput_per_s, ',.0f', 8)} "
                        f"{num(r.bare_throughput_per_s, ',.0f', 8)} "
                        f"{r.enqueue_p50_ms:>8.3f} ms {num(r.sleep_throughput_per_s, '.1f', 8)} "
                        f"{num(r.overhead_ms, '.1f', 6)} ms")
        return "\n".join([head, *rows])


def notebook_sized(lab: Lab) -> ToolsResult:
    """The comparison exactly as notebook 04 runs it (for benchmarks/stability.py)."""
    return tools(lab)


def _rank(values: Mapping[str, float]) -> list[str]:
    return sorted(values, key=lambda t: -values[t] if values[t] == values[t] else math.inf)


def tools(lab: Lab, n: int | Mapping[str, int] | None = None, window: float = 1.0,
          sleep_tasks: int = 10, sleep_seconds: float = 0.05, which: Sequence[str] = TOOLS,
          rq_worker: str = "fork", bare: bool = True, timeout: float = 60.0) -> ToolsResult:
    """Measure Huey, RQ and Celery on the lab's server, each next to a plain script's figure.

    :param n: no-ops queued per tool (one number for all, or ``{"huey": 4000, …}``); the
        default is about a second of work each (:data:`DEFAULT_N`).
    :param window: seconds the worker drains before it is stopped (the rest is dropped).
    :param rq_worker: ``"fork"`` (RQ's default ``Worker``, a fresh process per job) or
        ``"simple"`` (``SimpleWorker``, jobs in the worker process itself).
    :param bare: also run ``minimal/bare.py`` per tool (the reference figure).
    """
    which = tuple(which)
    if not which or any(t not in TOOLS for t in which) or len(set(which)) != len(which):
        raise ValueError(f"which={which!r}: choose from {TOOLS}")
    if rq_worker not in RQ_WORKERS:
        raise ValueError(f"rq_worker={rq_worker!r}: use one of {RQ_WORKERS}")
    counts = _counts(n, which, rq_worker)
    check_range("window", window, 0.2, 30.0)
    check_range("sleep_tasks", sleep_tasks, 0, 500, integer=True)
    check_range("sleep_seconds", sleep_seconds, 0.0, 2.0)
    check_range("timeout", timeout, 5.0, 600.0)
    budget = (2 if bare else 1) * len(which) * (3 + window) + sum(counts.values()) * 0.002 \
        + len(which) * sleep_tasks * (sleep_seconds + 0.03)
    if budget > MAX_SECONDS:
        raise ValueError(f"n={n}, window={window}, sleep_tasks={sleep_tasks}, sleep_seconds="
                         f"{sleep_seconds} would take ~{budget:.0f} s: keep it under "
                         f"{MAX_SECONDS:.0f} s")
    _require_tools(lab, which)
    sock = str(lab.broker.socket_path)
    db = redis.Redis(unix_socket_path=sock, db=compare.DB)
    runs: dict[str, ToolRun] = {}
    progress = Progress("tools", len(which) * (2 if bare else 1), every=0.2)
    try:
        for tool in which:
            db.flushdb()  # database 1 belongs to this experiment alone
            progress.update(0, f"{tool} in the lab")
            runs[tool] = _run_tool(tool, lab, sock, counts[tool], window, sleep_tasks,
                                   sleep_seconds, rq_worker, timeout)
            progress.update(1, f"{tool} in the lab: done")
            if bare:
                db.flushdb()
                progress.update(0, f"{tool} plain script")
                runs[tool].bare = run_bare(tool, sock, counts[tool], window, rq_worker,
                                           timeout=timeout + 30)
                progress.update(1, f"{tool} plain script: done")
    finally:
        try:
            db.flushdb()
            db.close()
        except redis.RedisError as exc:
            logger.warning("could not clean database %s: %s", compare.DB, exc)
        progress.close("· done")
    return ToolsResult(n=counts, window=window, sleep_tasks=sleep_tasks,
                       sleep_seconds=sleep_seconds, rq_worker=rq_worker, runs=runs,
                       cpus=available_cpus())


def _require_tools(lab: Lab, which: Sequence[str]) -> None:
    """The tools are installed and the lab runs its own server (tools() flushes a database)."""
    missing = [t for t in which if importlib.util.find_spec(t) is None]
    if missing:
        raise ImportError(f"{' and '.join(missing)} not installed in this Python: the lab lists "
                          f"them in its dependencies, so reinstall it: pip install -e .")
    if lab.config.external:
        raise BrokerError(f"tools() runs RQ and Celery on the lab's own server, and this lab "
                          f"uses an external one ({lab.redis_url}): unset REDIS_URL")


def _counts(n: int | Mapping[str, int] | None, which: Sequence[str],
            rq_worker: str) -> dict[str, int]:
    default = dict(DEFAULT_N, rq=DEFAULT_N_RQ_SIMPLE if rq_worker == "simple" else DEFAULT_N["rq"])
    if n is None:
        given: Mapping[str, int] = {}
    elif isinstance(n, Mapping):
        unknown = set(n) - set(TOOLS)
        if unknown:
            raise ValueError(f"n names {sorted(unknown)}: use {TOOLS}")
        given = n
    else:
        given = {t: n for t in which}
    counts = {t: given.get(t, default[t]) for t in which}
    for t, c in counts.items():
        check_range(f"n for {t}" if isinstance(n, Mapping) else "n", c, 2, 20000, integer=True)
    return counts


def _run_tool(tool: str, lab: Lab, sock: str, n: int, window: float, sleep_tasks: int,
              sleep_seconds: float, rq_worker: str, timeout: float) -> ToolRun:
    client = Client(tool, load(tool, sock))
    command = worker_command(tool, sock, rq_worker)
    log = lab.config.run_dir / f"compare-{tool}.log"
    handles, enqueue_s = [], []
    for _ in range(n):
        t = time.perf_counter()
        handles.append(client.submit("noop"))
        enqueue_s.append(time.perf_counter() - t)
    spawned = time.time()
    proc = procs.spawn(command, log_path=log, env=worker_env(tool, sock), cwd=compare.MINIMAL)
    try:
        _wait(client, handles[0], timeout, proc, log)
        _wait(client, handles[-1], window, proc, log, must=False)
        cut = time.time()  # what finished later ran while we read the results: not counted
        done = [v for v in map(client.finished, handles) if v is not None and v <= cut]
        run = ToolRun(tool=tool, command=command, setup_lines=setup_lines(compare.setup_path(tool)),
                      queued=n, startup_s=min(done) - spawned, enqueue_s=enqueue_s,
                      noop_done=done, sleep_seconds=sleep_seconds)
        if sleep_tasks:
            client.purge()  # what the window left in the queue
            sleeps = [client.submit("sleep", sleep_seconds) for _ in range(sleep_tasks)]
            _wait(client, sleeps[-1], timeout, proc, log)
            run.sleep_done = [v for v in map(client.finished, sleeps) if v is not None]
        return run
    finally:
        procs.stop_group(proc, signal.SIGKILL, grace=0)  # the measurement is over


def _wait(client: Client, handle: Any, timeout: float, proc: Any, log: Any,
          must: bool = True) -> None:
    """Poll one handle every 20 ms (cheap next to the worker) until it finished or ``timeout``."""
    deadline = time.monotonic() + timeout
    while client.finished(handle) is None:
        if proc.poll() is not None:
            raise RuntimeError(f"the {client.tool} worker exited (code {proc.returncode}); "
                               f"last lines of {log}:\n{procs.tail(log)}")
        if time.monotonic() >= deadline:
            if not must:
                return
            raise TimeoutError(f"{client.tool}: no result within {timeout:g} s; last lines "
                               f"of {log}:\n{procs.tail(log)}")
        time.sleep(0.02)
