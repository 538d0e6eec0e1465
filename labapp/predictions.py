"""Prediction records: what each learner predicted before measuring, saved in their notebooks.

Every commit of a :class:`~labapp.widgets.Predict` is recorded in the notebook as one cell
output of MIME type :data:`MIME`, so it is saved with the notebook and read back without
running anything:

* learners: :func:`my_predictions` lists their predictions across notebooks against what their
  runs measured, with a small chart; :func:`forget` clears them;
* teachers: ``labapp predictions SUBMISSIONS/`` (or :func:`write_report`) writes
  ``misconceptions.md`` and ``misconceptions.png``: per question, the share of each answer
  and the share that matched the learner's own measurement, the most widely held wrong
  belief first.

Record format (version :data:`RECORD_VERSION`). The output's data is
``{"version": 2, "qid": ..., "records": [record, ...]}`` - every commit of that question in
that notebook, oldest first - and each record is a JSON object:

``version``, ``qid`` (stable question id, e.g. ``nb07.myth1``), ``question``, ``choices``
(answer values) and ``labels``, ``answer`` and ``label`` (what was committed),
``changed_selection`` / ``selections`` (did the learner change their pick before committing),
``measured`` / ``measured_label`` (the answer this run's numbers support, ``null`` when the run
settled nothing), ``matched`` (``true``/``false``/``null``), ``explained`` (what the run
measured, plain text), ``auto`` (committed by ``LAB_AUTO_PREDICT=1`` in a headless run: not
the learner's, never counted), ``after_reveal`` (committed after that question's answer had
already been shown: a re-commit, counted apart), ``notebook`` (file name), ``shown_at``,
``committed_at``, ``revealed_at`` (Unix times, seconds).

Version 1 (the first release) stored one bare record per output, without ``labels``,
``measured_label``, ``explained`` and ``notebook``; :func:`upgrade` reads both.

Privacy: a record holds answers and times, never a name. The class report names nobody
unless ``--names`` is given, and then only by submission file or folder names.
"""
from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import html
import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

MIME = "application/vnd.queue-lab.prediction+json"
RECORD_VERSION = 2
EXPLAINED_MAX = 300
REPORT_MD = "misconceptions.md"
REPORT_PNG = "misconceptions.png"
_QID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MAX_NOTEBOOK_BYTES = 50_000_000
_QID_IN_SOURCE = re.compile(r"""\bqid\s*=\s*["']([a-z0-9][a-z0-9._-]{1,63})["']""")


# ---------------------------------------------------------------------------- records
def plain(text: str, limit: int | None = None) -> str:
    """HTML reduced to one line of plain text, cut at ``limit`` characters."""
    out = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", str(text)))).strip()
    out = re.sub(r" ([.,;:)])", r"\1", out)
    if limit is not None and len(out) > limit:
        out = out[: limit - 1].rstrip() + "…"
    return out


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a display output is saved with the notebook)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def this_notebook() -> Path | None:
    """The notebook file this kernel runs for (Jupyter tells kernels in ``JPY_SESSION_NAME``)."""
    name = os.environ.get("JPY_SESSION_NAME", "")
    if not name.endswith(".ipynb"):
        return None
    path = Path(name)
    return path if path.is_absolute() else Path.cwd() / path


def this_notebook_name() -> str | None:
    path = this_notebook()
    return path.name if path is not None else None


def payload(qid: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The data stored under :data:`MIME` for one question in one notebook."""
    return {"version": RECORD_VERSION, "qid": qid, "records": list(records)}


def bundle(data: dict[str, Any]) -> dict[str, Any]:
    """A display bundle: the record for machines, one short muted line for people."""
    records = [r for r in data.get("records", []) if not r.get("auto")]
    if not records:
        return {MIME: data, "text/html": "", "text/plain": ""}
    last = records[-1]
    line = (f"Prediction saved with this notebook: {last.get('label', last.get('answer'))} "
            f"(question {data.get('qid')}). All of yours: labapp.predictions.my_predictions()")
    tag = (f"<div class='ql-record' style='font-size:11px;color:#777'>Prediction saved with "
           f"this notebook: <b>{html.escape(str(last.get('label', last.get('answer'))))}</b> "
           f"(question <code>{html.escape(str(data.get('qid')))}</code>). All of yours: "
           "<code>labapp.predictions.my_predictions()</code></div>")
    return {MIME: data, "text/html": tag, "text/plain": line}


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A record of any known version with every field of the current one."""
    rec = dict(record)
    version = int(rec.get("version", 1))
    if version > RECORD_VERSION:
        raise ValueError(f"prediction record version {version} is newer than this labapp "
                         f"({RECORD_VERSION}): update queue-lab")
    raw = rec.get("choices")
    choices = [str(c) for c in raw] if isinstance(raw, list) else []
    rec["choices"] = choices
    if not isinstance(rec.get("labels"), list) or len(rec["labels"]) != len(choices):
        rec["labels"] = list(choices)
    rec["labels"] = [str(x) for x in rec["labels"]]
    label_of = dict(zip(choices, rec["labels"]))
    measured = rec.get("measured")
    rec.setdefault("label", label_of.get(str(rec.get("answer")), str(rec.get("answer"))))
    rec.setdefault("measured_label", None if measured is None else label_of.get(measured, measured))
    rec.setdefault("explained", "")
    rec.setdefault("notebook", None)
    for flag in ("auto", "after_reveal", "changed_selection"):
        rec[flag] = bool(rec.get(flag, False))
    rec["source_version"] = int(rec.get("source_version", version))
    rec["version"] = RECORD_VERSION
    return rec


def records_from_output(data: Any) -> list[dict[str, Any]]:
    """Records stored in one output's :data:`MIME` data (version 1: one bare record)."""
    if not isinstance(data, dict):
        return []
    found = data.get("records", []) if "records" in data else [data]
    return [upgrade(r) for r in found if _valid(r)] if isinstance(found, list) else []


def _valid(rec: Any) -> bool:
    """A record with a well-formed question id and answer (files can be edited by hand)."""
    return (isinstance(rec, dict) and isinstance(rec.get("qid"), str)
            and bool(_QID.match(rec["qid"])) and isinstance(rec.get("answer"), (str, int, float))
            and isinstance(rec.get("committed_at", 0), (int, float)))


def notebook_records(nb: Any) -> list[dict[str, Any]]:
    """Every prediction record saved in notebook ``nb`` (a dict or NotebookNode), oldest first."""
    out: list[dict[str, Any]] = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {})
            if MIME in data:
                raw = data[MIME]
                if isinstance(raw, str):   # some tools store JSON outputs as text
                    try:
                        raw = json.loads(raw)
                    except json.JSONDecodeError:
                        continue
                out += records_from_output(raw)
    return merge(out)


def _read(path: Path) -> dict[str, Any]:
    """A notebook as JSON (never executed); a clear error for files that are not notebooks."""
    try:
        if Path(path).stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"{path}: larger than {MAX_NOTEBOOK_BYTES // 1_000_000} MB, not read")
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read it as a notebook ({type(exc).__name__}: {exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path}: not a Jupyter notebook (no list of cells)")
    return nb


def saved_records(path: Path | None, qid: str | None = None) -> list[dict[str, Any]]:
    """Records saved in the notebook file ``path`` (of one question when ``qid`` is given);
    [] when there is no such file or it cannot be read."""
    if path is None or not Path(path).is_file():
        return []
    try:
        records = notebook_records(_read(path))
    except ValueError:
        return []
    return [r for r in records if qid is None or r["qid"] == qid]


def qids_in(nb: Any) -> list[str]:
    """Question ids a notebook asks (``qid="..."`` in its code cells), in order."""
    found: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            source = "".join(cell.get("source", ""))
            found += [q for q in _QID_IN_SOURCE.findall(source) if q not in found]
    return found


def merge(*lists: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records of several sources, each commit once (by question and commit time), oldest first."""
    seen: dict[tuple[str, float], dict[str, Any]] = {}
    for records in lists:
        for rec in records:
            seen.setdefault((rec["qid"], float(rec.get("committed_at", 0))), rec)
    return sorted(seen.values(), key=lambda r: (float(r.get("committed_at", 0)), r["qid"]))


# ---------------------------------------------------------------------------- class report
@dataclasses.dataclass
class QuestionStats:
    """What a class predicted for one question (before seeing the answer), and what it measured."""

    qid: str
    question: str
    labels: dict[str, str]                 # answer value → label, in the widget's order
    learners: int = 0                      # learners whose notebooks ask this question
    answers: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    matched_by_answer: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    settled_by_answer: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    names: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    recommits: int = 0
    recommits_matched: int = 0
    auto: int = 0

    @property
    def predicted(self) -> int:
        """Learners who committed a prediction before the answer was shown."""
        return sum(self.answers.values())

    @property
    def no_prediction(self) -> int:
        return self.learners - self.predicted

    @property
    def settled(self) -> int:
        """Predictions whose run settled the question (the measurement supported one answer)."""
        return sum(self.settled_by_answer.values())

    @property
    def matched(self) -> int:
        return sum(self.matched_by_answer.values())

    @property
    def wrong_share(self) -> float:
        """Share of settled predictions that the learner's own run contradicted."""
        return (self.settled - self.matched) / self.settled if self.settled else 0.0

    def wrong_answers(self) -> list[tuple[str, int]]:
        """Answers contradicted by the learner's run, most held first."""
        wrong = {a: self.settled_by_answer[a] - self.matched_by_answer[a] for a in self.answers}
        return sorted(((a, n) for a, n in wrong.items() if n), key=lambda x: (-x[1], x[0]))

    def label(self, answer: str) -> str:
        return self.labels.get(answer, answer)


def learner_of(path: Path, root: Path) -> str:
    """Whose notebook this is: the first folder under ``root``, else the file's stem."""
    rel = Path(path).resolve().relative_to(Path(root).resolve())
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def find_notebooks(folder: Path) -> list[Path]:
    """Every ``*.ipynb`` under ``folder`` (checkpoints excluded), sorted."""
    return sorted(p for p in Path(folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def class_stats(notebooks: Sequence[Path], root: Path | None = None) -> tuple[list[QuestionStats], dict[str, Any]]:
    """Per-question statistics of saved notebooks, the most widely held wrong belief first.

    Per learner and question, the first prediction committed before the answer was shown
    counts; later commits made after a reveal are counted apart as re-commits; automatic
    commits are left out. Returns the statistics and a summary (learners, notebooks, skipped).
    """
    notebooks = [Path(p) for p in notebooks]
    if root is None:
        root = Path(os.path.commonpath([p.resolve().parent for p in notebooks])) if notebooks else Path.cwd()
    stats: dict[str, QuestionStats] = {}
    per_learner: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    asked: dict[str, set[str]] = collections.defaultdict(set)
    learners: set[str] = set()
    skipped: list[str] = []
    versions: collections.Counter = collections.Counter()
    for path in notebooks:
        try:
            nb = _read(path)
        except ValueError as exc:
            skipped.append(str(exc))
            continue
        who = learner_of(path, root)
        learners.add(who)
        for qid in qids_in(nb):
            asked[qid].add(who)
        for rec in notebook_records(nb):
            versions[rec["source_version"]] += 1
            asked[rec["qid"]].add(who)
            per_learner[(who, rec["qid"])].append(rec)
            if rec["qid"] not in stats or not stats[rec["qid"]].question:
                stats[rec["qid"]] = QuestionStats(
                    rec["qid"], rec.get("question", ""),
                    dict(zip([str(c) for c in rec.get("choices", [])], rec.get("labels", []))))
    for qid, who_asked in asked.items():
        stats.setdefault(qid, QuestionStats(qid, "", {})).learners = len(who_asked)
    for (who, qid), records in sorted(per_learner.items()):
        st = stats[qid]
        first_done = False
        for rec in merge(records):
            if rec["auto"]:
                st.auto += 1
            elif rec["after_reveal"] or first_done:
                st.recommits += 1
                st.recommits_matched += rec.get("matched") is True
            else:
                first_done = True
                answer = str(rec["answer"])
                st.answers[answer] += 1
                st.names.setdefault(answer, []).append(who)
                if rec.get("matched") is not None:
                    st.settled_by_answer[answer] += 1
                    st.matched_by_answer[answer] += rec["matched"] is True
                st.labels.setdefault(answer, rec.get("label", answer))
    ordered = sorted(stats.values(), key=lambda s: (-s.wrong_share, -s.predicted, s.qid))
    summary = {"learners": len(learners), "notebooks": len(notebooks) - len(skipped),
               "skipped": skipped, "versions": dict(versions)}
    return ordered, summary


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f} %" if d else "–"


def _cell(text: str) -> str:
    """Text from a submitted file, safe in a Markdown table (records can be edited by hand)."""
    text = html.escape(re.sub(r"\s+", " ", str(text)))[:200]
    return text.replace("|", "\\|").replace("`", "'").replace("[", "\\[").replace("*", "\\*")


def render_markdown(stats: Sequence[QuestionStats], summary: dict[str, Any], names: bool = False,
                    png: str | None = REPORT_PNG) -> str:
    """``misconceptions.md``: an overview table, then one section per question."""
    lines = ["# What the class predicted before measuring", "",
             f"{summary['learners']} learner{'s' if summary['learners'] != 1 else ''}, "
             f"{summary['notebooks']} saved notebook{'s' if summary['notebooks'] != 1 else ''}, read "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} without running them. A learner's "
             "prediction counts once per question: the first one committed before the answer was on "
             "screen. Commits made after the answer had been shown (re-commits) are counted apart; "
             "automatic commits of headless runs (`LAB_AUTO_PREDICT=1`) are left out. *Matched* "
             "compares each prediction with what that learner's own run measured; a run that "
             "settled nothing is not counted there.",
             "", "Anonymous: no names are shown (`--names` lists them)." if not names else
             "Names are the submission folders or files (`--names`).", ""]
    if png:
        lines += [f"![share of predictions that matched the learner's own run]({png})", ""]
    if not stats:
        return "\n".join(lines + ["No prediction was found in these notebooks.", ""])
    lines += ["Questions are ordered by the share of predictions that the learner's own run "
              "contradicted (most widely held wrong belief first).", "",
              "| # | question | predicted | did not match their run | most held wrong answer | "
              "no prediction | re-commits after the reveal |",
              "|---|---|---|---|---|---|---|"]
    for i, s in enumerate(stats, 1):
        wrong = s.wrong_answers()
        top = (f"{_cell(s.label(wrong[0][0]))} ({wrong[0][1]} of {s.predicted}, "
               f"{_pct(wrong[0][1], s.predicted)})" if wrong else "–")
        lines.append(f"| {i} | `{s.qid}` {_cell(s.question)} | {s.predicted} of {s.learners} | "
                     f"{_pct(s.settled - s.matched, s.settled)} ({s.settled - s.matched} of "
                     f"{s.settled}) | {top} | {s.no_prediction} | {s.recommits} "
                     f"({s.recommits_matched} matched) |")
    for i, s in enumerate(stats, 1):
        lines += _question_section(i, s, names)
    if summary.get("skipped"):
        n = len(summary["skipped"])
        lines += ["", "## Files not read", ""]
        if names:
            lines += [f"- {_cell(x)}" for x in summary["skipped"]]
        else:  # their paths may hold names: the command lists them on the terminal instead
            lines.append(f"{n} file{'s' if n != 1 else ''} could not be read as a notebook "
                         "(`labapp predictions` lists which on the terminal).")
    old = {v: n for v, n in summary.get("versions", {}).items() if v != RECORD_VERSION}
    if old:
        lines += ["", "Older records read: " + ", ".join(f"{n} of version {v}" for v, n in sorted(old.items())) + "."]
    return "\n".join(lines) + "\n"


def _question_section(i: int, s: QuestionStats, names: bool) -> list[str]:
    """The Markdown lines of question ``i``: who predicted what, and how often it matched."""
    lines = ["", f"## {i}. `{s.qid}`: {_cell(s.question) or '(question text not saved)'}", "",
             f"{s.predicted} of {s.learners} learner{'s' if s.learners != 1 else ''} "
             "predicted before the answer was shown; "
             f"{s.no_prediction} did not. {s.settled} of those runs settled the question, and "
             f"{s.matched} predictions ({_pct(s.matched, s.settled)}) matched the learner's own "
             f"measurement.", "",
             "| answer | learners | share of predictions | matched their run |"
             + (" who |" if names else ""),
             "|---|---|---|---|" + ("---|" if names else "")]
    order = list(s.labels) + [a for a in s.answers if a not in s.labels]
    for answer in order:
        n = s.answers.get(answer, 0)
        row = (f"| {_cell(s.label(answer))} | {n} | {_pct(n, s.predicted)} | "
               f"{s.matched_by_answer[answer]} of {s.settled_by_answer[answer]} |")
        if names:
            row += f" {_cell(', '.join(sorted(s.names.get(answer, []))))} |"
        lines.append(row)
    extra = [f"Re-commits after the reveal: {s.recommits} ({s.recommits_matched} matched)."]
    if s.auto:
        extra.append(f"Automatic commits left out: {s.auto}.")
    return lines + ["", " ".join(extra)]


def render_png(stats: Sequence[QuestionStats], path: Path) -> Path:
    """``misconceptions.png``: per question, matched / not matched / unsettled shares."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    shown = list(stats)[:20]
    fig, ax = plt.subplots(figsize=(8, 0.55 * max(len(shown), 1) + 1.4), dpi=110)
    ys = range(len(shown))[::-1]
    for y, s in zip(ys, shown):
        d = s.predicted or 1
        parts = [(s.matched / d, "#1b7837", "matched their run"),
                 ((s.settled - s.matched) / d, "#d6604d", "did not match their run"),
                 ((s.predicted - s.settled) / d, "#bdbdbd", "run settled nothing")]
        left = 0.0
        for width, colour, label in parts:
            ax.barh(y, width, left=left, color=colour, label=label if y == ys[0] else None,
                    height=0.6)
            left += width
        wrong = s.wrong_answers()
        note = f"n={s.predicted}" + (f" · most held wrong: {s.label(wrong[0][0])}" if wrong else "")
        ax.text(1.01, y, note[:60], va="center", fontsize=8)
    ax.set_yticks(list(ys), [s.qid for s in shown], fontsize=8)
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("share of the predictions made before the answer was shown")
    ax.set_title("What the class predicted: most widely held wrong belief on top", fontsize=10)
    if shown:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28 if len(shown) < 4 else -0.12),
                  ncol=3, fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no prediction found", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


@dataclasses.dataclass
class Report:
    """What :func:`write_report` wrote."""

    markdown: Path
    png: Path
    stats: list[QuestionStats]
    summary: dict[str, Any]

    def __repr__(self) -> str:
        return (f"<prediction report: {len(self.stats)} questions, {self.summary['learners']} "
                f"learners → {self.markdown}, {self.png}>")


def write_report(notebooks: Sequence[Path], out_dir: Path, names: bool = False,
                 root: Path | None = None) -> Report:
    """Write ``misconceptions.md`` and ``misconceptions.png`` for saved notebooks into ``out_dir``.

    :param notebooks: the notebooks *as the learners saved them* (a grader's re-executed copies
        hold only automatic commits, which are left out).
    :param names: list learners by name (submission folder, or file stem when flat).
    :param root: the submissions folder learner names are taken relative to (default: the
        notebooks' common folder).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats, summary = class_stats(notebooks, root)
    png = render_png(stats, out_dir / REPORT_PNG)
    md = out_dir / REPORT_MD
    md.write_text(render_markdown(stats, summary, names=names, png=png.name), encoding="utf-8")
    return Report(md, png, stats, summary)


def main(argv: list[str] | None = None) -> int:
    """``labapp predictions SUBMISSIONS/``: the class report from saved notebooks."""
    parser = argparse.ArgumentParser(
        prog="labapp predictions",
        description="Read a class's saved notebooks (nothing is executed) and write "
                    "misconceptions.md and misconceptions.png: per question, the share of each "
                    "predicted answer and the share that matched the learner's own run, the most "
                    "widely held wrong belief first.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (shared by ``labapp predictions`` and ``python -m``)."""
    parser.add_argument("submissions", type=Path,
                        help="folder of saved notebooks: one per learner, or one folder per learner")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the report (default: the submissions folder)")
    parser.add_argument("--names", action="store_true",
                        help="list who gave each answer (default: anonymous)")


def run(args: argparse.Namespace) -> int:
    folder: Path = args.submissions
    if not folder.is_dir():
        print(f"labapp predictions: {folder} is not a folder: give the folder holding the "
              "submitted notebooks", file=sys.stderr)
        return 2
    notebooks = find_notebooks(folder)
    if not notebooks:
        print(f"labapp predictions: no .ipynb file under {folder}: copy the submitted notebooks "
              "there first", file=sys.stderr)
        return 2
    out = args.out or folder
    try:
        report = write_report(notebooks, out, names=args.names, root=folder)
    except OSError as exc:
        print(f"labapp predictions: cannot write the report to {out}: {exc.strerror or exc}; "
              "choose another folder with --out", file=sys.stderr)
        return 2
    s = report.summary
    print(f"read {s['notebooks']} notebooks of {s['learners']} learners: {len(report.stats)} "
          f"questions → {report.markdown} and {report.png}")
    for problem in s["skipped"]:
        print(f"skipped {problem}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------- learner view
def _learner_folders(start: Path | None = None) -> list[Path]:
    base = Path.cwd() if start is None else Path(start)
    candidates = [base, base / "notebooks", base / "exercises",
                  base.parent / "notebooks", base.parent / "exercises"]
    out: list[Path] = []
    for c in candidates:
        c = c.resolve()
        if c.is_dir() and c not in out:
            out.append(c)
    return out


def _learner_notebooks(start: Path | None = None) -> list[Path]:
    seen: list[Path] = []
    for folder in _learner_folders(start):
        for p in sorted(folder.glob("*.ipynb")):
            if p.resolve() not in seen:
                seen.append(p.resolve())
    return seen


@dataclasses.dataclass
class Summary:
    """A learner's predictions across notebooks against what their runs measured."""

    records: list[dict[str, Any]]
    notebooks: list[Path]
    auto_left_out: int = 0

    @property
    def before_reveal(self) -> list[dict[str, Any]]:
        """Predictions committed before the answer had been shown (the ones that count)."""
        return [r for r in self.records if not r.get("after_reveal")]

    @property
    def matched(self) -> int:
        return sum(1 for r in self.before_reveal if r.get("matched") is True)

    @property
    def mismatched(self) -> int:
        return sum(1 for r in self.before_reveal if r.get("matched") is False)

    @property
    def unsettled(self) -> int:
        return sum(1 for r in self.before_reveal if r.get("matched") is None)

    def sentence(self) -> str:
        """One sentence computed from the records."""
        if not self.records:
            return ("No prediction recorded yet: commit an answer in a Predict box (and save the "
                    "notebook) and it appears here.")
        n = len(self.before_reveal)
        books = len({r.get("notebook") for r in self.before_reveal})
        out = (f"Before seeing the answer you committed {n} prediction{'s' if n != 1 else ''} in "
               f"{books} notebook{'s' if books != 1 else ''}: {self.matched} matched what your run "
               f"measured, {self.mismatched} did not, and {self.unsettled} "
               f"run{'s' if self.unsettled != 1 else ''} settled nothing.")
        later = len(self.records) - n
        if later:
            out += (f" {later} more {'was' if later == 1 else 'were'} committed after the answer "
                    "was on screen (not counted above).")
        return out

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(notebook, question, you expected, your run, verdict) per prediction, oldest first."""
        out = []
        for r in self.records:
            verdict = {True: "✓ matched", False: "✗ did not match", None: "settled nothing"}[r.get("matched")]
            if r.get("after_reveal"):
                verdict += " (committed after seeing the answer)"
            run = r.get("explained") or (f"supported {r['measured_label']}" if r.get("measured_label") else "")
            out.append((str(r.get("notebook") or "?"), str(r.get("question") or r["qid"]),
                        str(r.get("label", r.get("answer"))), run, verdict))
        return out

    def figure_png(self) -> bytes:
        """A small chart: per notebook, predictions that matched / did not / settled nothing."""
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        books = list(dict.fromkeys(str(r.get("notebook") or "?") for r in self.before_reveal))
        fig, ax = plt.subplots(figsize=(6.4, 0.45 * max(len(books), 1) + 1.2), dpi=100)
        for y, book in enumerate(books[::-1]):
            mine = [r for r in self.before_reveal if str(r.get("notebook") or "?") == book]
            left = 0
            for key, colour, label in ((True, "#1b7837", "matched"), (False, "#d6604d", "did not match"),
                                       (None, "#bdbdbd", "settled nothing")):
                n = sum(1 for r in mine if r.get("matched") is key)
                ax.barh(y, n, left=left, color=colour, height=0.6,
                        label=label if y == len(books) - 1 else None)
                left += n
        ax.set_yticks(range(len(books)), [b.removesuffix(".ipynb") for b in books[::-1]], fontsize=8)
        ax.set_xlabel("predictions committed before seeing the answer")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.set_title("Your predictions against your measurements", fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()

    def _repr_html_(self) -> str:
        head = f"<p><b>Your predictions vs what you measured.</b> {html.escape(self.sentence())}</p>"
        if not self.records:
            return head
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in self.rows())
        img = base64.b64encode(self.figure_png()).decode()
        left = (f"<p style='color:#777'>{self.auto_left_out} automatic commit(s) of headless runs "
                "are left out.</p>" if self.auto_left_out else "")
        return (f"{head}<table class='ql-table'><tr><th>notebook</th><th>question</th>"
                f"<th>you expected</th><th>your run</th><th></th></tr>{rows}</table>"
                f"<img alt='your predictions per notebook' src='data:image/png;base64,{img}'/>{left}"
                "<p style='color:#777'>Records live in your saved notebooks: clear them with "
                "<code>labapp.predictions.forget()</code> (close the notebooks first), or with the "
                "<i>Forget my prediction</i> button under an answer.</p>")

    def __repr__(self) -> str:
        lines = ["Your predictions vs what you measured", self.sentence()]
        for book, question, mine, run, verdict in self.rows():
            lines.append(f"- {book}: {question} You expected: {mine}. Your run: {run or '-'} [{verdict}]")
        return "\n".join(lines)


def my_predictions(start: Path | None = None) -> Summary:
    """Your predictions across the lab's notebooks against what your runs measured.

    Reads the saved notebooks in ``notebooks/`` and ``exercises/`` next to this kernel's folder
    (save first: unsaved commits of *this* notebook are included from the kernel's memory).
    Automatic commits (headless runs) are not yours and are left out.
    """
    notebooks = _learner_notebooks(start)
    saved: list[dict[str, Any]] = []
    for path in notebooks:
        for rec in saved_records(path):
            rec.setdefault("notebook", None)
            rec["notebook"] = rec["notebook"] or path.name
            saved.append(rec)
    try:
        from labapp.widgets.predict import RECORDS
    except ImportError:  # widgets not importable (no ipywidgets): saved records only
        RECORDS = []
    here = this_notebook_name()
    live = [upgrade(dict(r, notebook=r.get("notebook") or here)) for r in RECORDS]
    records = merge(saved, live)
    mine = [r for r in records if not r["auto"]]
    return Summary(mine, notebooks, auto_left_out=len(records) - len(mine))


def forget(paths: Sequence[Path] | None = None, qid: str | None = None) -> int:
    """Delete your prediction records (of question ``qid``, or all) from saved notebooks and
    from this kernel; returns how many records were removed from files.

    ``paths`` defaults to the notebooks :func:`my_predictions` reads. Close those notebooks
    in JupyterLab first: an open notebook would write its records back when saved.
    """
    try:
        from labapp.widgets.predict import RECORDS
        RECORDS[:] = [r for r in RECORDS if qid is not None and r["qid"] != qid]
    except ImportError:
        pass
    removed = 0
    for path in (paths if paths is not None else _learner_notebooks()):
        path = Path(path)
        nb = _read(path)
        changed = False
        for cell in nb["cells"]:
            keep = []
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if MIME in data:
                    records = records_from_output(data[MIME])
                    gone = [r for r in records if qid is None or r["qid"] == qid]
                    if gone:
                        removed += len(gone)
                        changed = True
                        if len(gone) < len(records):
                            output["data"] = bundle(payload(records[0]["qid"],
                                                            [r for r in records if r not in gone]))
                            keep.append(output)
                        continue
                keep.append(output)
            if cell.get("cell_type") == "code":
                cell["outputs"] = keep
        if changed:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return removed


if __name__ == "__main__":
    sys.exit(main())
