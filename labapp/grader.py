"""Grading a class: every submission runs in its own sandbox, fresh kernel and lab.

Scores come only from the grader's own checks: after the learner's cells, the kernel runs one
extra cell that checks every exercise the notebook contains and displays a record signed with a
key made for that run (see :mod:`labapp.gradekernel`); the records the learner's cells display
never count. Each notebook runs in a bubblewrap sandbox (:mod:`labapp.sandbox`) driven by
:mod:`labapp.gradeexec`: a notebook that loops past its timeout, kills its kernel or its
grader, floods output, forks or leaves processes behind affects only its own row, whose status
names what happened. Each student's result is saved as soon as it is known (a re-run with the
same ``--out`` resumes), and the CSV and the report are written atomically, outside every
sandbox.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import nbformat
import psutil

from labapp import checks
from labapp import gradeexec
from labapp import gradekernel
from labapp import grading
from labapp import sandbox

logger = logging.getLogger(__name__)

TOKEN_VAR = "LAB_GRADE_TOKEN"
TMP_PREFIX = "qlg-grade-"     #: the grader's own folder per notebook run (removed after it)
# The teacher's own lab settings must not change how submissions run.
CLEAN_ENV = ("REDIS_URL", "LAB_WORKERS", "LAB_WORKER_TYPE", "LAB_WEB_THREADS", "LAB_RUN_DIR",
             "LAB_NAME", "LAB_ROLE")
SKIP_NAMES = {".ipynb_checkpoints", "__pycache__"}
MAX_OUTPUT = 1_000_000        #: bytes of output kept per notebook
MAX_NOTEBOOK = 20_000_000     #: a submitted notebook larger than this is invalid
STARTUP_GRACE = 90.0          #: seconds for the sandbox, kernel and lab to start and stop
#: Statuses a notebook run can end with (besides ``ok``), most serious first.
STATUSES = ("invalid", "killed its grader", "kernel died", "timeout", "tampered", "error",
            "leaked processes", "output truncated")


@dataclasses.dataclass
class NotebookRun:
    """The outcome of grading one submitted notebook."""

    name: str
    exercises: list[str]
    results: dict[str, dict[str, Any]]   #: the grader's own check results, by exercise
    problem: str = ""    #: "" or one of :data:`STATUSES`
    reason: str = ""
    errors: list[str] = dataclasses.field(default_factory=list)  #: "cell N: Name: message"
    seconds: float = 0.0
    notebook: Any = dataclasses.field(default=None, repr=False)  #: executed, outputs capped
    sandboxed: bool = False

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """The grader's results by exercise (the same as :attr:`results`)."""
        return self.results


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
    """(student, notebooks, reason-if-invalid) for each submission under ``path``, by name.

    :raises ValueError: two entries would be the same student (``alice.ipynb`` and ``alice/``).
    """
    if path.is_file():
        return [(path.stem, [path], "")]
    found, seen = [], {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or entry.name in SKIP_NAMES or entry.resolve() in skip:
            continue
        if entry.is_dir():
            notebooks = sorted(p for p in entry.rglob("*.ipynb")
                               if not SKIP_NAMES.intersection(p.relative_to(entry).parts))
            item = (entry.name, notebooks,
                    "" if notebooks else f"the folder {entry.name}/ holds no .ipynb file")
        elif entry.suffix == ".ipynb":
            item = (entry.stem, [entry], "")
        else:
            item = (entry.name, [], f"{entry.name} is not a notebook (.ipynb)")
        shown = entry.name + ("/" if entry.is_dir() else "")
        if item[0] in seen:
            raise ValueError(f"{seen[item[0]]} and {shown} would both be student {item[0]!r}: "
                             "rename one of them (or move the notebook into the folder), "
                             "then grade again")
        seen[item[0]] = shown
        found.append(item)
    return found


# --------------------------------------------------------------------------- one notebook
class _Tail:
    """Reads a pipe to the end in a thread, keeping only its last ``keep`` bytes."""

    def __init__(self, pipe: Any, keep: int) -> None:
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size, self.keep, self.total = 0, keep, 0
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe: Any) -> None:
        for chunk in iter(lambda: pipe.read1(1 << 16), b""):
            self.chunks.append(chunk)
            self.size += len(chunk)
            self.total += len(chunk)
            while self.size - len(self.chunks[0]) >= self.keep:
                self.size -= len(self.chunks.popleft())
        pipe.close()

    def text(self, timeout: float = 10.0) -> str:
        self.thread.join(timeout)
        return b"".join(self.chunks).decode("utf-8", "replace")


def _tagged(token: str) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if (proc.pid != os.getpid() and proc.status() != psutil.STATUS_ZOMBIE
                    and proc.environ().get(TOKEN_VAR) == token):
                out.append(proc)
        except psutil.Error:
            continue
    return out


def _kill(proc: subprocess.Popen[bytes], token: str) -> None:
    """End a run: its process group (and, without a sandbox, everything carrying its token)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    for leftover in _tagged(token) if token else []:
        try:
            leftover.kill()
        except psutil.Error:
            pass


def _errors(nb: Any) -> list[str]:
    """Every error output of the executed notebook, as "cell N: Name: message"."""
    every = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                every.append(f"cell {index + 1}: {output.get('ename')}: "
                             f"{output.get('evalue')}"[:200])
    return every


def _where(nb: Any, index: Any) -> str:
    if not isinstance(index, int) or not 0 <= index < len(nb.cells):
        return "the kernel's startup"
    first = (nb.cells[index].source.strip().splitlines() or [""])[0][:40]
    return f"cell {index + 1} ({first})"


def read_submission(path: Path) -> Any:
    """The notebook at ``path`` with its outputs wiped; raises ValueError when invalid."""
    if path.stat().st_size > MAX_NOTEBOOK:
        raise ValueError(f"{path.name} is larger than {MAX_NOTEBOOK // 10**6} MB")
    try:
        with warnings.catch_warnings():  # old-format notes (e.g. missing cell ids) are harmless
            warnings.simplefilter("ignore")
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - JSON, schema and encoding errors alike
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path.name} is not a valid notebook ({first})") from None
    for cell in nb.cells:  # only checks that run here may count
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def run_notebook(path: Path, timeout: float, slot: int = 0, sandboxed: bool | None = None,
                 check_timeout: float = gradeexec.CHECK_TIMEOUT) -> NotebookRun:
    """Run ``path`` in its own sandbox (when possible), then the grader's checks on it.

    :param slot: the job slot (parallel runs use different slots).
    :param sandboxed: force the sandbox on or off (default: on when available).
    """
    start = time.monotonic()
    try:
        nb = read_submission(path)
    except ValueError as exc:
        return NotebookRun(path.name, [], {}, "invalid", str(exc))
    expected = grading.exercise_ids(nb)
    if sandboxed is None:
        sandboxed = sandbox.availability()[0]
    key, nonce, token = secrets.token_bytes(32), secrets.token_hex(8), uuid.uuid4().hex
    host = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=_short_tmp()))
    submission = host / "submission.ipynb"
    nbformat.write(nb, submission)
    settings: dict[str, Any] = {"exercises": expected, "nonce": nonce, "timeout": timeout,
                                "check_timeout": check_timeout, "max_output": MAX_OUTPUT}
    proc = _start_runner(settings, host, key, token, sandboxed, slot)
    out = _Tail(proc.stdout, 4 * MAX_OUTPUT + 2 * MAX_NOTEBOOK)
    err = _Tail(proc.stderr, 4000)
    limit = timeout + check_timeout + STARTUP_GRACE
    killed = False
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        killed = True
    finally:
        _kill(proc, "" if sandboxed else token)
        proc.wait()
    result = _result(out.text())
    stderr = err.text().strip()
    shutil.rmtree(host, ignore_errors=True)
    run = NotebookRun(path.name, expected, {}, seconds=time.monotonic() - start, notebook=nb,
                      sandboxed=bool(sandboxed))
    if result is None:
        run.problem, run.reason = _why_no_result(killed, limit, proc.returncode, stderr)
        return run
    return _judge(run, result, key, nonce, timeout)


def _start_runner(settings: dict[str, Any], host: Path, key: bytes, token: str,
                  sandboxed: bool, slot: int) -> subprocess.Popen[bytes]:
    """Start ``labapp.gradeexec`` on ``host/submission.ipynb``: in the sandbox, or else as
    this user without the lab's settings (``CLEAN_ENV``) and with process limits. The key
    that signs check results reaches it through an inherited pipe (sandbox) or a 0600 file,
    never on its command line."""
    argv = [sys.executable, "-m", "labapp.gradeexec"]
    submission = host / "submission.ipynb"
    key_read, key_write = os.pipe()
    try:
        if sandboxed:
            os.write(key_write, key)
            settings.update(work=sandbox.INSIDE, notebook=f"{sandbox.INSIDE}/submission.ipynb",
                            key=sandbox.KEY, token="", limits=sandbox.LIMITS,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                 "LANG": "C.UTF-8"})
            cmd = sandbox.command(argv + [json.dumps(settings)], slot,
                                  files={sandbox.KEY: key_read},
                                  binds={f"{sandbox.INSIDE}/submission.ipynb": str(submission)})
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        else:
            (host / "key").write_bytes(key)
            (host / "key").chmod(0o600)
            env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
            env[TOKEN_VAR] = token
            settings.update(work=str(host / "work"), notebook=str(submission),
                            key=str(host / "key"), token=token, limits=_fallback_limits(),
                            env=env)
            cmd = argv + [json.dumps(settings)]
        os.close(key_write)
        key_write = -1
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, start_new_session=True,
                                pass_fds=(key_read,) if sandboxed else (), cwd=host)
    finally:
        os.close(key_read)
        if key_write >= 0:
            os.close(key_write)


def _why_no_result(killed: bool, limit: float, returncode: int | None,
                   stderr: str) -> tuple[str, str]:
    """``(problem, reason)`` of a run that printed no signed result."""
    if killed:
        return "timeout", f"still running after {limit:g} s: stopped"
    if returncode and returncode < 0 or returncode in (137, 143):
        return "killed its grader", (
            "the notebook killed the process that ran it (e.g. os.kill(os.getppid(), 9))")
    last = (stderr.splitlines() or [f"exit status {returncode}"])[-1][:200]
    return "error", f"the run ended without a result ({last})"


def _fallback_limits() -> dict[str, int]:
    """Without a sandbox the notebook shares your uid: cap its processes above what runs now."""
    tasks = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        try:
            if proc.info["uids"] and proc.info["uids"].real == os.getuid():
                tasks += proc.info["num_threads"] or 1
        except psutil.Error:
            continue
    limits = dict(sandbox.LIMITS)
    limits["nproc"] = tasks + 2 * sandbox.LIMITS["nproc"]
    return limits


def _short_tmp() -> str:
    # Lab sockets live under the run root and unix socket paths are limited to ~100 bytes.
    return "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()


def _result(stdout: str) -> dict[str, Any] | None:
    """The runner's last result line, or None."""
    for line in reversed(stdout.split("\n")):
        if line.startswith(gradeexec.RESULT_PREFIX):
            try:
                value = json.loads(line[len(gradeexec.RESULT_PREFIX):])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _judge(run: NotebookRun, result: dict[str, Any], key: bytes, nonce: str,
           timeout: float) -> NotebookRun:
    """Fill ``run`` from the runner's result: status, notebook, and the signed check results."""
    try:
        nb = nbformat.from_dict(result.get("notebook"))
        if nb.get("cells") is not None:
            run.notebook = nb
    except Exception:  # noqa: BLE001 - a mangled notebook only loses the teacher's view
        pass
    run.errors = _errors(run.notebook) if run.notebook is not None else []
    status = result.get("status") or ""
    if status == "timeout":
        where = _where(run.notebook, result.get("cell"))
        run.problem = "timeout"
        run.reason = f"still running {where} after {timeout:g} s (an endless loop?)"
    elif status == "kernel died":
        run.problem, run.reason = "kernel died", (
            f"the kernel died in {_where(run.notebook, result.get('cell'))} (os._exit, a crash "
            "or running out of memory)")
    elif status == "error":
        run.problem, run.reason = "error", f"could not run ({result.get('error', '?')})"[:200]
    payloads = [p for p in (gradekernel.verify(key, r) for r in result.get("records") or [])
                if p is not None and p.get("nonce") == nonce]
    if payloads:
        run.results = {ex: r for ex, r in (payloads[0].get("results") or {}).items()
                       if isinstance(r, dict)}
        tampered = payloads[0].get("tampered") or []
        if tampered and not run.problem:
            run.problem, run.reason = "tampered", (
                f"the notebook changed the grader's code ({', '.join(map(str, tampered[:3]))}):"
                " nothing it did counts")
    elif not run.problem:
        failed = "; ".join(map(str, result.get("final_errors") or []))[:200]
        run.problem, run.reason = "error", ("the grader's check cell gave no valid record ("
                                            + (failed or "did the notebook change "
                                               "labapp.gradekernel?") + ")")
    if not run.problem and result.get("leaked"):
        leaked = result["leaked"]
        run.problem, run.reason = "leaked processes", (
            f"left {len(leaked)} process(es) running after its kernel stopped ({leaked[0]}): "
            "stop everything the notebook starts")
    if not run.problem and result.get("dropped_bytes"):
        run.problem, run.reason = "output truncated", (
            f"printed more than {MAX_OUTPUT // 1000} kB; the grader dropped "
            f"{int(result['dropped_bytes']) // 1000} kB of output (the checks still ran)")
    return run


# --------------------------------------------------------------------------- scoring
def _why_missing(run: NotebookRun, ex_id: str) -> str:
    if run.problem:
        return f"the check did not run: {run.reason}"
    return f"check({ex_id!r}) produced no result: keep the check cell as given and run it"


def score_student(student: str, runs: list[NotebookRun], columns: list[str]) -> StudentGrade:
    """Combine a student's notebook runs into one row (an exercise passes if any run passed it).

    Only the grader's own results count (after a timeout too: the grader interrupts the
    learner's cell and still checks), and none from a run that died, killed its grader,
    changed the grader's code or left processes behind.
    """
    scores = {ex: 0 for ex in columns}
    hints: dict[str, str] = {}
    problems, notes = [], []
    for run in runs:
        if run.problem:
            problems.append(run.problem)
            notes.append(f"{run.name}: {run.reason}")
        counts = run.problem in ("", "output truncated", "timeout")  # checks ran afterwards
        for ex in run.exercises:
            result = run.results.get(ex)
            if result is None:
                hint = _why_missing(run, ex)
            elif result.get("passed") is not True:
                hint = str(result.get("hint") or result.get("summary") or "not yet")
            elif not counts:
                hint = f"passed, but not counted: {run.reason}"
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


def csv_cell(value: Any) -> Any:
    """``value`` made safe for spreadsheets: text starting with = + - @ (or a tab/CR) gets a '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(out: Path, grades: list[StudentGrade], columns: list[str]) -> None:
    """One row per student: name, status, score, max_score, then 0/1 per exercise."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "status", "score", "max_score", *columns])
    for g in grades:
        writer.writerow([csv_cell(g.student), g.status, g.score, len(columns),
                         *(g.scores[ex] for ex in columns)])
    write_atomic(out, buffer.getvalue())


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(report: Path, grades: list[StudentGrade], columns: list[str], source: Path,
                 timeout: float, isolation: str = "") -> None:
    """A Markdown summary table, then every student's failures with their hints."""
    lines = [f"# Grades for {source.name}", "",
             f"{len(grades)} students · {len(columns)} exercises ({', '.join(columns) or 'none'})"
             f" · {timeout:g} s per notebook", ""]
    if isolation:
        lines += [f"**Note:** {isolation}", ""]
    lines += ["| student | score | status |", "|---|---|---|"]
    lines += [f"| {_md(g.student)} | {g.score}/{len(columns)} | {g.status} |" for g in grades]
    for g in grades:
        lines += ["", f"## {_md(g.student)}: {g.score}/{len(columns)}", ""]
        lines += [f"- **{note.split(':', 1)[0]}**:{note.split(':', 1)[1]}" for note in g.notes]
        failed = [ex for ex in columns if not g.scores[ex]]
        if not failed and not g.notes:
            lines.append("All exercises passed.")
        lines += [f"- `{ex}`: {g.hints[ex]}" for ex in failed]
    write_atomic(report, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- saved results
def runs_folder(out: Path) -> Path:
    """Where each student's result and executed notebooks are kept (``grades.runs/``)."""
    return out.with_name(out.stem + ".runs")


def _student_key(student: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", student).lstrip(".")[:40] or "student"
    return f"{safe}-{hashlib.sha256(student.encode()).hexdigest()[:10]}"


def _fingerprint(notebooks: list[Path], invalid: str, timeout: float) -> str:
    digest = hashlib.sha256(f"{timeout!r}|{invalid}|{len(notebooks)}".encode())
    for nb in notebooks:
        digest.update(nb.name.encode())
        try:
            digest.update(hashlib.sha256(nb.read_bytes()).digest())
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()


def save_student(folder: Path, student: str, fingerprint: str, runs: list[NotebookRun]) -> None:
    """Keep one student's runs (their results and executed notebooks) as soon as known."""
    key = _student_key(student)
    for k, run in enumerate(runs):
        if run.notebook is not None:
            write_atomic(folder / key / f"{k:02d}-{_student_key(run.name)}.ipynb",
                         nbformat.writes(run.notebook))
    kept = [{**{f.name: getattr(run, f.name) for f in dataclasses.fields(run)
                if f.name != "notebook"}} for run in runs]
    write_atomic(folder / f"{key}.json", json.dumps(
        {"student": student, "fingerprint": fingerprint, "runs": kept}, default=str))


def load_student(folder: Path, student: str, fingerprint: str) -> list[NotebookRun] | None:
    """The runs saved for ``student`` by an earlier run over the same files, or None."""
    key = _student_key(student)
    try:
        saved = json.loads((folder / f"{key}.json").read_text())
        if saved.get("student") != student or saved.get("fingerprint") != fingerprint:
            return None
        runs = [NotebookRun(**r) for r in saved["runs"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    for k, run in enumerate(runs):
        executed = folder / key / f"{k:02d}-{_student_key(run.name)}.ipynb"
        if executed.is_file():
            run.notebook = nbformat.read(executed, as_version=4)
    return runs


# --------------------------------------------------------------------------- a class
def grade(path: str | Path, out: str | Path = "grades.csv", timeout: float = 120.0,
          report: str | Path | None = None, progress: Any = print, jobs: int = 1,
          resume: bool = True, names: bool = False) -> list[StudentGrade]:
    """Run every submission in ``path`` in its own sandbox; write a CSV and a Markdown report.

    :param path: a folder holding one ``.ipynb`` per student and/or one folder per student
        (every ``.ipynb`` inside is graded), or a single notebook.
    :param out: the CSV to write: one row per student, a 0/1 score per exercise. Each
        student's result and executed notebooks are kept beside it in ``<out>.runs/``.
    :param timeout: seconds each notebook's own cells may run (the grader's checks, the
        kernel's and the lab's start get their own time on top).
    :param report: the Markdown report listing every failure's hint (default: ``out`` with
        the suffix ``.md``).
    :param progress: called with one line per step ("student 2 of 5: ..."); None for silence.
    :param jobs: notebooks run side by side (default 1; each has its own sandbox, kernel and
        lab, but timing checks are fairest when the machine is not shared).
    :param resume: keep the saved result of every student whose files did not change since
        the last run with this ``out`` (False grades everyone again).
    :param names: name learners in ``misconceptions.md`` (default: anonymous).
    :return: one :class:`StudentGrade` per student, sorted by name.
    :raises FileNotFoundError: ``path`` does not exist.
    :raises ValueError: ``path`` is neither a notebook nor a folder holding submissions, or
        two of its entries would be the same student.
    """
    path, out = Path(path), Path(out)
    report = Path(report) if report else out.with_suffix(".md")
    say: Callable[[str], Any] = progress or (lambda line: None)
    _check_grade_arguments(path, timeout, jobs)
    folder = runs_folder(out)
    submissions = find_submissions(path, {out.resolve(), report.resolve(), folder.resolve()})
    if not submissions:
        raise ValueError(f"{path} holds no submissions: put one .ipynb or one folder per "
                         "student in it")
    sandboxed, why = sandbox.availability()
    isolation = "" if sandboxed else sandbox.REDUCED.format(why=why)
    if isolation:
        say(isolation)
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(jobs):
        slots.put(slot)

    def run_student(k: int, student: str, notebooks: list[Path], invalid: str) -> list[NotebookRun]:
        fingerprint = _fingerprint(notebooks, invalid, timeout)
        saved = load_student(folder, student, fingerprint) if resume else None
        count = f"{len(notebooks)} notebook{'s' if len(notebooks) != 1 else ''}"
        if saved is not None:
            say(f"student {k} of {len(submissions)}: {student} ({count}, graded before: kept)")
            return saved
        say(f"student {k} of {len(submissions)}: {student} ({count})")
        if invalid:
            done = [NotebookRun(student, [], {}, "invalid", invalid)]
        else:
            slot = slots.get()
            try:
                done = [_run_safely(nb, timeout, slot, sandboxed) for nb in notebooks]
            finally:
                slots.put(slot)
        save_student(folder, student, fingerprint, done)
        passed = sum(1 for r in done for rec in r.results.values() if rec.get("passed") is True)
        problems = "; ".join(r.problem for r in done if r.problem) or "ok"
        say(f"  {student}: {passed} check(s) passed · {problems} · "
            f"{sum(r.seconds for r in done):.1f} s")
        return done

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {s[0]: pool.submit(run_student, k, *s) for k, s in enumerate(submissions, 1)}
        runs = {student: future.result() for student, future in futures.items()}
    order = list(checks.EXERCISES)
    columns = sorted({ex for rs in runs.values() for r in rs for ex in r.exercises
                      if ex in checks.EXERCISES}, key=order.index)
    grades = [score_student(student, runs[student], columns) for student in runs]
    write_csv(out, grades, columns)
    write_report(report, grades, columns, path, timeout, isolation)
    say(f"wrote {out} and {report} (executed notebooks in {folder}/)")
    _class_predictions(path, [nb for s in submissions for nb in s[1]], out.parent, names, say)
    return grades


def _check_grade_arguments(path: Path, timeout: Any, jobs: Any) -> None:
    """One-line errors for what :func:`grade` cannot work with."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: give a folder of submissions "
                                "(one .ipynb or one folder per student) or one notebook")
    if path.is_file() and path.suffix != ".ipynb":
        raise ValueError(f"{path} is not a notebook (.ipynb) or a folder of submissions")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 16:
        raise ValueError(f"jobs={jobs!r} must be a whole number from 1 to 16")


def _run_safely(nb: Path, timeout: float, slot: int, sandboxed: bool) -> NotebookRun:
    """:func:`run_notebook`, with a grader failure turned into that notebook's error row."""
    try:
        return run_notebook(nb, timeout, slot, sandboxed)
    except Exception as exc:  # noqa: BLE001 - one row, never the class run
        logger.exception("grading %s failed", nb)
        return NotebookRun(nb.name, [], {}, "error", f"the grader failed on it ({exc})"[:200])


def _class_predictions(path: Path, notebooks: list[Path], out_dir: Path, names: bool,
                       say: Callable[[str], Any]) -> None:
    """misconceptions.md/.png beside the grades, from the notebooks as the learners saved them."""
    from labapp import predictions
    root = path if path.is_dir() else path.parent
    try:
        made = predictions.write_report(notebooks, out_dir, names=names, root=root)
    except Exception as exc:  # noqa: BLE001 - the grades are written; say why this part is not
        logger.exception("the predictions report failed")
        say(f"no misconceptions report: {type(exc).__name__}: {exc}"[:200])
        return
    say(f"wrote {made.markdown} and {made.png} (the class's predictions before measuring)")
