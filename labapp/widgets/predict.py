"""Predict: commit to an answer, run the experiment, compare the two.

The widget shows only the question and the answers until the learner commits. The verdict
("your prediction matches this run" or not) is computed from the run: ``truth(result)`` names
the answer the measured numbers support, ``explain(result)`` says what was measured. Nothing is
recorded as a prediction unless the learner committed one; a later cell that needs the result
first (``widget.result``) runs the experiment and says "no prediction recorded".

Every commit keeps a machine-readable :attr:`Predict.record` (see :data:`RECORD_VERSION` and
:mod:`labapp.predictions` for the format); :data:`RECORDS` lists those made in this kernel.
In a notebook the widget also shows a small output of MIME type
``application/vnd.queue-lab.prediction+json`` (empty until the commit, then updated in place
through its display id), so the record is saved with the notebook: teachers read it with
``labapp predictions``, learners with :func:`labapp.predictions.my_predictions`.
"""
from __future__ import annotations

import html
import os
import re
import time
from typing import Any, Callable, Sequence

import ipywidgets as w

from labapp import predictions
from labapp.widgets.base import CSS
from labapp.widgets.base import LabWidget
from labapp.widgets.base import error_html
from labapp.widgets.base import explain_error

AUTO_ENV = "LAB_AUTO_PREDICT"
RECORD_VERSION = predictions.RECORD_VERSION
RECORDS: list[dict[str, Any]] = []
"""The prediction records committed in this kernel, oldest first."""
_REVEALED: set[str] = set()   # question ids whose measured answer this kernel has shown


def _auto() -> bool:
    """True only when explicitly asked (tests, grading): ``LAB_AUTO_PREDICT=1``."""
    return os.environ.get(AUTO_ENV, "").strip() not in ("", "0", "false", "no")


def _plain(text: str) -> str:
    """HTML reduced to one line of text (for reprs)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", text))).strip()


_QID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class Predict(LabWidget):
    """Predict → run → reveal: commit to an answer, the experiment runs, the run decides.

    :param question: what to predict (one sentence, giving nothing away).
    :param choices: answers as labels, or ``(label, value)`` pairs; labels state an answer,
        not the reasoning behind it.
    :param run: the experiment; called with no argument, its return value is the result.
    :param qid: a stable id of the question (e.g. ``"nb07.myth1"``), kept in the records.
    :param truth: ``truth(result)`` → the choice value this run's numbers support, or ``None``
        when the run settles nothing.
    :param explain: ``explain(result)`` → what the run measured (simple HTML), shown only
        after the commit.
    :param default: the answer committed in headless runs with ``LAB_AUTO_PREDICT=1``
        (tests, grading); such commits are marked ``auto`` and are not the learner's.
    """

    def __init__(self, question: str, choices: Sequence[Any], run: Callable[[], Any], *,
                 qid: str | None = None, truth: Callable[[Any], Any] | None = None,
                 explain: Callable[[Any], str] | None = None, default: Any = None,
                 auto: bool | None = None,
                 reveal: Callable[[Any, Any], str] | None = None) -> None:
        options = [c if isinstance(c, tuple) and len(c) == 2 else (str(c), c) for c in choices]
        if len(options) < 2:
            raise ValueError("Predict needs at least two choices")
        values = [v for _, v in options]
        if default is None:
            default = values[0]
        if default not in values:
            raise ValueError(f"default={default!r} is not one of the choices {values}")
        if reveal is not None and truth is None and explain is None:
            # Transitional: the old reveal(answer, result) form, judged by nobody.
            truth = lambda _result: None  # noqa: E731
            explain = lambda result: reveal(self.answer, result)  # noqa: E731
        if qid is None:
            qid = re.sub(r"[^a-z0-9]+", "-", question.lower()).strip("-")[:64] or "question"
        if not all(callable(f) for f in (run, truth, explain)):
            raise ValueError("run, truth and explain must be functions: run() -> result, "
                             "truth(result) -> choice, explain(result) -> str")
        if not isinstance(qid, str) or not _QID.match(qid):
            raise ValueError(f"qid={qid!r}: use 2-64 lower-case letters, digits, '.', '_' or '-'")
        self.question, self.qid, self.default = question, qid, default
        self.run_fn, self.truth_fn, self.explain_fn = run, truth, explain
        self.auto = _auto() if auto is None else auto
        self.answer: Any = None
        self.committed = False
        self.auto_picked = False
        self.no_prediction = False
        self.reveal_text = ""
        self.record: dict[str, Any] | None = None
        self._history: list[dict[str, Any]] | None = None   # earlier records of this qid
        self._display: Any = None                           # the saved record's display handle
        self._changes = 0
        self._committed_at = 0.0
        self._after_reveal = False
        self._shown_at = time.time()
        self._result: Any = None
        self._has_result = False
        self._error: str | None = None
        self.choice = w.RadioButtons(options=options, value=None, layout=w.Layout(width="auto"))
        self.choice.observe(self._on_pick, names="value")
        self.button = w.Button(description="Commit and run", button_style="primary",
                               icon="flask", tooltip="lock in your answer and run the experiment")
        self.message = w.HTML()
        self.output = w.Output()
        self.reveal_box = w.HTML()
        self.forget_button = w.Button(description="Forget my prediction", icon="trash",
                                      tooltip="remove this prediction's record from the notebook",
                                      layout=w.Layout(display="none", width="auto",
                                                      align_self="flex-start"))
        self.button.on_click(lambda _b: self.commit())
        self.forget_button.on_click(lambda _b: self.forget())
        super().__init__([w.HTML(CSS + f"<b>Predict:</b> {html.escape(question)}"),
                          self.choice, self.button, self.message, self.output, self.reveal_box,
                          self.forget_button])
        self.add_class("ql-box")
        self.add_class("ql-predict")

    # ------------------------------------------------------------------ learner actions
    def _on_pick(self, change: dict[str, Any]) -> None:
        if not self.committed and change.get("new") is not None:
            self._changes += 1

    def commit(self, answer: Any = None) -> bool:
        """Lock in ``answer`` (default: the selected choice), run, reveal; True on success."""
        if self.no_prediction:
            self.message.value = error_html("this question was already answered by a later cell: "
                                             "re-run this cell to predict again")
            return False
        if answer is None:
            answer = self.answer if self.committed else self.choice.value
        if answer is None:
            self.message.value = error_html("pick an answer first, then click Commit and run")
            return False
        if answer not in [v for _, v in self.choice.options]:
            self.message.value = error_html(f"{answer!r} is not one of the choices: pick one "
                                             "from the list")
            return False
        first = not self.committed
        self.answer, self.committed = answer, True
        if first:
            self._committed_at = time.time()
            self._after_reveal = self.qid in _REVEALED or bool(self._earlier())
        self.choice.value = answer
        self.choice.disabled = True
        return self._run()

    def _run(self) -> bool:
        """Run the experiment (again after a failure) and show the reveal."""
        self.button.disabled = True
        self.message.value = f'<span class="ql-muted">{html.escape(self._who())} · running the experiment…</span>'
        try:
            with self.output:
                result = self.run_fn()
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - shown in place
            self._error = explain_error(exc, "click Run again")
            if isinstance(exc, KeyboardInterrupt):
                self._error = "interrupted: click Run again when you are ready"
            self.message.value = error_html(f"the experiment failed: {self._error}")
            self.button.description, self.button.disabled = "Run again", False
            return False
        self._result, self._has_result, self._error = result, True, None
        self.button.description = "Commit and run"
        self.message.value = f'<span class="ql-muted">{html.escape(self._who())}</span>'
        self._reveal(result)
        return True

    def _reveal(self, result: Any) -> None:
        try:
            truth = self.truth_fn(result)
            explained = str(self.explain_fn(result))
        except Exception as exc:  # noqa: BLE001 - shown in place
            truth, explained = None, error_html(f"could not compare: {type(exc).__name__}: {exc}")
        self.reveal_text = f"{self._verdict(truth)} {explained}"
        self.reveal_box.value = f"<div class='ql-reveal'>{self.reveal_text}</div>"
        _REVEALED.add(self.qid)
        if self.committed and self.record is None:
            self.record = {
                "version": RECORD_VERSION, "qid": self.qid, "question": self.question,
                "choices": [str(v) for _, v in self.choice.options],
                "labels": [str(label) for label, _ in self.choice.options],
                "answer": str(self.answer), "label": self._label(self.answer),
                "changed_selection": self._changes > 1, "selections": self._changes,
                "measured": None if truth is None else str(truth),
                "measured_label": None if truth is None else self._label(truth),
                "matched": None if truth is None else truth == self.answer,
                "explained": predictions.plain(explained, predictions.EXPLAINED_MAX),
                "auto": self.auto_picked, "after_reveal": self._after_reveal,
                "notebook": predictions.this_notebook_name(),
                "shown_at": round(self._shown_at, 3), "committed_at": round(self._committed_at, 3),
                "revealed_at": round(time.time(), 3),
            }
            RECORDS.append(self.record)
            self._save_record()
            self.forget_button.layout.display = None

    # ------------------------------------------------------------------ the saved record
    def _earlier(self) -> list[dict[str, Any]]:
        """Records of this question made before this widget: in this kernel, or saved in
        this notebook (so a re-commit after a kernel restart is still marked as one)."""
        if self._history is None:
            saved = predictions.saved_records(predictions.this_notebook(), qid=self.qid)
            self._history = predictions.merge(saved, [r for r in RECORDS if r["qid"] == self.qid])
        return self._history

    def _payload(self) -> dict[str, Any]:
        mine = [self.record] if self.record is not None else []
        return predictions.payload(self.qid, predictions.merge(self._earlier(), mine))

    def _show_record(self) -> None:
        """Display the record output (empty until the commit) once, when running in a kernel.

        It is published while the widget itself is being displayed, so it sits just above it."""
        if self._display is not None or not predictions.in_kernel():
            return
        from IPython.display import display
        self._display = display(predictions.bundle(self._payload()), raw=True, display_id=True)

    def _save_record(self) -> None:
        if self._display is not None:
            self._display.update(predictions.bundle(self._payload()), raw=True)

    def forget(self) -> None:
        """Remove this question's predictions from the records (this notebook's output and
        this kernel's :data:`RECORDS`). Save the notebook to remove them from the file too."""
        RECORDS[:] = [r for r in RECORDS if r["qid"] != self.qid]
        self.record = None
        self._history = []
        if self._display is not None:
            self._display.update(predictions.bundle(predictions.payload(self.qid, [])), raw=True)
        self.forget_button.layout.display = "none"
        self.message.value = ('<span class="ql-muted">prediction forgotten: save the notebook '
                              "(Ctrl+S) to remove it from the file too</span>")

    def _verdict(self, truth: Any) -> str:
        if truth is None:
            measured = "<b>This run settles neither answer</b> (see the numbers below)."
        else:
            measured = f"This run supports <b>{html.escape(self._label(truth))}</b>."
        if not self.committed:
            return f"<b>No prediction recorded</b>: the result was needed before an answer was committed. {measured}"
        mine = html.escape(self._label(self.answer))
        if truth is None:
            return f"You predicted <b>{mine}</b>. {measured}"
        if truth == self.answer:
            return f"<span class='ql-ok'><b>Your prediction matches this run</b></span>: {mine}."
        return f"<span class='ql-error'>This run does not match your prediction</span> ({mine}). {measured}"

    # ------------------------------------------------------------------ reading the result
    @property
    def result(self) -> Any:
        """The experiment's result. Before any commit it runs the experiment and records no
        prediction (the widget then says so)."""
        if not self._has_result:
            if self.committed:
                self._run()
            else:
                self.no_prediction = True
                self.choice.disabled = True
                self.button.disabled = True
                self._run()
                self.button.disabled = True
        if not self._has_result:
            raise RuntimeError(f"the experiment behind {self.question!r} failed: {self._error}")
        return self._result

    def _who(self) -> str:
        if self.no_prediction and not self.committed:
            return "no prediction recorded"
        auto = f" (committed automatically: {AUTO_ENV}=1)" if self.auto_picked else ""
        return f"your answer: {self._label(self.answer)}{auto}"

    def _label(self, value: Any) -> str:
        return next((label for label, v in self.choice.options if v == value), str(value))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._show_record()
        # Headless with LAB_AUTO_PREDICT=1 (tests, grading): commit the default when shown.
        if self.auto and not self.committed and not self.no_prediction:
            self.auto_picked = True
            self.commit(self.default)
        return super()._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        lines = [f"Predict: {self.question}"]
        if self.committed or self.no_prediction:
            lines.append(f"  {self._who()}")
        if self.reveal_text:
            lines.append(f"  reveal: {_plain(self.reveal_text)}")
        elif self._error:
            lines.append(f"  failed: {self._error}")
        else:
            lines.append("  (pick an answer and click Commit and run)")
        return "\n".join(lines)
