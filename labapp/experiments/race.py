"""Races between dependent tasks: B needs what A writes; how often does B run too early?

Each repetition enqueues one pair (A = ``step_a``: work, then write a key; B = ``step_b``:
read it) and waits for it, so every pair meets idle workers — the common case in a quiet app.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
import uuid
from typing import TYPE_CHECKING, Sequence

from labapp import procs
from labapp import tasks
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import started_and_completed
from labapp.experiments._control import arranged

if TYPE_CHECKING:
    from huey.api import Huey, Result

    from labapp.stack import Lab

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
    def fixes_that_reached_zero(self) -> list[str]:
        """The explicit-dependency strategies (pipeline, wait_result) with no miss in this run."""
        return [s for s in ("pipeline", "wait_result")
                if s in self.strategies and self.failures[s] == 0]

    @property
    def teaches_lesson(self) -> bool:
        """True when enqueuing A first still failed and every explicit fix run reached zero."""
        fixes = [s for s in ("pipeline", "wait_result") if s in self.strategies]
        naive = [s for s in ("a_first", "independent") if s in self.strategies]
        return (bool(naive) and all(self.failures[s] > 0 for s in naive)
                and self.fixes_that_reached_zero == fixes)

    def verdict(self, strategy: str = "a_first") -> str | None:
        """``never``/``sometimes``/``mostly``: how often B missed A's output with ``strategy``."""
        if strategy not in self.strategies:
            return None
        failed, n = self.failures[strategy], self.repetitions[strategy]
        return "never" if failed == 0 else ("mostly" if failed >= 0.8 * n else "sometimes")

    def conclusions(self) -> list[str]:
        """What this run showed, one sentence per strategy, numbers included."""
        f, n = self.failures, self.repetitions
        out = []
        for s in self.strategies:
            out.append(f"{DESCRIPTIONS[s]}: B missed A's output in {f[s]} of {n[s]} runs.")
        naive = [s for s in ("a_first", "independent") if s in self.strategies]
        if naive and all(f[s] == 0 for s in naive):
            out.append("Enqueuing A first never failed this time: A happened to finish before B "
                       "read. Nothing guarantees it; on another run or a busier machine it fails.")
        fixes = [s for s in ("pipeline", "wait_result") if s in self.strategies]
        good = self.fixes_that_reached_zero
        if good:
            out.append(f"Reached zero: {', '.join(good)} (each states the dependency explicitly).")
        for s in fixes:
            if f[s]:
                out.append(f"{s} missed {f[s]} times: a fix that still fails means something "
                           f"else went wrong (a timeout, a lost worker): see lab.logs('worker').")
        return out

    def __repr__(self) -> str:
        lines = [f"Race A→B ({self.workers} workers, A works {self.a_seconds} s, seed {self.seed}):"]
        reps = self.repetitions
        for s, f in self.failures.items():
            lines.append(f"  {s:<12} B missed A's output {f:>4}/{reps[s]:<4} "
                         f"({DESCRIPTIONS[s]})")
        return "\n".join(lines)


def race(lab: Lab, repetitions: int = 20, workers: int = 2,
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
    tag = uuid.uuid4().hex[:6]
    conn = lab.redis
    huey = lab.huey
    outcomes_key = lab.key("race", "outcomes")
    old = list(conn.scan_iter(match=lab.key("race", "*"), count=1000))
    if old:
        conn.delete(*old)  # this experiment's own keys only
    pairs: list[tuple[str, int, str, str, str, str]] = []
    with arranged(lab, workers=workers) as cursor, \
            Progress("race", repetitions * len(strategies)) as progress:
        for strategy in strategies:
            for rep in range(repetitions):
                key = f"{tag}-{strategy}-{rep}"
                handles, order, a_id, b_id = _enqueue_pair(huey, strategy, key, a_seconds,
                                                           timeout, rng)
                if not lab.wait(handles, timeout=timeout + a_seconds + 5):
                    logger.warning("race pair %s did not finish in time", key)
                pairs.append((strategy, rep, key, order, a_id, b_id))
                progress.update(1, strategy)
    return RaceResult(workers=workers, a_seconds=a_seconds, seed=seed, strategies=strategies,
                      runs=_collect(lab, pairs, outcomes_key, cursor))


def _enqueue_pair(huey: Huey, strategy: str, key: str, a_seconds: float, timeout: float,
                  rng: random.Random) -> tuple[list[Result], str, str, str]:
    """Enqueue one A→B pair the ``strategy``'s way: its handles, the order sent, A's and B's ids.

    ``pipeline`` lets Huey enqueue B when A completes; the others send both at once, B first
    at random (never for ``a_first``); ``wait_result``'s B waits for A's result itself.
    """
    a = tasks.signature("step_a", {"key": key, "seconds": a_seconds})
    if strategy == "pipeline":
        handles = list(huey.enqueue(a.then(tasks.TASKS["step_b"], key)))
        return handles, "A→B", a.id, handles[1].id
    if strategy == "wait_result":
        b = tasks.signature("step_b_after", {"key": key, "after": a.id, "timeout": timeout})
    else:
        b = tasks.signature("step_b", {"key": key})
    b_first = strategy != "a_first" and rng.random() < 0.5
    first, second = (b, a) if b_first else (a, b)
    return [huey.enqueue(first), huey.enqueue(second)], ("B,A" if b_first else "A,B"), a.id, b.id


def _collect(lab: Lab, pairs: list[tuple[str, int, str, str, str, str]],
             outcomes_key: str, cursor: str) -> list[RaceRun]:
    """Join each pair with B's recorded outcome and the tasks' start/end events."""
    outcome = {}
    for raw in lab.redis.lrange(outcomes_key, 0, -1):
        key, _, result = raw.decode().rpartition(":")
        outcome[key] = result
    start, end = started_and_completed(lab.events(since=cursor), (i for p in pairs for i in p[4:]))
    nan = math.nan
    return [RaceRun(strategy=s, rep=r, key=k, order=o, outcome=outcome.get(k, "lost"),
                    a_start=start.get(a, nan), a_end=end.get(a, nan), b_start=start.get(b, nan))
            for s, r, k, o, a, b in pairs]


def notebook_sized_race(lab: Lab) -> RaceResult:
    """The run notebook 08 makes: 20 pairs per strategy on 2 workers."""
    return race(lab, repetitions=20, workers=2)


# --------------------------------------------------------------------------- the lock
LOCK_STRATEGIES = ("no_lock", "lock", "lock_retry")
LOCK_DESCRIPTIONS = {
    "no_lock": "no lock",
    "lock": "huey.lock_task",
    "lock_retry": "huey.lock_task + retries=2, retry_delay=1",
}


@dataclasses.dataclass
class LockRun:
    """Two ``take_stock`` tasks started together on one stock counter."""

    strategy: str
    start_stock: int
    final_stock: int
    kinds: dict[str, list[str]]   #: event kinds of each task, in order
    start: float                  #: time.time() before the enqueue
    end: float                    #: time.time() when both tasks had finished

    @property
    def tasks(self) -> int:
        return len(self.kinds)

    @property
    def completed(self) -> int:
        """Tasks that finished their work (``complete``)."""
        return sum("complete" in k for k in self.kinds.values())

    @property
    def locked(self) -> int:
        """Times a task found the lock taken (``TaskLockedException``), retries included."""
        return sum(k.count("locked") for k in self.kinds.values())

    @property
    def refused(self) -> int:
        """Tasks that never did their work: locked with no retry left."""
        return sum("complete" not in k for k in self.kinds.values())

    @property
    def taken(self) -> int:
        """Items the stock actually went down by."""
        return self.start_stock - self.final_stock

    @property
    def lost_updates(self) -> int:
        """Completed tasks whose write was overwritten (completed, yet the stock did not move)."""
        return max(0, self.completed - self.taken)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclasses.dataclass
class LockResult:
    """``take_stock`` run twice at once, without a lock, with ``lock_task``, and with retries."""

    workers: int
    seconds: float
    runs: list[LockRun]

    def run(self, strategy: str) -> LockRun:
        return next(r for r in self.runs if r.strategy == strategy)

    @property
    def teaches_lesson(self) -> bool:
        """No lock: a lost update; lock: no lost update but a task refused; retry: both taken."""
        got = {r.strategy: r for r in self.runs}
        ok = True
        if "no_lock" in got:
            ok &= got["no_lock"].lost_updates > 0
        if "lock" in got:
            ok &= got["lock"].lost_updates == 0 and got["lock"].refused > 0
        if "lock_retry" in got:
            r = got["lock_retry"]
            ok &= r.lost_updates == 0 and r.refused == 0 and r.taken == r.tasks and r.locked > 0
        return bool(got) and ok

    def lock_verdict(self) -> str | None:
        """What happened to the second task under ``lock_task``: ``fails``, ``waits`` or ``both``.

        None when the lock run is missing or the two tasks did not overlap.
        """
        if not any(r.strategy == "lock" for r in self.runs):
            return None
        r = self.run("lock")
        if r.lost_updates:
            return "both"
        if r.refused:
            return "fails"
        return "waits" if r.locked else None

    def conclusions(self) -> list[str]:
        """What this run showed, one sentence per strategy, numbers included."""
        out = []
        for r in self.runs:
            head = (f"{LOCK_DESCRIPTIONS[r.strategy]}: {r.tasks} tasks each took one item from "
                    f"a stock of {r.start_stock}; it ended at {r.final_stock}")
            if r.lost_updates:
                out.append(f"{head}. {r.completed} completed but the stock fell by only "
                           f"{r.taken}: {r.lost_updates} update(s) lost, because both read "
                           f"{r.start_stock} before either wrote.")
            elif r.refused:
                out.append(f"{head}. {r.refused} task(s) found the lock taken and raised "
                           f"TaskLockedException instead of waiting: no update was lost, but "
                           f"that item was never taken.")
            elif r.locked:
                times = "once" if r.locked == 1 else f"{r.locked} times"
                out.append(f"{head}. The task that found the lock taken ({times}) was "
                           f"retried by Huey's scheduler and then ran: all {r.taken} items "
                           f"taken, {r.seconds:.1f} s in all.")
            else:
                out.append(f"{head}. The two tasks did not overlap this time, so nothing "
                           f"collided (the lock had nothing to prevent).")
        return out

    def __repr__(self) -> str:
        lines = [f"Lock demo ({self.workers} workers, each task works {self.seconds} s):"]
        for r in self.runs:
            lines.append(f"  {LOCK_DESCRIPTIONS[r.strategy]:<42} stock {r.start_stock} → "
                         f"{r.final_stock}  completed {r.completed}/{r.tasks}, "
                         f"'locked' {r.locked}, lost updates {r.lost_updates}")
        return "\n".join(lines)


def lock_race(lab: Lab, workers: int = 2, seconds: float = 0.3, stock: int = 5,
              strategies: Sequence[str] = LOCK_STRATEGIES, timeout: float = 15.0) -> LockResult:
    """Start two ``take_stock`` tasks at once per strategy; count lost updates and refusals.

    ``lock_retry`` waits for Huey's scheduler (retry_delay=1 s, its tick is one second), so
    it takes 1-3 s. The lab is scaled to ``workers`` (at least 2) and restored afterwards.
    """
    check_range("workers", workers, 2, 16, integer=True)
    check_range("seconds", seconds, 0.05, 2.0)
    check_range("stock", stock, 2, 1000, integer=True)
    check_range("timeout", timeout, 2.0, 60.0)
    strategies = tuple(strategies)
    if not strategies or any(s not in LOCK_STRATEGIES for s in strategies) or \
            len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies={strategies!r}: choose from {LOCK_STRATEGIES}")
    conn = lab.redis
    runs = []
    with arranged(lab, workers=workers), Progress("lock", len(strategies)) as progress:
        for strategy in strategies:
            key = f"{strategy}-{uuid.uuid4().hex[:6]}"
            conn.set(lab.key("stock", key), stock, ex=3600)
            params = {"key": key, "seconds": seconds, "use_lock": int(strategy != "no_lock")}
            if strategy == "lock_retry":
                params.update(retries=2, retry_delay=1.0)
            cursor = lab.cursor()
            start = time.time()
            handles = [lab.enqueue("take_stock", **params) for _ in range(2)]
            ids = {h.id for h in handles}
            kinds: dict[str, list[str]] = {}

            def finished() -> bool:
                kinds.clear()
                ended = set()
                for ev in lab.events(since=cursor):
                    if ev.task_id in ids:
                        kinds.setdefault(ev.task_id, []).append(ev.kind)
                        if ev.terminal:
                            ended.add(ev.task_id)
                return ended == ids

            if not procs.wait_until(finished, timeout, max_interval=0.05):
                logger.warning("lock demo %s: tasks did not finish in %.0f s", strategy, timeout)
            final = int(conn.get(lab.key("stock", key)) or 0)
            runs.append(LockRun(strategy=strategy, start_stock=stock, final_stock=final,
                                kinds={h.id: kinds.get(h.id, []) for h in handles},
                                start=start, end=time.time()))
            progress.update(1, strategy)
    return LockResult(workers=workers, seconds=seconds, runs=runs)


def notebook_sized_lock(lab: Lab) -> LockResult:
    """The lock demo notebook 08 runs: two tasks of 0.3 s per strategy on 2 workers."""
    return lock_race(lab)


def pipeline_arguments(lab: Lab, timeout: float = 10.0) -> dict[str, str]:
    """Run ``step_a(key).then(step_b, key)`` once; return the arguments each step was enqueued with.

    Huey enqueues B when A completes, appending A's return value to the arguments given to
    ``.then()`` (``Task.extend_data``: a tuple extends them, a dict fills missing keyword
    arguments, ``None`` adds nothing). ``step_a`` returns its key, so B receives two.
    """
    key = f"then-{uuid.uuid4().hex[:6]}"
    cursor = lab.cursor()
    a = tasks.signature("step_a", {"key": key, "seconds": 0.0})
    handles = list(lab.huey.enqueue(a.then(tasks.TASKS["step_b"], key)))
    if not lab.wait(handles, timeout=timeout):
        raise TimeoutError(f"the pipeline did not finish in {timeout:.0f} s: "
                           f"see lab.logs('worker')")
    ids = {h.id: name for h, name in zip(handles, ("step_a", "step_b"))}
    return {ids[e.task_id]: e.detail for e in lab.events(since=cursor)
            if e.kind == "enqueued" and e.task_id in ids}
