"""The expert-zone experiments on real labs: the lock, the lost-task demo, a second worker, the app factory."""
from __future__ import annotations

import psutil
import pytest

from labapp.events import Event
from labapp.experiments.production import app_factory
from labapp.experiments.production import second_worker
from labapp.experiments.race import lock_race
from labapp.experiments.race import pipeline_arguments
from labapp.experiments.worker_loss import lost_task


def test_locked_event_ends_a_task_only_without_retries():
    def locked(retries: int) -> Event:
        return Event(id="1-0", kind="locked", task_id="t", task="take_stock", worker="w", pid=1,
                     time=0.0, retries=retries)

    assert locked(0).terminal
    assert not locked(2).terminal  # Huey retries it: 'retrying' follows


@pytest.mark.slow
def test_lock_prevents_the_lost_update_and_refuses_instead_of_waiting(make_lab):
    lab = make_lab(workers=1)
    result = lock_race(lab, seconds=0.3)
    assert result.run("no_lock").lost_updates == 1
    lock = result.run("lock")
    assert lock.refused == 1 and lock.lost_updates == 0 and lock.final_stock == 4
    assert any("locked" in k and "complete" not in k for k in lock.kinds.values())
    retry = result.run("lock_retry")
    assert retry.final_stock == 3 and retry.locked >= 1
    assert result.teaches_lesson and result.lock_verdict() == "fails"
    assert lab.config.workers == 1


@pytest.mark.slow
def test_then_appends_a_result_to_b_arguments(make_lab):
    lab = make_lab(workers=2)
    args = pipeline_arguments(lab)
    key = args["step_a"].split("'")[1]
    assert args["step_b"] == f"'{key}', '{key}'"


@pytest.mark.slow
def test_lost_task_demo_kills_the_worker_of_its_own_task(make_lab):
    lab = make_lab(workers=1, worker_type="thread")
    demo = lost_task(lab, seconds=4.0, stuck_after=0.5)
    assert demo.states == ["running", "stuck", "lost"]
    assert demo.kinds == ["enqueued", "executing"] and demo.result is None
    assert demo.replacement_pid and demo.replacement_pid != demo.killed_pid
    assert not psutil.pid_exists(demo.killed_pid) or \
        psutil.Process(demo.killed_pid).status() == psutil.STATUS_ZOMBIE
    assert demo.teaches_lesson
    assert (lab.config.workers, lab.config.worker_type) == (1, "thread")


@pytest.mark.slow
def test_second_worker_shares_the_queue_and_is_stopped(make_lab):
    lab = make_lab(workers=1)
    result = second_worker(lab, tasks=10, seconds=0.3)
    assert sum(result.counts.values()) == 10 and result.counts["extra"] >= 1
    assert not psutil.pid_exists(result.extra_pid) or \
        psutil.Process(result.extra_pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_app_factory_view_enqueues_and_refuses_unknown_tasks(make_lab):
    lab = make_lab(workers=1)
    result = app_factory(lab)
    assert result.status == 202 and result.final["state"] == "complete"
    assert result.final["result"] == "sent to ada@example.com"
    assert result.bad_status == 404 and "unknown task" in result.bad_body["error"]
