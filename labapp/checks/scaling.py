"""Checks for exercises 06-07: enough workers for a target rate, and end-to-end time."""
from __future__ import annotations

import logging
import time
from typing import Any

from labapp.checks._common import EXERCISES
from labapp.checks._common import NotYet
from labapp.checks._common import by_task
from labapp.checks._common import call
from labapp.checks._common import exercise
from labapp.checks._common import require_function
from labapp.checks._common import scaled
from labapp.checks._common import unsolved

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- 06
JOB_SECONDS = 0.2
TARGET_PER_S = 12.0
SCALE_JOBS = 60
MAX_SENSIBLE_WORKERS = 6


def drain_rate(lab: Any, count: int, seconds: float = JOB_SECONDS,
               within: float | None = None) -> tuple[float, bool]:
    """Jobs per second for ``count`` sleep jobs, first enqueued to last complete (from events).

    :param within: stop waiting after this many seconds; the rate is then what was done so
        far, and the unfinished jobs are dropped from the queue.
    :return: (jobs per second, whether all jobs finished).
    """
    lab.reset()
    handles = lab.enqueue_many("sleep", count, seconds=seconds)
    finished = lab.wait(handles, within or 10 + count * seconds)
    now = time.time()
    evs = [e for e in lab.events() if e.task == "sleep"]
    start = min(e.time for e in evs if e.kind == "enqueued")
    done = [e.time for e in evs if e.kind == "complete"]
    if not finished:
        lab.reset()
        return len(done) / (now - start), False
    return count / (max(done) - start), True


@exercise("ex06_scaling", "06_scaling_and_monitoring", 'check("ex06_scaling", workers=WORKERS)')
def check_scaling(lab: Any, workers: Any = None) -> tuple[str, dict[str, Any]]:
    """With ``workers`` thread workers, 0.2 s jobs must drain at >= 12 jobs/s (and n <= 6)."""
    if unsolved(workers):
        raise NotYet("WORKERS is still ...: measure a few worker counts, then set WORKERS to "
                      "the smallest count that reaches 12 jobs/s")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 16:
        raise NotYet(f"WORKERS={workers!r}: use a whole number of workers from 1 to 16")
    if workers > MAX_SENSIBLE_WORKERS:
        raise NotYet(f"{workers} workers would do it, but that is far more than needed: each "
                     f"worker finishes {1 / JOB_SECONDS:.0f} jobs/s; find the smallest count")
    # Past 1.5x the time the target allows, the rate can no longer reach it: stop there.
    with scaled(lab, workers):
        rate, _ = drain_rate(lab, SCALE_JOBS, within=1.5 * SCALE_JOBS / TARGET_PER_S)
    details = {"workers": workers, "jobs_per_s": round(rate, 2), "target": TARGET_PER_S,
               "ideal": workers / JOB_SECONDS}
    if rate < TARGET_PER_S:
        raise NotYet(f"with {workers} worker{'s' if workers > 1 else ''} the lab drained "
                     f"{rate:.1f} jobs/s (target {TARGET_PER_S:.0f}): each worker does at "
                     f"most {1 / JOB_SECONDS:.0f} jobs/s of {JOB_SECONDS} s jobs; add workers",
                     **details)
    return (f"{workers} workers drained {SCALE_JOBS} jobs at {rate:.1f} jobs/s (target "
            f"{TARGET_PER_S:.0f}, ideal {workers / JOB_SECONDS:.0f})", details)


# --------------------------------------------------------------------------- 07
@exercise("ex07_end_to_end", "07_myth_busters",
          'check("ex07_end_to_end", end_to_end_seconds=end_to_end_seconds)')
def check_end_to_end(lab: Any, end_to_end_seconds: Any = None) -> tuple[str, dict[str, Any]]:
    """end_to_end_seconds(lab) must report enqueue-to-complete time of its sleep job, queue wait included."""
    fn = require_function("end_to_end_seconds", end_to_end_seconds,
                           EXERCISES["ex07_end_to_end"].usage)
    with scaled(lab, 2):
        lab.reset()
        busy = set(h.id for h in lab.enqueue_many("sleep", 4, seconds=0.5))  # 1 s of queue
        cursor = lab.cursor()
        answer = call("end_to_end_seconds(lab)", fn, lab)
        lab.wait(list(busy), 10)
        history = by_task(lab.events(since=cursor))
    mine = [evs for tid, evs in history.items() if tid not in busy
            and any(e.kind == "enqueued" and e.task == "sleep" for e in evs)]
    if not mine:
        raise NotYet("end_to_end_seconds did not enqueue a sleep job: enqueue one with "
                     "lab.enqueue('sleep', seconds=0.3) and wait for it")
    evs = mine[-1]
    kinds = {e.kind: e.time for e in evs}
    if "complete" not in kinds:
        raise NotYet("your sleep job had not completed when end_to_end_seconds returned: "
                     "wait for it (lab.wait(handle)) before measuring")
    truth = kinds["complete"] - kinds["enqueued"]
    run = kinds["complete"] - kinds.get("executing", kinds["complete"])
    details = {"truth_s": round(truth, 3), "run_s": round(run, 3)}
    if unsolved(answer) or isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise NotYet(f"end_to_end_seconds returned {answer!r}: return the seconds as a number",
                     **details)
    details["answer_s"] = round(float(answer), 3)
    if answer > 20 * truth:
        raise NotYet(f"you returned {answer:g}, but the job took {truth:.2f} s: return seconds, "
                     "not milliseconds", **details)
    if abs(answer - truth) > max(0.15, 0.2 * truth):
        raise NotYet(f"you returned {answer:.2f} s, but the job took {truth:.2f} s from enqueue "
                     f"to complete ({truth - run:.2f} s waiting in the queue + {run:.2f} s "
                     "running): measure from enqueue to complete", **details)
    return (f"end to end {answer:.2f} s (measured {truth:.2f} s) for a {run:.2f} s task: "
            "the queue made the response fast, not the task", details)
