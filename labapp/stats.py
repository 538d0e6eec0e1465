"""A snapshot of a lab's queue and workers: what ``/api/stats`` and the Monitor widget show."""
from __future__ import annotations

import time
from typing import Any

from labapp import events

WINDOW = 10.0      # seconds of history used for throughput
STUCK_AFTER = 10.0  # a task executing longer than this is flagged


def snapshot(huey: Any, now: float | None = None, stuck_after: float = STUCK_AFTER) -> dict[str, Any]:
    """Queue length, counts per event kind, busy workers, stuck/lost tasks and recent throughput."""
    now = time.time() if now is None else now
    conn, name = huey.storage.conn, huey.name
    k = events.keys(name)
    pipe = conn.pipeline(transaction=False)
    pipe.llen(huey.storage.queue_key)
    pipe.zcard(huey.storage.schedule_key)
    pipe.hgetall(k["counts"])
    pipe.hgetall(k["busy"])
    pipe.xrevrange(k["stream"], min=str(int((now - WINDOW) * 1000)), count=50_000)
    queued, scheduled, counts, busy_raw, recent = pipe.execute()
    busy = []
    for b in events.parse_busy(busy_raw):
        age = now - b.since
        busy.append({"worker": b.worker, "task_id": b.task_id, "task": b.task,
                     "running_for": round(age, 3), "pid": b.pid,
                     "state": "lost" if b.lost else ("stuck" if age > stuck_after else "running")})
    # Lost tasks first: a view keyed by worker name then shows the live task of a restarted worker.
    busy.sort(key=lambda b: (b["state"] != "lost", b["worker"]))
    done = sum(1 for _, raw in recent if raw.get(b"k") == b"complete")
    failed = sum(1 for _, raw in recent if raw.get(b"k") == b"error")
    span = observed_span(recent, now, working=bool(busy or queued or scheduled))
    return {
        "lab": name,
        "time": now,
        "queued": queued,
        "scheduled": scheduled,
        "counts": {key.decode(): int(v) for key, v in counts.items()},
        "busy": busy,
        "stuck": [b for b in busy if b["state"] != "running"],
        "done_recent": done,
        "errors_recent": failed,
        "rate_span_s": round(span, 3),
        "throughput_per_s": round(done / span, 2) if span > 0 else 0.0,
        "errors_per_s": round(failed / span, 2) if span > 0 else 0.0,
    }


def _stamp(entry_id: bytes | str) -> float:
    """Seconds since the epoch of a stream entry id (``<ms>-<seq>``)."""
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.split("-", 1)[0]) / 1000


def observed_span(recent: list[Any], now: float, working: bool) -> float:
    """Seconds of the last :data:`WINDOW` during which tasks ran: from the first event in the
    window to the last one (to ``now`` while tasks still run or wait). Rates divide by this,
    so 40 tasks done in one second read as 40/s, not as 4/s "over the last 10 s".

    ``recent`` is ``XREVRANGE`` output (newest first); 0 when the window holds no event.
    """
    if not recent:
        return 0.0
    first = max(_stamp(recent[-1][0]), now - WINDOW)
    last = now if working else _stamp(recent[0][0])
    return max(last - first, 0.0)
