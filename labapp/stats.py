"""A snapshot of a lab's queue and workers: what ``/api/stats`` and the Monitor widget show.

A task is *stuck* when it has been executing far longer than that task usually takes: longer
than :func:`stuck_limit` of its recent run times (``executing`` to ``complete``, read from the
events the lab records anyway), or than a fixed limit when the caller gives one.
"""
from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable

from labapp import events

if TYPE_CHECKING:
    from huey import RedisHuey

WINDOW = 10.0       # seconds of history used for throughput
#: A fixed stuck limit for every task, or None: each task's limit comes from its own run times.
STUCK_AFTER: float | None = None
STUCK_FACTOR = 5.0      # stuck after this many times the p95 of the task's recent runs ...
STUCK_MIN = 2.0         # ... but never sooner than this many seconds
STUCK_FALLBACK = 10.0   # limit for a task with no completed run in the history
HISTORY_EVENTS = 2_000  # newest events searched for completed runs
HISTORY_RUNS = 100      # at most this many recent runs per task name count


def p95(values: list[float]) -> float:
    """The 95th percentile by nearest rank: the smallest value that at least 95 % of
    ``values`` do not exceed (for 20 values the 19th smallest, for 1 value that value)."""
    if not values:
        raise ValueError("p95 of no values")
    ordered = sorted(values)
    rank = -(-95 * len(ordered) // 100)  # ceil(0.95 n) in integers: no rounding surprises
    return ordered[rank - 1]


def stuck_limit(run_times: list[float]) -> float:
    """Seconds after which a running task counts as stuck, given its recent run times:
    ``max(STUCK_MIN, STUCK_FACTOR × p95)``, or :data:`STUCK_FALLBACK` with no history."""
    if not run_times:
        return STUCK_FALLBACK
    return max(STUCK_MIN, STUCK_FACTOR * p95(run_times))


def run_times(entries: list[Any],
              started: dict[bytes, float] | None = None) -> dict[str, list[float]]:
    """Seconds from ``executing`` to ``complete`` of each finished run, per task name,
    oldest first. ``entries`` is ``XREVRANGE`` output of the events stream (newest first).
    A failed run does not count, nor a run whose ``executing`` is not in ``entries`` or in
    ``started`` (start times of unfinished runs, by task id: updated, to carry over)."""
    started = {} if started is None else started
    runs: dict[str, list[float]] = {}
    for _, raw in reversed(entries):
        kind, task_id = raw.get(b"k"), raw.get(b"i")
        if kind == b"executing":
            started[task_id] = float(raw[b"t"])
        elif kind == b"complete" and task_id in started:
            runs.setdefault(raw[b"n"].decode(), []).append(float(raw[b"t"]) - started.pop(task_id))
        elif kind is not None and kind.decode() in events.WORKER_DONE:
            started.pop(task_id, None)
    return runs


def _id(entry_id: bytes) -> tuple[int, int]:
    ms, seq = entry_id.split(b"-")
    return int(ms), int(seq)


class RunHistory:
    """The last :data:`HISTORY_RUNS` run times of each task name of one lab, kept up to date
    by reading only the events recorded since the previous snapshot (thread-safe). Forgets
    everything when the lab's event count falls (``lab.reset()`` deleted the events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: bytes | None = None
        self._count = 0
        self._started: dict[bytes, float] = {}
        self._runs: dict[str, collections.deque[float]] = {}

    def query(self, pipe: Any, stream: str) -> None:
        """Add the read of the new events to ``pipe`` (its reply goes to :meth:`add`)."""
        since = "-" if self._last is None else "(" + self._last.decode()
        pipe.xrevrange(stream, min=since, count=HISTORY_EVENTS)

    def add(self, entries: list[Any], count: int) -> dict[str, list[float]]:
        """Take in the reply of :meth:`query` and the lab's number of events so far;
        returns the run times per task name."""
        with self._lock:
            if count < self._count:
                self._started.clear()
                self._runs.clear()
            self._count = count
            if self._last is not None:
                entries = [e for e in entries if _id(e[0]) > _id(self._last)]
            if entries:
                self._last = entries[0][0]
            if len(self._started) > HISTORY_EVENTS:  # runs that never finished: forget them
                self._started.clear()
            for name, times in run_times(entries, self._started).items():
                self._runs.setdefault(name, collections.deque(maxlen=HISTORY_RUNS)).extend(times)
            return {name: list(times) for name, times in self._runs.items()}


_histories: dict[str, RunHistory] = {}


@dataclasses.dataclass(frozen=True)
class StuckLimit:
    """The stuck limit of one task name and what it was computed from."""

    after_s: float             #: a run longer than this is stuck
    runs: int                  #: completed runs it was computed from (0: the fallback)
    p95_s: float | None        #: their 95th percentile (None without runs)
    fixed: bool = False        #: True when the caller fixed the limit for every task

    def describe(self) -> str:
        """E.g. ``2 s (p95 51 ms of 20 runs)``: the limit and what it came from."""
        if self.fixed:
            return f"{self.after_s:g} s (fixed)"
        if not self.runs or self.p95_s is None:
            return f"{self.after_s:g} s (no finished run yet)"
        noun = "run" if self.runs == 1 else "runs"
        p = format_seconds(self.p95_s) if self.p95_s >= 1 else f"{self.p95_s * 1e3:.2g} ms"
        return f"{format_seconds(self.after_s)} (p95 {p} of {self.runs} {noun})"


def format_seconds(value: float) -> str:
    """``2 s``, ``2.55 s``, ``37 s``: three figures at most, never an exponent."""
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"


def stuck_limits(history: dict[str, list[float]], names: Iterable[str] = (),
                 fixed: float | None = None) -> dict[str, StuckLimit]:
    """The stuck limit of every task name in ``history`` (run times per name) and ``names``."""
    out = {}
    for name in sorted(set(history) | set(names)):
        times = history.get(name, [])
        p = p95(times) if times else None
        if fixed is not None:
            out[name] = StuckLimit(fixed, len(times), p, fixed=True)
        else:
            out[name] = StuckLimit(stuck_limit(times), len(times), p)
    return out


def stuck_rule(fixed: float | None = None) -> str:
    """The rule in one line, for footnotes."""
    if fixed is not None:
        return f"stuck = running over {fixed:g} s (a fixed limit)"
    return (f"stuck = running over {STUCK_FACTOR:g} × the p95 of that task's recent run times, "
            f"at least {STUCK_MIN:g} s ({STUCK_FALLBACK:g} s for a task with no finished run yet)")


def snapshot(huey: RedisHuey, now: float | None = None,
             stuck_after: float | None = STUCK_AFTER) -> dict[str, Any]:
    """Queue length, counts per event kind, busy workers, stuck/lost tasks and recent throughput.

    :param stuck_after: a fixed stuck limit in seconds for every task; None (the default)
        derives each task's limit from its recent run times (:func:`stuck_limit`).
    """
    now = time.time() if now is None else now
    conn, name = huey.storage.conn, huey.name
    k = events.keys(name)
    pipe = conn.pipeline(transaction=False)
    pipe.llen(huey.storage.queue_key)
    pipe.zcard(huey.storage.schedule_key)
    pipe.hgetall(k["counts"])
    pipe.hgetall(k["busy"])
    pipe.xrevrange(k["stream"], min=str(int((now - WINDOW) * 1000)), count=50_000)
    history = _histories.setdefault(name, RunHistory())
    history.query(pipe, k["stream"])
    queued, scheduled, counts, busy_raw, recent, new = pipe.execute()
    running = events.parse_busy(busy_raw)
    counts = {key.decode(): int(v) for key, v in counts.items()}
    limits = stuck_limits(history.add(new, sum(counts.values())), {b.task for b in running},
                          fixed=stuck_after)
    busy = []
    for b in running:
        age, limit = now - b.since, limits[b.task].after_s
        busy.append({"worker": b.worker, "task_id": b.task_id, "task": b.task,
                     "running_for": round(age, 3), "pid": b.pid,
                     "state": "lost" if b.lost else ("stuck" if age > limit else "running"),
                     "stuck_after": round(limit, 3)})
    # Lost tasks first: a view keyed by worker name then shows the live task of a restarted worker.
    busy.sort(key=lambda b: (b["state"] != "lost", b["worker"]))
    done = sum(1 for _, raw in recent if raw.get(b"k") == b"complete")
    failed = sum(1 for _, raw in recent if raw.get(b"k") == b"error")
    span = observed_span(recent, now, working=bool(busy or queued or scheduled))
    return {
        "lab": name,
        "time": now,
        "queued": queued,
        "scheduled": scheduled,
        "counts": counts,
        "busy": busy,
        "stuck": [b for b in busy if b["state"] != "running"],
        "done_recent": done,
        "errors_recent": failed,
        "rate_span_s": round(span, 3),
        "throughput_per_s": round(done / span, 2) if span > 0 else 0.0,
        "errors_per_s": round(failed / span, 2) if span > 0 else 0.0,
        "stuck_rule": stuck_rule(stuck_after),
        "stuck_limits": {task: {"after_s": round(lim.after_s, 3), "runs": lim.runs,
                                "p95_s": None if lim.p95_s is None else round(lim.p95_s, 4),
                                "describe": lim.describe()}
                         for task, lim in limits.items()},
    }


def _stamp(entry_id: bytes | str) -> float:
    """Seconds since the epoch of a stream entry id (``<ms>-<seq>``)."""
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.split("-", 1)[0]) / 1000


def observed_span(recent: list[Any], now: float, working: bool) -> float:
    """Seconds of the last :data:`WINDOW` during which tasks ran: from the first event in the
    window to the last one (to ``now`` while tasks still run or wait). Rates divide by this,
    so 40 tasks done in one second read as 40/s, not as 4/s "over the last 10 s".

    ``recent`` is ``XREVRANGE`` output (newest first); 0 when the window holds no event.
    """
    if not recent:
        return 0.0
    first = max(_stamp(recent[-1][0]), now - WINDOW)
    last = now if working else _stamp(recent[0][0])
    return max(last - first, 0.0)
