"""Checks for exercises 04-05: a signup email that survives a deploy, and retries with backoff."""
from __future__ import annotations

import signal
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labapp import events
from labapp import procs
from labapp.checks._common import NotYet
from labapp.checks._common import by_task
from labapp.checks._common import call
from labapp.checks._common import completed
from labapp.checks._common import draw
from labapp.checks._common import enqueued_with
from labapp.checks._common import exercise
from labapp.checks._common import failure_hint
from labapp.checks._common import first_error
from labapp.checks._common import load_module
from labapp.checks._common import on_worker
from labapp.checks._common import require_task
from labapp.checks._common import timed_post
from labapp.checks._common import token
from labapp.checks._common import worker_pids
from labapp.supervisor import child_env
from labapp.units import duration

if TYPE_CHECKING:
    from labapp.stack import Lab


# --------------------------------------------------------------------------- 04
# Serves the learner's app in a process of its own, as in production and as notebook 04
# does, so that stopping that process is a real deploy: whatever lived only in it is gone.
_SERVE = """
import os
import sys
from pathlib import Path
from waitress.server import create_server
sys.path.append(os.environ["LAB_TASK_PATH"])  # the notebook's folder, as for the lab's own web app
import ex04_app
server = create_server(ex04_app.create_app(), host="127.0.0.1", port=0, threads=4)
Path(sys.argv[1]).write_text(str(server.effective_port))
server.run()
"""
SIGNUPS = (4, 8)        # how many users sign up (drawn per run)
DELIVERED_WITHIN = 10.0  # seconds after the deploy for every email to be sent


@exercise("ex04_survive_deploy", "04_tools", 'check("ex04_survive_deploy")')
def check_survive_deploy(lab: Lab) -> tuple[str, dict[str, Any]]:
    """Signups to ex04_app must get their welcome email sent by a worker, across a deploy.

    The app runs in a process of its own. A random number of users with random addresses
    sign up; right after the last response the app process is stopped (a deploy). Every
    address must then get a ``send_email`` job that went through the queue and was run by
    a worker: a thread in the view dies with the process, work done in the view never
    reaches a worker.
    """
    if not (Path.cwd() / "ex04_app.py").is_file():
        raise NotYet("there is no ex04_app.py next to this notebook yet: run the "
                     "%%writefile ex04_app.py cell first")
    rand = draw()
    addresses = [f"user{rand.randrange(10**6):06d}@example.com"
                 for _ in range(rand.randint(*SIGNUPS))]
    details: dict[str, Any] = {"addresses": addresses}
    lab.reset()
    cursor = lab.cursor()
    answers, log = _signup_then_deploy(lab, addresses, details)
    statuses = sorted({s for s, _, _ in answers})
    slowest = max(t for _, _, t in answers)
    details.update(statuses=statuses, slowest_ms=round(slowest * 1000, 1))
    if 500 in statuses:
        raise NotYet(f"POST /signup/<to> answered 500: your view raised "
                     f"{failure_hint(procs.tail(log, 1).strip())}", **details)
    if statuses != [202]:
        raise NotYet(f"POST /signup/<to> answered {statuses}: keep the route and answer 202 "
                     "once the email is taken care of", **details)
    if slowest > 0.4:
        raise NotYet(f"a signup took {slowest:.2f} s to answer: the view sent the email itself; "
                     "hand it over and answer at once", **details)
    _judge_emails(lab, cursor, addresses, details)
    return (f"{len(addresses)} signups answered in at most {duration(slowest)}; the app was "
            f"stopped right after, and the workers still sent all {len(addresses)} emails",
            details)


def _signup_then_deploy(lab: Lab, addresses: list[str], details: dict[str, Any]
                        ) -> tuple[list[tuple[int, bytes, float]], Path]:
    """Serve ex04_app in a process of its own, sign every address up, then stop the process.

    Returns each signup's ``(status, body, seconds)`` and the app's log file.
    """
    run_dir = Path(lab.config.run_dir)
    port_file, log = run_dir / f"ex04-{token()}.port", run_dir / "ex04_app.log"
    app = procs.spawn([sys.executable, "-c", _SERVE, str(port_file)], log_path=log,
                      env=child_env(lab.name, lab.redis_url, "web", lab.config.task_modules))
    try:
        procs.wait_until(lambda: app.poll() is not None or port_file.exists(), 15.0)
        if app.poll() is not None or not port_file.exists():
            raise NotYet("your app did not start; its last log lines: "
                         + " | ".join(procs.tail(log, 4).splitlines()), **details)
        port = int(port_file.read_text())
        answers = [timed_post(port, f"/signup/{a}") for a in addresses]
    finally:
        procs.stop_group(app, signal.SIGTERM, grace=1.0)  # the deploy
        port_file.unlink(missing_ok=True)
    return answers, log


def _judge_emails(lab: Lab, cursor: str, addresses: list[str], details: dict[str, Any]) -> None:
    """Every address got a send_email job through the queue, run by a worker (else NotYet)."""
    # The app's process is gone, so every job it enqueued is in the events already
    # (producers record 'enqueued' before enqueue returns): wait for those jobs only.
    history = lab.events(since=cursor)
    ids = [e.task_id for e in history if e.kind == "enqueued" and e.task == "send_email"]
    if ids:
        lab.wait(ids, DELIVERED_WITHIN)
        history = lab.events(since=cursor)
    pids = worker_pids(lab)
    jobs = {a: enqueued_with(history, "send_email", repr(a)) for a in addresses}
    sent = {a for a, found in jobs.items()
            if any(completed(evs) and on_worker(evs, "complete", pids) for evs in found)}
    failed = [evs for found in jobs.values() for evs in found
              if not completed(evs) and any(e.terminal for e in evs)]
    details["sent"] = len(sent)
    if failed:
        raise NotYet("a send_email job failed in the worker: "
                     f"{failure_hint(first_error(failed[0]))}", **details)
    queued = [a for a in addresses if jobs[a]]
    if not queued and not ids:
        raise NotYet(f"none of the {len(addresses)} welcome emails went through the queue, and "
                     "the deploy that followed stopped the app's process with whatever it was "
                     "still doing: notebook 04, 'The shortcut: a thread in the view'", **details)
    if len(queued) < len(addresses):
        missing = next(a for a in addresses if a not in queued)
        raise NotYet(f"{len(addresses) - len(queued)} of {len(addresses)} signups enqueued no "
                     f"email for their own address (e.g. {missing}): send it to the address in "
                     "the URL", **details)
    if len(sent) < len(addresses):
        raise NotYet(f"only {len(sent)} of {len(addresses)} queued emails were sent by a worker "
                     f"within {DELIVERED_WITHIN:.0f} s: are the workers running? (lab.status())",
                     **details)


# --------------------------------------------------------------------------- 05
ORDERS = (12, 20)     # orders charged in one check (drawn per run)
FAILS = 3             # the payment service fails this many times per order, then works
PATIENCE = 12.0       # seconds the customers wait for every order to go through
MIN_GROWTH = 0.5      # seconds: later waits must be at least this much longer (median)


def _waits(evs: list[Any]) -> list[float]:
    """Seconds from each failed attempt (``error``) to the next start (``executing``)."""
    out, failed_at = [], None
    for e in evs:
        if e.kind == "error":
            failed_at = e.time
        elif e.kind == "executing" and failed_at is not None:
            out.append(e.time - failed_at)
            failed_at = None
    return out


@exercise("ex05_retries", "05_results_failures_retries", 'check("ex05_retries")')
def check_retries(lab: Lab) -> tuple[str, dict[str, Any]]:
    """ex05_tasks.charge(order) must ride out 3 failures per order, with waits that grow.

    Measured from the events of each order: the attempts, and the wait from each failure to
    the next attempt. Every order must succeed within :data:`PATIENCE` seconds, the first
    retry must come after a real wait, and the later waits must be longer than the earlier
    ones (backoff) by at least :data:`MIN_GROWTH` seconds in the median order. Huey's
    scheduler enqueues due retries once a second, so only growth of about a tick or more
    can show; smaller delays are rounded to the tick.
    """
    module = load_module(lab, "ex05_tasks", "charge")
    charge = require_task("ex05_tasks", module.charge, "charge")
    lab.reset()
    rand = draw()
    tag = token()
    orders = [f"{tag}-{i:03d}" for i in range(rand.randint(*ORDERS))]
    start = time.time()
    handles = [call("charge(order)", charge, order) for order in orders]
    finished = lab.wait(handles, PATIENCE)
    took = time.time() - start
    history = by_task(lab.events())
    pids = worker_pids(lab)
    per_order = {o: history.get(h.id, []) for o, h in zip(orders, handles)}
    tries = {o: sum(1 for e in evs if e.kind == "executing") for o, evs in per_order.items()}
    errors = {o: sum(1 for e in evs if e.kind == "error") for o, evs in per_order.items()}
    waits = {o: _waits(evs) for o, evs in per_order.items()}
    ok = [o for o, evs in per_order.items() if completed(evs) and on_worker(evs, "complete", pids)]
    example = orders[0]
    details: dict[str, Any] = {
        "orders": len(orders), "succeeded": len(ok), "seconds": round(took, 2),
        "waits_s": [round(w, 2) for w in waits[example]], "attempts": tries[example]}
    if not any(tries.values()):
        raise NotYet("no charge job started on a worker: are the workers running? "
                     "(lab.status())", **details)
    if sum(errors.values()) == 0:
        _why_nothing_failed(lab, example, details)
    shared = [o for o in orders if errors[o] < FAILS and completed(per_order[o])]
    if len(shared) > len(orders) // 2:
        raise NotYet(f"{len(shared)} of {len(orders)} orders got through after fewer than "
                     f"{FAILS} failures: each order must have its own outage at the service; "
                     "pass the order as the key", **details)
    given_up = [o for o in orders if any(e.terminal for e in per_order[o]) and o not in ok]
    if given_up:
        o = given_up[0]
        advice = ("did you give the task retries? Huey's default is none" if tries[o] == 1 else
                  f"each order fails {FAILS} times before it works: count the attempts it needs")
        raise NotYet(f"{len(given_up)} of {len(orders)} orders failed for good (one was tried "
                     f"{'once' if tries[o] == 1 else f'{tries[o]} times'}): {advice}", **details)
    _judge_waits(waits, finished, len(orders) - len(ok), len(orders), details)
    return (f"{len(orders)} of {len(orders)} orders went through after {FAILS} failures each, in "
            f"{took:.1f} s; waits between attempts grew, e.g. {details['waits_s']} s", details)


def _why_nothing_failed(lab: Lab, example: str, details: dict[str, Any]) -> None:
    """No attempt failed: the task caught the failures itself, or never called the service."""
    calls = lab.redis.get(events.key(lab.name, "flaky", example))  # the service's own count
    if calls is not None and int(calls) > 1:
        raise NotYet(f"the payment service was called {int(calls)} times for one order, but "
                     "no attempt failed as far as Huey could see: the task caught the "
                     "failures itself. Let the error end the attempt and have Huey retry "
                     "it", **details)
    raise NotYet("no attempt failed, so nothing was retried: charge(order) must call the "
                 f"payment service, flaky.call_local(key=order, fail_times={FAILS})", **details)


def _judge_waits(waits: dict[str, list[float]], finished: bool, waiting: int, orders: int,
                 details: dict[str, Any]) -> None:
    """The waits between attempts were real, short enough to finish, and grew (else NotYet)."""
    all_waits = [w for ws in waits.values() for w in ws]
    if all_waits and statistics.median(all_waits) < 0.5:
        raise NotYet(f"the retries came {statistics.median(all_waits):.2f} s after each failure: "
                     "a service that is down needs time to come back; make the task wait "
                     "before it retries", **details)
    if not finished:
        raise NotYet(f"after {PATIENCE:.0f} s, {waiting} of {orders} orders "
                     f"were still waiting for a retry (this order's waits so far: "
                     f"{details['waits_s']} s): the customers gave up; start with a shorter "
                     "wait", **details)
    full = [ws for ws in waits.values() if len(ws) >= 3]
    growth = statistics.median(ws[-1] - ws[-2] for ws in full) if full else 0.0
    details["growth_s"] = round(growth, 2)
    if growth < MIN_GROWTH:
        raise NotYet(f"every order went through, but the waits between attempts did not grow "
                     f"(this order waited {details['waits_s']} s), so the service was retried "
                     "at a steady pace. Make each wait longer than the last by enough to show "
                     "through Huey's scheduler, which looks at delayed retries once a second "
                     "(notebook 05, 'Retries: fixed delay or exponential backoff')", **details)
