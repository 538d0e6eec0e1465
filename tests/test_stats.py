"""The monitor's "stuck" limit: pure arithmetic on run times, then a real lab whose usual
50 ms task is flagged when one run takes 3 s."""
from __future__ import annotations

import json
import urllib.request

import pytest

from labapp import stats
from labapp.widgets import Monitor
from labapp.widgets.monitor import _stuck_note
from tests.helpers import poll


def entry(seq: int, kind: str, task_id: str, name: str, t: float):
    """One stream entry as XREVRANGE returns it."""
    return (f"{1_000_000 + seq}-0".encode(),
            {b"k": kind.encode(), b"i": task_id.encode(), b"n": name.encode(), b"t": repr(t).encode()})


def newest_first(*entries):
    return list(reversed(entries))


# --------------------------------------------------------------------------- p95 and the limit
def test_p95_is_the_nearest_rank():
    # 20 values: 95 % of 20 = 19, so the 19th smallest.
    assert stats.p95([i / 100 for i in range(20, 0, -1)]) == 0.19
    # 21 values: 95 % of 21 = 19.95, rounded up to the 20th smallest.
    assert stats.p95([float(i) for i in range(1, 22)]) == 20.0
    # 100 values: the 95th smallest; one value: itself.
    assert stats.p95([float(i) for i in range(100)]) == 94.0
    assert stats.p95([0.7]) == 0.7
    with pytest.raises(ValueError):
        stats.p95([])


@pytest.mark.parametrize("runs,limit", [
    ([], 10.0),                       # no history: the fixed fallback
    ([0.05] * 20, 2.0),               # 5 x 0.05 = 0.25 s: the 2 s floor
    ([0.4] * 20, 2.0),                # 5 x 0.4 = 2.0 s exactly
    ([0.5] * 19 + [0.9], 2.5),        # p95 of 20 = 19th smallest = 0.5; 5 x 0.5
    ([1.0] * 19 + [3.0], 5.0),        # one slow run does not move the p95
    ([1.0] * 18 + [3.0, 3.0], 15.0),  # two of 20 (10 %) do: 19th smallest = 3.0
    ([4.0], 20.0),                    # a single run counts
])
def test_stuck_limit_is_five_times_p95_at_least_two_seconds(runs, limit):
    assert stats.stuck_limit(runs) == pytest.approx(limit)


def test_constants_match_the_documented_rule():
    assert (stats.STUCK_FACTOR, stats.STUCK_MIN, stats.STUCK_FALLBACK) == (5.0, 2.0, 10.0)
    assert stats.STUCK_AFTER is None      # measured limits by default, in the widget and the web app
    assert "5 × the p95" in stats.stuck_rule() and "at least 2 s" in stats.stuck_rule()
    assert stats.stuck_rule(1.0) == "stuck = running over 1 s (a fixed limit)"


# --------------------------------------------------------------------------- run times from events
def test_run_times_pair_executing_with_complete_per_task():
    entries = newest_first(
        entry(1, "enqueued", "a", "sleep", 99.0),
        entry(2, "executing", "a", "sleep", 100.0),
        entry(3, "executing", "b", "add", 100.5),
        entry(4, "complete", "a", "sleep", 100.25),
        entry(5, "error", "b", "add", 101.0),           # failed: not a run time
        entry(6, "executing", "c", "add", 102.0),
        entry(7, "error", "c", "add", 102.5),           # retried ...
        entry(8, "executing", "c", "add", 104.0),
        entry(9, "complete", "c", "add", 104.125),      # ... its last attempt counts
        entry(10, "complete", "d", "sleep", 105.0),     # started before these entries
    )
    assert stats.run_times(entries) == {"sleep": [0.25], "add": [0.125]}


def test_run_times_carry_unfinished_starts_over():
    started: dict[bytes, float] = {}
    assert stats.run_times(newest_first(entry(1, "executing", "a", "sleep", 10.0)), started) == {}
    assert stats.run_times(newest_first(entry(2, "complete", "a", "sleep", 13.5)), started) == \
        {"sleep": [3.5]}
    assert started == {}


def test_run_history_reads_each_event_once_keeps_the_last_runs_and_forgets_on_reset():
    history = stats.RunHistory()
    batch = []
    for i in range(150):   # 150 runs of 0.01 * i seconds
        batch += [entry(2 * i, "executing", f"t{i}", "sleep", 100.0 * i),
                  entry(2 * i + 1, "complete", f"t{i}", "sleep", 100.0 * i + 0.01 * i)]
    runs = history.add(newest_first(*batch), count=300)
    assert len(runs["sleep"]) == stats.HISTORY_RUNS == 100
    assert runs["sleep"][0] == pytest.approx(0.5) and runs["sleep"][-1] == pytest.approx(1.49)
    # The same entries again (two snapshots raced): nothing counted twice.
    assert history.add(newest_first(*batch[-10:]), count=300) == runs
    more = [entry(400, "executing", "x", "add", 9000.0), entry(401, "complete", "x", "add", 9000.5)]
    assert history.add(newest_first(*more), count=302)["add"] == [0.5]
    # The lab's events were deleted (the count fell): the old runs are gone.
    after = [entry(500, "executing", "y", "add", 9100.0), entry(501, "complete", "y", "add", 9100.25)]
    assert history.add(newest_first(*after), count=2) == {"add": [0.25]}


def test_stuck_limits_list_running_tasks_without_history_and_honour_a_fixed_limit():
    limits = stats.stuck_limits({"sleep": [0.05] * 20}, names={"cpu"})
    assert limits["sleep"] == stats.StuckLimit(2.0, 20, 0.05)
    assert limits["cpu"] == stats.StuckLimit(10.0, 0, None)
    assert limits["sleep"].describe() == "2 s (p95 50 ms of 20 runs)"
    assert stats.StuckLimit(7.5, 1, 1.5).describe() == "7.5 s (p95 1.5 s of 1 run)"
    assert stats.StuckLimit(617.0, 3, 123.4).describe() == "617 s (p95 123 s of 3 runs)"
    assert limits["cpu"].describe() == "10 s (no finished run yet)"
    fixed = stats.stuck_limits({"sleep": [0.05] * 20}, names={"cpu"}, fixed=1.0)
    assert {t: (lim.after_s, lim.describe()) for t, lim in fixed.items()} == \
        {"sleep": (1.0, "1 s (fixed)"), "cpu": (1.0, "1 s (fixed)")}


def test_monitor_footnote_names_each_limit():
    snap = {"stuck_rule": stats.stuck_rule(),
            "stuck_limits": {"sleep": {"describe": "2 s (p95 50 ms of 20 runs)"}}}
    note = _stuck_note(snap)
    assert note.startswith("stuck = running over 5 × the p95")
    assert "sleep 2 s (p95 50 ms of 20 runs)" in note and note.endswith("lost = its worker died.")


# --------------------------------------------------------------------------- a real lab
def _api_stats(lab) -> dict:
    with urllib.request.urlopen(lab.url + "api/stats", timeout=10) as resp:
        return json.load(resp)


def test_a_usual_50_ms_task_is_stuck_when_it_runs_3_s(make_lab):
    lab = make_lab(workers=1)
    monitor = Monitor(lab, start=False)
    # No history yet: a running task gets the fixed fallback.
    first = lab.enqueue("sleep", seconds=0.5)
    row = poll(lambda: monitor.refresh()["busy"], 10)[0]
    assert (row["task_id"], row["stuck_after"], row["state"]) == (first.id, 10.0, "running")
    assert lab.wait(first, 10)

    usual = lab.enqueue_many("sleep", 20, seconds=0.05)
    assert lab.wait(usual, 30)
    # The limit from independent arithmetic on the recorded events: 21 runs, nearest rank 20.
    started = {e.task_id: e.time for e in lab.events() if e.kind == "executing"}
    took = sorted(e.time - started[e.task_id] for e in lab.events() if e.kind == "complete")
    assert len(took) == 21
    expected = max(2.0, 5 * took[19])

    slow = lab.enqueue("sleep", seconds=3)
    row = poll(lambda: [b for b in monitor.refresh()["busy"] if b["task_id"] == slow.id], 10)[0]
    assert row["stuck_after"] == pytest.approx(expected, abs=1e-3)
    assert expected < 3, f"the usual runs took too long on this machine: p95 {took[19]:.2f} s"
    stuck = poll(lambda: monitor.refresh()["stuck"], 10)[0]
    assert (stuck["task_id"], stuck["state"]) == (slow.id, "stuck")
    assert stuck["running_for"] > stuck["stuck_after"]
    assert "ql-state-stuck" in monitor.html.value
    assert f"sleep {monitor.snapshot['stuck_limits']['sleep']['describe']}" in monitor.html.value
    # The web app's /api/stats (another process) says the same, with its old keys intact.
    web = _api_stats(lab)
    assert [(b["task_id"], b["state"]) for b in web["stuck"]] == [(slow.id, "stuck")]
    assert web["stuck_limits"]["sleep"]["after_s"] == pytest.approx(expected, abs=1e-3)
    assert web["stuck_limits"]["sleep"]["runs"] == 21
    assert {"queued", "counts", "busy", "stuck", "throughput_per_s", "stuck_rule"} <= set(web)
    # A fixed limit (as before) would not have called it stuck yet.
    assert stats.snapshot(lab.huey, stuck_after=10.0)["stuck"] == []
    assert lab.wait(slow, 10)
    assert monitor.refresh()["stuck"] == []
