"""A dashboard in a loop (06): poll ``/api/stats`` over HTTP, print a line per poll, raise alerts.

This is what Grafana, Datadog or a cron job with an alerting rule do with a real queue: read
a few numbers every few seconds (queue length, running tasks, failures, stuck or lost tasks)
and tell a human when one of them looks wrong.
"""
from __future__ import annotations

import dataclasses
import io
import json
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from labapp import events
from labapp.experiments._common import check_range
from labapp.experiments._control import require_running

if TYPE_CHECKING:
    from labapp.stack import Lab

GROWING_POLLS = 3  # alert when the queue grew this many polls in a row


@dataclasses.dataclass(frozen=True)
class StatsSample:
    """One poll of ``/api/stats``."""

    t: float          #: seconds since the first poll
    queued: int
    scheduled: int
    running: int      #: tasks workers are running now (not stuck, not lost)
    complete: int     #: ``complete`` events since the lab started
    errors: int       #: ``error`` events since the lab started
    stuck: int        #: tasks running past their limit (labapp.stats.stuck_limit) or whose worker died


@dataclasses.dataclass(frozen=True)
class WatchResult:
    """The polls of one :func:`watch_stats` run and the alerts they raised."""

    every: float
    samples: tuple[StatsSample, ...]
    alerts: tuple[tuple[float, str], ...]   #: (seconds since the first poll, message)

    def conclusions(self) -> list[str]:
        """What the polls showed, computed from them."""
        if not self.samples:
            return ["No poll succeeded: is the lab's Flask app running? (lab.status())"]
        first, last = self.samples[0], self.samples[-1]
        peak = max(self.samples, key=lambda s: s.queued)
        done = last.complete - first.complete
        out = [f"{len(self.samples)} polls over {last.t:.1f} s: the queue went from "
               f"{first.queued} (highest {peak.queued}) to {last.queued}; {done} tasks completed "
               f"in that time"
               + (f", {done / last.t:.1f} per second." if last.t > 0 else ".")]
        new_errors = last.errors - first.errors
        out.append(f"{new_errors} new failure{'s' * (new_errors != 1)} showed up while we watched."
                   if new_errors else "No new failures showed up while we watched.")
        if self.alerts:
            out.append(f"{len(self.alerts)} alert{'s' * (len(self.alerts) != 1)} fired, the "
                       f"first after {self.alerts[0][0]:.1f} s: {self.alerts[0][1]}.")
        else:
            out.append("No alert fired.")
        return out

    @property
    def drained(self) -> bool:
        """True when the last poll saw nothing queued, scheduled or running."""
        s = self.samples[-1] if self.samples else None
        return bool(s) and s.queued == 0 and s.scheduled == 0 and s.running == 0

    @property
    def teaches_lesson(self) -> bool:
        """True when the polls saw the queue drain and every new failure raised an alert."""
        if not self.samples:
            return False
        failed = self.samples[-1].errors > self.samples[0].errors
        return self.drained and (not failed or any("fail" in a for _, a in self.alerts))

    def __repr__(self) -> str:
        return "WatchResult(" + " ".join(self.conclusions()) + ")"


def _poll(lab: Lab) -> dict[str, Any]:
    with urllib.request.urlopen(lab.url + "api/stats", timeout=5) as reply:
        return json.load(reply)


def watch_stats(lab: Lab, timeout: float = 30.0, every: float = 0.5, until_idle: bool = True,
                stream: Any = None) -> WatchResult:
    """Poll the Flask app's ``/api/stats`` every ``every`` s, print a line each, raise alerts.

    Alerts: new failures since the previous poll; the queue grew :data:`GROWING_POLLS` polls
    in a row; a stuck or lost task. Stops after ``timeout`` s, or (``until_idle``) once two
    polls in a row see nothing queued, scheduled or running and no new events.

    :param timeout: longest watch (1 to 300 s).
    :param every: seconds between polls (0.2 to 10).
    """
    check_range("timeout", timeout, 1, 300)
    check_range("every", every, 0.2, 10)
    require_running(lab)
    out = stream or sys.stdout
    samples: list[StatsSample] = []
    alerts: list[tuple[float, str]] = []
    start = time.monotonic()
    growing = 0
    while True:
        now = time.monotonic() - start
        snap = _poll(lab)
        counts = snap.get("counts", {})
        s = StatsSample(round(now, 2), snap["queued"], snap["scheduled"],
                        sum(1 for b in snap["busy"] if b["state"] == "running"),
                        counts.get("complete", 0), counts.get("error", 0), len(snap["stuck"]))
        raised = []
        if samples:
            prev = samples[-1]
            if s.errors > prev.errors:
                raised.append(f"{s.errors - prev.errors} task(s) failed for good")
            growing = growing + 1 if s.queued > prev.queued else 0
            if growing == GROWING_POLLS:
                raised.append(f"the queue grew {GROWING_POLLS} polls in a row")
        if s.stuck and (not samples or samples[-1].stuck < s.stuck):
            raised.append(f"{s.stuck} task(s) stuck or lost")
        samples.append(s)
        alerts.extend((s.t, a) for a in raised)
        out.write(f"{s.t:5.1f} s  queued {s.queued:3d} · scheduled {s.scheduled} · running "
                  f"{s.running} · complete {s.complete} · errors {s.errors} · stuck/lost "
                  f"{s.stuck}" + "".join(f"   ALERT: {a}" for a in raised) + "\n")
        out.flush()
        idle = s.queued == 0 and s.scheduled == 0 and s.running == 0
        # Two idle polls in a row: workers record their last events a few ms after a task ends.
        calm = idle and len(samples) > 1 and samples[-2].queued == samples[-2].running == 0 \
            and samples[-2].scheduled == 0 and samples[-2].complete == s.complete \
            and samples[-2].errors == s.errors
        if (until_idle and calm) or now + every > timeout:
            break
        time.sleep(max(0.0, every - (time.monotonic() - start - now)))
    return WatchResult(every, tuple(samples), tuple(alerts))


def notebook_sized(lab: Lab) -> WatchResult:
    """06's dashboard demo: 40 tasks of 0.2 s and 3 that always fail, watched until idle."""
    key = f"monitor-{time.time_ns()}"
    lab.enqueue_many("sleep", 40, seconds=0.2)
    lab.enqueue_many("flaky", 3, key=key, fail_times=10)
    try:
        return watch_stats(lab, stream=io.StringIO())
    finally:
        lab.redis.delete(events.key(lab.name, "flaky", key))
