"""Retries (05, pitfall 3): a flaky task with no retries, a fixed delay, and exponential backoff.

Huey retries nothing unless asked (``retries=0``). With ``retry_delay`` the retry waits in
the schedule, which Huey's scheduler reads once per tick (1 s), so a 1 s delay really costs
1-2 s; ``retry_backoff`` multiplies the delay after each attempt. All strategies run at the
same time, each on its own flaky task (own failure counter), so the run takes as long as
the slowest strategy.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Sequence

from labapp.experiments._common import check_range
from labapp.experiments._control import arranged
from labapp.experiments._control import wait_for_events

logger = logging.getLogger(__name__)

SCHEDULER_TICK = 1.0  # seconds between the consumer's schedule reads (huey_consumer -s)
BUDGET = 120.0
STRATEGIES = ("none", "fixed", "backoff")


@dataclasses.dataclass(frozen=True)
class RetryAttempt:
    """One attempt of a strategy's task: when it ran and how it ended."""

    number: int     #: 1 for the first try
    start: float    #: ``time.time()`` of ``executing``
    end: float      #: ``time.time()`` of ``complete``/``error``
    outcome: str    #: ``complete`` or ``error``
    worker: str


@dataclasses.dataclass(frozen=True)
class StrategyRun:
    """One flaky task under one retry policy, attempt by attempt."""

    name: str                 #: ``none``, ``fixed`` or ``backoff``
    retries: int
    retry_delay: float
    retry_backoff: float
    task_id: str
    enqueued: float           #: ``time.time()`` of the producer's ``enqueued`` event
    attempts: tuple[RetryAttempt, ...]
    final_state: str          #: last state recorded for the task (``complete``, ``error`` …)

    @property
    def gaps(self) -> list[float]:
        """Seconds between the end of each failed attempt and the start of the next."""
        a = self.attempts
        return [a[i + 1].start - a[i].end for i in range(len(a) - 1)]

    @property
    def planned_delays(self) -> list[float]:
        """The delays Huey was asked for: ``retry_delay × retry_backoff**i``."""
        factor = self.retry_backoff or 1.0
        return [self.retry_delay * factor ** i for i in range(len(self.attempts) - 1)]

    @property
    def completed(self) -> bool:
        """True when some attempt succeeded."""
        return any(a.outcome == "complete" for a in self.attempts)

    @property
    def total(self) -> float:
        """Seconds from enqueue to the end of the last attempt."""
        return self.attempts[-1].end - self.enqueued if self.attempts else float("nan")

    def describe(self) -> str:
        """One line: attempts, gaps and the final state."""
        policy = {"none": "no retries",
                  "fixed": f"{self.retries} retries, {self.retry_delay:g} s apart",
                  "backoff": f"{self.retries} retries, {self.retry_delay:g} s x"
                             f"{self.retry_backoff:g} backoff"}.get(self.name, self.name)
        gaps = ", ".join(f"{g:.1f}" for g in self.gaps)
        gap_text = f", waits {gaps} s" if gaps else ""
        n = len(self.attempts)
        return (f"{self.name} ({policy}): {n} attempt{'' if n == 1 else 's'}{gap_text} -> "
                f"{self.final_state} after {self.total:.1f} s")


@dataclasses.dataclass(frozen=True)
class RetriesResult:
    """The same flaky task (fails ``fail_times`` times) under each retry strategy."""

    fail_times: int
    runs: tuple[StrategyRun, ...]
    tick: float = SCHEDULER_TICK

    def run(self, name: str) -> StrategyRun:
        """The run of strategy ``name``."""
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"no strategy {name!r} in this result: {[r.name for r in self.runs]}")

    def __repr__(self) -> str:
        parts = []
        for r in self.runs:
            n = len(r.attempts)
            waits = "/".join(f"{g:.1f}" for g in r.gaps)
            parts.append(f"{r.name} -> {r.final_state} after {n} attempt{'s' * (n != 1)}"
                         + (f", waits {waits} s" if waits else ""))
        return (f"RetriesResult(a task failing {self.fail_times}x; delays round up to the "
                f"scheduler's {self.tick:g} s tick:\n  {' · '.join(parts)})")


def retries(lab: Any, fail_times: int = 2, retry_delay: float = 1.0, backoff: float = 2.0,
            retries: int | None = None,
            strategies: Sequence[str] = STRATEGIES) -> RetriesResult:
    """Run a task that fails ``fail_times`` times under each retry strategy, side by side.

    :param fail_times: failures before the task succeeds (0 to 10).
    :param retry_delay: seconds before the first retry for ``fixed`` and ``backoff`` (0 to 30).
    :param backoff: ``retry_backoff`` multiplier of the ``backoff`` strategy (1 to 4).
    :param retries: retries allowed (0 to 10; default ``fail_times``, just enough).
    :param strategies: any of ``none``, ``fixed``, ``backoff``.
    """
    check_range("fail_times", fail_times, 0, 10, integer=True)
    check_range("retry_delay", retry_delay, 0, 30)
    check_range("backoff", backoff, 1, 4)
    retries = fail_times if retries is None else retries
    check_range("retries", retries, 0, 10, integer=True)
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad or not strategies or len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies={tuple(strategies)!r}: choose distinct names from "
                         f"{', '.join(STRATEGIES)}")
    if lab.config.workers < 1:
        raise ValueError("retries needs at least 1 worker: run lab.scale(2) first")
    attempts = min(fail_times, retries)
    planned = max(sum(retry_delay * (backoff if s == "backoff" else 1.0) ** i
                      for i in range(attempts)) for s in strategies) + attempts * SCHEDULER_TICK
    if planned > BUDGET:
        raise ValueError(f"retry_delay/backoff/fail_times add up to about {planned:.0f} s of "
                         f"waiting, allowed up to {BUDGET:.0f} s; lower them")
    options = {"none": {"retries": 0},
               "fixed": {"retries": retries, "retry_delay": retry_delay},
               "backoff": {"retries": retries, "retry_delay": retry_delay,
                           "retry_backoff": backoff}}
    run_id = time.time_ns()
    keys = {s: f"retries-{s}-{run_id}" for s in strategies}
    with arranged(lab) as cursor:
        handles = {s: lab.enqueue("flaky", key=keys[s], fail_times=fail_times, **options[s])
                   for s in strategies}
        ids = {h.id: s for s, h in handles.items()}
        evs = wait_for_events(lab, cursor, set(ids), timeout=planned + 10 + 2 * SCHEDULER_TICK,
                              label="retries")
        lab.redis.delete(*(f"lab.{lab.name}.flaky.{k}" for k in keys.values()))
    runs = []
    for s, h in handles.items():
        mine = sorted((e for e in evs if e.task_id == h.id), key=lambda e: e.time)
        opts = options[s]
        runs.append(StrategyRun(
            name=s, retries=opts["retries"], retry_delay=opts.get("retry_delay", 0.0),
            retry_backoff=opts.get("retry_backoff", 0.0), task_id=h.id,
            enqueued=next((e.time for e in mine if e.kind == "enqueued"), float("nan")),
            attempts=_attempts(mine), final_state=_final_state(mine)))
    return RetriesResult(fail_times, tuple(runs))


def _attempts(evs: list[Any]) -> tuple[RetryAttempt, ...]:
    out, start = [], None
    for e in evs:
        if e.kind == "executing":
            start = e
        elif e.kind in ("complete", "error") and start is not None:
            out.append(RetryAttempt(len(out) + 1, start.time, e.time, e.kind, start.worker))
            start = None
    return tuple(out)


def _final_state(evs: list[Any]) -> str:
    """``complete``, ``error`` (no retries left) or the last event kind seen."""
    for e in reversed(evs):
        if e.kind == "complete" or (e.kind == "error" and e.retries == 0):
            return e.kind
    return evs[-1].kind if evs else "unknown"
