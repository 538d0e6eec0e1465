"""Exercises, self-checks and class grading, all on real kernels, labs and workers.

The notebook-executing tests are ``slow``: every solution notebook must pass all its checks,
every generated exercise notebook must run to the end with each check saying "not yet", and
grading ``tests/data/class`` must give the expected CSV, twice, leaving nothing running.
"""
from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from labapp import checks
from labapp import grader
from labapp import grading
from labapp.grading import CheckResult
from labapp.grading import MIME
from labapp.grading import build_exercises
from labapp.grading import check
from labapp.grading import grade
from labapp.grading import strip_solutions

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
CLASS = ROOT / "tests" / "data" / "class"
NOTEBOOK_TIMEOUT = 45.0   # the notebook contract: each runs top to bottom in <= 45 s
CLASS_TIMEOUT = 20.0      # short, because dave's notebook loops until it runs out
EXPECTED_CLASS_CSV = """\
student,status,score,max_score,ex03_task_module,ex08_race
alice,ok,2,2,1,1
bob,ok,0,2,0,0
carol,ok,1,2,1,0
dave,timeout,1,2,1,0
erin,kernel died,0,2,0,0
frank,leaked processes,0,2,0,0
"""


def graded_processes() -> list[psutil.Process]:
    """Live processes started by a graded kernel (they carry the grader's environment tag)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if (proc.status() != psutil.STATUS_ZOMBIE
                    and grader.TOKEN_VAR in proc.environ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def grader_folders() -> set[str]:
    return set(glob.glob(os.path.join(grader._short_tmp(), "qlg-*")))


# --------------------------------------------------------------------------- layout
def test_one_exercise_per_curriculum_notebook():
    prefixes = [p.name[:2] for p in SOLUTIONS]
    assert prefixes == [f"{n:02d}" for n in range(1, 10)]
    stems = {p.stem for p in SOLUTIONS}
    for ex in checks.EXERCISES.values():
        assert ex.notebook in stems, f"{ex.id} names a missing notebook {ex.notebook}"
    for path in SOLUTIONS:
        assert grading.exercise_ids(nbformat.read(path, as_version=4)), f"{path.name} checks nothing"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_notebook_follows_the_contract(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "Lab.start(" in code[0].source and "from labapp" in code[0].source
    assert code[-1].source.strip() == "lab.stop()"
    assert all(not c.outputs and c.execution_count is None for c in code), "commit without outputs"
    answer = [c for c in code if "### BEGIN SOLUTION" in c.source]
    assert answer and all("# Your code here" in c.source for c in answer)
    after = code[code.index(answer[-1]) + 1:]
    assert any(grading.CHECK_CALL.search(c.source) for c in after), "a check follows the answer"


def test_exercises_are_in_sync_with_solutions(tmp_path):
    build_exercises(ROOT / "solutions", tmp_path)
    built = {p.name: p.read_bytes() for p in tmp_path.glob("*.ipynb")}
    committed = {p.name: p.read_bytes() for p in EXERCISES}
    assert built.keys() == committed.keys(), "run build_exercises() to regenerate exercises/"
    stale = [name for name in built if built[name] != committed[name]]
    assert not stale, f"exercises/ differs from solutions/ for {stale}: run build_exercises()"


def test_exercises_hold_no_solution():
    for path in EXERCISES:
        assert "SOLUTION" not in path.read_text()
        nb = nbformat.read(path, as_version=4)
        assert all(not c.outputs for c in nb.cells if c.cell_type == "code")
        stubs = [c for c in nb.cells if c.cell_type == "code" and (
            "NotImplementedError" in c.source or c.source.rstrip().endswith("...")
            or "= ..." in c.source)]
        assert stubs, f"{path.name} has no stub"


# --------------------------------------------------------------------------- build
def test_strip_solutions_stubs_by_place():
    inside = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    assert strip_solutions(inside) == ('def f():\n    raise NotImplementedError("your code here")'
                                       "\n")
    assigned = "x = 1\n### BEGIN SOLUTION\nfor i in range(3):\n    pass\nWORKERS: int = 3\n" \
               "### END SOLUTION"
    assert strip_solutions(assigned) == "x = 1\nWORKERS = ..."
    assert strip_solutions("### BEGIN SOLUTION\nprint(1)\n### END SOLUTION") == "..."
    assert strip_solutions("no markers\n") == "no markers\n"


@pytest.mark.parametrize("source", [
    "### BEGIN SOLUTION\nx = 1\n",
    "x = 1\n### END SOLUTION\n",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
])
def test_strip_solutions_rejects_unbalanced_markers(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        strip_solutions(source, "nb cell 3")


def test_build_exercises_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        build_exercises(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match="no .ipynb"):
        build_exercises(tmp_path, tmp_path / "out")
    (tmp_path / "01_bad.ipynb").write_text("{ not json")
    with pytest.raises(ValueError, match="01_bad.ipynb is not a valid notebook"):
        build_exercises(tmp_path, tmp_path / "out")


def test_build_exercises_removes_stale_files(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    shutil.copy(SOLUTIONS[0], src)
    dst.mkdir()
    (dst / "99_gone.ipynb").write_text("{}")
    assert [p.name for p in build_exercises(src, dst)] == [SOLUTIONS[0].name]
    assert sorted(p.name for p in dst.iterdir()) == [SOLUTIONS[0].name]


# --------------------------------------------------------------------------- check()
def test_check_result_is_bool_like():
    ok = CheckResult("ex01_pending_jobs", True, "counted 7 jobs", {"counts": [7]})
    no = CheckResult("ex01_pending_jobs", False, "returned 0 while 7 jobs were waiting")
    assert ok and not no
    assert ok.hint == "" and no.hint.startswith("returned 0")
    assert "passed" in str(ok) and "not yet" in str(no)
    assert "passed=False" in repr(no) and "returned 0" in repr(no)
    assert json.loads(json.dumps(ok.record()))["details"] == {"counts": [7]}


def test_check_unknown_exercise(capsys):
    result = check("ex5_retries")
    assert not result and "there is no exercise 'ex5_retries'" in result.hint
    assert "ex05_retries" in result.hint
    assert "not yet" in capsys.readouterr().out


def test_check_needs_a_running_lab(make_lab):
    lab = make_lab(workers=0)
    lab.stop()
    result = check("ex08_race", lab=lab, run_pair=lambda lab, key: None)
    assert not result and "Lab.start()" in result.hint


def _stub(lab, key):
    raise NotImplementedError("your code here")


@pytest.mark.parametrize("kwargs, hint", [
    ({}, 'check("ex08_race", run_pair=run_pair)'),
    ({"run_pair": ...}, "not defined yet"),
    ({"run_pair": 3}, "should be a function"),
    ({"run_pair": _stub}, "still raises NotImplementedError"),
    ({"run_pair": lambda lab, key: 1 / 0}, "raised ZeroDivisionError: division by zero"),
    ({"pairs": _stub}, 'call it as check("ex08_race", run_pair=run_pair)'),
])
def test_check_turns_unsolved_work_into_hints(clean_lab, kwargs, hint):
    result = check("ex08_race", lab=clean_lab, **kwargs)
    assert not result.passed
    assert hint in result.hint


# What each check measures, with its solution and wrong submissions: tests/test_checks.py.


# --------------------------------------------------------------------------- grade(): input
def test_grade_rejects_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        grade(tmp_path / "nowhere", out=tmp_path / "g.csv")
    essay = tmp_path / "essay.txt"
    essay.write_text("hello")
    with pytest.raises(ValueError, match="is not a notebook"):
        grade(essay, out=tmp_path / "g.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no submissions"):
        grade(empty, out=tmp_path / "g.csv")
    with pytest.raises(ValueError, match="timeout"):
        grade(CLASS, out=tmp_path / "g.csv", timeout=0)
    with pytest.raises(ValueError, match="jobs"):
        grade(CLASS, out=tmp_path / "g.csv", jobs=0)
    assert not (tmp_path / "g.csv").exists()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_grade_marks_bad_submissions_invalid_and_grades_the_rest(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "corrupt.ipynb").write_text('{"cells": [')
    (subs / "notes.txt").write_text("not a notebook")
    shutil.copy(ROOT / "exercises" / "06_scaling_and_monitoring.ipynb", subs / "gina.ipynb")
    (subs / "hank").mkdir()
    shutil.copy(SOLUTIONS[0], subs / "hank")
    (subs / "hank" / "readme.md").write_text("my work")
    (subs / "ivan").mkdir()
    lines: list[str] = []
    grades = grade(subs, out=tmp_path / "g.csv", timeout=NOTEBOOK_TIMEOUT, progress=lines.append)
    assert [g.student for g in grades] == ["corrupt", "gina", "hank", "ivan", "notes.txt"]
    assert (tmp_path / "g.csv").read_text() == (
        "student,status,score,max_score,ex01_pending_jobs,ex06_scaling\n"
        "corrupt,invalid,0,2,0,0\n"
        "gina,ok,0,2,0,0\n"
        "hank,ok,1,2,1,0\n"
        "ivan,invalid,0,2,0,0\n"
        "notes.txt,invalid,0,2,0,0\n")
    report = (tmp_path / "g.md").read_text()
    assert "corrupt.ipynb is not a valid notebook" in report
    assert "notes.txt is not a notebook" in report
    assert "the folder ivan/ holds no .ipynb file" in report
    assert "still raises NotImplementedError" in report and "not submitted" in report
    assert [line for line in lines if line.startswith("student ")] == [
        f"student {k} of 5: {name}" + suffix for k, (name, suffix) in enumerate(
            [("corrupt", " (1 notebook)"), ("gina", " (1 notebook)"), ("hank", " (1 notebook)"),
             ("ivan", " (0 notebooks)"), ("notes.txt", " (0 notebooks)")], 1)]


# --------------------------------------------------------------------------- notebooks
def _records_of_a_clean_run(path):
    """Run ``path`` like the grader; it must finish without errors and record every check."""
    run = grader.run_notebook(path, NOTEBOOK_TIMEOUT)
    assert not run.problem, run.reason
    assert not run.errors, run.errors
    assert run.exercises and set(run.records) == set(run.exercises)
    return run.records


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_notebook_passes_its_checks(path):
    records = _records_of_a_clean_run(path)
    failed = {ex: r["hint"] for ex, r in records.items() if not r["passed"]}
    assert not failed, failed


@pytest.mark.slow
@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_notebook_runs_to_the_end_saying_not_yet(path):
    for ex, record in _records_of_a_clean_run(path).items():
        assert record["passed"] is False, f"{ex} passes without a solution"
        assert record["hint"], f"{ex} gives no hint"


@pytest.mark.slow
def test_check_shows_one_line_per_call(tmp_path):
    nb = nbformat.read(ROOT / "exercises" / "06_scaling_and_monitoring.ipynb", as_version=4)
    nb.cells.insert(-2, nbformat.v4.new_code_cell(
        'result = check("ex06_scaling", workers_needed=lambda rate, s: int(rate * s) + 1)'))
    nb.cells.insert(-2, nbformat.v4.new_code_cell("result"))
    from nbclient import NotebookClient
    NotebookClient(nb, kernel_name="python3", timeout=NOTEBOOK_TIMEOUT,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    check_cells = [c for c in nb.cells if c.source.startswith(("check(", "result"))]
    shown = [[o for o in c.outputs if o.output_type in ("display_data", "execute_result")]
             for c in check_cells]
    assert [len(outputs) for outputs in shown] == [1, 1, 1]
    assert MIME in shown[0][0]["data"] and MIME in shown[1][0]["data"]
    assert MIME not in shown[2][0]["data"], "showing a result again records nothing new"
    assert shown[1][0]["data"]["text/plain"].startswith("✅ ex06_scaling passed")
    assert shown[2][0]["data"]["text/plain"] == shown[1][0]["data"]["text/plain"]


# --------------------------------------------------------------------------- grade(): a class
@pytest.fixture(scope="module")
def first_grading(tmp_path_factory):
    """Grade the test class once (2 kernels side by side); later tests read the outcome."""
    out = tmp_path_factory.mktemp("grades") / "grades.csv"
    folders = grader_folders()
    lines: list[str] = []
    start = time.monotonic()
    grades = grade(CLASS, out=out, timeout=CLASS_TIMEOUT, progress=lines.append, jobs=2)
    return {"out": out, "grades": grades, "lines": lines, "took": time.monotonic() - start,
            "new_folders": grader_folders() - folders, "left": graded_processes()}


@pytest.mark.slow
def test_grade_class_gives_the_expected_csv(first_grading):
    assert first_grading["out"].read_text() == EXPECTED_CLASS_CSV
    # Six notebooks, two at a time: the endless loop costs one timeout, the rest a few seconds.
    assert first_grading["took"] < 3 * CLASS_TIMEOUT + 30
    assert not first_grading["left"], "graded kernels left processes running"
    assert not first_grading["new_folders"], "grader folders were not removed"
    lines = first_grading["lines"]
    assert sorted(line for line in lines if line.startswith("student ")) == [
        f"student {k} of 6: {name} (1 notebook)"
        for k, name in enumerate(["alice", "bob", "carol", "dave", "erin", "frank"], 1)]


@pytest.mark.slow
def test_grade_class_report_explains_every_failure(first_grading):
    report = first_grading["out"].with_suffix(".md").read_text()
    by_student = {g.student: g for g in first_grading["grades"]}
    assert "NotImplementedError (still the stub)" in by_student["bob"].hints["ex03_task_module"]
    assert "runs read missing data" in by_student["carol"].hints["ex08_race"]
    assert "after 20 s (an endless loop?)" in by_student["dave"].hints["ex08_race"]
    assert "the kernel died in cell 4" in by_student["erin"].hints["ex03_task_module"]
    assert "sleep 600" in by_student["frank"].hints["ex03_task_module"]
    assert "NameError" in by_student["frank"].hints["ex08_race"]
    for g in first_grading["grades"]:
        for ex, hint in g.hints.items():
            assert hint in report, f"{g.student}/{ex} hint missing from the report"
    assert "All exercises passed." in report.split("## alice")[1].split("##")[0]


@pytest.mark.slow
def test_grading_twice_gives_the_same_scores(first_grading, tmp_path):
    grade(CLASS, out=tmp_path / "again.csv", timeout=CLASS_TIMEOUT, progress=None, jobs=2)
    assert (tmp_path / "again.csv").read_text() == first_grading["out"].read_text()
    assert not graded_processes()
