"""Checks for exercises 06-07: the smallest worker count for a load, and end-to-end time."""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from labapp.checks._common import EXERCISES
from labapp.checks._common import NotYet
from labapp.checks._common import by_task
from labapp.checks._common import call
from labapp.checks._common import draw
from labapp.checks._common import exercise
from labapp.checks._common import require_function
from labapp.checks._common import unsolved
from labapp.experiments._control import arranged

if TYPE_CHECKING:
    from labapp.stack import Lab


# --------------------------------------------------------------------------- 06
JOB_SECONDS = (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0)  # task durations the scenarios use
LIVE_SECONDS = (0.1, 0.2, 0.25)                      # ... and the one that is measured
PAPER_SCENARIOS = 6


def _scenario(rand: Any, durations: tuple[float, ...], low: float, high: float,
              fracs: tuple[float, float] = (0.2, 0.8)) -> tuple[float, float]:
    """A (rate, seconds) load whose work in flight (rate × seconds) lies in [low, high] and
    whose fraction lies in ``fracs`` (at least 0.2 away from a whole number), so "just
    enough" and "one too few" differ."""
    while True:
        seconds = rand.choice(durations)
        rate = round(rand.uniform(low, high) / seconds, 1)
        frac = (rate * seconds) % 1
        if low <= rate * seconds <= high and fracs[0] <= frac <= fracs[1]:
            return rate, seconds


def drain_rate(lab: Lab, count: int, seconds: float, within: float) -> tuple[float, bool]:
    """Jobs per second for ``count`` sleep jobs, first enqueued to last complete (from events).

    :param within: stop waiting after this many seconds; the rate is then what was done so
        far, and the unfinished jobs are dropped from the queue.
    :return: (jobs per second, whether all jobs finished).
    """
    lab.reset()
    handles = lab.enqueue_many("sleep", count, seconds=seconds)
    finished = lab.wait(handles, within)
    now = time.time()
    evs = [e for e in lab.events() if e.task == "sleep"]
    start = min(e.time for e in evs if e.kind == "enqueued")
    done = [e.time for e in evs if e.kind == "complete"]
    if not finished:
        lab.reset()
        return len(done) / (now - start), False
    return count / (max(done) - start), True


@exercise("ex06_scaling", "06_scaling_and_monitoring",
          'check("ex06_scaling", workers_needed=workers_needed)')
def check_scaling(lab: Lab, workers_needed: Any = None) -> tuple[str, dict[str, Any]]:
    """workers_needed(rate, seconds) must give the smallest worker count that keeps up.

    The check draws loads at random (a rate of jobs per second, each job waiting
    ``seconds`` on I/O): on each, the answer must be the smallest count whose ideal
    throughput (workers / seconds) reaches the rate. On one of them it then measures: the
    lab runs that many thread workers and must drain jobs at least at the rate.
    """
    fn = require_function("workers_needed", workers_needed, EXERCISES["ex06_scaling"].usage)
    rand = draw()
    # One load just above a whole number and one just below, so rounding to the nearest
    # count (instead of up) always meets a load it gets wrong.
    paper = [_scenario(rand, JOB_SECONDS, 1.2, 15.8, (0.2, 0.45)),
             _scenario(rand, JOB_SECONDS, 1.2, 15.8, (0.55, 0.8))]
    paper += [_scenario(rand, JOB_SECONDS, 1.2, 15.8) for _ in range(PAPER_SCENARIOS - 2)]
    live = _scenario(rand, LIVE_SECONDS, 1.2, 3.6)
    answers: list[dict[str, Any]] = []
    details: dict[str, Any] = {"scenarios": answers}
    for rate, seconds in paper + [live]:
        n = call(f"workers_needed({rate}, {seconds})", fn, rate, seconds)
        answers.append({"rate": rate, "seconds": seconds, "answer": n})
        if unsolved(n) or isinstance(n, bool) or not isinstance(n, int):
            raise NotYet(f"workers_needed({rate}, {seconds}) returned {n!r}: return a whole "
                         "number of workers (an int)", **details)
        enough = n / seconds >= rate          # ideal throughput of n workers
        fewer_too = (n - 1) / seconds >= rate
        if not enough:
            raise NotYet(f"workers_needed({rate}, {seconds}) returned {n}: {n} worker"
                         f"{'s' if n != 1 else ''} of {seconds} s jobs finish at most "
                         f"{n / seconds:.1f} jobs/s, fewer than the {rate} arriving each second "
                         "(notebook 06, 'Throughput against the number of workers')", **details)
        if fewer_too:
            raise NotYet(f"workers_needed({rate}, {seconds}) returned {n}: that keeps up, but "
                         "fewer workers would too; workers cost memory and connections, so "
                         "return the smallest count that keeps up", **details)
    rate, seconds = live
    n = answers[-1]["answer"]
    if n > 16:
        raise NotYet(f"workers_needed({rate}, {seconds}) returned {n}: the lab runs at most 16 "
                     "workers", **details)
    per_worker = max(2, math.ceil(2.0 / seconds))  # about 2 s of work for each worker
    with arranged(lab, workers=n, worker_type="thread"):
        measured, _ = drain_rate(lab, n * per_worker, seconds, within=3 * per_worker * seconds + 5)
    details["live"] = {"rate": rate, "seconds": seconds, "workers": n, "jobs": n * per_worker,
                       "jobs_per_s": round(measured, 2)}
    if measured < rate:
        raise NotYet(f"on paper {n} workers keep up with {rate} jobs/s of {seconds} s, but the "
                     f"lab measured {measured:.1f} jobs/s: the machine is too busy right now, "
                     "run the check again", **details)
    return (f"workers_needed was right on {len(answers)} random loads; for {rate} jobs/s of "
            f"{seconds} s, {n} workers measured {measured:.1f} jobs/s", details)


# --------------------------------------------------------------------------- 07
#: Jobs already waiting for the 2 workers in the two scenarios of one check: a short
#: queue and a long one, so their true answers lie far apart and no single number fits both.
BACKLOGS = ((2, 3), (6, 8))
BACKLOG_SECONDS = (0.2, 0.5)
JOB_RANGE = (0.2, 0.5)    # the learner's job (drawn per scenario)


def _tolerance(truth: float) -> float:
    """How far an answer may be from the events: a clock read around lab.wait() is fine."""
    return max(0.08, 0.06 * truth)


def _one_trip(lab: Lab, fn: Any, seconds: float, backlog: list[float]) -> dict[str, Any]:
    """Give the workers ``backlog``, call ``fn(lab, seconds)``; what its job's events say."""
    lab.reset()
    busy = {lab.enqueue("sleep", seconds=s).id for s in backlog}
    cursor = lab.cursor()
    answer = call(f"end_to_end_seconds(lab, {seconds})", fn, lab, seconds)
    lab.wait(list(busy), 10)
    history = lab.events(since=cursor)
    seen: dict[str, Any] = {"seconds": seconds, "backlog_s": backlog}
    mine = [evs for evs in by_task(history).values() if evs[0].task_id not in busy
            and any(e.kind == "enqueued" and e.task == "sleep" for e in evs)]
    if not mine:
        raise NotYet(f"end_to_end_seconds(lab, {seconds}) enqueued no sleep job: the time to "
                     "measure is a job's trip through the queue, so enqueue one", **seen)
    right = [evs for evs in mine if any(e.kind == "enqueued" and repr(seconds) in e.detail
                                        for e in evs)]
    if not right:
        raise NotYet(f"the sleep job you enqueued did not sleep the {seconds} s it was asked "
                     "for: pass `seconds` on to the job", **seen)
    kinds = {e.kind: e.time for e in right[-1]}
    if "complete" not in kinds:
        raise NotYet("your sleep job had not completed when end_to_end_seconds returned: "
                     "wait for it before measuring", **seen)
    truth = kinds["complete"] - kinds["enqueued"]
    run = kinds["complete"] - kinds.get("executing", kinds["complete"])
    seen.update(truth_s=round(truth, 3), run_s=round(run, 3), wait_s=round(truth - run, 3))
    if unsolved(answer) or isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise NotYet(f"end_to_end_seconds returned {answer!r}: return the seconds as a number",
                     **seen)
    seen["answer_s"] = round(float(answer), 3)
    return seen


@exercise("ex07_end_to_end", "07_myth_busters",
          'check("ex07_end_to_end", end_to_end_seconds=end_to_end_seconds)')
def check_end_to_end(lab: Lab, end_to_end_seconds: Any = None) -> tuple[str, dict[str, Any]]:
    """end_to_end_seconds(lab, seconds) must enqueue a sleep job of ``seconds`` and return
    its enqueue-to-complete time, queue wait included.

    Two scenarios in random order: the 2 workers get a short or a long backlog (its size
    and job lengths drawn at random) before the call, and ``seconds`` is drawn too. Each
    answer is compared with the events of the job the function enqueued.
    """
    fn = require_function("end_to_end_seconds", end_to_end_seconds,
                          EXERCISES["ex07_end_to_end"].usage)
    rand = draw()
    sizes = list(BACKLOGS)
    rand.shuffle(sizes)
    trips: list[dict[str, Any]] = []
    with arranged(lab, workers=2, worker_type="thread"):
        for low, high in sizes:
            backlog = [round(rand.uniform(*BACKLOG_SECONDS), 2)
                       for _ in range(rand.randint(low, high))]
            try:
                trips.append(_one_trip(lab, fn, round(rand.uniform(*JOB_RANGE), 3), backlog))
            except NotYet as exc:
                raise NotYet(exc.hint, trips=trips + [exc.details]) from None
    details = {"trips": trips}

    def fits(part: str) -> bool:  # did every answer match this part of the trip?
        return all(abs(t["answer_s"] - t[part]) <= _tolerance(t[part]) for t in trips)

    for t in trips:
        answer, truth, run, wait = t["answer_s"], t["truth_s"], t["run_s"], t["wait_s"]
        if answer > 20 * truth:
            raise NotYet(f"you returned {answer:g}, but the job's whole trip took {truth:.2f} s: "
                         "return seconds, not milliseconds", **details)
        if abs(answer - truth) <= _tolerance(truth):
            continue
        if fits("run_s"):
            why = ("that is about how long the job ran; it also waited in the queue for a free "
                   "worker before that")
        elif fits("wait_s"):
            why = "that is about how long the job waited; its run time is missing"
        else:
            why = "read the job's own events: when was it enqueued, when did it complete?"
        raise NotYet(f"you returned {answer:.2f} s, but this time the job took {truth:.2f} s from "
                     f"enqueue to complete ({wait:.2f} s waiting behind "
                     f"{len(t['backlog_s'])} jobs + {run:.2f} s running): {why}", **details)
    return ("end to end " + " and ".join(
        f"{t['answer_s']:.2f} s ({t['wait_s']:.2f} s in the queue behind {len(t['backlog_s'])} "
        f"jobs + {t['run_s']:.2f} s running)" for t in trips), details)
