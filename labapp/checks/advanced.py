"""Checks for exercises 08-09: a race between dependent tasks, and inline or queue.

:data:`ENDPOINTS` and :func:`measure_endpoint` are also used by notebook 09, so learners
measure exactly what the check measures.
"""
from __future__ import annotations

import json
import re
import statistics
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from labapp import events
from labapp.checks._common import EXERCISES
from labapp.checks._common import NotYet
from labapp.checks._common import call
from labapp.checks._common import draw
from labapp.checks._common import enqueued_with
from labapp.checks._common import exercise
from labapp.checks._common import failure_hint
from labapp.checks._common import on_worker
from labapp.checks._common import require_function
from labapp.checks._common import token
from labapp.checks._common import unsolved
from labapp.checks._common import worker_pids
from labapp.experiments._control import arranged
from labapp.units import duration

if TYPE_CHECKING:
    from labapp.stack import Lab


# --------------------------------------------------------------------------- 08
def _settle(lab: Lab, done: Any, timeout: float, quiet: float = 0.5) -> None:
    """Wait until ``done()`` and the lab is idle, or the lab was idle for ``quiet`` seconds.

    Idle: nothing waits in the queue and no worker is running a task (the busy hash is
    empty), so every event of the work so far has been written.
    """
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        idle = not lab.huey.pending_count() and not events.busy(lab.redis, lab.name)
        now = time.monotonic()
        idle_since = (idle_since or now) if idle else None
        # idle for a moment longer than a worker's event batch (events.LINGER) takes to land
        if idle and now - idle_since >= (0.1 if done() else quiet):
            return
        time.sleep(0.05)


RUNS = (100, 160)  # pairs per check (drawn per run)


def _seconds(evs: list[Any]) -> float:
    """The ``seconds`` a step_a job was enqueued with (0 when not given)."""
    for e in evs:
        found = re.search(r"seconds=([0-9.]+)", e.detail) if e.kind == "enqueued" else None
        if found:
            return float(found.group(1))
    return 0.0


def _b_done_before_a_stored(a_runs: list[list[Any]], b_runs: list[list[Any]],
                            pids: set[int]) -> bool:
    """Whether B was done before A could have stored its output (events of each run of A, B).

    step_a stores its output ``seconds`` after it starts, so a step_b that read it cannot
    have finished sooner than that (a causal bound: no timing tolerance).
    """
    stored = min(on_worker(evs, "executing", pids).time + _seconds(evs)
                 for evs in a_runs if on_worker(evs, "executing", pids))
    b_done = max(on_worker(evs, "complete", pids).time for evs in b_runs
                 if on_worker(evs, "complete", pids))
    return b_done < stored


@exercise("ex08_race", "08_expert_zone", 'check("ex08_race", run_pair=run_pair)')
def check_race(lab: Lab, run_pair: Any = None) -> tuple[str, dict[str, Any]]:
    """run_pair(lab, key) on 2 workers: step_b must read after step_a stored, on the workers.

    For every key the events must show step_a completed by a worker and a step_b (or
    step_b_after) for that key completed by a worker no sooner than step_a could have
    stored its output (its start plus its ``seconds``), and the outcome list must say
    ``ok``: no stale read, no step run in the notebook, no key written by hand.
    """
    fn = require_function("run_pair", run_pair, EXERCISES["ex08_race"].usage)
    rand = draw()
    runs = rand.randint(*RUNS)
    outcomes_key = events.key(lab.name, "race", "outcomes")
    with arranged(lab, workers=max(2, lab.config.workers), worker_type="thread"):
        lab.reset()
        cursor = lab.cursor()
        tag = token()
        keys = [f"{tag}-{i}" for i in range(runs)]
        for key in keys:
            call("run_pair(lab, key)", fn, lab, key)
        _settle(lab, lambda: lab.redis.llen(outcomes_key) >= runs, 20.0)
        outcomes = [o.decode() for o in lab.redis.lrange(outcomes_key, 0, -1)]
        history = lab.events(since=cursor)
        pids = worker_pids(lab)
    mine = [o for o in outcomes if o.startswith(f"{tag}-")]
    missing = sum(1 for o in mine if o.endswith(":missing"))
    details: dict[str, Any] = {"runs": runs, "reported": len(mine), "missing": missing}
    if missing:
        raise NotYet(f"{missing} of {runs} runs read missing data: step_b ran before step_a had "
                     "stored its output. Enqueuing step_a first is not enough with 2 workers: "
                     "say that B depends on A (notebook 08, 'The fixes, in code')", **details)
    errors = [e for e in history if e.kind == "error" and e.task.startswith("step_b")]
    if errors:
        raise NotYet(f"step_b failed in a worker: {failure_hint(errors[0].detail)}. A pipeline "
                     "step is called with the arguments you give it, then the previous step's "
                     "return value appended (step_a returns the key)", **details)
    firsts = {k: enqueued_with(history, "step_a", repr(k)) for k in keys}
    seconds = {k: enqueued_with(history, "step_b", repr(k))
               + enqueued_with(history, "step_b_after", repr(k)) for k in keys}
    no_a = [k for k in keys if not any(on_worker(evs, "complete", pids) for evs in firsts[k])]
    no_b = [k for k in keys if not any(on_worker(evs, "complete", pids) for evs in seconds[k])]
    details.update(without_worker_step_a=len(no_a), without_worker_step_b=len(no_b))
    if no_a or no_b:
        step = "step_a" if no_a else "step_b"
        raise NotYet(f"for {len(no_a or no_b)} of {runs} keys no worker ran {step}: both steps "
                     "must go through the queue (calling a task's function here, or writing "
                     "its key by hand, leaves the workers out)", **details)
    early = sum(_b_done_before_a_stored(firsts[k], seconds[k], pids) for k in keys)
    details["b_before_a"] = early
    if early:
        raise NotYet(f"for {early} of {runs} keys step_b was done before step_a could have "
                     "stored its output, so what it read was not step_a's: make B wait for A",
                     **details)
    if len(mine) < runs:
        raise NotYet(f"only {len(mine)} of {runs} step_b runs reported back within 20 s: "
                     "run_pair must run step_b for the key it gets", **details)
    return (f"{runs} of {runs} pairs on 2 workers: step_b always read after step_a's worker "
            "had stored its output, 0 stale reads", details)


# --------------------------------------------------------------------------- 09
ENDPOINTS = {  # name: (demo task, params, does the response need the result?)
    "price": ("cpu", {"n": 2000}, True),
    "welcome_email": ("send_email", {"seconds": 0.5}, False),
    "audit_log": ("noop", {}, False),
}
SLOW = 0.05  # seconds of waiting a user notices: the threshold the exercise states
#: Endpoints the check draws from: (name, needs its result in the response?)
#: (none is an endpoint of notebook 09, so a lookup of those three decides nothing here)
NAMES = {True: ("search", "cart_total", "product_page", "stock_level", "shipping_quote"),
         False: ("newsletter_signup", "thumbnail", "invoice_pdf", "page_view_count",
                 "password_reset_mail")}


def post_json(url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> tuple[int, Any, float]:
    """POST JSON to ``url``; returns (status, decoded body, seconds the client waited)."""
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    seconds = time.perf_counter() - start
    try:
        return status, json.loads(raw), seconds
    except ValueError:
        return status, raw.decode("utf-8", "replace"), seconds


def measure_endpoint(lab: Lab, task: str, params: dict[str, Any],
                     samples: int = 3) -> dict[str, float]:
    """Median seconds of one piece of work done three ways, measured over HTTP.

    :return: ``inline_s``: the response when the view does the work itself (/api/inline);
        ``enqueue_s``: the response when the view enqueues it (/api/enqueue);
        ``queued_s``: from that request until the job completed (the result's round trip).
    """
    inline, enqueue, queued = [], [], []
    for _ in range(samples):
        inline.append(post_json(f"{lab.url}api/inline/{task}", params)[2])
        start = time.perf_counter()
        status, body, answered = post_json(f"{lab.url}api/enqueue/{task}", params)
        enqueue.append(answered)
        if status == 202:
            lab.wait(body["id"], 10)
        queued.append(time.perf_counter() - start)
    return {"inline_s": statistics.median(inline), "enqueue_s": statistics.median(enqueue),
            "queued_s": statistics.median(queued)}


def _draw_endpoints(rand: Any) -> list[tuple[str, str, dict[str, Any], bool]]:
    """Four endpoints: slow/not needed, fast/not needed, slow/needed, and one more at random.

    Slow work sleeps 0.15-0.35 s and fast work takes about a millisecond, far on either
    side of :data:`SLOW`, so measurement noise cannot flip the right decision.
    """
    kinds = [(True, False), (False, False), (True, True),
             (rand.random() < 0.5, rand.random() < 0.5)]
    rand.shuffle(kinds)
    out, used = [], set()
    for slow, needed in kinds:
        name = rand.choice([n for n in NAMES[needed] if n not in used])
        used.add(name)
        if slow:
            task, params = "sleep", {"seconds": round(rand.uniform(0.15, 0.35), 2)}
        else:
            task, params = rand.choice([("noop", {}), ("cpu", {"n": rand.randint(200, 2000)})])
        out.append((name, task, params, needed))
    return out


@exercise("ex09_inline_or_queue", "09_when_not_to_use_and_pitfalls",
          'check("ex09_inline_or_queue", decide=decide)')
def check_inline_or_queue(lab: Lab, decide: Any = None) -> tuple[str, dict[str, Any]]:
    """decide(measurement) -> 'inline' or 'queue', applied to endpoints drawn at random.

    Each endpoint's work is measured live (:func:`measure_endpoint`); ``decide`` gets those
    numbers and whether the response needs the result. The right call: queue when the user
    does not need the result and waiting for the work inline would cost them at least
    :data:`SLOW` seconds more than handing it over; otherwise inline.
    """
    if isinstance(decide, dict):
        raise NotYet("decide is a dict of fixed answers: write a function decide(measurement) "
                     "that decides from the numbers it gets, for endpoints the check draws")
    fn = require_function("decide", decide, EXERCISES["ex09_inline_or_queue"].usage)
    rand = draw()
    lab.reset()
    judged: list[dict[str, Any]] = []
    for name, task, params, needed in _draw_endpoints(rand):
        m = measure_endpoint(lab, task, params, samples=2)
        measurement = {"endpoint": name, "needs_result": needed,
                       **{k: round(v, 4) for k, v in m.items()}}
        got = call(f"decide(<the measurement of {name}>)", fn, dict(measurement))
        saves = m["inline_s"] - m["enqueue_s"]
        want = "queue" if not needed and saves >= SLOW else "inline"
        judged.append({**measurement, "work": f"{task} {params}", "decided": got,
                       "right": want})
        if unsolved(got) or str(got).strip().lower() not in ("inline", "queue"):
            raise NotYet(f"decide returned {got!r} for {name}: return 'inline' or 'queue'",
                         endpoints=judged)
        got = str(got).strip().lower()
        if got == want:
            continue
        if needed:
            why = (f"its response shows the result, so the user waits for the work anyway, "
                   f"and through the queue that took {duration(m['queued_s'])} against "
                   f"{duration(m['inline_s'])} inline")
        elif want == "queue":
            why = (f"inline the user waited {duration(m['inline_s'])}, handed over "
                   f"{duration(m['enqueue_s'])}, and nobody needs the result in the response")
        else:
            why = (f"inline it cost the user {duration(m['inline_s'])}, no more than handing it "
                   f"over ({duration(m['enqueue_s'])}): a queue would add moving parts for nothing")
        raise NotYet(f"decide chose {got!r} for {name}, but {why} (notebook 09, 'When a queue "
                     "is the wrong tool')", endpoints=judged)
    return (f"{len(judged)} random endpoints, all decided as the measurements say: "
            + ", ".join(f"{j['endpoint']} {j['right']}" for j in judged), {"endpoints": judged})
