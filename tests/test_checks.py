"""The exercise checks against a live lab: every solution passes, every wrong answer fails.

The solution of each exercise is taken from ``solutions/NN_*.ipynb`` (the answer cell: a
``%%writefile`` module or the learner's functions) and run through ``check()`` exactly as
a learner's notebook would. Each file in ``tests/data/wrong/`` is one wrong submission:

* ``exNN_<what>.py`` whose first lines are ``# exercise: <id>``, ``# mistake: <words>``
  and ``# expect: <part of the hint>``;
* ``tests/data/right/`` holds other correct answers the same way (``# answer: <words>``
  instead of mistake and expect): a check must not demand one particular solution;
* for exercises with a module (``ex02_app``, ``ex03_tasks``, ``ex04_app``, ``ex05_tasks``)
  the rest of the file is that module; otherwise it defines the learner's objects, run in
  a namespace holding ``lab``.

Real processes only: one lab for this module, real workers, real HTTP.
"""
from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from labapp import Lab
from labapp import checks
from labapp.checks import results
from labapp.checks import scaling
from labapp.checks._common import by_task
from labapp.events import Event
from labapp.grading import check
from labapp.stack import running_labs

ROOT = Path(__file__).resolve().parents[1]
WRONG = sorted((ROOT / "tests" / "data" / "wrong").glob("ex*.py"))
RIGHT = sorted((ROOT / "tests" / "data" / "right").glob("ex*.py"))
MODULES = {"ex02_report_endpoint": "ex02_app", "ex03_task_module": "ex03_tasks",
           "ex04_survive_deploy": "ex04_app", "ex05_retries": "ex05_tasks"}
# The learner objects each check takes, as the exercise's usage names them.
OBJECTS = {ex.id: re.findall(r"(\w+)=\w+", ex.usage) for ex in checks.EXERCISES.values()}


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory, run_root):
    """A lab and a notebook folder for learner modules, shared by this module's tests."""
    folder = tmp_path_factory.mktemp("learner")
    before_cwd, before_path = os.getcwd(), list(sys.path)
    before_env = os.environ.get("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # rewritten modules must never load stale .pyc
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    lab = Lab.start(workers=2, name="checks", run_root=run_root, quiet=True)
    try:
        yield lab, folder
    finally:
        lab.stop()
        os.chdir(before_cwd)
        sys.path[:] = before_path
        if before_env is None:
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        else:
            os.environ["PYTHONDONTWRITEBYTECODE"] = before_env
        from labapp.tasks import huey
        for name in set(MODULES.values()):
            for key, task_class in list(huey._registry._registry.items()):
                if key.startswith(f"{name}."):
                    huey._registry.unregister(task_class)
            sys.modules.pop(name, None)


def solution_source(ex_id: str) -> str:
    """The answer cell of ``ex_id``'s solution notebook, markers and ``%%writefile`` removed."""
    ex = checks.EXERCISES[ex_id]
    nb = nbformat.read(ROOT / "solutions" / f"{ex.notebook}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source)
    lines = [ln for ln in cell.source.splitlines() if "### " not in ln]
    if lines[0].startswith("%%writefile"):
        lines = lines[1:]
    return "\n".join(lines) + "\n"


def run_submission(lab, folder: Path, ex_id: str, source: str):
    """Run ``check(ex_id)`` on a submission as a learner's notebook would."""
    module = MODULES.get(ex_id)
    if module:
        shutil.rmtree(folder / "__pycache__", ignore_errors=True)
        (folder / f"{module}.py").write_text(source)
        importlib.invalidate_caches()
        if module != "ex04_app":  # the notebook loads task modules on the workers first
            try:
                lab.load_tasks(module)
            except Exception:  # noqa: BLE001 - a broken module: check() reports it
                pass
        return check(ex_id, lab=lab)
    namespace = {"lab": lab, "__name__": "__learner__"}
    exec(compile(source, f"<{ex_id} submission>", "exec"), namespace)
    return check(ex_id, lab=lab, **{name: namespace[name] for name in OBJECTS[ex_id]})


def header(path: Path) -> dict[str, str]:
    fields = {}
    for line in path.read_text().splitlines():
        m = re.match(r"# (exercise|mistake|expect|answer): (.*)", line)
        if not m:
            break
        fields[m.group(1)] = m.group(2).strip()
    return fields


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def no_leaked_processes(request):
    """Like conftest's: nothing a check starts may outlive it. This module's lab restarts its
    workers whenever a learner module is loaded, so the labs' current processes are allowed."""
    before = _descendants()
    yield
    allowed = set()
    for running in running_labs():
        for proc in (running.consumer, running.web, running.broker.proc):
            if proc is not None and psutil.pid_exists(proc.pid):
                allowed |= {proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(True))}
    still = [p for p in _descendants() - before - allowed if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not still, f"{request.node.nodeid} left processes running: {still}"


# --------------------------------------------------------------------------- the data
def test_every_exercise_has_three_wrong_submissions():
    kinds: dict[str, list[str]] = {}
    for path in WRONG:
        h = header(path)
        assert set(h) == {"exercise", "mistake", "expect"}, f"{path.name}: header incomplete"
        assert h["exercise"] in checks.EXERCISES, f"{path.name}: unknown exercise"
        kinds.setdefault(h["exercise"], []).append(path.name)
    assert set(kinds) == set(checks.EXERCISES)
    short = {ex: names for ex, names in kinds.items() if len(names) < 3}
    assert not short, f"fewer than three wrong submissions: {short}"


# Every exercise is tried with a constant or copied value, a way around the queue or the
# workers, and a plausible half-solution. Exercise 09's policy only ever sees the check's
# own measurements: there is no queue or worker in it to go around.
KINDS = {"constant": ("a constant", "a copied"), "bypass": ("bypass",),
         "half": ("half-solution",)}


@pytest.mark.parametrize("ex_id", list(checks.EXERCISES))
def test_wrong_submissions_cover_the_three_ways_to_pass_without_the_skill(ex_id):
    mistakes = [header(p)["mistake"] for p in WRONG if header(p)["exercise"] == ex_id]
    wanted = [k for k in KINDS if not (k == "bypass" and ex_id == "ex09_inline_or_queue")]
    missing = [k for k in wanted if not any(m.startswith(KINDS[k]) for m in mistakes)]
    assert not missing, f"{ex_id} has no wrong submission of kind {missing}"


def test_every_exercise_names_its_objects_and_notebook_section():
    for ex in checks.EXERCISES.values():
        nb = nbformat.read(ROOT / "solutions" / f"{ex.notebook}.ipynb", as_version=4)
        assert f"**Practises:** notebook {ex.notebook[:2]}" in nb.cells[0].source, ex.id
        for name in OBJECTS[ex.id]:
            assert name in solution_source(ex.id), f"{ex.id}: the solution defines no {name}"


# --------------------------------------------------------------------------- pure parts
def test_scaling_scenarios_keep_clear_of_whole_numbers():
    rand = checks._common.draw()
    for _ in range(500):
        rate, seconds = scaling._scenario(rand, scaling.JOB_SECONDS, 1.2, 15.8)
        load = rate * seconds
        assert 1.2 <= load <= 15.8 and 0.2 <= load % 1 <= 0.8
    live = {scaling._scenario(rand, scaling.LIVE_SECONDS, 1.2, 3.6) for _ in range(50)}
    assert len(live) > 10, "the live scenario is drawn, not fixed"


def _event(kind: str, t: float, task_id: str = "a") -> Event:
    return Event(id="0-0", kind=kind, task_id=task_id, task="charge", worker="worker-1", pid=1,
                 time=t, retries=0)


def test_retry_waits_are_read_from_failure_to_next_start():
    evs = [_event("enqueued", 0.0), _event("executing", 0.01), _event("error", 0.02),
           _event("scheduled", 0.03), _event("executing", 1.5), _event("error", 1.51),
           _event("executing", 4.5), _event("complete", 4.6)]
    assert [round(w, 2) for w in results._waits(evs)] == [1.48, 2.99]
    assert results._waits([_event("executing", 0), _event("complete", 1)]) == []
    assert list(by_task(evs + [_event("enqueued", 5, "b")])) == ["a", "b"]


def test_inline_or_queue_draws_every_kind_of_endpoint():
    rand = checks._common.draw()
    seen = set()
    for _ in range(50):
        drawn = checks.advanced._draw_endpoints(rand)
        kinds = {(task == "sleep", needed) for _, task, _, needed in drawn}
        assert {(True, False), (False, False), (True, True)} <= kinds
        assert len({name for name, *_ in drawn}) == 4
        seen.add(tuple(name for name, *_ in drawn))
    assert len(seen) > 10, "the endpoints are drawn, not fixed"


def test_a_dict_of_fixed_decisions_is_refused_at_once(clean_lab):
    result = check("ex09_inline_or_queue", lab=clean_lab,
                   decide={"price": "inline", "welcome_email": "queue", "audit_log": "inline"})
    assert not result and "write a function decide(measurement)" in result.hint


# --------------------------------------------------------------------------- live: solutions
# Every exercise's passing path runs with the fast tests too (ex05 takes ~10 s: its retries
# wait for Huey's 1 s scheduler ticks).
@pytest.mark.parametrize("ex_id", list(checks.EXERCISES))
def test_solution_passes(lab_dir, ex_id):
    lab, folder = lab_dir
    start = time.perf_counter()
    result = run_submission(lab, folder, ex_id, solution_source(ex_id))
    took = time.perf_counter() - start
    assert result.passed, result.hint
    assert result.details, "a passing check reports what it measured"
    print(f"{ex_id}: passed in {took:.1f} s: {result.summary}")


def test_a_check_draws_a_new_scenario_each_run(lab_dir):
    lab, folder = lab_dir
    runs = [run_submission(lab, folder, "ex07_end_to_end", solution_source("ex07_end_to_end"))
            for _ in range(2)]
    assert all(runs), [r.hint for r in runs]
    first, second = (r.details["trips"] for r in runs)
    assert [t["seconds"] for t in first] != [t["seconds"] for t in second]
    assert [t["backlog_s"] for t in first] != [t["backlog_s"] for t in second]


# Other right answers of the longer checks (> ~5 s each) run with the slow tests.
LONG = {"ex04_survive_deploy", "ex05_retries", "ex06_scaling"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow)
                                  if header(p)["exercise"] in LONG else p for p in RIGHT],
                         ids=lambda p: p.stem)
def test_other_right_answers_pass(lab_dir, path):
    lab, folder = lab_dir
    h = header(path)
    result = run_submission(lab, folder, h["exercise"], path.read_text())
    assert result.passed, f"{path.name} ({h['answer']}): {result.hint}"


# --------------------------------------------------------------------------- live: wrong answers
# A quick wrong answer per kind of check runs with the fast tests; the rest are slow.
FAST_WRONG = {"ex01_lab_queue", "ex03_parent_pid", "ex07_run_only", "ex08_call_local",
              "ex09_time_only", "ex05_no_retries", "ex04_thread"}


@pytest.mark.parametrize("path", [p if p.stem in FAST_WRONG else
                                  pytest.param(p, marks=pytest.mark.slow) for p in WRONG],
                         ids=lambda p: p.stem)
def test_wrong_submission_fails_with_a_pointed_hint(lab_dir, path):
    lab, folder = lab_dir
    h = header(path)
    start = time.perf_counter()
    result = run_submission(lab, folder, h["exercise"], path.read_text())
    took = time.perf_counter() - start
    assert not result.passed, f"{path.name} ({h['mistake']}) passed: {result.summary}"
    # "expect: A | B": the scenario is drawn at random, so either pointed hint may come first
    assert any(e.strip() in result.hint for e in h["expect"].split(" | ")), \
        f"{path.name}: hint was {result.hint!r}"
    print(f"{path.stem}: not yet in {took:.1f} s: {result.hint}")
