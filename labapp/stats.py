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
    return {
        "lab": name,
        "time": now,
        "queued": queued,
        "scheduled": scheduled,
        "counts": {key.decode(): int(v) for key, v in counts.items()},
        "busy": busy,
        "stuck": [b for b in busy if b["state"] != "running"],
        "throughput_per_s": round(done / WINDOW, 2),
        "errors_per_s": round(failed / WINDOW, 2),
    }
