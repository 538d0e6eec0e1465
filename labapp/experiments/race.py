"""Races between dependent tasks: B needs what A writes; how often does B run too early?

Each repetition enqueues one pair (A = ``step_a``: work, then write a key; B = ``step_b``:
read it) and waits for it, so every pair meets idle workers — the common case in a quiet app.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import random
import uuid
from typing import Any, Sequence

from labapp import tasks
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range

logger = logging.getLogger(__name__)

STRATEGIES = ("independent", "a_first", "pipeline", "wait_result")
DESCRIPTIONS = {
    "independent": "A and B enqueued separately, in either order",
    "a_first": "A enqueued first, then B",
    "pipeline": "A.then(B): B is enqueued when A completes",
    "wait_result": "B waits for A's result before reading",
}
MAX_REPETITIONS = 500
MAX_SECONDS = 300.0  # budget for one call; more would look like a hung notebook


@dataclasses.dataclass(frozen=True)
class RaceRun:
    """One A→B pair: how it was enqueued, what B read, and when each step ran (time.time())."""

    strategy: str
    rep: int
    key: str
    order: str          #: "A,B", "B,A" or "A→B" (pipeline)
    outcome: str        #: "ok", "missing" (B ran before A's write) or "lost" (B never reported)
    a_start: float
    a_end: float
    b_start: float

    @property
    def failed(self) -> bool:
        """True when B did not see A's output."""
        return self.outcome != "ok"


@dataclasses.dataclass
class RaceResult:
    """Outcomes of every repetition of every strategy (raw per-pair times kept)."""

    workers: int
    a_seconds: float
    seed: int
    strategies: tuple[str, ...]
    runs: list[RaceRun]

    def for_strategy(self, strategy: str) -> list[RaceRun]:
        """The runs of one strategy, in repetition order."""
        return [r for r in self.runs if r.strategy == strategy]

    @property
    def failures(self) -> dict[str, int]:
        """Repetitions where B missed A's output, per strategy."""
        return {s: sum(r.failed for r in self.for_strategy(s)) for s in self.strategies}

    @property
    def repetitions(self) -> dict[str, int]:
        """Repetitions run per strategy."""
        return {s: len(self.for_strategy(s)) for s in self.strategies}

    @property
    def failure_rate(self) -> dict[str, float]:
        """Fraction of repetitions that failed, per strategy."""
        reps = self.repetitions
        return {s: (f / reps[s] if reps[s] else math.nan) for s, f in self.failures.items()}

    def __repr__(self) -> str:
        lines = [f"Race A→B ({self.workers} workers, A works {self.a_seconds} s, seed {self.seed}):"]
        reps = self.repetitions
        for s, f in self.failures.items():
            lines.append(f"  {s:<12} B missed A's output {f:>4}/{reps[s]:<4} "
                         f"({DESCRIPTIONS[s]})")
        return "\n".join(lines)


def race(lab: Any, repetitions: int = 20, workers: int = 2,
         strategies: Sequence[str] = STRATEGIES, a_seconds: float = 0.03, seed: int = 0,
         timeout: float = 10.0) -> RaceResult:
    """Run ``repetitions`` A→B pairs per strategy on ``workers`` workers; count B's missing reads.

    The lab is scaled to ``workers`` (at least 2: with one worker the pair runs in queue
    order) and restored afterwards, also when interrupted.
    """
    check_range("repetitions", repetitions, 1, MAX_REPETITIONS, integer=True)
    check_range("workers", workers, 2, 16, integer=True)
    check_range("a_seconds", a_seconds, 0.0, 2.0)
    check_range("timeout", timeout, 1.0, 30.0)  # step_b_after accepts up to 30 s
    check_range("seed", seed, 0, 2**32 - 1, integer=True)
    strategies = tuple(strategies)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if not strategies or unknown or len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies={strategies!r}: choose from {STRATEGIES}")
    budget = repetitions * len(strategies) * (a_seconds + 0.03)
    if budget > MAX_SECONDS:
        raise ValueError(f"repetitions={repetitions} × {len(strategies)} strategies × "
                         f"a_seconds={a_seconds} would take ~{budget:.0f} s: keep it under "
                         f"{MAX_SECONDS:.0f} s")
    rng = random.Random(seed)
    saved = (lab.config.workers, lab.config.worker_type)
    tag = uuid.uuid4().hex[:6]
    conn = lab.redis
    huey = lab.huey
    outcomes_key = tasks.lab_key("race", "outcomes")
    old = list(conn.scan_iter(match=tasks.lab_key("race", "*"), count=1000))
    if old:
        conn.delete(*old)  # this experiment's own keys only
    pairs: list[tuple[str, int, str, str, str, str]] = []
    cursor = lab.cursor()
    progress = Progress("race", repetitions * len(strategies))
    try:
        lab.scale(workers)
        for strategy in strategies:
            for rep in range(repetitions):
                key = f"{tag}-{strategy}-{rep}"
                a = tasks.signature("step_a", {"key": key, "seconds": a_seconds})
                if strategy == "pipeline":
                    handles = list(huey.enqueue(a.then(tasks.TASKS["step_b"], key)))
                    b_id, order = handles[1].id, "A→B"
                else:
                    if strategy == "wait_result":
                        b = tasks.signature("step_b_after", {"key": key, "after": a.id,
                                                             "timeout": timeout})
                    else:
                        b = tasks.signature("step_b", {"key": key})
                    b_first = strategy != "a_first" and rng.random() < 0.5
                    first, second = (b, a) if b_first else (a, b)
                    handles = [huey.enqueue(first), huey.enqueue(second)]
                    b_id, order = b.id, ("B,A" if b_first else "A,B")
                if not lab.wait(handles, timeout=timeout + a_seconds + 5):
                    logger.warning("race pair %s did not finish in time", key)
                pairs.append((strategy, rep, key, order, a.id, b_id))
                progress.update(1, strategy)
    finally:
        try:
            lab.scale(*saved)
        finally:
            progress.close()
    return RaceResult(workers=workers, a_seconds=a_seconds, seed=seed, strategies=strategies,
                      runs=_collect(lab, pairs, outcomes_key, cursor))


def _collect(lab: Any, pairs: list[tuple[str, int, str, str, str, str]],
             outcomes_key: str, cursor: str) -> list[RaceRun]:
    """Join each pair with B's recorded outcome and the tasks' start/end events."""
    outcome = {}
    for raw in lab.redis.lrange(outcomes_key, 0, -1):
        key, _, result = raw.decode().rpartition(":")
        outcome[key] = result
    ids = {i for p in pairs for i in p[4:]}
    start, end = {}, {}
    for ev in lab.events(since=cursor):
        if ev.task_id in ids:
            if ev.kind == "executing":
                start.setdefault(ev.task_id, ev.time)
            elif ev.kind == "complete":
                end[ev.task_id] = ev.time
    nan = math.nan
    return [RaceRun(strategy=s, rep=r, key=k, order=o, outcome=outcome.get(k, "lost"),
                    a_start=start.get(a, nan), a_end=end.get(a, nan), b_start=start.get(b, nan))
            for s, r, k, o, a, b in pairs]
