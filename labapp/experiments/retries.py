"""Retries (05, pitfall 3): a flaky task with no retries, a fixed delay, exponential backoff,
and exponential backoff with jitter.

Huey retries nothing unless asked (``retries=0``). With ``retry_delay`` the retry waits in
the schedule, which Huey's scheduler reads once per tick (1 s), so a 1 s delay really costs
1-2 s; ``retry_backoff`` multiplies the delay after each attempt. Huey has no jitter, so the
``jitter`` strategy runs :func:`labapp.tasks.flaky_jitter`, which schedules its own retries
with a seeded random delay. All strategies run at the same time, each on its own flaky
task (own failure counter), so the run takes as long as the slowest strategy.

With ``clients > 1`` every strategy gets that many tasks, enqueued together and failing
together, like many users of one service that just went down: the thundering herd.
"""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Sequence

from labapp import events
from labapp import tasks
from labapp.experiments._common import check_range
from labapp.experiments._control import arranged
from labapp.experiments._control import wait_for_events

if TYPE_CHECKING:
    from labapp.stack import Lab

SCHEDULER_TICK = 1.0  # seconds between the consumer's schedule reads (huey_consumer -s)
BUDGET = 120.0
STRATEGIES = ("none", "fixed", "backoff", "jitter")
#: what ``retries()`` runs unless told: jitter only shows with many clients (``clients=8``)
DEFAULT_STRATEGIES = ("none", "fixed", "backoff")
MAX_CLIENTS = 20
_TITLE = {"none": "No retries", "fixed": "Fixed delay", "backoff": "Plain backoff",
          "jitter": "Backoff with jitter"}


@dataclasses.dataclass(frozen=True)
class RetryAttempt:
    """One attempt of a strategy's task: when it ran and how it ended."""

    number: int     #: 1 for the first try
    start: float    #: ``time.time()`` of ``executing``
    end: float      #: ``time.time()`` of ``complete``/``error``/``retrying``
    outcome: str    #: ``complete``, ``error``, or ``retry`` (failed and raised ``RetryTask``)
    worker: str


@dataclasses.dataclass(frozen=True)
class StrategyRun:
    """One flaky task under one retry policy, attempt by attempt."""

    name: str                 #: ``none``, ``fixed``, ``backoff`` or ``jitter``
    retries: int
    retry_delay: float
    retry_backoff: float
    task_id: str
    enqueued: float           #: ``time.time()`` of the producer's ``enqueued`` event
    attempts: tuple[RetryAttempt, ...]
    final_state: str          #: last state recorded for the task (``complete``, ``error`` …)
    client: int = 0           #: which of the simultaneous clients (0 when there is one)
    jitter: float = 0.0       #: relative jitter of the ``jitter`` strategy (0 otherwise)
    key: str = ""             #: the flaky task's key (its failure counter, and jitter's seed)
    seed: int = 0             #: the ``jitter`` strategy's seed

    @property
    def gaps(self) -> list[float]:
        """Seconds between the end of each failed attempt and the start of the next."""
        a = self.attempts
        return [a[i + 1].start - a[i].end for i in range(len(a) - 1)]

    @property
    def planned_delays(self) -> list[float]:
        """The delays Huey was asked for: ``retry_delay × retry_backoff**i`` (× jitter's draw)."""
        factor = self.retry_backoff or 1.0
        if self.name == "jitter":
            return [tasks.flaky_jitter_delay(self.key, i + 1, self.retry_delay, factor,
                                             self.jitter, self.seed)
                    for i in range(len(self.attempts) - 1)]
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
                             f"{self.retry_backoff:g} backoff",
                  "jitter": f"{self.retries} retries, {self.retry_delay:g} s x"
                            f"{self.retry_backoff:g} backoff, jitter ±{self.jitter:.0%}"
                  }.get(self.name, self.name)
        gaps = ", ".join(f"{g:.1f}" for g in self.gaps)
        gap_text = f", waits {gaps} s" if gaps else ""
        n = len(self.attempts)
        return (f"{self.name} ({policy}): {n} attempt{'' if n == 1 else 's'}{gap_text} -> "
                f"{self.final_state} after {self.total:.1f} s")


@dataclasses.dataclass(frozen=True)
class RetriesResult:
    """The same flaky task (fails ``fail_times`` times) under each retry strategy.

    With ``clients > 1``, ``runs`` holds one run per strategy and client.
    """

    fail_times: int
    runs: tuple[StrategyRun, ...]
    tick: float = SCHEDULER_TICK
    clients: int = 1

    @property
    def names(self) -> list[str]:
        """The strategies in this result, in the order they ran."""
        return list(dict.fromkeys(r.name for r in self.runs))

    def run(self, name: str) -> StrategyRun:
        """The run of strategy ``name`` (its first client's, when there are several)."""
        return self.runs_of(name)[0]

    def runs_of(self, name: str) -> list[StrategyRun]:
        """Every client's run of strategy ``name``."""
        found = [r for r in self.runs if r.name == name]
        if not found:
            raise KeyError(f"no strategy {name!r} in this result: {self.names}")
        return found

    @property
    def origin(self) -> float:
        """``time.time()`` of the first ``enqueued`` event: time 0 of the plots."""
        return min((r.enqueued for r in self.runs if r.enqueued == r.enqueued), default=0.0)

    def retry_starts(self, name: str) -> list[float]:
        """Seconds after :attr:`origin` when strategy ``name``'s retries started (all clients)."""
        return sorted(a.start - self.origin for r in self.runs_of(name) for a in r.attempts[1:])

    def spread(self, name: str) -> list[float]:
        """Per retry (1st, 2nd …): seconds between the first and the last client starting it."""
        out = []
        for i in range(1, 1 + max(len(r.attempts) for r in self.runs_of(name))):
            starts = [r.attempts[i].start for r in self.runs_of(name) if len(r.attempts) > i]
            if len(starts) > 1:
                out.append(max(starts) - min(starts))
        return out

    def bursts(self, name: str) -> list[tuple[float, int]]:
        """Strategy ``name``'s retries grouped by scheduler tick: (first start, how many).

        Retries due in the same tick are enqueued together and start within milliseconds;
        the next tick's start a whole tick later, so starts less than half a tick after a
        group's first one belong to that group.
        """
        groups: list[tuple[float, int]] = []
        for t in self.retry_starts(name):
            if groups and t - groups[-1][0] < self.tick / 2:
                groups[-1] = (groups[-1][0], groups[-1][1] + 1)
            else:
                groups.append((t, 1))
        return groups

    def peak(self, name: str) -> int:
        """The most retries of strategy ``name`` that started in one scheduler tick."""
        return max((n for _, n in self.bursts(name)), default=0)

    def conclusions(self) -> list[str]:
        """What this run showed, as sentences computed from its numbers."""
        return self._herd_conclusions() if self.clients > 1 else self._strategy_conclusions()

    def _strategy_conclusions(self) -> list[str]:
        out = []
        for r in self.runs:
            n = len(r.attempts)
            tries = f"{n} attempt{'s' * (n != 1)}"
            if r.name == "none":
                end = ("its error was recorded and nothing ran it again" if r.final_state == "error"
                       else f"it ended {r.final_state}")
                out.append(f"No retries: {tries}; {end}.")
                continue
            asked = ", ".join(f"{d:.1f}" for d in r.planned_delays)
            got = ", ".join(f"{g:.1f}" for g in r.gaps)
            line = (f"{_TITLE.get(r.name, r.name)}: {tries}, {r.final_state} after "
                    f"{r.total:.1f} s")
            if r.gaps:
                line += f"; asked for waits of {asked} s, measured {got} s"
                late = [g - d for g, d in zip(r.gaps, r.planned_delays)]
                if all(-0.1 <= x <= self.tick + 0.3 for x in late):
                    line += (f" (each wait is the delay rounded up to the scheduler's next "
                             f"{self.tick:g} s tick, so it varies by up to a second)")
            out.append(line + ".")
        names = self.names
        if "backoff" in names:
            g = self.run("backoff").gaps
            if len(g) >= 2:
                grew = all(b > a for a, b in zip(g, g[1:]))
                out.append("Backoff: each wait was longer than the one before." if grew else
                           "Backoff: this time the waits did not grow from one retry to the next "
                           "(the tick rounding can swallow a 1 s difference).")
        if {"fixed", "backoff"} <= set(names):
            f, b = self.run("fixed"), self.run("backoff")
            if f.completed and b.completed:
                diff = b.total - f.total
                out.append(f"With the same {len(b.attempts) - 1} retries backoff finished "
                           f"{abs(diff):.1f} s {'later' if diff > 0 else 'sooner'} than the "
                           "fixed delay.")
        return out

    def _herd_conclusions(self) -> list[str]:
        out = []
        for name in self.names:
            runs = self.runs_of(name)
            ticks = len(self.bursts(name))
            retried = len(self.retry_starts(name))
            done = sum(r.completed for r in runs)
            out.append(f"{_TITLE.get(name, name)}: {done} of {len(runs)} clients completed; their "
                       f"{retried} retries arrived in {ticks} burst{'s' * (ticks != 1)}, at most "
                       f"{self.peak(name)} in one scheduler tick.")
        if {"backoff", "jitter"} <= set(self.names):
            b, j = self.peak("backoff"), self.peak("jitter")
            if j < b:
                out.append(f"Jitter cut the largest burst the service had to take from {b} "
                           f"to {j} calls in one tick.")
            else:
                out.append(f"This time jitter did not lower the largest burst ({j} against "
                           f"{b}): the random delays happened to fall into the same ticks.")
            spreads = self.spread("jitter")
            if len(spreads) >= 2:
                grew = spreads[-1] > spreads[0]
                out.append(f"The jittered retries spread over {', '.join(f'{s:.1f}' for s in spreads)}"
                           f" s (first, second retry …)"
                           + (": the spread grows with the delays." if grew else "."))
        return out

    @property
    def jitter_effect(self) -> str | None:
        """``fewer``, ``same`` or ``more``: jitter's largest burst in one tick against plain
        backoff's (None unless both ran)."""
        if not {"backoff", "jitter"} <= set(self.names):
            return None
        jitter, plain = self.peak("jitter"), self.peak("backoff")
        return "fewer" if jitter < plain else "same" if jitter == plain else "more"

    @property
    def teaches_lesson(self) -> bool:
        """True when this run shows what 05 teaches: for strategies, no retries ends in error
        after one attempt while fixed and backoff complete, backoff's waits growing; for a herd,
        jitter lowers the largest burst of retries in one tick."""
        if self.clients > 1:
            return self.peak("jitter") < self.peak("backoff")
        none, fixed, back = self.run("none"), self.run("fixed"), self.run("backoff")
        g = back.gaps
        return (none.final_state == "error" and len(none.attempts) == 1 and fixed.completed
                and back.completed and len(g) >= 2 and all(b > a for a, b in zip(g, g[1:])))

    def jitter_window(self) -> float:
        """Width (s) of the window jitter draws the first retry's delay from (0 without jitter)."""
        runs = [r for r in self.runs if r.name == "jitter"]
        return 2 * runs[0].jitter * runs[0].retry_delay if runs else 0.0

    def __repr__(self) -> str:
        if self.clients > 1:
            return self._repr_herd()
        parts = []
        for r in self.runs:
            n = len(r.attempts)
            waits = "/".join(f"{g:.1f}" for g in r.gaps)
            parts.append(f"{r.name} -> {r.final_state} after {n} attempt{'s' * (n != 1)}"
                         + (f", waits {waits} s" if waits else ""))
        return (f"RetriesResult(a task failing {self.fail_times}x; delays round up to the "
                f"scheduler's {self.tick:g} s tick{self._jitter_note()}:\n  {' · '.join(parts)})")

    def _repr_herd(self) -> str:
        lines = []
        for name in self.names:
            runs = self.runs_of(name)
            done = sum(r.completed for r in runs)
            spread = ", ".join(f"{s:.1f}" for s in self.spread(name)) or "-"
            lines.append(f"{name}: {done}/{len(runs)} completed; retries 1, 2 … spread over "
                         f"{spread} s; at most {self.peak(name)} retries in one tick")
        return (f"RetriesResult({self.clients} clients, each task failing {self.fail_times}x "
                f"at the same moment; delays round up to the scheduler's {self.tick:g} s tick"
                f"{self._jitter_note()}:\n  " + "\n  ".join(lines) + ")")

    def _jitter_note(self) -> str:
        width = self.jitter_window()
        if not width:
            return ""
        ticks = width / self.tick
        text = f"; jitter draws the first delay from a {width:g} s window ({ticks:g} tick"
        text += "s)" if ticks != 1 else ")"
        if ticks >= 2:
            return text + ", wide enough to survive that rounding"
        if ticks >= 1:
            return text + ", which the rounding blurs (raise retry_delay or jitter)"
        return text + ", which the rounding may erase (raise retry_delay or jitter)"


def retries(lab: Lab, fail_times: int = 2, retry_delay: float = 1.0, backoff: float = 2.0,
            retries: int | None = None,
            strategies: Sequence[str] = DEFAULT_STRATEGIES, clients: int = 1,
            jitter: float = 0.5, seed: int = 0) -> RetriesResult:
    """Run a task that fails ``fail_times`` times under each retry strategy, side by side.

    :param fail_times: failures before the task succeeds (0 to 10).
    :param retry_delay: seconds before the first retry, except for ``none`` (0 to 30).
    :param backoff: delay multiplier of ``backoff`` and ``jitter`` (1 to 4).
    :param retries: retries allowed (0 to 10; default ``fail_times``, just enough).
    :param strategies: any of ``none``, ``fixed``, ``backoff``, ``jitter``.
    :param clients: tasks per strategy, enqueued together (1 to 20): with several, plain
        backoff retries them all in the same tick and jitter spreads them out.
    :param jitter: ``jitter``'s relative spread (0 to 1): each delay is scaled by a random
        factor from ``[1 - jitter, 1 + jitter]``. Keep ``2 × jitter × retry_delay`` at a tick
        (1 s) or more, or the scheduler's rounding hides the spread.
    :param seed: seeds ``jitter``'s delays, so a run repeats (0 to 2**31 - 1).
    """
    check_range("fail_times", fail_times, 0, 10, integer=True)
    check_range("retry_delay", retry_delay, 0, 30)
    check_range("backoff", backoff, 1, 4)
    retries = fail_times if retries is None else retries
    check_range("retries", retries, 0, 10, integer=True)
    check_range("clients", clients, 1, MAX_CLIENTS, integer=True)
    check_range("jitter", jitter, 0, 1)
    check_range("seed", seed, 0, 2**31 - 1, integer=True)
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad or not strategies or len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies={tuple(strategies)!r}: choose distinct names from "
                         f"{', '.join(STRATEGIES)}")
    if lab.config.workers < 1:
        raise ValueError("retries needs at least 1 worker: run lab.scale(2) first")
    planned = _planned_wait(strategies, min(fail_times, retries), retry_delay, backoff, jitter)
    if planned > BUDGET:
        raise ValueError(f"retry_delay/backoff/fail_times add up to about {planned:.0f} s of "
                         f"waiting, allowed up to {BUDGET:.0f} s; lower them")
    options = _task_options(retries, retry_delay, backoff, jitter, seed)
    # Fixed keys (not per run), so jitter's seeded delays repeat; their counters are
    # deleted before and after the run (arranged() has emptied queue and schedule).
    keys = {(s, c): f"retries-{s}-{c}" for c in range(clients) for s in strategies}
    counters = [events.key(lab.name, "flaky", k) for k in keys.values()]
    with arranged(lab) as cursor:
        lab.redis.delete(*counters)
        # client by client, strategy by strategy: no strategy gets a head start
        handles = {(s, c): lab.enqueue("flaky_jitter" if s == "jitter" else "flaky", key=k,
                                       fail_times=fail_times, **options[s])
                   for (s, c), k in keys.items()}
        ids = {h.id for h in handles.values()}
        evs = wait_for_events(lab, cursor, ids, timeout=planned + 10 + 2 * SCHEDULER_TICK,
                              label="retries")
        lab.redis.delete(*counters)
    runs = tuple(_strategy_run(s, c, handles[(s, c)].id, evs, options[s], keys[(s, c)], seed)
                 for s in strategies for c in range(clients))
    return RetriesResult(fail_times, runs, clients=clients)


def _planned_wait(strategies: Sequence[str], attempts: int, retry_delay: float,
                  backoff: float, jitter: float) -> float:
    """Seconds the slowest strategy may wait in all (its delays plus a scheduler tick each)."""
    # jitter's delays are at most (1 + jitter) × backoff's
    scale = {"none": 0.0, "fixed": 1.0, "backoff": 1.0, "jitter": 1.0 + jitter}
    return max(sum(retry_delay * scale[s] * (1.0 if s == "fixed" else backoff) ** i
                   for i in range(attempts)) for s in strategies) + attempts * SCHEDULER_TICK


def _task_options(retries: int, retry_delay: float, backoff: float, jitter: float,
                  seed: int) -> dict[str, dict[str, Any]]:
    """The enqueue options of each strategy's task."""
    return {"none": {"retries": 0},
            "fixed": {"retries": retries, "retry_delay": retry_delay},
            "backoff": {"retries": retries, "retry_delay": retry_delay,
                        "retry_backoff": backoff},
            # Huey has no jitter: this task asks for each retry itself (RetryTask)
            "jitter": {"max_retries": retries, "base": retry_delay, "factor": backoff,
                       "jitter": jitter, "seed": seed}}


def _strategy_run(name: str, client: int, task_id: str, evs: list[Any], opts: dict[str, Any],
                  key: str, seed: int) -> StrategyRun:
    """One task's run under one strategy, read from its events."""
    mine = sorted((e for e in evs if e.task_id == task_id), key=lambda e: e.time)
    return StrategyRun(
        name=name, retries=opts.get("retries", opts.get("max_retries", 0)),
        retry_delay=opts.get("retry_delay", opts.get("base", 0.0)),
        retry_backoff=opts.get("retry_backoff", opts.get("factor", 0.0)), task_id=task_id,
        enqueued=next((e.time for e in mine if e.kind == "enqueued"), float("nan")),
        attempts=_attempts(mine), final_state=_final_state(mine), client=client,
        jitter=opts.get("jitter", 0.0), key=key, seed=seed)


def _attempts(evs: list[Any]) -> tuple[RetryAttempt, ...]:
    # A task that raises RetryTask emits no ``error``: its attempt ends with ``retrying``.
    # After an ordinary error, ``retrying`` follows the ``error`` and is skipped here.
    out, start = [], None
    for e in evs:
        if e.kind == "executing":
            start = e
        elif e.kind in ("complete", "error", "retrying") and start is not None:
            outcome = "retry" if e.kind == "retrying" else e.kind
            out.append(RetryAttempt(len(out) + 1, start.time, e.time, outcome, start.worker))
            start = None
    return tuple(out)


def _final_state(evs: list[Any]) -> str:
    """``complete``, ``error`` (no retries left) or the last event kind seen."""
    for e in reversed(evs):
        if e.kind == "complete" or (e.kind == "error" and e.retries == 0):
            return e.kind
    return evs[-1].kind if evs else "unknown"


# ----------------------------------------------------------------------------- defaults
@dataclasses.dataclass(frozen=True)
class DefaultRetryResult:
    """A task that fails once, enqueued with Huey's default options: what happened next."""

    task_id: str
    kinds: tuple[str, ...]     #: the task's event kinds, oldest first
    retries_left: int | None   #: ``retries`` Huey reported with the task's first error
    watched: float             #: seconds we watched for another attempt after the error
    queued: int                #: tasks waiting in the queue afterwards
    scheduled: int             #: tasks waiting in the schedule afterwards

    @property
    def attempts(self) -> int:
        """How many times a worker started the task."""
        return self.kinds.count("executing")

    @property
    def retried(self) -> bool:
        """True when Huey ran the task a second time."""
        return self.attempts > 1

    def conclusions(self) -> list[str]:
        """What this run showed, as sentences computed from its numbers."""
        seen = " → ".join(self.kinds) or "none"
        out = [f"Events of the task: {seen}."]
        if self.retried:
            out.append(f"Huey ran it {self.attempts} times: it was retried (were retries "
                       "configured for this task?).")
        else:
            left = "" if self.retries_left is None else \
                f" Its error event says {self.retries_left} retries were left."
            out.append(f"It ran once, failed, and in the {self.watched:.1f} s we watched "
                       f"afterwards no second attempt started.{left}")
        out.append(f"Afterwards {self.queued} task{'s' * (self.queued != 1)} waited in the queue "
                   f"and {self.scheduled} in the schedule"
                   + (": nothing will run it again; only its error is stored as its result."
                      if not self.retried and self.queued == 0 and self.scheduled == 0 else "."))
        return out

    @property
    def teaches_lesson(self) -> bool:
        """True when this run shows 05's lesson: by default a failed task is not retried."""
        return not self.retried and "error" in self.kinds

    def __repr__(self) -> str:
        return "DefaultRetryResult(" + " ".join(self.conclusions()) + ")"


def default_retries(lab: Lab, watch: float = 1.5) -> DefaultRetryResult:
    """Enqueue ``flaky`` (fails once) with no retry options; watch ``watch`` s for a retry.

    Waits on the events stream: for the first error, then up to ``watch`` seconds (0.1 to
    10) for a second ``executing`` of the same task, longer than Huey's scheduler tick so a
    retry parked in the schedule would show too.
    """
    check_range("watch", watch, 0.1, 10)
    if lab.config.workers < 1:
        raise ValueError("default_retries needs at least 1 worker: run lab.scale(2) first")
    key = f"default-{time.time_ns()}"
    with arranged(lab) as cursor:
        handle = lab.enqueue("flaky", key=key, fail_times=1)
        evs = wait_for_events(lab, cursor, {handle.id}, timeout=15, label="one flaky task")
        # The measurement window: a retry (straight back into the queue, or via the schedule
        # within a tick) would show up here as a second ``executing``.
        for e in events.follow(lab.redis, lab.name, evs[-1].id if evs else cursor, watch):
            if e is not None and e.task_id == handle.id:
                evs.append(e)
                if e.kind == "complete":
                    break
        queued, scheduled = lab.queue_length(), len(lab.huey.scheduled())
        lab.redis.delete(events.key(lab.name, "flaky", key))
    mine = [e for e in evs if e.task_id == handle.id]
    first_error = next((e for e in mine if e.kind == "error"), None)
    return DefaultRetryResult(handle.id, tuple(e.kind for e in mine),
                              None if first_error is None else first_error.retries,
                              watch, queued, scheduled)


NOTEBOOK = {"fail_times": 2, "retry_delay": 1.0, "backoff": 2.0}       #: 05, strategies
NOTEBOOK_HERD = {"fail_times": 2, "retry_delay": 2.0, "backoff": 2.0,  #: 05, the herd
                 "strategies": ("backoff", "jitter"), "clients": 8, "jitter": 1.0, "seed": 0}


def notebook_sized_default(lab: Lab) -> DefaultRetryResult:
    """05's first question: a task failing once, default options."""
    return default_retries(lab)


def notebook_sized(lab: Lab) -> RetriesResult:
    """05's comparison of no retries, a fixed delay and backoff."""
    return retries(lab, **NOTEBOOK)


def notebook_sized_herd(lab: Lab) -> RetriesResult:
    """05's herd: 8 clients with plain backoff and with jitter."""
    return retries(lab, **NOTEBOOK_HERD)
