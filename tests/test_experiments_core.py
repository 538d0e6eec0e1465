"""Experiments latency, overhead, ordering, retries (with jitter) and scaling on real labs.

Each test asserts the behaviour the experiment teaches, with margins wide enough for a
busy 2-core machine. Tests that change workers or web threads use their own lab.
"""
from __future__ import annotations

import os
import signal
import threading
import urllib.request

import psutil
import pytest
from huey.exceptions import TaskException

from labapp import procs
from labapp.experiments import latency
from labapp.experiments import ordering
from labapp.experiments import overhead
from labapp.experiments import retries
from labapp.experiments import scaling
from labapp.experiments.retries import RetriesResult
from labapp.experiments.retries import RetryAttempt
from labapp.experiments.retries import StrategyRun


# ------------------------------------------------------------------ latency / overhead
@pytest.mark.slow
def test_queued_answers_far_sooner_than_inline_under_concurrency(make_lab):
    lab = make_lab(workers=2, web_threads=4)
    result = latency(lab, duration=0.2, clients=8, requests_per_client=3, web_threads=2)
    inline, queued = result.p50("inline"), result.p50("queued")
    assert queued < inline / 5, result
    # 8 clients share 2 request threads: inline requests wait for each other, not just 0.2 s.
    assert inline > 0.4, result
    assert len(result.latencies("inline")) == len(result.latencies("queued")) == 24
    assert result.failed == 0
    assert all(r.task_id for r in result.requests if r.mode == "queued")
    # The queue does not make the task itself faster: each took at least its 0.2 s.
    assert len(result.completion_times) == 24
    assert min(result.completion_times) >= 0.2 * 0.95
    assert "inline p50" in repr(result) and "queued p50" in repr(result)
    assert lab.config.web_threads == 4 and lab.healthy()  # the pool size came back


def test_single_client_hello_and_queued(clean_lab):
    result = latency(clean_lab, duration=0.0, clients=1, requests_per_client=20,
                     modes=("hello", "queued"), web_threads=clean_lab.config.web_threads)
    assert result.modes == ["hello", "queued"]
    assert len(result.latencies("hello")) == len(result.latencies("queued")) == 20
    assert result.p50("queued") < 0.05, result
    assert [r.task_id for r in result.requests if r.mode == "hello"] == [None] * 20
    assert all(done >= enq for _, enq, done in result.completions)


def test_overhead_queue_costs_more_than_inline_for_a_tiny_job(clean_lab):
    result = overhead(clean_lab, n=30)
    assert result.p50("queue") > result.p50("inline"), result
    # A thread pool hands the job off almost at once; the caller of inline work waits for it.
    blocked = {m: sorted(result.blocked(m))[15] for m in result.samples}
    assert blocked["thread"] < blocked["inline"], result
    assert all(len(v) == 30 for v in result.samples.values())
    assert "the queue adds" in repr(result)


# ------------------------------------------------------------------ ordering
def test_ordering_several_workers_complete_out_of_order(make_lab):
    lab = make_lab(workers=4)
    result = ordering(lab, n=12, workers=4, seed=1, max_seconds=0.15)
    assert result.inversions > 0, result
    assert sorted(result.completion_order) == list(range(12))
    assert len(result.worker_names) >= 2
    assert len(result.attempts) == 12 and all(a.outcome == "complete" for a in result.attempts)
    assert len(result.durations) == 12 and all(0.015 <= d <= 0.15 for d in result.durations)
    assert "inversions" in repr(result)


def test_ordering_one_worker_keeps_order_until_a_retry(make_lab):
    lab = make_lab(workers=1)
    plain = ordering(lab, n=6, workers=1, seed=2, max_seconds=0.05)
    assert plain.inversions == 0, plain
    retried = ordering(lab, n=6, workers=1, seed=2, max_seconds=0.05, retried=1)
    assert retried.inversions > 0, retried
    assert retried.completion_order[-1] == 1  # the retry went to the back of the queue
    outcomes = [a.outcome for a in retried.attempts if a.seq == 1]
    assert outcomes == ["error", "complete"]


def test_ordering_same_seed_same_durations(clean_lab):
    a = ordering(clean_lab, n=4, workers=2, seed=7, max_seconds=0.02)
    b = ordering(clean_lab, n=4, workers=2, seed=7, max_seconds=0.02)
    assert a.durations == b.durations


# ------------------------------------------------------------------ retries
@pytest.mark.slow
def test_retries_backoff_grows_and_no_retry_leaves_the_error(clean_lab):
    result = retries(clean_lab, fail_times=2, retry_delay=1.0, backoff=2.0)
    none, fixed, backoff = (result.run(s) for s in ("none", "fixed", "backoff"))
    # (a) no retries: one attempt, the error is recorded, and the task never completes.
    assert len(none.attempts) == 1 and not none.completed
    assert none.final_state == "error"
    with pytest.raises(TaskException):
        clean_lab.result(none.task_id)
    # (b) fixed delay: every wait is at least the delay (the 1 s tick only adds to it).
    assert fixed.completed and len(fixed.attempts) == 3
    assert all(g >= 0.9 for g in fixed.gaps), result
    # (c) backoff: the second wait is longer than the first.
    assert backoff.completed and len(backoff.attempts) == 3
    assert backoff.planned_delays == [1.0, 2.0]
    assert backoff.gaps[1] > backoff.gaps[0], result
    assert "tick" in repr(result)


@pytest.mark.slow
def test_jitter_spreads_the_retries_of_clients_that_failed_together(clean_lab):
    result = retries(clean_lab, fail_times=2, retry_delay=2.0, backoff=2.0, clients=8,
                     strategies=("backoff", "jitter"), jitter=0.5, seed=0)
    for name in ("backoff", "jitter"):
        runs = result.runs_of(name)
        assert len(runs) == 8 and all(r.completed for r in runs), result
        assert all(len(r.attempts) == 3 for r in runs), result  # 2 failures, then success
    # RetryTask attempts end with ``retrying`` (no ``error`` event): counted as retries.
    jitter = result.run("jitter")
    assert [a.outcome for a in jitter.attempts] == ["retry", "retry", "complete"]
    # Plain backoff: every client's retry starts in the same tick (one tick at most apart,
    # when the first attempts happened to straddle a tick boundary).
    assert max(result.spread("backoff")) < 1.5, result
    # Jitter: the seeded delays spread the clients' retries over several ticks.
    assert max(result.spread("jitter")) > max(result.spread("backoff")) + 1.0, result
    assert len(result.bursts("jitter")) > len(result.bursts("backoff")), result
    # Each measured wait is the seeded delay rounded up to a tick (plus scheduling noise).
    for run in result.runs_of("jitter"):
        for planned, gap in zip(run.planned_delays, run.gaps):
            assert planned - 0.2 < gap < planned + result.tick + 1.0, result
    assert "clients" in repr(result) and "tick" in repr(result)
    assert not clean_lab.redis.hgetall(f"lab.{clean_lab.name}.busy")  # no worker left "busy"


def test_jitter_task_stops_after_its_own_retry_budget(clean_lab):
    # base 0: each retry goes to the next scheduler tick; Huey's budget would never run out.
    result = retries(clean_lab, fail_times=3, retries=1, retry_delay=0.0,
                     strategies=("jitter",))
    run = result.run("jitter")
    assert [a.outcome for a in run.attempts] == ["retry", "error"], result
    assert run.final_state == "error" and not run.completed
    with pytest.raises(TaskException):
        clean_lab.result(run.task_id)


def test_retries_result_measures_bursts_and_spread():
    def run(name, client, starts):
        attempts = tuple(RetryAttempt(i + 1, 100 + t, 100 + t + 0.01,
                                      "complete" if i == len(starts) - 1 else "error", "w")
                         for i, t in enumerate(starts))
        return StrategyRun(name, 2, 2.0, 2.0, f"{name}{client}", 100.0, attempts, "complete",
                           client=client, jitter=0.5 if name == "jitter" else 0.0,
                           key=f"k{client}")
    runs = (run("backoff", 0, [0, 2.9, 6.9]), run("backoff", 1, [0.01, 2.91, 6.92]),
            run("backoff", 2, [0.02, 2.92, 6.93]),
            run("jitter", 0, [0, 1.9, 4.9]), run("jitter", 1, [0.01, 2.9, 8.9]),
            run("jitter", 2, [0.02, 2.91, 6.9]))
    result = RetriesResult(2, runs, clients=3)
    assert result.names == ["backoff", "jitter"] and len(result.runs_of("jitter")) == 3
    assert [(round(t, 2), n) for t, n in result.bursts("backoff")] == [(2.9, 3), (6.9, 3)]
    assert [n for _, n in result.bursts("jitter")] == [1, 2, 1, 1, 1]
    assert (result.peak("backoff"), result.peak("jitter")) == (3, 2)
    assert [round(s, 2) for s in result.spread("jitter")] == [1.01, 4.0]
    assert result.jitter_window() == 2.0 and "2 ticks" in repr(result)
    assert "at most 3 retries in one tick" in repr(result)


# ------------------------------------------------------------------ scaling
@pytest.mark.slow
def test_io_scaling_four_workers_drain_faster(make_lab):
    lab = make_lab(workers=2)
    result = scaling(lab, workers=(1, 4), kind="io", duration=0.05)
    assert result.throughput[4] >= 2.5 * result.throughput[1], result
    assert result.runs[1].busy_workers == 4
    assert all(0.5 < e <= 1.05 for e in result.efficiency.values()), result
    assert lab.config.workers == 2 and len(lab.status()["workers"]) == 2  # restored


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call, match", [
    (lambda lab: latency(lab, duration=-1), "duration"),
    (lambda lab: latency(lab, clients=0), "clients"),
    (lambda lab: latency(lab, duration=30, clients=8, requests_per_client=100), "allowed"),
    (lambda lab: latency(lab, modes=("sideways",)), "modes"),
    (lambda lab: overhead(lab, n=0), "n="),
    (lambda lab: ordering(lab, workers=0), "workers"),
    (lambda lab: ordering(lab, n=500, workers=1, max_seconds=5), "allowed"),
    (lambda lab: ordering(lab, n=5, retried=5), "retried"),
    (lambda lab: retries(lab, fail_times=-1), "fail_times"),
    (lambda lab: retries(lab, backoff=0.5), "backoff"),
    (lambda lab: retries(lab, strategies=("fixed", "fixed")), "strategies"),
    (lambda lab: retries(lab, strategies=("jitter", "sideways")), "strategies"),
    (lambda lab: retries(lab, clients=0), "clients"),
    (lambda lab: retries(lab, clients=21), "clients"),
    (lambda lab: retries(lab, jitter=1.5), "jitter"),
    (lambda lab: retries(lab, seed=-1), "seed"),
    (lambda lab: retries(lab, fail_times=10, retry_delay=30, backoff=4,
                         strategies=("jitter",)), "allowed"),
    (lambda lab: scaling(lab, workers=(0, 2)), "workers"),
    (lambda lab: scaling(lab, kind="gpu"), "kind"),
    (lambda lab: scaling(lab, duration=-0.1), "duration"),
    (lambda lab: scaling(lab, tasks=5000, duration=5), "allowed"),
])
def test_bad_arguments_raise_value_error_with_the_range(lab, call, match):
    with pytest.raises(ValueError, match=match):
        call(lab)


# ------------------------------------------------------------------ interrupts
def _interrupt_when(predicate, timeout: float = 20.0) -> threading.Thread:
    """SIGINT this process (the notebook's Interrupt button) as soon as ``predicate()`` holds."""
    def fire() -> None:
        if procs.wait_until(predicate, timeout, interval=0.01):
            os.kill(os.getpid(), signal.SIGINT)
    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


def _load_processes() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "labapp.experiments._load" in " ".join(child.cmdline()):
                out.append(child)
        except psutil.Error:
            continue
    return out


def test_interrupted_latency_restores_web_pool_and_stops_clients(make_lab):
    lab = make_lab(workers=1, web_threads=4)
    watcher = _interrupt_when(lambda: bool(_load_processes()))
    with pytest.raises(KeyboardInterrupt):
        latency(lab, duration=0.5, clients=4, requests_per_client=20, web_threads=2)
    watcher.join(5)
    assert lab.config.web_threads == 4
    assert not _load_processes()
    with urllib.request.urlopen(f"{lab.url}api/hello", timeout=5) as resp:
        assert resp.status == 200
    assert lab.queue_length() == 0  # the experiment's leftovers were dropped


def test_interrupted_scaling_restores_workers(make_lab):
    lab = make_lab(workers=2)
    cursor = lab.cursor()
    watcher = _interrupt_when(lambda: any(e.kind == "executing" for e in lab.events(cursor)))
    with pytest.raises(KeyboardInterrupt):
        scaling(lab, workers=(4,), kind="io", duration=0.2, tasks=200)
    watcher.join(5)
    assert lab.config.workers == 2 and len(lab.status()["workers"]) == 2
    assert lab.queue_length() == 0
    assert lab.wait(lab.enqueue("noop"), timeout=10)
