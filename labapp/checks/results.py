"""Checks for exercises 04-05: a job scheduled for later, and retries that make jobs succeed."""
from __future__ import annotations

import logging
import time
from typing import Any

from labapp import procs
from labapp.checks._common import EXERCISES
from labapp.checks._common import NotYet
from labapp.checks._common import by_task
from labapp.checks._common import call
from labapp.checks._common import completed
from labapp.checks._common import exercise
from labapp.checks._common import failure_hint
from labapp.checks._common import first_error
from labapp.checks._common import load_module
from labapp.checks._common import require_function
from labapp.checks._common import require_task
from labapp.checks._common import token

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- 04
@exercise("ex04_schedule", "04_tools", 'check("ex04_schedule", remind=remind)')
def check_schedule(lab: Any, remind: Any = None) -> tuple[str, dict[str, Any]]:
    """remind(lab, to) must return at once and get send_email run about 2 s later by a worker."""
    fn = require_function("remind", remind, EXERCISES["ex04_schedule"].usage)
    lab.reset()
    cursor = lab.cursor()
    addresses = ["ana@example.com", "ben@example.com", "eve@example.com"]
    called = {}
    for address in addresses:
        start = time.time()
        call(f"remind(lab, {address!r})", fn, lab, address)
        took = time.time() - start
        if took > 0.5:
            raise NotYet(f"remind() took {took:.1f} s to return: hand the email to the queue "
                         "with a delay and return at once (a request would wait that long)")
        called[address] = start
    # Producers record "enqueued" before enqueue returns, so the hand-over is visible now.
    handed = {}
    for event in lab.events(since=cursor):
        for address in addresses:
            if event.kind == "enqueued" and event.task == "send_email" and address in event.detail:
                handed.setdefault(address, event.task_id)
    if not handed:
        raise NotYet("no send_email job went through the queue: use Huey's API, e.g. "
                     "send_email.schedule(kwargs={'to': to}, delay=2) (not a thread or timer)")
    missing = [a for a in addresses if a not in handed]
    if missing:
        raise NotYet(f"remind(lab, {missing[0]!r}) enqueued no send_email job for that "
                     "address: pass it on as to=")
    ran: dict[str, float] = {}
    failed: dict[str, str] = {}

    def collect() -> bool:
        history = by_task(lab.events(since=cursor))
        for address, task_id in handed.items():
            evs = history.get(task_id, [])
            if completed(evs):
                ran[address] = next(e.time for e in evs if e.kind == "executing")
            elif any(e.terminal for e in evs):
                failed[address] = first_error(evs)
        return len(ran) + len(failed) == len(addresses)

    if not procs.wait_until(collect, 10.0, max_interval=0.2):
        late = next(a for a in addresses if a not in ran)
        raise NotYet(f"the email to {late} was not sent within 10 s: schedule it 2 seconds "
                     "from now (delay=2), not later")
    if failed:
        address, error = next(iter(failed.items()))
        raise NotYet(f"sending the email to {address} failed in the worker: "
                     f"{failure_hint(error)}")
    delays = {a: ran[a] - called[a] for a in addresses}
    # Huey never runs a job before its eta, so a delay of d s always starts >= d s after the
    # call; 1 s splits "no delay" (~10 ms) from any whole-second delay without a flaky band.
    if min(delays.values()) < 1.0:
        raise NotYet(f"an email started {min(delays.values()):.2f} s after remind() was "
                     "called: schedule it 2 seconds from now (delay=2)")
    return (f"3 reminders handed over at once, sent after "
            f"{', '.join(f'{d:.1f}' for d in delays.values())} s by the workers",
            {"delays_s": [round(d, 3) for d in delays.values()]})


# --------------------------------------------------------------------------- 05
@exercise("ex05_retries", "05_results_failures_retries", 'check("ex05_retries")')
def check_retries(lab: Any) -> tuple[str, dict[str, Any]]:
    """100 ex05_tasks.charge(order) jobs, each failing twice first, must all succeed."""
    module = load_module(lab, "ex05_tasks", "charge")
    charge = require_task("ex05_tasks", module.charge, "charge")
    lab.reset()
    tag = token()
    handles = [call("charge(order)", charge, f"{tag}-{i:03d}") for i in range(100)]
    finished = lab.wait(handles, 25)
    history = by_task(lab.events())
    ok = [h for h in handles if completed(history.get(h.id, []))]
    attempts = sum(1 for evs in history.values() for e in evs if e.kind == "executing")
    errors = sum(1 for evs in history.values() for e in evs if e.kind == "error")
    details = {"succeeded": len(ok), "attempts": attempts, "errors": errors}
    if not finished:
        raise NotYet(f"after 25 s, {100 - len(ok)} of 100 jobs were still waiting for a retry: "
                     "use a shorter retry_delay (e.g. 0.1 s, with retry_backoff=2)", **details)
    if len(ok) < 100:
        failed = next(h for h in handles if h not in ok)
        tries = sum(1 for e in history.get(failed.id, []) if e.kind == "executing")
        advice = ("did you set retries on the task that fails? Each order fails twice "
                  "before it works" if tries == 1 else "each order fails twice before it "
                  "works, so it needs retries=2 or more")
        raise NotYet(f"{100 - len(ok)} of 100 jobs failed (each was tried "
                     f"{'once' if tries == 1 else f'{tries} times'}): {advice}", **details)
    if errors == 0:
        raise NotYet("no attempt failed, so nothing was retried: charge(order) must call the "
                     "flaky service, flaky.call_local(key=order, fail_times=2)", **details)
    return (f"100 of 100 jobs succeeded after {errors} failed attempts were retried "
            f"({attempts} attempts in all)", details)
