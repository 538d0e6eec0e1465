"""Conclusions of the expert-zone experiments (08, 09) come from the numbers: opposite numbers flip them.

Pure tests on hand-made results: no lab, no processes.
"""
from __future__ import annotations

import pytest

from labapp.events import Event
from labapp.experiments.durability import DurabilityResult
from labapp.experiments.durability import DurabilityRun
from labapp.experiments.production import SecondWorkerResult
from labapp.experiments.race import LockResult
from labapp.experiments.race import LockRun
from labapp.experiments.race import RaceResult
from labapp.experiments.race import RaceRun
from labapp.experiments.worker_loss import LossPhase
from labapp.experiments.worker_loss import LostTaskDemo
from labapp.experiments.worker_loss import WorkerLossResult


# ------------------------------------------------------------------ durability
def dur(survivors: dict[str, int], rate: dict[str, float] | None = None, n: int = 100,
        note: str = "a private node was SIGKILLed") -> DurabilityResult:
    rate = rate or {}
    runs = [DurabilityRun(key=k, label=k, n=n, enqueue_s=[1 / rate.get(k, 1000)] * n,
                          elapsed_s=n / rate.get(k, 1000), queued_before=n, survivors=s,
                          crashed="SIGKILL")
            for k, s in survivors.items()]
    return DurabilityResult(n=n, runs=runs, rabbitmq_note=note)


USUAL = {"memory": 0, "aof_everysec": 100, "aof_always": 100, "rabbitmq_durable": 100,
         "rabbitmq_durable_queue": 0, "rabbitmq_transient": 0}


def test_durability_usual_run_teaches_the_lesson():
    r = dur(USUAL, {"memory": 3000, "aof_everysec": 2900, "aof_always": 500,
                    "rabbitmq_durable": 1000, "rabbitmq_transient": 10000})
    assert r.teaches_lesson and r.memory_verdict() == "none"
    text = " ".join(r.conclusions())
    assert "memory: 100 tasks queued, crashed, restarted: lost all of them" in text
    assert "Safety cost: valkey with fsync always enqueued 500 tasks/s against 3,000" in text
    assert "(17% of the speed)" in text
    assert "in the background once a second" in text  # everysec at ~full speed
    assert "not what" not in text


def test_durability_memory_keeping_everything_flips_verdict_and_lesson():
    r = dur(dict(USUAL, memory=100))
    assert r.memory_verdict() == "all" and not r.teaches_lesson
    assert any("That is not what 'memory' usually does" in c for c in r.conclusions())
    assert dur(dict(USUAL, memory=40)).memory_verdict() == "some"


def test_durability_persistent_rabbit_losing_messages_is_reported():
    r = dur(dict(USUAL, rabbitmq_durable=0))
    assert not r.teaches_lesson
    assert any("'rabbitmq_durable'" in c and "expected: keep all" in c for c in r.conclusions())


def test_durability_no_cost_says_so_instead_of_claiming_one():
    cheap = dur(USUAL, {"memory": 1000, "aof_always": 990})
    assert any("no clear cost in this run" in c for c in cheap.conclusions())
    costly = dur(USUAL, {"memory": 1000, "aof_always": 300})
    assert any(c.startswith("Safety cost: valkey with fsync always") for c in costly.conclusions())


def test_durability_without_rabbitmq_says_why_in_one_line():
    r = dur({"memory": 0, "aof_always": 100}, note="skipped: rabbitmq-server is not installed")
    assert r.teaches_lesson and not r.has_rabbitmq
    assert r.conclusions()[-1] == "RabbitMQ: skipped: rabbitmq-server is not installed"


# ------------------------------------------------------------------ race
def race_result(failures: dict[str, int], reps: int = 10) -> RaceResult:
    runs = [RaceRun(strategy=s, rep=i, key=f"{s}-{i}", order="A,B",
                    outcome="missing" if i < f else "ok", a_start=0, a_end=0.03, b_start=0.001)
            for s, f in failures.items() for i in range(reps)]
    return RaceResult(workers=2, a_seconds=0.03, seed=0, strategies=tuple(failures), runs=runs)


def test_race_usual_run_names_the_fixes_that_reached_zero():
    r = race_result({"independent": 10, "a_first": 10, "pipeline": 0, "wait_result": 0})
    assert r.teaches_lesson and r.verdict("a_first") == "mostly"
    assert r.fixes_that_reached_zero == ["pipeline", "wait_result"]
    assert "Reached zero: pipeline, wait_result" in " ".join(r.conclusions())


def test_race_a_fix_that_failed_is_not_called_zero():
    r = race_result({"a_first": 10, "pipeline": 2, "wait_result": 0})
    assert not r.teaches_lesson
    assert r.fixes_that_reached_zero == ["wait_result"]
    text = " ".join(r.conclusions())
    assert "Reached zero: wait_result" in text and "pipeline missed 2 times" in text


def test_race_lucky_run_says_the_order_still_guarantees_nothing():
    r = race_result({"a_first": 0, "pipeline": 0})
    assert not r.teaches_lesson and r.verdict("a_first") == "never"
    assert any("never failed this time" in c for c in r.conclusions())
    assert race_result({"a_first": 3}).verdict("a_first") == "sometimes"


# ------------------------------------------------------------------ lock
def lock_run(strategy: str, final: int, kinds: list[list[str]], start: int = 5) -> LockRun:
    return LockRun(strategy=strategy, start_stock=start, final_stock=final,
                   kinds={f"t{i}": k for i, k in enumerate(kinds)}, start=0.0, end=1.5)


DONE = ["enqueued", "executing", "complete"]
LOCKED = ["enqueued", "executing", "locked"]
RETRIED = LOCKED + ["retrying", "scheduled", "enqueued", "executing", "complete"]


def test_lock_usual_run_lost_update_then_refusal_then_retry():
    r = LockResult(workers=2, seconds=0.3, runs=[
        lock_run("no_lock", 4, [DONE, DONE]), lock_run("lock", 4, [DONE, LOCKED]),
        lock_run("lock_retry", 3, [DONE, RETRIED])])
    assert r.teaches_lesson and r.lock_verdict() == "fails"
    no_lock, lock, retry = r.conclusions()
    assert "1 update(s) lost" in no_lock
    assert "raised TaskLockedException instead of waiting" in lock
    assert "retried by Huey's scheduler" in retry and "all 2 items taken" in retry


def test_lock_that_let_both_in_flips_the_verdict():
    r = LockResult(workers=2, seconds=0.3, runs=[lock_run("lock", 4, [DONE, DONE])])
    assert r.lock_verdict() == "both" and not r.teaches_lesson
    assert "update(s) lost" in r.conclusions()[0]


def test_lock_tasks_that_did_not_overlap_settle_nothing():
    r = LockResult(workers=2, seconds=0.3, runs=[
        lock_run("no_lock", 3, [DONE, DONE]), lock_run("lock", 3, [DONE, DONE])])
    assert r.lock_verdict() is None and not r.teaches_lesson
    assert all("did not overlap" in c for c in r.conclusions())


# ------------------------------------------------------------------ worker loss
def ev(kind: str, task: str, pid: int, t: float) -> Event:
    return Event(id=f"{t}-0", kind=kind, task_id=task, task="sleep", worker=f"w{pid}", pid=pid,
                 time=t, retries=0)


def phase(how: str, events: list[Event], ids: list[str], killed: int | None = None) -> LossPhase:
    return LossPhase(how=how, task_ids=ids, events=events, start=0.0, action_time=0.2, end=2.0,
                     killed_pid=killed, killed_worker="worker-1" if killed else "")


def loss_result(second_run_completes: bool) -> WorkerLossResult:
    ids = ["a", "b"]
    kill_events = [ev("enqueued", "a", 1, 0), ev("enqueued", "b", 1, 0),
                   ev("executing", "a", 11, 0.1), ev("executing", "b", 12, 0.1),
                   ev("complete", "b", 12, 0.6)]
    if second_run_completes:  # another worker ran the killed worker's task again
        kill_events += [ev("executing", "a", 12, 0.7), ev("complete", "a", 12, 1.2)]
    good = [ev(k, t, 12, 0.1 * i) for i, (k, t) in enumerate(
        [("enqueued", "a"), ("enqueued", "b"), ("executing", "a"), ("complete", "a"),
         ("executing", "b"), ("complete", "b")])]
    return WorkerLossResult(worker_type="process", workers=2, seconds=0.5,
                            kill=phase("sigkill", kill_events, ids, killed=11),
                            graceful=phase("graceful", good, ids))


def test_worker_loss_usual_run_loses_the_running_task():
    r = loss_result(second_run_completes=False)
    assert r.lost_on_kill == 1 and r.teaches_lesson and r.verdict() == "no"
    assert "1 of 2 tasks started ('executing') and never completed" in r.conclusions()[0]


def test_worker_loss_redelivery_flips_the_verdict():
    r = loss_result(second_run_completes=True)
    assert r.verdict() == "yes" and not r.teaches_lesson
    assert "kill missed the running task" in r.conclusions()[0]


def lost_demo(kinds: list[str], result=None, replacement: int | None = 99) -> LostTaskDemo:
    return LostTaskDemo(task_id="abcdef123", worker="worker-1", killed_pid=11, stuck_after=1.0,
                        stuck_seen_after=1.1, states=["running", "stuck", "lost"], kinds=kinds,
                        result=result, replacement_pid=replacement, replaced_after=0.9)


def test_lost_task_demo_conclusions_follow_its_events():
    lost = lost_demo(["enqueued", "executing"])
    assert lost.lost and "It will never finish" in " ".join(lost.conclusions())
    assert "replacement worker (pid 99) 0.9 s after the kill" in " ".join(lost.conclusions())
    assert "fixed threshold" in lost.conclusions()[1]
    done = lost_demo(["enqueued", "executing", "complete"], result=5.0, replacement=None)
    assert not done.lost
    text = " ".join(done.conclusions())
    assert "not lost this time" in text and "never finish" not in text
    assert "No replacement worker appeared" in text


# ------------------------------------------------------------------ production
@pytest.mark.parametrize("split,teaches", [({"lab": 8, "extra": 4}, True),
                                           ({"lab": 12, "extra": 0}, False)])
def test_second_worker_share_decides_the_sentence(split, teaches):
    ran_by = {f"{who}{i}": who for who, n in split.items() for i in range(n)}
    r = SecondWorkerResult(command="labapp worker", extra_pid=7, ran_by=ran_by, ready_s=0.6,
                           seconds=2.0)
    assert r.teaches_lesson is teaches
    text = " ".join(r.conclusions())
    assert ("it ran 4, the lab's own workers 8" in text) if teaches else ("It ran none" in text)


def test_durability_cost_lesson_follows_the_rates():
    slow_safe = dur(USUAL, {"memory": 3000, "aof_always": 500, "rabbitmq_durable": 800,
                            "rabbitmq_transient": 9000})
    assert slow_safe.teaches_cost
    inverted = dur(USUAL, {"memory": 3000, "aof_always": 500, "rabbitmq_durable": 1200,
                           "rabbitmq_transient": 600})
    assert not inverted.teaches_cost
    assert any("no clear cost in this run" in c and "larger n" in c for c in inverted.conclusions())
