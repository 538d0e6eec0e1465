"""Notebook 04's conclusions come from the numbers: synthetic results flip them.

Pure tests (no lab): the tools comparison, Flask's after-response hooks and the thread
shortcut, each with the usual numbers and with the opposite ones.
"""
import math
import subprocess
import sys

import pytest

from labapp import compare
from labapp.compare.minimal import bare
from labapp.compare.runner import setup_lines
from labapp.experiments.after_response import AfterResponseResult
from labapp.experiments.after_response import Hook
from labapp.experiments.after_response import ThreadRestartResult
from labapp.experiments.tools import ToolRun
from labapp.experiments.tools import ToolsResult


def drain(rate, n=101, start=100.0):
    """Finish times of ``n`` tasks at ``rate`` per second."""
    return [start + i / rate for i in range(n)]


def run(tool, rate, bare_rate=None, sleep_rate=19.5):
    return ToolRun(tool=tool, command=["x"], setup_lines=10, queued=101, startup_s=0.2,
                   enqueue_s=[0.0002] * 5, noop_done=drain(rate), sleep_seconds=0.05,
                   sleep_done=drain(sleep_rate, 10),
                   bare=None if bare_rate is None else {"rate": bare_rate})


def result(rates, bare_rates=None, sleep_rates=None, rq_worker="fork"):
    bare_rates = bare_rates or rates
    sleep_rates = sleep_rates or {t: 19.5 for t in rates}
    runs = {t: run(t, r, bare_rates.get(t), sleep_rates[t]) for t, r in rates.items()}
    return ToolsResult(n={t: 101 for t in rates}, window=1.0, sleep_tasks=10, sleep_seconds=0.05,
                       rq_worker=rq_worker, runs=runs, cpus=2)


USUAL = {"huey": 3000.0, "rq": 90.0, "celery": 800.0}


def test_pace_is_the_median_of_ten_slices_so_one_stall_does_not_decide():
    done = drain(1000, 1001)
    assert bare.pace(done) == pytest.approx(1000, rel=1e-6)
    stalled = done[:500] + [t + 0.5 for t in done[500:]]  # half a second lost in one slice
    assert bare.pace(stalled) == pytest.approx(1000, rel=1e-6)
    assert (len(stalled) - 1) / (stalled[-1] - stalled[0]) < 700  # the plain average would drop
    assert math.isnan(bare.pace([1.0]))


def test_usual_numbers_give_the_usual_ranking_on_fair_figures():
    r = result(USUAL, {t: v * 1.1 for t, v in USUAL.items()})
    assert r.ranking == ["huey", "celery", "rq"]
    assert r.fair and r.teaches_lesson and r.winner == "huey"
    text = " ".join(r.conclusions())
    assert "huey (3,000/s), celery (800/s), rq (90/s)" in text
    assert "agrees within 20%" in text
    assert "fork per job" in text
    assert "not the usual order" not in text


def test_opposite_ranking_is_reported_as_such():
    r = result({"huey": 90.0, "rq": 3000.0, "celery": 800.0})
    assert r.ranking == ["rq", "celery", "huey"]
    assert not r.teaches_lesson
    assert "not the usual order" in " ".join(r.conclusions())


def test_disagreeing_bare_figures_make_the_run_untrusted():
    r = result(USUAL, {"huey": 3000.0, "rq": 45.0, "celery": 800.0})
    assert r.runs["rq"].agreement == pytest.approx(2.0)
    assert not r.runs["rq"].agrees and not r.fair
    assert r.teaches_lesson and r.winner == "huey"  # the ranking stands, the figures are doubted
    text = " ".join(r.conclusions())
    assert "did not agree" in text and "rq (45/s, the lab 200% of it)" in text
    assert "rank the tools the same way" in text and "do not trust" not in text
    assert "agrees within" not in text


def test_bare_ranking_that_differs_is_said():
    r = result(USUAL, {"huey": 3000.0, "rq": 90.0, "celery": 3300.0})
    assert r.bare_ranking == ["celery", "huey", "rq"]
    assert r.winner is None  # the lab and the plain script disagree on the fastest
    assert "do not trust this ranking" in " ".join(r.conclusions())
    close = result({"huey": 3000.0, "rq": 90.0, "celery": 2900.0},
                   {"huey": 3000.0, "rq": 90.0, "celery": 3050.0})
    assert close.fair and "ranked them differently" in " ".join(close.conclusions())


def test_slow_sleep_throughput_flips_the_overhead_sentence():
    little = " ".join(result(USUAL).conclusions())
    assert "matters little" in little
    much = " ".join(result(USUAL, sleep_rates={"huey": 19.5, "rq": 9.0,
                                                "celery": 19.0}).conclusions())
    assert "still dominates" in much and "45%" in much
    some = " ".join(result(USUAL, sleep_rates={"huey": 19.5, "rq": 15.0,
                                                "celery": 19.0}).conclusions())
    assert "task's own time dominates" in some and "75%" in some


def test_simple_worker_is_named_when_measured():
    r = result({"rq": 300.0}, rq_worker="simple")
    assert "SimpleWorker" in " ".join(r.conclusions()) and "SimpleWorker" in repr(r)
    assert not r.teaches_lesson  # one tool ranks nothing


def hooks(after_client, after_next, close_client, close_next, thread_client=0.01,
          thread_next=0.01):
    return {"after_this_request": Hook("after_this_request", 1.0, [after_client] * 2, after_next),
            "call_on_close": Hook("call_on_close", 1.0, [close_client] * 2, close_next),
            "thread": Hook("thread", 1.0, [thread_client] * 2, thread_next)}


def test_hooks_that_hold_the_thread_say_flask_has_no_queue():
    r = AfterResponseResult("3.1", 148, [], hooks(1.0, 0.01, 0.01, 1.0))
    assert r.flask_has_queue is False and r.teaches_lesson
    text = " ".join(r.conclusions())
    assert "the client waited 1.00 s" in text and "the next request waited 1.00 s" in text
    assert "kept a request thread busy" in text


def test_a_hook_that_frees_the_thread_flips_the_answer():
    r = AfterResponseResult("3.1", 148, [], hooks(1.0, 0.01, 0.01, 0.02))
    assert r.hooks["call_on_close"].holds_thread is False
    assert r.flask_has_queue is True and not r.teaches_lesson
    assert "a built-in freed the request thread" in " ".join(r.conclusions())


def test_a_queue_like_name_in_flask_flips_the_answer():
    r = AfterResponseResult("9.0", 150, ["Flask.task_queue"], hooks(1.0, 0.01, 0.01, 1.0))
    assert r.flask_has_queue is True
    assert "Flask.task_queue" in r.conclusions()[0]


def test_a_thread_that_held_the_server_is_reported():
    r = AfterResponseResult("3.1", 148, [], hooks(1.0, 0.0, 0.0, 1.0, thread_next=0.9))
    assert not r.teaches_lesson
    assert "not this time" in " ".join(r.conclusions())


def test_no_hooks_measured_settles_nothing():
    assert AfterResponseResult("3.1", 148, [], {}).flask_has_queue is None


def test_thread_restart_loss_and_its_opposite():
    lost = ThreadRestartResult(5, 1.0, 5, 0, 5)
    assert lost.teaches_lesson and "lost 5 without a trace" in repr(lost)
    kept = ThreadRestartResult(5, 1.0, 5, 5, 5)
    assert not kept.teaches_lesson and "lost nothing this time" in repr(kept)
    queue_lost = ThreadRestartResult(5, 1.0, 5, 0, 3)
    assert not queue_lost.teaches_lesson and "3 of 5 sent" in repr(queue_lost)


@pytest.mark.parametrize("tool", compare.TOOLS)
def test_setup_modules_import_nothing_of_the_lab(tool):
    path = compare.setup_path(tool)
    text = path.read_text()
    assert "labapp" not in text
    assert 4 <= setup_lines(path) <= 15
    # Importing it in a fresh interpreter (as the worker does) loads no labapp module.
    code = (f"import sys; sys.path.insert(0, {str(compare.MINIMAL)!r}); import {tool}_tasks; "
            "print(sorted(m for m in sys.modules if m.startswith('labapp')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"REDIS_URL": compare.redis_url(tool, "/nonexistent.sock"),
                              "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip() == "[]"


def test_bare_script_imports_nothing_of_the_lab_and_has_help():
    assert "labapp" not in (compare.MINIMAL / "bare.py").read_text().split('"""', 2)[2]
    out = subprocess.run([sys.executable, str(compare.MINIMAL / "bare.py"), "--help"],
                         capture_output=True, text=True, check=True)
    assert "fill the queue" in out.stdout and "--window" in out.stdout


def test_worker_commands_are_the_tools_own():
    assert bare.worker("huey")[1:4] == ["-m", "huey.bin.huey_consumer", "huey_tasks.huey"]
    assert "rq.Worker" in bare.worker("rq", url="unix:///x?db=1")
    assert "rq.SimpleWorker" in bare.worker("rq", "simple", url="unix:///x?db=1")
    celery = bare.worker("celery")
    assert celery[celery.index("-c") + 1] == "1" and "--pool" not in celery  # default prefork


def test_the_notebooks_thread_app_is_the_one_the_benchmark_runs():
    import nbformat

    from labapp.experiments.after_response import THREAD_APP

    nb = nbformat.read(compare.MINIMAL.parents[2] / "notebooks" / "04_tools.ipynb", as_version=4)
    (cell,) = [c.source for c in nb.cells if c.source.startswith("%%writefile thread_app.py")]
    assert cell.split("\n", 1)[1].strip() == THREAD_APP.strip()


def test_emails_missing_without_a_restart_point_at_the_app():
    broken = ThreadRestartResult(5, 1.0, 2, 0, 5, waited_s=4.5)
    assert not broken.teaches_lesson
    text = repr(broken)
    assert "3 never arrived" in text and "waited 4.5 s" in text


def test_repr_marks_what_was_not_measured():
    r = result({"rq": 300.0}, rq_worker="simple")
    r.runs["rq"].bare, r.runs["rq"].sleep_done, r.sleep_tasks = None, [], 0
    text = repr(r)
    assert "nan" not in text and "–" in text and "sleep(" not in text.splitlines()[0]


def test_one_tool_off_its_reference_says_so_without_a_ranking():
    r = result({"rq": 300.0}, {"rq": 500.0}, rq_worker="simple")
    text = " ".join(r.conclusions())
    assert "the lab 60% of it" in text and "run it again" in text and "rank" not in text
