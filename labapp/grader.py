"""Grading a class: every submission runs in a fresh kernel with its own lab.

Scores come from the check records the kernel publishes (see :mod:`labapp.grading`), never
from the code's text. Outputs a submission arrived with are wiped before it runs, so only
checks that ran here count. A notebook that loops past its timeout, kills its kernel, raises
or leaves processes behind gets 0 for the exercises it did not pass, with the reason.

Isolation per notebook: a new temporary folder as the kernel's working directory (learner
modules written with ``%%writefile`` never leak between students), its own lab run root
(``LAB_RUN_DIR``), a tag in the kernel's environment (``LAB_GRADE_TOKEN``) that every process
it starts inherits, so anything still alive after the kernel stopped can be found and killed.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import nbformat
import psutil

from labapp import checks
from labapp import grading
from labapp import procs
from labapp.runstate import cleanup_stale

logger = logging.getLogger(__name__)

TOKEN_VAR = "LAB_GRADE_TOKEN"
LAB_COMMANDS = ("valkey-server", "huey_consumer", "labapp.web")
# The teacher's own lab settings must not change how submissions run.
CLEAN_ENV = ("REDIS_URL", "LAB_WORKERS", "LAB_WORKER_TYPE", "LAB_WEB_THREADS", "LAB_RUN_DIR")
SKIP_NAMES = {".ipynb_checkpoints", "__pycache__"}
KERNEL_START_TIMEOUT = 60
SWEEP_WAIT = 5.0


@dataclasses.dataclass
class NotebookRun:
    """The outcome of executing one submitted notebook."""

    name: str
    exercises: list[str]
    records: dict[str, dict[str, Any]]
    problem: str = ""    #: "", "invalid", "timeout", "kernel died", "error", "leaked processes"
    reason: str = ""
    cell_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)  #: "cell N: Name: message"
    seconds: float = 0.0
    notebook: Any = dataclasses.field(default=None, repr=False)  #: the executed notebook


@dataclasses.dataclass
class StudentGrade:
    """One student's row: a 0/1 score per exercise and, for each 0, the reason."""

    student: str
    scores: dict[str, int]
    hints: dict[str, str]
    problems: list[str]
    notes: list[str]

    @property
    def score(self) -> int:
        """Exercises passed."""
        return sum(self.scores.values())

    @property
    def status(self) -> str:
        """``ok``, or what went wrong with the submission (``timeout``, ``kernel died``, ...)."""
        return "; ".join(sorted(set(self.problems))) or "ok"


# --------------------------------------------------------------------------- finding work
def find_submissions(path: Path, skip: set[Path]) -> list[tuple[str, list[Path], str]]:
    """(student, notebooks, reason-if-invalid) for each submission under ``path``, by name."""
    if path.is_file():
        return [(path.stem, [path], "")]
    found = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or entry.name in SKIP_NAMES or entry.resolve() in skip:
            continue
        if entry.is_dir():
            notebooks = sorted(p for p in entry.rglob("*.ipynb")
                               if not SKIP_NAMES.intersection(p.relative_to(entry).parts))
            found.append((entry.name, notebooks,
                          "" if notebooks else f"the folder {entry.name}/ holds no .ipynb file"))
        elif entry.suffix == ".ipynb":
            found.append((entry.stem, [entry], ""))
        else:
            found.append((entry.name, [], f"{entry.name} is not a notebook (.ipynb)"))
    return found


# --------------------------------------------------------------------------- one notebook
def _short_tmp() -> str:
    # Lab sockets live under the run root and unix socket paths are limited to ~100 bytes.
    return "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()


def _tagged(token: str) -> list[psutil.Process]:
    me = os.getpid()
    out = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if (proc.pid != me and proc.status() != psutil.STATUS_ZOMBIE
                    and proc.environ().get(TOKEN_VAR) == token):
                out.append(proc)
        except psutil.Error:
            continue
    return out


def sweep(run_root: Path, token: str) -> list[str]:
    """Kill everything a graded kernel left running; describe leftovers that were not lab parts."""
    cleanup_stale(run_root)
    # Lab processes die with their kernel by signal, which takes a moment to arrive.
    procs.wait_until(lambda: not _tagged(token), SWEEP_WAIT, max_interval=0.2)
    leaked = []
    for proc in _tagged(token):
        try:
            command = " ".join(proc.cmdline())
            proc.kill()
        except psutil.Error:
            continue
        if any(part in command for part in LAB_COMMANDS):
            logger.warning("killed lab process %s that outlived its graded kernel", proc.pid)
        else:
            leaked.append(f"pid {proc.pid}: {command[:60]}")
    return leaked


def _errors(nb: Any) -> tuple[dict[str, str], list[str]]:
    """Errors raised by check cells (by exercise id), and every error output of the notebook."""
    by_exercise, every = {}, []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}"[:200]
                every.append(f"cell {index + 1}: {text}")
                for ex_id in grading.CHECK_CALL.findall(cell.source):
                    by_exercise[ex_id] = text
    return by_exercise, every


def run_notebook(path: Path, timeout: float) -> NotebookRun:
    """Execute ``path`` in a fresh kernel, lab and folder; collect its check records."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    start = time.monotonic()
    try:
        with warnings.catch_warnings():  # old-format notes (e.g. missing cell ids) are harmless
            warnings.simplefilter("ignore")
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - JSON, schema and encoding errors alike
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        return NotebookRun(path.name, [], {}, "invalid",
                           f"{path.name} is not a valid notebook ({first})")
    expected = grading.exercise_ids(nb)
    for cell in nb.cells:  # only checks that run here may count
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    work = Path(tempfile.mkdtemp(prefix="qlg-", dir=_short_tmp()))
    (work / "nb").mkdir()
    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update({"LAB_RUN_DIR": str(work / "run"), "LAB_AUTO_PREDICT": "1", TOKEN_VAR: token})
    state: dict[str, Any] = {"cell": None, "deadline": None}

    def cell_timeout(cell: Any) -> int:
        # One budget for the whole notebook, counted from its first cell.
        if state["deadline"] is None:
            state["deadline"] = time.monotonic() + timeout
        return max(1, math.ceil(state["deadline"] - time.monotonic()))

    def on_cell_execute(cell: Any, cell_index: int, **_: Any) -> None:
        state["cell"] = cell_index

    client = NotebookClient(
        nb, kernel_name="python3", timeout_func=cell_timeout, allow_errors=True,
        shutdown_kernel="immediate", startup_timeout=KERNEL_START_TIMEOUT, record_timing=False,
        on_cell_execute=on_cell_execute, resources={"metadata": {"path": str(work / "nb")}})
    problem = reason = ""

    def where() -> str:
        if state["cell"] is None:
            return "the kernel's startup"
        first = (nb.cells[state["cell"]].source.strip().splitlines() or [""])[0][:40]
        return f"cell {state['cell'] + 1} ({first})"

    log_path = work / "kernel.log"
    try:
        with open(log_path, "wb") as log:
            client.execute(env=env, stdout=log, stderr=log)
    except CellTimeoutError:
        problem, reason = "timeout", f"still running {where()} after {timeout:g} s (an endless loop?)"
    except DeadKernelError:
        problem, reason = "kernel died", (f"the kernel died in {where()} (os._exit, a crash or "
                                          "running out of memory)")
    except Exception as exc:  # noqa: BLE001 - kernel start failures and the like
        problem, reason = "error", f"could not run ({type(exc).__name__}: {exc})"[:200]
    finally:
        leaked = sweep(work / "run", token)
        shutil.rmtree(work, ignore_errors=True)
    if leaked:
        problem = "leaked processes"
        reason = (f"left {len(leaked)} process(es) running after its kernel stopped "
                  f"({leaked[0]}): stop everything the notebook starts")
    records = grading.read_records(nb)
    expected += [ex for ex in records if ex in checks.EXERCISES and ex not in expected]
    return NotebookRun(path.name, expected, records, problem, reason, *_errors(nb),
                       seconds=time.monotonic() - start, notebook=nb)


# --------------------------------------------------------------------------- scoring
def _why_missing(run: NotebookRun, ex_id: str) -> str:
    if ex_id in run.cell_errors:
        return f"the check cell raised {run.cell_errors[ex_id]}"
    if run.problem:
        return f"the check did not run: {run.reason}"
    return f"check({ex_id!r}) produced no result: keep the check cell as given and run it"


def score_student(student: str, runs: list[NotebookRun], columns: list[str]) -> StudentGrade:
    """Combine a student's notebook runs into one row (an exercise passes if any run passed it)."""
    scores = {ex: 0 for ex in columns}
    hints: dict[str, str] = {}
    problems, notes = [], []
    for run in runs:
        if run.problem:
            problems.append(run.problem)
            notes.append(f"{run.name}: {run.reason}")
        for ex in run.exercises:
            record = run.records.get(ex)
            if record is None:
                hint = _why_missing(run, ex)
            elif record.get("passed") is not True:
                hint = str(record.get("hint") or record.get("summary") or "not yet")
            elif run.problem == "leaked processes":  # a pass that cost a stray process
                hint = f"passed, but not counted: the notebook {run.reason}"
            else:
                scores[ex] = 1
                continue
            hints.setdefault(ex, hint)
    for ex in columns:
        if scores[ex]:
            hints.pop(ex, None)
        elif ex not in hints:
            hints[ex] = "not submitted"
    return StudentGrade(student, scores, hints, problems, notes)


def write_csv(out: Path, grades: list[StudentGrade], columns: list[str]) -> None:
    """One row per student: name, status, score, max_score, then 0/1 per exercise."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["student", "status", "score", "max_score", *columns])
        for g in grades:
            writer.writerow([g.student, g.status, g.score, len(columns),
                             *(g.scores[ex] for ex in columns)])


def write_report(report: Path, grades: list[StudentGrade], columns: list[str], source: Path,
                 timeout: float) -> None:
    """A Markdown summary table, then every student's failures with their hints."""
    lines = [f"# Grades for {source.name}", "",
             f"{len(grades)} students · {len(columns)} exercises ({', '.join(columns) or 'none'})"
             f" · {timeout:g} s per notebook", "",
             "| student | score | status |", "|---|---|---|"]
    lines += [f"| {g.student} | {g.score}/{len(columns)} | {g.status} |" for g in grades]
    for g in grades:
        lines += ["", f"## {g.student}: {g.score}/{len(columns)}", ""]
        lines += [f"- **{note.split(':', 1)[0]}**:{note.split(':', 1)[1]}" for note in g.notes]
        failed = [ex for ex in columns if not g.scores[ex]]
        if not failed and not g.notes:
            lines.append("All exercises passed.")
        lines += [f"- `{ex}`: {g.hints[ex]}" for ex in failed]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n")


def grade_class(path: Path, out: Path, timeout: float, report: Path,
                progress: Callable[[str], Any], jobs: int = 1) -> list[StudentGrade]:
    """The work behind :func:`labapp.grading.grade` (which documents it)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: give a folder of submissions "
                                "(one .ipynb or one folder per student) or one notebook")
    if path.is_file() and path.suffix != ".ipynb":
        raise ValueError(f"{path} is not a notebook (.ipynb) or a folder of submissions")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    submissions = find_submissions(path, {out.resolve(), report.resolve()})
    if not submissions:
        raise ValueError(f"{path} holds no submissions: put one .ipynb or one folder per "
                         "student in it")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 16:
        raise ValueError(f"jobs={jobs!r} must be a whole number from 1 to 16")

    def run_student(k: int, student: str, notebooks: list[Path], invalid: str) -> list[NotebookRun]:
        progress(f"student {k} of {len(submissions)}: {student} "
                 f"({len(notebooks)} notebook{'s' if len(notebooks) != 1 else ''})")
        if invalid:
            return [NotebookRun(student, [], {}, "invalid", invalid)]
        done = [run_notebook(nb, timeout) for nb in notebooks]
        passed = sum(1 for r in done for rec in r.records.values() if rec.get("passed") is True)
        problems = "; ".join(r.problem for r in done if r.problem) or "ok"
        progress(f"  {student}: {passed} check(s) passed · {problems} · "
                 f"{sum(r.seconds for r in done):.1f} s")
        return done

    # Each notebook has its own kernel, lab and folder, so they may run side by side.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {s[0]: pool.submit(run_student, k, *s) for k, s in enumerate(submissions, 1)}
        runs = {student: future.result() for student, future in futures.items()}
    order = list(checks.EXERCISES)
    columns = sorted({ex for rs in runs.values() for r in rs for ex in r.exercises},
                     key=order.index)
    grades = [score_student(student, runs[student], columns) for student in runs]
    write_csv(out, grades, columns)
    write_report(report, grades, columns, path, timeout)
    progress(f"wrote {out} and {report}")
    return grades
