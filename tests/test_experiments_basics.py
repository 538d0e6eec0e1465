"""Experiments of notebooks 01-03 on real labs: drain, the empty-page probe, and who survives whom.

Each test asserts the behaviour the notebook teaches, with margins wide enough for a busy
2-core machine, and that nothing the experiment started is left running.
"""
from __future__ import annotations

import psutil
import pytest

from labapp.experiments import drain
from labapp.experiments import extra_worker
from labapp.experiments import flask_stopped
from labapp.experiments import latency
from labapp.experiments import where_tasks_run
from labapp.experiments import worker_killed

pytestmark = pytest.mark.slow


def test_drain_samples_the_queue_down_to_empty_and_times_every_task(make_lab):
    lab = make_lab(workers=0)
    handles = lab.enqueue_many("sleep", 8, seconds=0.1)
    run = drain(lab, handles, workers=2)
    assert run.waiting == 8 and run.samples[0][1] == 8 and run.samples[-1][1] == 0
    assert len(run.done) == 8 and run.max_running == 2
    assert run.emptied <= run.last_done + 0.1
    assert 0 < run.rate <= run.max_rate * 1.2
    assert lab.config.workers == 2 and lab.queue_length() == 0
    with pytest.raises(RuntimeError, match="scale\\(0\\)"):
        drain(lab, lab.enqueue_many("sleep", 2, seconds=0.0), workers=2)


def test_drain_rejects_bad_arguments(clean_lab):
    with pytest.raises(ValueError, match="workers"):
        drain(clean_lab, ["x"], workers=0)
    with pytest.raises(ValueError, match="handles"):
        drain(clean_lab, [], workers=1)


def test_probe_measures_an_empty_page_waiting_behind_inline_work(make_lab):
    lab = make_lab(workers=2)
    r = latency(lab, duration=0.2, clients=6, requests_per_client=2, web_threads=2,
                modes=("hello", "inline"), probe=True)
    assert r.modes == ["hello", "inline"] and r.probes == ["inline"]
    waited = r.probe_latencies("inline")
    assert len(waited) >= 2
    # The empty page queued behind 0.2 s requests: far slower than when it ran alone.
    assert max(waited) > 0.1 > r.p50("hello"), r.table()
    assert r.failed == 0 and lab.config.web_threads == 4


def test_tasks_run_in_worker_processes(make_lab):
    lab = make_lab(workers=2, worker_type="process")
    r = where_tasks_run(lab, tasks=4, seconds=0.05)
    assert r.ran_on and set(r.ran_on) <= set(lab.status()["workers"])
    assert r.where == "in separate worker processes" and r.teaches_lesson


def test_killed_worker_loses_its_task_flask_keeps_answering_consumer_replaces_it(make_lab):
    lab = make_lab(workers=2, worker_type="process")
    r = worker_killed(lab, tasks=4, seconds=0.4)
    assert not psutil.pid_exists(r.killed_pid) or \
        psutil.Process(r.killed_pid).status() == psutil.STATUS_ZOMBIE
    assert r.replacement_pid in lab.status()["workers"]
    assert 0 <= r.replaced_after < 10
    assert len(r.lost) == 1 and len(r.completed) == 3, r.conclusions()
    after = r.after_kill
    assert after and all(ms is not None for _, ms, _ in after)
    with pytest.raises(ValueError, match="process workers"):
        worker_killed(make_lab(workers=2, worker_type="thread"))


def test_workers_finish_tasks_while_flask_is_down(make_lab):
    lab = make_lab(workers=2)
    web_pid = lab.status()["web"]
    r = flask_stopped(lab, tasks=4, seconds=0.2)
    assert r.web_pid == web_pid != r.new_web_pid == lab.status()["web"]
    assert r.done_while_down and r.unanswered and not r.stray, r.conclusions()
    assert lab.healthy()


def test_extra_worker_joins_from_its_command_line_and_is_stopped(make_lab):
    lab = make_lab(workers=1)
    r = extra_worker(lab, tasks=8, seconds=0.1)
    assert r.extra_names and all("/worker-" in n for n in r.extra_names)
    assert r.extra_ran >= 1 and sum(r.shares.values()) == 8, r.shares
    assert r.exit_code == 0
    assert not psutil.pid_exists(r.extra_pid)
    assert r.extra_pid not in lab.status()["workers"]
