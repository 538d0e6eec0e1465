"""The monitor's snapshot: rates over the observed span, busy/stuck/lost workers, exact counts.

Stream entries get explicit ids (their millisecond timestamps), so every expected number is
worked out by hand below. One private server (the ``broker`` fixture), no lab, no workers.
"""
import socket

import psutil
import pytest
from huey import RedisHuey

from labapp import events, stats


def test_stamp_reads_the_milliseconds_of_an_entry_id():
    assert stats._stamp(b"1500-3") == 1.5
    assert stats._stamp("2000-0") == 2.0


@pytest.mark.parametrize("ids, now, working, span", [
    ([], 50.0, True, 0.0),
    (["20000-0", "1000-0"], 25.0, False, 5.0),   # first clamped to now - 10 s = 15
    (["20000-0", "18000-0"], 25.0, False, 2.0),  # 20 - 18
    (["20000-0", "18000-0"], 25.0, True, 7.0),   # still working: up to now
    (["1000-0"], 20.0, False, 0.0),              # never negative
])
def test_observed_span(ids, now, working, span):
    recent = [(i.encode(), {}) for i in ids]
    assert stats.observed_span(recent, now, working) == span


@pytest.fixture
def huey(broker):
    h = RedisHuey("st", url=broker.url)
    yield h
    h.storage.conn.flushdb()
    h.storage.conn.close()


def _add(conn, ms: int, kind: str) -> None:
    conn.xadd(events.keys("st")["stream"], {"k": kind, "i": f"t{ms}"}, id=f"{ms}-0")


def test_idle_snapshot_rates_are_over_the_active_span(huey):
    conn = huey.storage.conn
    _add(conn, 990_000, "complete")  # 15 s before `now`: outside the 10 s window
    _add(conn, 994_999, "complete")  # 1 ms too old as well
    for ms in (1_000_000, 1_001_000, 1_002_000):
        _add(conn, ms, "complete")
    _add(conn, 1_003_000, "error")
    conn.hset(events.keys("st")["counts"], mapping={"complete": 4, "error": 1})
    snap = stats.snapshot(huey, now=1005.0)
    # 3 done and 1 failed between 1000 s and 1003 s: 3 s of work -> 1.0/s and 0.33/s
    assert snap == {"lab": "st", "time": 1005.0, "queued": 0, "scheduled": 0,
                    "counts": {"complete": 4, "error": 1}, "busy": [], "stuck": [],
                    "done_recent": 3, "errors_recent": 1, "rate_span_s": 3.0,
                    "throughput_per_s": 1.0, "errors_per_s": 0.33, "stuck_limits": {},
                    "stuck_rule": "stuck = running over 5 × the p95 of that task's recent run "
                                  "times, at least 2 s (10 s for a task with no finished run yet)"}


def test_empty_snapshot_has_zero_rates(huey):
    snap = stats.snapshot(huey, now=1005.0)
    assert (snap["rate_span_s"], snap["throughput_per_s"], snap["errors_per_s"]) == (0.0, 0.0, 0.0)


def test_time_defaults_to_now(huey, monkeypatch):
    monkeypatch.setattr(stats.time, "time", lambda: 4321.5)
    assert stats.snapshot(huey)["time"] == 4321.5


def test_busy_workers_are_running_stuck_or_lost(huey):
    conn = huey.storage.conn
    me = psutil.Process()
    tag = f"{me.create_time()!r}|{socket.gethostname()}"
    conn.hset(events.keys("st")["busy"], mapping={
        f"worker-2@{me.pid}": f"t2|sleep|1004.0|{me.pid}|{tag}",             # 1 s: running
        f"worker-1@{me.pid}": f"t1|cpu|990.0|{me.pid}|{tag}",                # 15 s: stuck
        f"worker-3@{me.pid}": f"t3|noop|1003.5|{me.pid}|1.0|{socket.gethostname()}",  # lost
    })
    conn.lpush(huey.storage.queue_key, b"a", b"b")
    conn.zadd(huey.storage.schedule_key, {b"c": 1.0})
    _add(conn, 1_001_000, "complete")
    snap = stats.snapshot(huey, now=1005.0)
    assert (snap["queued"], snap["scheduled"]) == (2, 1)
    assert snap["busy"] == [
        {"worker": "worker-3", "task_id": "t3", "task": "noop", "running_for": 1.5,
         "pid": me.pid, "state": "lost", "stuck_after": 10.0},
        {"worker": "worker-1", "task_id": "t1", "task": "cpu", "running_for": 15.0,
         "pid": me.pid, "state": "stuck", "stuck_after": 10.0},
        {"worker": "worker-2", "task_id": "t2", "task": "sleep", "running_for": 1.0,
         "pid": me.pid, "state": "running", "stuck_after": 10.0}]
    assert [b["worker"] for b in snap["stuck"]] == ["worker-3", "worker-1"]
    # still working: the span runs from the first event (1001 s) to now (1005 s)
    assert (snap["rate_span_s"], snap["throughput_per_s"]) == (4.0, 0.25)
    relaxed = stats.snapshot(huey, now=1005.0, stuck_after=20.0)
    assert [b["state"] for b in relaxed["busy"]] == ["lost", "running", "running"]


def test_window_edge_and_short_spans(huey):
    conn = huey.storage.conn
    _add(conn, 995_500, "complete")  # 9.5 s before `now`: inside the window
    _add(conn, 996_000, "complete")
    snap = stats.snapshot(huey, now=1005.0)
    # 2 done in 0.5 s: 4/s (a span under a second still counts)
    assert (snap["done_recent"], snap["rate_span_s"], snap["throughput_per_s"]) == (2, 0.5, 4.0)
    _add(conn, 996_500, "error")
    snap = stats.snapshot(huey, now=1005.0)
    # 2 done, 1 failed in 1 s
    assert (snap["throughput_per_s"], snap["errors_per_s"]) == (2.0, 1.0)
    _add(conn, 998_500, "complete")
    snap = stats.snapshot(huey, now=1005.0)
    assert (snap["rate_span_s"], snap["throughput_per_s"]) == (3.0, 1.0)  # 3 done in 3 s
    _add(conn, 999_000, "error")
    # 3 done, 2 failed in 3.5 s: 0.857... and 0.571...
    snap = stats.snapshot(huey, now=1005.0)
    assert (snap["throughput_per_s"], snap["errors_per_s"]) == (0.86, 0.57)


@pytest.mark.parametrize("waiting", ["queued", "scheduled"])
def test_waiting_tasks_alone_keep_the_span_open(huey, waiting):
    conn = huey.storage.conn
    _add(conn, 1_001_000, "complete")
    if waiting == "queued":
        conn.lpush(huey.storage.queue_key, b"a")
    else:
        conn.zadd(huey.storage.schedule_key, {b"c": 1.0})
    snap = stats.snapshot(huey, now=1005.0004)
    assert snap["rate_span_s"] == 4.0  # from 1001 s to now, rounded to the millisecond
    assert snap["throughput_per_s"] == 0.25


def test_age_is_rounded_and_stuck_means_longer_than_the_limit(huey):
    me = psutil.Process()
    tag = f"{me.create_time()!r}|{socket.gethostname()}"
    huey.storage.conn.hset(events.keys("st")["busy"], mapping={
        f"w1@{me.pid}": f"t1|cpu|995.0|{me.pid}|{tag}",       # exactly 10 s: not yet stuck
        f"w2@{me.pid}": f"t2|cpu|1003.87654|{me.pid}|{tag}"})
    snap = stats.snapshot(huey, now=1005.0)
    assert [(b["running_for"], b["state"]) for b in snap["busy"]] == [
        (10.0, "running"), (1.123, "running")]
