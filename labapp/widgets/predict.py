"""Predict: commit to an answer, run the experiment, compare the two."""
from __future__ import annotations

import html
import os
import re
from typing import Any, Callable, Sequence

import ipywidgets as w

from labapp.widgets._common import _CSS
from labapp.widgets._common import _LabWidget
from labapp.widgets._common import _error_html
from labapp.widgets._common import _explain

AUTO_ENV = "LAB_AUTO_PREDICT"


def _auto() -> bool:
    """True when nobody is there to click (tests, grading): ``LAB_AUTO_PREDICT=1``."""
    return os.environ.get(AUTO_ENV, "").strip() not in ("", "0", "false", "no")


def _plain(text: str) -> str:
    """HTML reduced to one line of text (for reprs)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", text))).strip()


class Predict(_LabWidget):
    """Predict → run → reveal: commit to an answer, the experiment runs, the reveal compares.

    :param question: what to predict (one sentence).
    :param choices: answers as labels, or ``(label, value)`` pairs.
    :param run: the experiment; called with no argument, its return value is the result.
    :param reveal: ``reveal(answer, result) -> str`` (simple HTML allowed): the measured
        answer set against the prediction.
    :param default: the answer picked when nobody is there to click (``LAB_AUTO_PREDICT=1``
        or reading :attr:`result` first); defaults to the first choice.
    """

    def __init__(self, question: str, choices: Sequence[Any], run: Callable[[], Any],
                 reveal: Callable[[Any, Any], str], default: Any = None,
                 auto: bool | None = None) -> None:
        options = [c if isinstance(c, tuple) and len(c) == 2 else (str(c), c) for c in choices]
        if len(options) < 2:
            raise ValueError("Predict needs at least two choices")
        values = [v for _, v in options]
        if default is None:
            default = values[0]
        if default not in values:
            raise ValueError(f"default={default!r} is not one of the choices {values}")
        if not callable(run) or not callable(reveal):
            raise ValueError("run and reveal must be functions: run() -> result, "
                             "reveal(answer, result) -> str")
        self.question, self.default = question, default
        self.run_fn, self.reveal_fn = run, reveal
        self.auto = _auto() if auto is None else auto
        self.answer: Any = None
        self.committed = False
        self.reveal_text = ""
        self.auto_picked = False
        self._result: Any = None
        self._has_result = False
        self._error: str | None = None
        self.choice = w.RadioButtons(options=options, value=None, layout=w.Layout(width="auto"))
        self.button = w.Button(description="Commit and run", button_style="primary",
                               icon="flask", tooltip="lock in your answer and run the experiment")
        self.message = w.HTML()
        self.output = w.Output()
        self.reveal_box = w.HTML()
        self.button.on_click(lambda _b: self.commit())
        super().__init__([w.HTML(_CSS + f"<b>Predict:</b> {html.escape(question)}"),
                          self.choice, self.button, self.message, self.output, self.reveal_box])
        self.add_class("ql-box")
        self.add_class("ql-predict")

    def commit(self, answer: Any = None) -> bool:
        """Lock in ``answer`` (default: the selected choice), run, reveal; True on success."""
        if answer is None:
            answer = self.answer if self.committed else self.choice.value
        if answer is None:
            self.message.value = _error_html("pick an answer first, then click Commit and run")
            return False
        if answer not in [v for _, v in self.choice.options]:
            self.message.value = _error_html(f"{answer!r} is not one of the choices: pick one "
                                             "from the list")
            return False
        self.answer, self.committed = answer, True
        self.choice.value = answer
        self.choice.disabled = True
        self.button.disabled = True
        picked = " (picked automatically: nobody is there to click)" if self.auto_picked else ""
        self.message.value = (f'<span class="ql-muted">your answer: {html.escape(self._label())}'
                              f"{html.escape(picked)} · running the experiment…</span>")
        try:
            with self.output:
                result = self.run_fn()
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - shown in place
            self._error = _explain(exc, "click Run again")
            if isinstance(exc, KeyboardInterrupt):
                self._error = "interrupted: click Run again when you are ready"
            self.message.value = _error_html(f"the experiment failed: {self._error}")
            self.button.description, self.button.disabled = "Run again", False
            return False
        self._result, self._has_result, self._error = result, True, None
        try:
            self.reveal_text = str(self.reveal_fn(answer, result))
        except Exception as exc:  # noqa: BLE001 - shown in place
            self.reveal_text = _error_html(f"could not compare: {type(exc).__name__}: {exc}")
        self.message.value = (f'<span class="ql-muted">your answer: {html.escape(self._label())}'
                              f"{html.escape(picked)}</span>")
        self.reveal_box.value = f"<div class='ql-reveal'>{self.reveal_text}</div>"
        return True

    @property
    def result(self) -> Any:
        """The experiment's result; runs it with the default answer if nobody committed yet."""
        if not self._has_result:
            if not self.committed:
                self.auto_picked = True
            self.commit(self.answer if self.committed else self.default)
        if not self._has_result:
            raise RuntimeError(f"the experiment behind {self.question!r} failed: {self._error}")
        return self._result

    def _label(self) -> str:
        return next((label for label, v in self.choice.options if v == self.answer), str(self.answer))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Headless (tests, grading): commit the default as soon as the widget is shown.
        if self.auto and not self.committed:
            self.auto_picked = True
            self.commit(self.default)
        return super()._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        lines = [f"Predict: {self.question}"]
        if self.committed:
            lines.append(f"  your answer: {self._label()}{' (auto)' if self.auto_picked else ''}")
        if self.reveal_text:
            lines.append(f"  reveal: {_plain(self.reveal_text)}")
        elif self._error:
            lines.append(f"  failed: {self._error}")
        else:
            lines.append("  (pick an answer and click Commit and run)")
        return "\n".join(lines)

