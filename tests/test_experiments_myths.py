"""07's beliefs, 05's default retries and 06's dashboard, on real labs (real Flask, Huey, server)."""
from __future__ import annotations

import importlib
import io

import pytest

from labapp.experiments.dashboard import watch_stats
from labapp.experiments.myths import flask_alone
from labapp.experiments.survival import flask_stopped
from labapp.experiments.retries import default_retries

myths = importlib.import_module("labapp.experiments.myths")


def test_tasks_handed_to_flask_wait_for_a_worker(make_lab):
    lab = make_lab(workers=2)
    result = flask_alone(lab, tasks=3, watch=1.5)
    assert result.accepted == result.sent == 3
    assert result.started_alone == 0 and result.queued == 3 and result.answer == "no"
    assert result.completed == 3 and result.done_after is not None
    assert lab.config.workers == 2 and len(lab.status()["workers"]) == 2  # restored
    assert result.teaches_lesson


def test_workers_run_tasks_while_flask_is_dead(make_lab):
    lab = make_lab(workers=2)
    web_pid = lab.status()["web"]
    result = flask_stopped(lab, tasks=4, seconds=0.2, crash=True)   # 07's belief 2
    assert result.signal_name == "SIGKILL" and result.web_pid == web_pid != result.new_web_pid
    assert len(result.completed) == 4 and result.done_while_down and result.answer == "run"
    assert lab.healthy()


def test_a_failed_task_is_not_retried_by_default(make_lab):
    lab = make_lab(workers=1)
    result = default_retries(lab, watch=1.2)
    assert result.attempts == 1 and result.retries_left == 0 and not result.retried
    assert result.queued == 0 and result.scheduled == 0 and result.teaches_lesson


@pytest.mark.slow
def test_the_queued_work_does_not_finish_sooner(make_lab):
    lab = make_lab(workers=2, web_threads=4)
    result = myths.faster(lab, duration=0.2, clients=4, requests_per_client=2, web_threads=4)
    assert len(result.queued_done) == 8 and len(result.worker_seconds) == 8
    assert min(result.worker_seconds) >= 0.19  # the same sleep, wherever it runs
    assert result.answer == "no", result


def test_dashboard_polls_until_idle_and_alerts_on_failures(make_lab):
    lab = make_lab(workers=2)
    lab.enqueue_many("sleep", 6, seconds=0.1)
    lab.enqueue_many("flaky", 2, key="dash-test", fail_times=10)
    out = io.StringIO()
    result = watch_stats(lab, timeout=20, every=0.3, stream=out)
    assert result.drained and result.samples[-1].errors - result.samples[0].errors == 2
    assert any("failed for good" in a for _, a in result.alerts)
    assert "ALERT" in out.getvalue() and len(out.getvalue().splitlines()) == len(result.samples)


@pytest.mark.parametrize("call, match", [
    (lambda lab: flask_alone(lab, tasks=0), "tasks"),
    (lambda lab: flask_alone(lab, watch=0.1), "watch"),
    (lambda lab: flask_stopped(lab, tasks=0, crash=True), "tasks"),
    (lambda lab: default_retries(lab, watch=0), "watch"),
    (lambda lab: watch_stats(lab, every=0.01), "every"),
    (lambda lab: watch_stats(lab, timeout=0), "timeout"),
])
def test_bad_arguments_raise_value_error_with_the_range(lab, call, match):
    with pytest.raises(ValueError, match=match):
        call(lab)
