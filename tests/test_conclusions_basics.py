"""Notebooks 01-03: each result states what its run showed, and opposite numbers flip it.

Pure tests: results are built from synthetic samples (no lab), the way a run would fill them,
once with the numbers the lesson expects and once with the opposite numbers.
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from matplotlib.colors import to_hex

from labapp.experiments.drain import DrainResult
from labapp.experiments.latency import LatencyResult
from labapp.experiments.latency import OverheadResult
from labapp.experiments.latency import RequestSample
from labapp.experiments.survival import ExtraWorkerResult
from labapp.experiments.survival import KillResult
from labapp.experiments.survival import StopResult
from labapp.experiments.survival import WhereResult
from labapp.plots import latency_key
from labapp.plots import plot_latency
from labapp.plots import plot_overhead
from labapp.plots import plot_queue_length
from labapp.plots import plot_survival
from labapp.plots import survival_key
from labapp.plots._style import colour_word

T0 = 1_700_000_000.0


# ----------------------------------------------------------------------------- latency (02)
def latency_result(*, inline: float, queued: float, probe: float | None, done: float,
                   clients: int = 8, threads: int = 2, d: float = 0.2) -> LatencyResult:
    reqs = []
    for c in range(clients):
        for s in range(3):
            reqs.append(RequestSample("hello", c, s, T0, 0.002, 200, None))
            reqs.append(RequestSample("inline", c, s, T0 + 1 + s, inline + 0.001 * c, 200, None))
            reqs.append(RequestSample("queued", c, s, T0 + 9 + s, queued, 202, f"id{c}{s}"))
    if probe is not None:
        reqs += [RequestSample("probe:inline", -1, s, T0 + 1 + s, probe, 200, None)
                 for s in range(5)]
    completions = tuple((f"id{c}{s}", T0 + 9 + s, T0 + 9 + s + done)
                        for c in range(clients) for s in range(3))
    return LatencyResult(d, clients, 3, threads, 2, tuple(reqs), completions)


def crowd(**kw):
    return latency_result(**{"inline": 0.8, "queued": 0.004, "probe": 0.7, "done": 1.3, **kw})


def test_crowd_run_teaches_that_everybody_waits_for_threads():
    r = crowd()
    text = " ".join(r.conclusions())
    assert r.teaches_crowd and r.waits_for_threads and r.others_wait
    assert "waiting for a free request thread" in text
    assert "made everybody wait" in text
    assert "as long as ever" in text
    assert r.closest([0.2, 0.8, 1.6]) == 0.8


def test_enough_threads_flip_the_thread_wait_sentence():
    r = crowd(inline=0.21, probe=0.003, clients=2, threads=2)
    text = " ".join(r.conclusions())
    assert not r.waits_for_threads and not r.teaches_crowd
    assert "hardly waited for a thread" in text and "enough threads" in text
    assert "did not hold it up" in text
    assert r.closest([0.2, 0.8, 1.6]) == 0.2


def test_a_queued_request_that_is_not_faster_is_said_so():
    r = crowd(queued=0.9)
    assert not r.queued_sooner and not r.teaches_crowd and not r.teaches_not_faster
    assert any("not clearly faster" in s for s in r.conclusions())


def test_tasks_done_sooner_than_the_work_do_not_teach_the_lesson():
    r = crowd(done=0.05)
    assert not r.work_not_faster and not r.teaches_not_faster
    assert not any("as long as ever" in s for s in r.conclusions())


def test_one_client_run_teaches_that_the_queue_answers_sooner():
    alone = latency_result(inline=0.2, queued=0.002, probe=None, done=0.4, clients=1)
    assert alone.teaches_alone
    slow = latency_result(inline=0.2, queued=0.15, probe=None, done=0.4, clients=1)
    assert not slow.teaches_alone


def test_probe_samples_are_listed_apart_from_the_modes():
    r = crowd()
    assert r.modes == ["hello", "inline", "queued"] and r.probes == ["inline"]
    assert "hello during inline" in [row["what"] for row in r.table()]


# ----------------------------------------------------------------------------- overhead (09)
def overhead_result(queue_ms: float) -> OverheadResult:
    n = 20
    return OverheadResult(0.001, {"inline": ((0.0011, 0.0011),) * n,
                                  "thread": ((0.0001, 0.0012),) * n,
                                  "queue": ((0.0004, queue_ms / 1e3),) * n})


def test_overhead_conclusion_flips_when_the_queue_is_not_slowest():
    slow = overhead_result(2.5)
    assert slow.teaches_overhead and "costs more than the work" in " ".join(slow.conclusions())
    fast = overhead_result(1.0)
    assert not fast.teaches_overhead and "was not the slowest" in " ".join(fast.conclusions())


# ----------------------------------------------------------------------------- plots: legend and words
def test_latency_legend_sits_below_the_axes_and_the_key_names_each_line_colour():
    r = crowd()
    fig = plot_latency(r)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 <= ax.get_window_extent().y0 + 1, "the legend must not cover the curves"
    key = latency_key(r)
    lines = [line for line in ax.get_lines() if line.get_label() and
             not line.get_label().startswith("_")]
    assert len(key) == len(lines)
    for words, line in zip(key, lines):
        assert words.startswith(colour_word(to_hex(line.get_color()).upper()))


def test_overhead_legend_sits_below_the_axes():
    fig = plot_overhead(overhead_result(2.5))
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent().y1 <= ax.get_window_extent().y0 + 1


def test_colour_words_are_what_a_learner_sees():
    assert colour_word("inline") == "red-orange"  # not "red": nb07 once called it that
    assert colour_word("queued") == "blue"
    assert colour_word("done") == "green"


# ----------------------------------------------------------------------------- drain (01)
def drain_result(*, workers=2, tasks=6, overlap=True, emptied=0.6, finished=None):
    d = 0.25
    runs = []
    for i in range(tasks):
        if overlap:
            start = 0.2 + (i // workers) * d
        else:  # one at a time, whatever the worker count
            start = 0.2 + i * d
        runs.append((start, start + d))
    finished = tasks if finished is None else finished
    runs = [(b, e if i < finished else float("nan")) for i, (b, e) in enumerate(runs)]
    samples = ((0.0, tasks), (min(0.3, emptied), max(0, tasks - workers)), (emptied, 0))
    return DrainResult(workers, tasks, tasks, samples, 0.15, tuple(runs))


def test_drain_teaches_n_at_a_time_and_empty_before_done():
    r = drain_result()
    text = " ".join(r.conclusions())
    assert r.teaches_lesson and r.max_running == 2
    assert "At most 2 tasks ran at the same moment with 2 workers." in text
    assert "not when it finishes" in text
    assert r.max_rate == pytest.approx(8.0)


def test_drain_with_idle_workers_or_lost_tasks_says_so():
    idle = drain_result(workers=3, overlap=False)
    assert not idle.teaches_lesson and idle.max_running == 1
    assert "some workers sat idle" in " ".join(idle.conclusions())
    late = drain_result(emptied=5.0)
    assert not late.teaches_lesson
    assert "before the queue was seen empty" in " ".join(late.conclusions())
    missing = drain_result(finished=4)
    assert not missing.teaches_lesson
    assert "2 of 6 tasks did not finish" in " ".join(missing.conclusions())


def test_drain_with_fewer_tasks_than_workers_says_some_had_nothing_to_do():
    r = drain_result(workers=8, tasks=5, emptied=0.2)
    text = " ".join(r.conclusions())
    assert r.teaches_lesson and r.max_running == 5
    assert "only 5 tasks for 8 workers, so 3 had nothing to do" in text
    assert r.max_rate == pytest.approx(20.0)  # 5 busy workers, 0.25 s tasks


def test_drain_plot_reads_the_result():
    r = drain_result()
    fig = plot_queue_length(r)
    assert "drained by 2 workers" in fig.axes[0].get_title()


# ----------------------------------------------------------------------------- 03: where, kill, stop, extra
def test_where_names_the_process_that_ran_the_tasks():
    ok = WhereResult((301, 302), 200, 100, (301, 302))
    assert ok.teaches_lesson and ok.where == "in separate worker processes"
    in_flask = WhereResult((200,), 200, 100, (301,))
    assert not in_flask.teaches_lesson and "inside the Flask app" in in_flask.conclusions()[0]
    here = WhereResult((100,), 200, 100, (301,))
    assert here.where == "in this notebook"


def _event(kind, task_id, worker, pid, t):
    return SimpleNamespace(kind=kind, task_id=task_id, worker=worker, pid=pid, time=T0 + t)


def kill_result(*, lost=True, replaced=True, answered=True):
    probes = tuple((T0 + 0.1 * i, (1.5 if answered or i < 6 else None), 200)
                   for i in range(20))
    evs = [_event("executing", "t1", "worker-1", 301, 0.3),
           _event("executing", "t2", "worker-2", 302, 0.3),
           _event("complete", "t2", "worker-2", 302, 0.8)]
    if not lost:
        evs.append(_event("complete", "t1", "worker-1", 301, 0.5))
    marks = {"worker killed": T0 + 0.55}
    if replaced:
        marks["replacement running"] = T0 + 1.2
    return KillResult(probes, tuple(evs), marks, ("t1", "t2"), "worker-1", 301,
                      401 if replaced else None, 0.65 if replaced else float("nan"),
                      ("t1",) if lost else (), ("t2",) if lost else ("t1", "t2"))


def test_kill_teaches_flask_survives_and_the_running_task_is_lost():
    r = kill_result()
    text = " ".join(r.conclusions())
    assert r.teaches_lesson
    assert "did not notice" in text and "0.65 s after the kill" in text
    assert "Task t1 was running on the killed worker and never finished" in text


def test_kill_without_loss_replacement_or_answers_says_so():
    r = kill_result(lost=False, replaced=False, answered=False)
    text = " ".join(r.conclusions())
    assert not r.teaches_lesson
    assert "No task was lost" in text and "No replacement worker" in text
    assert "answered 6 of" not in text and "of 14 requests" in text


def test_survival_plot_spans_only_the_experiment_and_the_key_matches_its_markers():
    r = kill_result()
    fig = plot_survival(r)
    ax = fig.axes[0]
    assert ax.get_xlim()[1] < 3, "the timeline spans the experiment, not the reading time"
    words = survival_key()
    for line in ax.get_lines():
        marker = line.get_marker()
        if line.get_linestyle() == "None" and marker in ("o", "x", "X"):
            colour = colour_word(to_hex(line.get_color()).upper())
            assert any(w.startswith(colour) for w in words), (marker, colour)
    assert not any(w.startswith("red ") for w in words)  # the cross is red-orange


def stop_result(*, done_while_down=True, stray=False, in_flight=False):
    down, up = T0 + 0.3, T0 + 1.6
    probes = [(T0 + 0.1 * i, (None if in_flight and i == 2 else 1.0), 200) for i in range(3)]
    probes += [(T0 + 0.35 + 0.1 * i, None, "ConnectionRefusedError") for i in range(12)]
    probes += [(T0 + 1.7 + 0.1 * i, (None if stray and i == 0 else 1.0), 201) for i in range(5)]
    when = 0.9 if done_while_down else 2.0
    evs = (_event("executing", "t1", "worker-1", 301, 0.3),
           _event("complete", "t1", "worker-1", 301, when))
    return StopResult(tuple(probes), evs, {"Flask stopped": down, "Flask restarted": up},
                      ("t1",), 200, 201)


def test_stop_teaches_workers_carry_on_without_flask():
    r = stop_result()
    text = " ".join(r.conclusions())
    assert r.teaches_lesson
    assert "12 of 12 requests sent meanwhile got no answer (ConnectionRefusedError)" in text
    assert "Meanwhile the workers completed 1 of 1 tasks" in text


def test_stop_without_work_done_or_with_stray_failures_says_so():
    idle = stop_result(done_while_down=False)
    assert not idle.teaches_lesson
    assert "No task completed while Flask was down" in " ".join(idle.conclusions())
    stray = stop_result(stray=True)
    assert not stray.teaches_lesson
    assert "outside that window" in " ".join(stray.conclusions())


def test_a_request_in_flight_at_the_stop_is_explained_not_stray():
    r = stop_result(in_flight=True)
    assert r.teaches_lesson and len(r.cut_off) == 1 and not r.stray
    assert "in flight when SIGTERM ended the process" in " ".join(r.conclusions())


def test_flask_killed_answers_07s_belief_2_from_the_tasks_done_while_it_was_down():
    killed = dataclasses.replace(stop_result(in_flight=True), signal_name="SIGKILL")
    text = " ".join(killed.conclusions())
    assert killed.answer == "run" and "was killed with SIGKILL and down for 1.30 s" in text
    assert "in flight when SIGKILL ended the process" in text
    assert stop_result().answer == "run" and "was stopped and down" in stop_result().conclusions()[0]
    assert stop_result(done_while_down=False).answer == "die"
    # Some done while it was down, one never completed: the run settles nothing.
    partial = dataclasses.replace(stop_result(), task_ids=("t1", "t2"))
    assert partial.completed == {"t1"} and partial.answer is None


def extra_result(*, together=0.82, shares=None):
    shares = {"vm-9/worker-1": 4, "worker-1": 4, "worker-2": 4} if shares is None else shares
    return ExtraWorkerResult("labapp worker …", 12, 0.2, 2, 9, ("vm-9/worker-1",), 1.22,
                             together, shares, 0)


def test_extra_worker_teaches_added_capacity():
    r = extra_result()
    assert r.teaches_lesson and r.extra_ran == 4
    assert "added capacity" in " ".join(r.conclusions())


def test_extra_worker_that_took_nothing_or_did_not_help_says_so():
    idle = extra_result(shares={"worker-1": 6, "worker-2": 6})
    assert not idle.teaches_lesson and "took no task" in " ".join(idle.conclusions())
    slow = extra_result(together=1.5)
    assert not slow.teaches_lesson and "not faster this time" in " ".join(slow.conclusions())
