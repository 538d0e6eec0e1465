"""Exercises, self-checks and class grading, all on real kernels, labs, workers and sandboxes.

The notebook-executing tests are ``slow``: the solutions class must pass every check (with
``jobs=2`` and ``jobs=1`` alike), every generated exercise notebook must run to the end with
each check saying "not yet", grading ``tests/data/class`` must give the expected CSV, twice,
leaving nothing running, and ``tests/data/hostile`` (one notebook per known attack on the
grader, beside two honest classmates) must give each attack 0 with the status that names it.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from labapp import checks
from labapp import grader
from labapp import gradekernel
from labapp import grading
from labapp import sandbox
from labapp.grader import grade
from labapp.grading import CheckResult
from labapp.grading import MIME
from labapp.grading import build_exercises
from labapp.grading import check
from labapp.grading import strip_solutions

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
CLASS = ROOT / "tests" / "data" / "class"
HOSTILE = ROOT / "tests" / "data" / "hostile"
SANDBOXED = sandbox.availability()[0]
needs_sandbox = pytest.mark.skipif(not SANDBOXED, reason="no bubblewrap sandbox here: "
                                   "apt-get install bubblewrap")
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


def graded_processes(marker: str = "") -> list[psutil.Process]:
    """Live processes of a graded notebook: a sandbox uid, the grader's tag or ``marker``."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            uid = proc.uids().real
            mine = " ".join(proc.cmdline()).startswith(str(ROOT))  # not another checkout's
            if (sandbox.FIRST_UID <= uid < sandbox.FIRST_UID + 16
                    or (mine and grader.TOKEN_VAR in proc.environ())
                    or (marker and marker in " ".join(proc.cmdline()))
                    or (proc.name() == "bwrap" and proc.ppid() == os.getpid())):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def grader_folders() -> set[str]:
    return set(glob.glob(os.path.join(grader._short_tmp(), grader.TMP_PREFIX + "*")))


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


@pytest.fixture(scope="module")
def solutions_graded(tmp_path_factory):
    """The solutions class (one notebook per exercise) graded two at a time."""
    out = tmp_path_factory.mktemp("solutions") / "grades.csv"
    grades = grade(ROOT / "solutions", out=out, timeout=NOTEBOOK_TIMEOUT, progress=None, jobs=2)
    return {"out": out, "grades": grades}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_solutions_class_passes_every_check(solutions_graded):
    failed = {g.student: g.hints for g in solutions_graded["grades"] if g.score != 1}
    assert not failed, failed
    assert all(g.status == "ok" for g in solutions_graded["grades"])
    runs = grader.runs_folder(solutions_graded["out"])
    assert len(list(runs.glob("*/*.ipynb"))) == len(SOLUTIONS), "executed notebooks are kept"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_solutions_class_grades_the_same_one_at_a_time(solutions_graded, tmp_path):
    grade(ROOT / "solutions", out=tmp_path / "one.csv", timeout=NOTEBOOK_TIMEOUT, progress=None,
          jobs=1)
    assert (tmp_path / "one.csv").read_text() == solutions_graded["out"].read_text()


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
    assert shown[1][0]["data"]["text/plain"].startswith("✓ ex06_scaling passed")
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
@pytest.mark.timeout(300)
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
    assert "still running cell 5" in by_student["dave"].notes[0]
    assert "after 20 s (an endless loop?)" in by_student["dave"].notes[0]
    assert "runs read missing data" in by_student["dave"].hints["ex08_race"], "checked after all"
    assert "the kernel died in cell 4" in by_student["erin"].hints["ex03_task_module"]
    assert "sleep 600" in by_student["frank"].hints["ex03_task_module"]
    assert "run_pair is not defined yet" in by_student["frank"].hints["ex08_race"]
    for g in first_grading["grades"]:
        for ex, hint in g.hints.items():
            assert hint in report, f"{g.student}/{ex} hint missing from the report"
    assert "All exercises passed." in report.split("## alice")[1].split("##")[0]


@pytest.mark.slow
def test_grade_class_writes_the_class_predictions(first_grading):
    assert (first_grading["out"].parent / "misconceptions.md").exists()
    assert (first_grading["out"].parent / "misconceptions.png").exists()


def test_grade_reads_predictions_from_the_notebooks_as_submitted(tmp_path):
    from labapp import predictions
    subs = ROOT / "tests" / "data" / "predictions_class" / "submissions"
    notebooks = sorted(subs.rglob("*.ipynb"))
    lines: list[str] = []
    grader._class_predictions(subs, notebooks, tmp_path / "graded", False, lines.append)
    direct = predictions.write_report(notebooks, tmp_path / "direct", root=subs)
    assert (tmp_path / "graded" / "misconceptions.md").read_text() == direct.markdown.read_text()
    assert "misconceptions.md" in lines[-1] and "nb07.myth1" in direct.markdown.read_text()


# --------------------------------------------------------------------------- bookkeeping
def test_same_student_twice_is_an_error_before_grading(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    shutil.copy(CLASS / "alice.ipynb", subs / "alice.ipynb")
    shutil.copy(CLASS / "bob.ipynb", subs / "alice")
    with pytest.raises(ValueError, match=r"alice/ and alice.ipynb would both be student .alice."):
        grade(subs, out=tmp_path / "g.csv")
    assert not (tmp_path / "g.csv").exists()


def test_csv_escapes_formulas(tmp_path):
    rows = [grader.StudentGrade(name, {"ex01_pending_jobs": 0}, {}, [], [])
            for name in ("=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", "\tx", "ann")]
    grader.write_csv(tmp_path / "g.csv", rows, ["ex01_pending_jobs"])
    names = [row["student"] for row in read_csv(tmp_path / "g.csv")]
    assert names == ["'=HYPERLINK(\"http://x\")", "'+1", "'-1", "'@SUM(A1)", "'\tx", "ann"]
    assert [p.name for p in tmp_path.iterdir()] == ["g.csv"], "no temporary file left"


def test_grading_does_not_import_the_grader():
    code = "import labapp.grading, sys; print('labapp.grader' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert "grader" not in {n.split(".")[-1] for n in grading.__dict__ if not n.startswith("_")}


def test_grade_help_explains_out():
    from labapp.cli import build_parser
    sub = build_parser()._subparsers._group_actions[0].choices["grade"]
    text = sub.format_help()
    assert "--out OUT" in text and "one row per student" in text and "--fresh" in text


def test_signed_records_need_the_key():
    key = b"k" * 32
    record = gradekernel.sign(key, {"nonce": "n", "results": {"ex01": {"passed": True}}})
    assert gradekernel.verify(key, record)["results"]["ex01"]["passed"] is True
    assert gradekernel.verify(b"x" * 32, record) is None
    forged = json.loads(json.dumps(record))
    forged["payload"]["results"]["ex01"]["passed"] = False
    assert gradekernel.verify(key, forged) is None
    assert gradekernel.verify(key, {"payload": {}, "mac": 3}) is None


def test_snapshot_sees_a_patched_check_helper(monkeypatch):
    import labapp.checks._common as common
    before = gradekernel.snapshot()
    assert gradekernel.changes(before) == []
    monkeypatch.setattr(common, "call", lambda label, fn, *args: None)
    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)
    assert {"labapp.checks._common.call", "time.perf_counter"} <= set(gradekernel.changes(before))


def test_sandbox_can_be_forced_off(monkeypatch):
    monkeypatch.setenv(sandbox.ENV_VAR, "off")
    assert sandbox.availability() == (False, "LAB_GRADE_SANDBOX=off")


def test_invalid_submissions_are_saved_and_resumed(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "corrupt.ipynb").write_text('{"cells": [')
    (subs / "=cmd.txt").write_text("not a notebook")
    lines: list[str] = []
    grade(subs, out=tmp_path / "g.csv", progress=lines.append)
    saved = sorted(p.name for p in grader.runs_folder(tmp_path / "g.csv").glob("*.json"))
    assert len(saved) == 2
    lines.clear()
    grade(subs, out=tmp_path / "g.csv", progress=lines.append)
    assert sum("graded before: kept" in line for line in lines) == 2
    (subs / "corrupt.ipynb").write_text('{"cells": [ ')  # a changed file is graded again
    lines.clear()
    grade(subs, out=tmp_path / "g.csv", progress=lines.append)
    assert sum("graded before: kept" in line for line in lines) == 1
    assert "'=cmd.txt,invalid" in (tmp_path / "g.csv").read_text()


# --------------------------------------------------------------------------- the sandbox
SANDBOX_PROBE = """
import json, os, socket, sys
from labapp import gradeexec, sandbox
gradeexec.set_limits(sandbox.LIMITS)
seen = {"uid": os.getuid(), "submissions": os.path.exists(sys.argv[1]),
        "tests": os.path.exists(sys.argv[2]), "pids": len(os.listdir("/proc"))}
try:
    socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    seen["host_redis"] = True
except OSError:
    seen["host_redis"] = False
try:
    open(sys.argv[3], "w").write("x")
    seen["wrote_repo"] = True
except OSError:
    seen["wrote_repo"] = False
try:
    seen["allocated_5gib"] = len(bytearray(5 * 2**30)) > 0
except MemoryError:
    seen["allocated_5gib"] = False
children = 0
try:
    while children < 2000:
        if os.fork() == 0:
            import time; time.sleep(30); os._exit(0)
        children += 1
except OSError:
    pass
seen["children"] = children
print(json.dumps(seen))
"""


@needs_sandbox
def test_sandbox_hides_the_host_and_limits_processes(tmp_path):
    cmd = sandbox.command([sys.executable, "-c", SANDBOX_PROBE, str(CLASS), str(ROOT / "tests"),
                           str(ROOT / "labapp" / "grading.py")], slot=15)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["submissions"] is False and seen["tests"] is False
    assert seen["host_redis"] is False, "the sandbox reached the host's 127.0.0.1"
    assert seen["wrote_repo"] is False
    assert seen["allocated_5gib"] is False, "the address-space limit holds"
    assert 0 < seen["children"] < sandbox.LIMITS["nproc"]
    if os.geteuid() == 0:
        assert seen["uid"] == sandbox.FIRST_UID + 15
    assert not graded_processes(), "the forked children died with the sandbox"


def _hostile_class(tmp_path: Path) -> dict[str, Path]:
    """The hostile class with the real paths of this run written into the attacks."""
    subs, outputs = tmp_path / "submissions", tmp_path / "outputs"
    subs.mkdir()
    outputs.mkdir()
    paths = {"subs": subs, "out": outputs / "grades.csv", "canary": tmp_path / "canary"}
    for nb in HOSTILE.glob("*.ipynb"):
        text = nb.read_text()
        for name, value in (("SUBMISSIONS", subs), ("OUT", paths["out"]),
                            ("CANARY", paths["canary"]), ("ROOT", ROOT)):
            text = text.replace(f"@@{name}@@", str(value))
        (subs / nb.name).write_text(text)
    return paths


def _digests(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


EXPECTED_HOSTILE = {  # student: (status, score)
    "alice": ("ok", 2), "carol": ("ok", 1),
    "forger": ("ok", 0), "patcher": ("tampered", 0), "overwriter": ("ok", 0),
    "daemon": ("leaked processes", 0), "forkloop": ("timeout", 0),
    "parentkill": ("killed its grader", 0), "flood": ("output truncated", 0),
}


@pytest.mark.slow
@needs_sandbox
@pytest.mark.timeout(600)
def test_hostile_class_each_attack_scores_zero(tmp_path):
    paths = _hostile_class(tmp_path)
    before = _digests(paths["subs"], ROOT / "labapp", ROOT / "tests" / "data")
    grades = grade(paths["subs"], out=paths["out"], timeout=CLASS_TIMEOUT, progress=None, jobs=2)
    left = graded_processes(marker="qlg-hostile")
    assert not left, [p.cmdline() for p in left]
    got = {g.student: (g.status, g.score) for g in grades}
    assert got == EXPECTED_HOSTILE
    assert _digests(paths["subs"], ROOT / "labapp", ROOT / "tests" / "data") == before
    assert not paths["canary"].exists()
    rows = {row["student"]: row for row in read_csv(paths["out"])}
    assert rows["alice"]["score"] == "2" and rows["daemon"]["score"] == "0"
    report = paths["out"].with_suffix(".md").read_text()
    assert "dropped" in report and "killed the process that ran it" in report
    assert "labapp.grading._run_check" in report
    assert sorted(p.name for p in paths["out"].parent.iterdir()) == [
        "grades.csv", "grades.md", "grades.runs", "misconceptions.md", "misconceptions.png"]
    flood = next(grader.runs_folder(paths["out"]).glob("flood-*/*.ipynb"))
    assert flood.stat().st_size < 2 * grader.MAX_OUTPUT


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_without_a_sandbox_grading_still_works_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(sandbox.ENV_VAR, "off")
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("alice", "patcher", "parentkill", "daemon"):
        shutil.copy(HOSTILE / f"{name}.ipynb", subs)
    lines: list[str] = []
    grades = grade(subs, out=tmp_path / "g.csv", timeout=CLASS_TIMEOUT, progress=lines.append,
                   jobs=2)
    assert lines[0].startswith("isolation is reduced (LAB_GRADE_SANDBOX=off)")
    assert {g.student: (g.status, g.score) for g in grades} == {
        "alice": ("ok", 2), "patcher": ("tampered", 0), "parentkill": ("killed its grader", 0),
        "daemon": ("leaked processes", 0)}
    assert "isolation is reduced" in (tmp_path / "g.md").read_text()
    assert not graded_processes(marker="qlg-hostile")


def test_doctor_says_when_there_is_no_sandbox(tmp_path):
    env = {**os.environ, sandbox.ENV_VAR: "off"}
    done = subprocess.run([sys.executable, "-m", "labapp", "--run-root", str(tmp_path), "doctor"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert "note: no grading sandbox (LAB_GRADE_SANDBOX=off)" in done.stdout
    assert "apt-get install bubblewrap" in done.stdout


def test_snapshot_sees_methods_added_to_classes_and_objects(monkeypatch):
    from labapp import tasks
    before = gradekernel.snapshot()
    monkeypatch.setattr(type(tasks.huey), "enqueue", lambda self, task: None, raising=False)
    monkeypatch.setattr(tasks.huey, "dequeue", lambda: None)
    found = set(gradekernel.changes(before))
    assert {f"labapp.tasks.{type(tasks.huey).__name__}.enqueue", "labapp.tasks.huey.dequeue"} <= found
