"""Checks for exercises 08-09: a race between dependent tasks, and inline or queue.

:data:`ENDPOINTS` and :func:`measure_endpoint` are also used by notebook 09, so learners
measure exactly what the check measures.
"""
from __future__ import annotations

import json
import logging
import statistics
import time
import urllib.error
import urllib.request
from typing import Any

from labapp import procs
from labapp.checks._common import EXERCISES
from labapp.checks._common import NotYet
from labapp.checks._common import call
from labapp.checks._common import exercise
from labapp.checks._common import ms
from labapp.checks._common import require_function
from labapp.checks._common import scaled
from labapp.checks._common import token
from labapp.checks._common import unsolved

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- 08
@exercise("ex08_race", "08_expert_zone", 'check("ex08_race", run_pair=run_pair)')
def check_race(lab: Any, run_pair: Any = None) -> tuple[str, dict[str, Any]]:
    """200 run_pair(lab, key) calls on 2 workers must give 200 step_b outcomes, 0 missing."""
    fn = require_function("run_pair", run_pair, EXERCISES["ex08_race"].usage)
    runs = 200
    outcomes_key = f"lab.{lab.name}.race.outcomes"
    with scaled(lab, max(2, lab.config.workers)):
        lab.reset()
        tag = token()
        for i in range(runs):
            call("run_pair(lab, key)", fn, lab, f"{tag}-{i}")
        procs.wait_until(lambda: lab.redis.llen(outcomes_key) >= runs, 20.0, max_interval=0.2)
        outcomes = [o.decode() for o in lab.redis.lrange(outcomes_key, 0, -1)]
    mine = [o for o in outcomes if o.startswith(f"{tag}-")]
    missing = sum(1 for o in mine if o.endswith(":missing"))
    details = {"runs": runs, "reported": len(mine), "missing": missing}
    if len(mine) < runs:
        raise NotYet(f"only {len(mine)} of {runs} step_b runs reported back within 20 s: "
                     "run_pair must enqueue step_a and step_b for the key it gets", **details)
    if missing:
        raise NotYet(f"{missing} of {runs} runs read missing data: step_b ran before step_a had "
                     "stored its output. Enqueuing step_a first is not enough with 2 workers: "
                     "chain them (step_a.s(...).then(step_b)) or wait for step_a's result",
                     **details)
    return f"{runs} of {runs} runs on 2 workers: 0 stale reads", details


# --------------------------------------------------------------------------- 09
ENDPOINTS = {  # name: (demo task, params, does the response need the result?)
    "price": ("cpu", {"n": 2000}, True),
    "welcome_email": ("send_email", {"seconds": 0.5}, False),
    "audit_log": ("noop", {}, False),
}
SLOW = 0.05  # inline work at least this slow, whose result the user doesn't need, is queued


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


def measure_endpoint(lab: Any, task: str, params: dict[str, Any], samples: int = 3) -> dict[str, float]:
    """Median seconds of the work inline (/api/inline) and through the queue (enqueue → complete)."""
    inline, queued = [], []
    for _ in range(samples):
        inline.append(post_json(f"{lab.url}api/inline/{task}", params)[2])
        start = time.perf_counter()
        status, body, _ = post_json(f"{lab.url}api/enqueue/{task}", params)
        if status == 202:
            lab.wait(body["id"], 10)
        queued.append(time.perf_counter() - start)
    return {"inline_s": statistics.median(inline), "queued_s": statistics.median(queued)}


@exercise("ex09_inline_or_queue", "09_when_not_to_use_and_pitfalls",
          'check("ex09_inline_or_queue", decisions=DECISIONS)')
def check_inline_or_queue(lab: Any, decisions: Any = None) -> tuple[str, dict[str, Any]]:
    """DECISIONS must say 'inline' or 'queue' per endpoint, as the live measurements imply."""
    if unsolved(decisions) or not isinstance(decisions, dict):
        raise NotYet("DECISIONS should be a dict like {'price': 'inline', ...} with one entry "
                     f"per endpoint: {', '.join(ENDPOINTS)}")
    for name in ENDPOINTS:
        value = decisions.get(name)
        if unsolved(value) or str(value).strip().lower() not in ("inline", "queue"):
            raise NotYet(f"DECISIONS[{name!r}] is {value!r}: write 'inline' or 'queue'")
    lab.reset()
    measured = {name: measure_endpoint(lab, task, params, samples=2 if name == "welcome_email" else 3)
                for name, (task, params, _) in ENDPOINTS.items()}
    details = {n: {k: round(v * 1000, 1) for k, v in m.items()} for n, m in measured.items()}
    for name, (_, _, needs_result) in ENDPOINTS.items():
        m = measured[name]
        want = "inline" if needs_result or m["inline_s"] < SLOW else "queue"
        got = str(decisions[name]).strip().lower()
        if got == want:
            continue
        if needs_result:
            why = (f"the response shows its result, so the user waits for it anyway; the queue "
                   f"round trip took {ms(m['queued_s'])} against {ms(m['inline_s'])} inline")
        elif want == "queue":
            why = (f"it took {ms(m['inline_s'])} inside the request and the user does not need "
                   "its result to see the page")
        else:
            why = (f"it takes {ms(m['inline_s'])} inline while the queue round trip took "
                   f"{ms(m['queued_s'])} and adds moving parts")
        raise NotYet(f"{name}: you chose {got!r}, but {why}: {want}", measured_ms=details)
    return ("all three decisions match the measurements ("
            + ", ".join(f"{n} {ms(m['inline_s'])} inline" for n, m in measured.items()) + ")",
            {"measured_ms": details})
