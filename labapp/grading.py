"""Exercises: ``check()`` for learners, ``build_exercises()`` for teachers.

``check("ex05_retries")`` measures the learner's work on the running lab (see
:mod:`labapp.checks`) and shows one line, "passed" or "not yet" with a hint. In a Jupyter
kernel it also publishes a machine-readable record as a ``display_data`` output with the
MIME type :data:`MIME` (``{"exercise", "passed", "hint", "summary", "details", ...}``);
:mod:`labapp.grader` grades a class; it never reads these records (they are the learner's
feedback): it runs each exercise's check itself after the learner's cells.

``solutions/NN_*.ipynb`` are the single source of the exercises: :func:`build_exercises`
replaces every region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` with a stub
and strips outputs to write ``exercises/NN_*.ipynb``.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import json
import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from labapp import checks

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)

MIME = "application/vnd.queue-lab.check+json"
RECORD_VERSION = 1
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("your code here")'
CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](ex\d\d_\w+)["']""")


@dataclasses.dataclass
class CheckResult:
    """What one ``check()`` measured: true when passed; ``hint`` says what to try when not."""

    exercise: str
    passed: bool
    summary: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    _shown_in: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def hint(self) -> str:
        """What to change ('' once passed)."""
        return "" if self.passed else self.summary

    @property
    def line(self) -> str:
        """The one line a learner reads."""
        verdict = "passed" if self.passed else "not yet"
        return f"{'✓' if self.passed else '✗'} {self.exercise} {verdict}: {self.summary}"

    def record(self) -> dict[str, Any]:
        """The machine-readable form ``check()`` displays (JSON-safe; the grader never scores it)."""
        record = {"version": RECORD_VERSION, "exercise": self.exercise, "passed": self.passed,
                  "hint": self.hint, "summary": self.summary, "details": self.details,
                  "seconds": round(self.seconds, 3)}
        return json.loads(json.dumps(record, default=str))

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.line

    def __repr__(self) -> str:
        return (f"CheckResult({self.exercise!r}, passed={self.passed}, hint={self.hint!r}, "
                f"details={self.details!r})")

    def _bundle(self) -> dict[str, Any]:
        colour = "#1a7f37" if self.passed else "#9a6700"
        text = self.line.replace("&", "&amp;").replace("<", "&lt;")
        return {"text/plain": self.line,
                "text/html": f'<pre style="color:{colour};white-space:pre-wrap">{text}</pre>'}

    def _ipython_display_(self) -> None:
        # check() already showed this result in the cell that produced it: showing it
        # again as the cell's value would print the same line twice.
        shell = _shell()
        if shell is not None and self._shown_in == shell.execution_count:
            return
        from IPython.display import display
        display(self._bundle(), raw=True)


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _emit(result: CheckResult) -> None:
    shell = _shell()
    if shell is None or not hasattr(shell, "kernel"):
        print(result.line)
        return
    from IPython.display import display
    display({**result._bundle(), MIME: result.record()}, raw=True)
    result._shown_in = shell.execution_count


def check(exercise_id: str, lab: Lab | None = None, **kwargs: Any) -> CheckResult:
    """Measure exercise ``exercise_id`` on the running lab; show one line and return the result.

    :param lab: the lab to use (default: the one this notebook started).
    :param kwargs: what the exercise asks for, e.g. ``run_pair=run_pair``.
    :return: a :class:`CheckResult`, true when passed; never raises for unsolved work.
    """
    start = time.perf_counter()
    result = _run_check(exercise_id, lab, kwargs)
    result.seconds = time.perf_counter() - start
    _emit(result)
    return result


def _run_check(exercise_id: str, lab: Lab, kwargs: dict[str, Any]) -> CheckResult:
    ex = checks.EXERCISES.get(exercise_id)
    if ex is None:
        return CheckResult(str(exercise_id), False, f"there is no exercise {exercise_id!r}: "
                           f"the exercises are {', '.join(checks.EXERCISES)}")
    if lab is None:
        from labapp.stack import running_labs
        labs = running_labs()
        lab = labs[-1] if labs else None
    if lab is None or not lab.healthy():
        return CheckResult(ex.id, False, "no lab is running in this notebook: run the first "
                           "cell (lab = Lab.start()), then this check again")
    try:
        inspect.signature(ex.run).bind(lab, **kwargs)
    except TypeError:
        return CheckResult(ex.id, False, f"call it as {ex.usage}")
    try:
        summary, details = ex.run(lab, **kwargs)
    except checks.NotYet as exc:
        return CheckResult(ex.id, False, exc.hint, exc.details)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken lab must not crash the notebook
        logger.exception("check %s failed", ex.id)
        return CheckResult(ex.id, False, f"the check could not run ({type(exc).__name__}: "
                           f"{exc}): restart the lab with lab.start() and run it again")
    return CheckResult(ex.id, True, summary, details)


# --------------------------------------------------------------------------- notebooks
def exercise_ids(nb: Any) -> list[str]:
    """Known exercise ids that the code cells of ``nb`` check, in order of appearance."""
    found: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            for ex_id in CHECK_CALL.findall(cell.source):
                if ex_id in checks.EXERCISES and ex_id not in found:
                    found.append(ex_id)
    return found


def read_records(nb: Any) -> dict[str, dict[str, Any]]:
    """The last check record per exercise found in the outputs of an executed notebook."""
    records: dict[str, dict[str, Any]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(MIME)
            if isinstance(record, dict) and isinstance(record.get("exercise"), str):
                records[record["exercise"]] = record
    return records


def _stub(indent: str, region: list[str]) -> list[str]:
    """The stub for one solution region: a raise inside a block, placeholders at top level."""
    if indent:
        return [indent + STUB]
    try:
        tree = ast.parse("\n".join(region))
    except SyntaxError:
        return ["..."]
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return [f"{name} = ..." for name in names] or ["..."]


def strip_solutions(source: str, where: str = "cell") -> str:
    """``source`` with every BEGIN/END SOLUTION region replaced by its stub."""
    lines, out, i = source.split("\n"), [], 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped == END:
            raise ValueError(f"{where}: '{END}' without '{BEGIN}' above it")
        if stripped != BEGIN:
            out.append(lines[i])
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() in (BEGIN, END)),
                   None)
        if end is None or lines[end].strip() != END:
            raise ValueError(f"{where}: '{BEGIN}' has no '{END}' after it")
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        out += _stub(indent, lines[i + 1:end])
        i = end + 1
    return "\n".join(out)


def make_exercise(nb: Any, name: str = "notebook") -> Any:
    """An exercise notebook from a solution notebook: regions stubbed, outputs stripped."""
    ex = copy.deepcopy(nb)
    for index, cell in enumerate(ex.cells):
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"{name} cell {index + 1}")
            cell.outputs = []
            cell.execution_count = None
    ex.metadata = {k: v for k, v in ex.metadata.items() if k in ("kernelspec", "language_info")}
    return ex


def build_exercises(src: str | Path = "solutions", dst: str | Path = "exercises") -> list[Path]:
    """Write ``dst/NN_*.ipynb`` from ``src/NN_*.ipynb``; returns the files written.

    Notebooks in ``dst`` without a solution in ``src`` are removed (``dst`` is generated).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a folder: give the folder of solution notebooks")
    sources = sorted(src.glob("*.ipynb"))
    if not sources:
        raise ValueError(f"{src} holds no .ipynb files: nothing to build")
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds
            raise ValueError(f"{path} is not a valid notebook: {exc}") from None
        target = dst / path.name
        nbformat.write(make_exercise(nb, path.name), target)
        written.append(target)
    for stale in set(dst.glob("*.ipynb")) - set(written):
        stale.unlink()
    return written


__all__ = ["MIME", "CheckResult", "build_exercises", "check", "exercise_ids",
           "make_exercise", "read_records", "strip_solutions"]
