"""EnqueuePanel: pick a demo task and its parameters, enqueue it, watch each task's state live."""
from __future__ import annotations

import html
import logging
import threading
import time
from typing import Any, TYPE_CHECKING

import ipywidgets as w
import redis
from traitlets import TraitError

from labapp import events
from labapp import tasks
from labapp.stack import running_labs
from labapp.units import duration
from labapp.widgets.base import CSS
from labapp.widgets.base import EXPECTED_ERRORS
from labapp.widgets.base import LabStopped
from labapp.widgets.base import LabWidget
from labapp.widgets.base import badge
from labapp.widgets.base import current_lab
from labapp.widgets.base import error_html
from labapp.widgets.base import explain_error

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)

MAX_COUNT = 100          # tasks one click may enqueue (the table stays readable)
SHOW_ROWS = 8            # newest tasks listed by EnqueuePanel
PANEL_MIN_INTERVAL = 0.2  # EnqueuePanel redraws at most 5 times a second
TIMELINE_STEPS = 9       # steps shown per task before the middle is elided
LOST_CHECK = 1.0         # seconds of quiet after which the panel looks for dead workers
FINAL = {"complete", "error", "revoked", "expired", "canceled", "interrupted", "locked",
         "lost"}


class _Tracked:
    """What the panel knows about one task it enqueued (and in which lab)."""

    __slots__ = ("id", "task", "state", "steps", "worker", "detail", "lab")

    def __init__(self, task_id: str, task: str, lab: Lab | None = None) -> None:
        self.id, self.task, self.state, self.lab = task_id, task, "pending", lab
        self.steps: list[tuple[str, float]] = []   # every state change, retries included
        self.worker, self.detail = "", ""

    def apply(self, event: events.Event) -> None:
        kind = "pending" if event.kind == "enqueued" else event.kind
        if event.kind == "error" and event.retries > 0:
            kind = "retrying"  # the task will run again
        if event.kind == "retrying" and self.steps and self.steps[-1][0].startswith("error"):
            pass  # Huey's "retrying" right after the error: the error step already says so
        elif event.kind == "error":
            left = f" ({event.retries} retr{'y' if event.retries == 1 else 'ies'} left)" \
                if event.retries else ""
            self.steps.append((f"error{left}", event.time))
        elif not (kind == "pending" and self.steps):
            self.steps.append((kind, event.time))
        if event.kind == "executing":
            self.worker = event.worker
        if event.kind == "error":
            self.detail = event.detail
        if self.state not in FINAL or kind in FINAL:
            self.state = kind

    def mark_lost(self, why: str, now: float | None = None) -> None:
        """The task will never finish (its worker died, or the lab stopped)."""
        self.state, self.detail = "lost", why
        # The time it was noticed (a second of quiet after the death, at most), not of the death.
        self.steps.append(("noticed lost", time.time() if now is None else now))

    def timeline(self) -> str:
        """``pending → executing +3 ms → error (2 retries left) +5 ms → … → complete +2.01 s``."""
        if not self.steps:
            return "pending"
        start = self.steps[0][1]
        parts = [self.steps[0][0]] + [f"{kind} +{duration(t - start, fine=False)}"
                                      for kind, t in self.steps[1:]]
        if len(parts) > TIMELINE_STEPS:  # a long retry story: its start and its end
            hidden = len(parts) - TIMELINE_STEPS + 1
            parts = [*parts[:2], f"({hidden} more)", *parts[-(TIMELINE_STEPS - 3):]]
        return " → ".join(parts)


def _worker_cell(t: _Tracked) -> str:
    if t.worker:
        return html.escape(t.worker)
    return '<span class="ql-muted">not started</span>'


def _detail(t: _Tracked) -> str:
    if not t.detail:
        return ""
    label = "why" if t.state == "lost" else "last error"
    return f"<br><small>{label}: {html.escape(t.detail)}</small>"


def _input_for(name: str, param: tasks.Param, value: Any) -> w.Widget:
    """A text box for one task parameter, labelled with its allowed range."""
    style = {"description_width": "initial"}
    layout = w.Layout(width="190px")
    if param.kind is str:
        return w.Text(value=str(value), description=name, style=style, layout=w.Layout(width="260px"),
                      tooltip=f"must match {param.pattern}")
    label = f"{name} ({param.low:g}-{param.high:g})" if param.high < 1e5 else \
        f"{name} (≤{param.high:,.0f})"
    kind = w.IntText if param.kind is int else w.FloatText
    return kind(value=value, description=label, style=style, layout=layout)


class EnqueuePanel(LabWidget):
    """Pick a demo task and its parameters, click Enqueue, watch each task's state live.

    ``EnqueuePanel(lab, "sleep", seconds=2)`` preselects a task and parameters. From code:
    ``panel.button.click()`` (or :meth:`enqueue`), then :meth:`wait` and :attr:`states`.
    """

    def __init__(self, lab: Lab, task: str = "sleep", count: int = 1, **params: Any) -> None:
        self.lab = lab
        self.tracked: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self._threads: dict[int, threading.Thread] = {}   # one watcher per lab (id) followed
        self._stop = threading.Event()
        self._last_draw = 0.0
        self.task = w.Dropdown(options=sorted(tasks.SPECS), description="task",
                               layout=w.Layout(width="200px"),
                               style={"description_width": "initial"})
        self.count = w.IntText(value=count if type(count) is int else 1,
                               description=f"count (1-{MAX_COUNT})",
                               style={"description_width": "initial"},
                               layout=w.Layout(width="150px"))
        self.button = w.Button(description="Enqueue", button_style="primary", icon="paper-plane",
                               tooltip="send the task(s) to the queue")
        self.message = w.HTML()
        self.table = w.HTML()
        self.inputs: dict[str, w.Widget] = {}
        self.options: dict[str, w.Widget] = {
            name: _input_for(name, p, p.default) for name, p in tasks.OPTIONS.items()}
        self._params_box = w.HBox()
        self.button.on_click(lambda _b: self.enqueue())
        self.task.observe(lambda _change: self._build_inputs({}), "value")
        super().__init__([
            w.HTML(CSS),
            w.HBox([self.task, self._params_box]),
            w.HBox([w.HTML('<span class="ql-muted">Huey options:</span>'), *self.options.values()]),
            w.HBox([self.count, self.button]),
            self.message, self.table])
        self.add_class("ql-box")
        self.add_class("ql-enqueue")
        if task not in tasks.SPECS:
            self.message.value = error_html(
                f"unknown task {task!r}: pick one of {', '.join(sorted(tasks.SPECS))} "
                "from the list (showing sleep)")
            task, params = "sleep", {}
        with self.task.hold_trait_notifications():
            self.task.value = task
        self._build_inputs(params)
        self._render()

    # -- inputs
    def _build_inputs(self, preset: dict[str, Any]) -> None:
        spec = tasks.SPECS[self.task.value]
        problems = []
        for name in preset:
            if name in tasks.OPTIONS:
                try:
                    self.options[name].value = preset[name]
                except TraitError:
                    problems.append(f"{name}={preset[name]!r} is not a number")
        self.inputs = {}
        for name, p in spec.items():
            try:
                self.inputs[name] = _input_for(name, p, preset.get(name, p.default))
            except TraitError:  # e.g. seconds="two": show the default instead
                problems.append(f"{name}={preset[name]!r} is not a {p.kind.__name__}")
                self.inputs[name] = _input_for(name, p, p.default)
        unknown = sorted(set(preset) - set(spec) - set(tasks.OPTIONS))
        if unknown:
            problems.append(f"{self.task.value} has no parameter {unknown[0]!r}: it takes "
                            f"{', '.join(spec) or 'no parameters'}")
        if problems:
            self.message.value = error_html(f"{problems[0]} (showing the default)"
                                             if "no parameter" not in problems[0] else problems[0])
        self._params_box.children = tuple(self.inputs.values()) or (
            w.HTML('<span class="ql-muted">(no parameters)</span>'),)

    def params(self) -> dict[str, Any]:
        """The parameters as typed in the boxes (Huey options only when changed)."""
        out = {name: box.value for name, box in self.inputs.items()}
        for name, box in self.options.items():
            if box.value != tasks.OPTIONS[name].default:
                out[name] = box.value
        return out

    # -- actions
    def enqueue(self) -> list[str]:
        """Enqueue ``count`` copies of the chosen task; returns their ids ([] after an error)."""
        task, params, count = self.task.value, self.params(), self.count.value
        try:
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
                raise ValueError(f"count={count} must be from 1 to {MAX_COUNT}")
            tasks.validate(task, params)
            self.lab = lab = current_lab(self.lab)
            cursor = lab.cursor()  # before enqueueing, so the watcher misses no event
            handles = [lab.enqueue(task, **params) for _ in range(count)]
        except EXPECTED_ERRORS + (LabStopped,) as exc:
            self.message.value = error_html(explain_error(exc, "click Enqueue again"))
            return []
        ids = [h.id for h in handles]
        with self._lock:
            for task_id in ids:
                self.tracked[task_id] = _Tracked(task_id, task, lab)
            self._done.clear()
            if id(lab) not in self._threads:  # a restarted lab gets a watcher of its own
                self._stop.clear()
                thread = threading.Thread(target=self._watch, args=(lab, cursor),
                                          name="ql-enqueue-panel", daemon=True)
                self._threads[id(lab)] = thread
                thread.start()
        shown = ", ".join(i[:8] for i in ids[:3]) + (" …" if len(ids) > 3 else "")
        self.message.value = (f'<span class="ql-ok">enqueued {count} × {html.escape(task)} '
                              f'(id {html.escape(shown)})</span>')
        self._render()
        return ids

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every task enqueued here has finished; False on timeout."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        """Stop following task states (they stay as last shown)."""
        self._stop.set()

    @property
    def states(self) -> dict[str, str]:
        """Current state of each task this panel enqueued, oldest first."""
        with self._lock:
            return {i: t.state for i, t in self.tracked.items()}

    @property
    def ids(self) -> list[str]:
        """Ids of the tasks this panel enqueued, oldest first."""
        return list(self.states)

    # -- background
    def _pending(self, lab: Lab | None = None) -> list[_Tracked]:
        return [t for t in self.tracked.values()
                if t.state not in FINAL and (lab is None or t.lab is lab)]

    def _watch(self, lab: Lab, cursor: str) -> None:
        """The watcher thread of ``lab``: follow its tasks, then mark the panel done if all are."""
        conn = redis.Redis.from_url(lab.redis_url, socket_timeout=10)
        try:
            self._follow(conn, lab, cursor)
        except Exception:  # noqa: BLE001 - a widget thread must never die noisily
            logger.exception("EnqueuePanel watcher failed")
        finally:
            conn.close()
            with self._lock:
                self._threads.pop(id(lab), None)
                if not self._pending():
                    self._done.set()
            self._render()

    def _follow(self, conn: redis.Redis, lab: Lab, cursor: str) -> None:
        """Follow the events stream of ``lab`` (blocking reads) until its tasks finished.

        After :data:`LOST_CHECK` seconds without events it looks for tasks whose worker
        process died (Huey never runs them again) and shows them as lost.
        """
        dirty = False
        quiet_since = time.monotonic()
        while not self._stop.is_set() and self._has_pending(lab):
            # Throttled, never dropped: a change too soon after the last redraw is
            # drawn when the interval is up, so a short "executing" still shows.
            wait = self._last_draw + PANEL_MIN_INTERVAL - time.monotonic()
            if dirty and wait <= 0:
                self._render()
                dirty = False
            try:
                batch = events.read(conn, lab.name, since=cursor,
                                    block=max(wait, 0.01) if dirty else LOST_CHECK)
                if not batch and time.monotonic() - quiet_since >= LOST_CHECK:
                    dirty |= self._find_lost(conn, lab)
                    quiet_since = time.monotonic()
            except redis.RedisError:
                if lab not in running_labs():
                    self._lab_gone(lab)
                    return
                self._stop.wait(1.0)  # the server restarts (durability lesson): try again
                continue
            if batch:
                quiet_since = time.monotonic()
            cursor, changed = self._apply(lab, batch, cursor)
            dirty |= changed

    def _has_pending(self, lab: Lab) -> bool:
        with self._lock:
            return bool(self._pending(lab))

    def _apply(self, lab: Lab, batch: list[events.Event], cursor: str) -> tuple[str, bool]:
        """Apply ``batch`` to the tasks of ``lab``; returns the new cursor and whether any changed."""
        changed = False
        with self._lock:
            for event in batch:
                cursor = event.id
                tracked = self.tracked.get(event.task_id)
                if tracked is not None and tracked.lab is lab:
                    tracked.apply(event)
                    changed = True
        return cursor, changed

    def _find_lost(self, conn: redis.Redis, lab: Lab) -> bool:
        """Mark tasks of ``lab`` whose worker process died as lost; True if any."""
        lost = {b.task_id for b in events.busy(conn, lab.name) if b.lost}
        with self._lock:
            doomed = [t for t in self._pending(lab) if t.id in lost]
            for t in doomed:
                t.mark_lost("its worker process died while running it: Huey will not run "
                            "it again")
        return bool(doomed)

    def _lab_gone(self, lab: Lab) -> None:
        """``lab`` stopped: its unfinished tasks will never finish."""
        with self._lock:
            doomed = self._pending(lab)
            for t in doomed:
                t.mark_lost("the lab stopped before it finished")
        if doomed:
            self.message.value = error_html(
                f"the lab stopped before {len(doomed)} of these tasks finished: run "
                "`lab = Lab.start()` and enqueue again")

    def _render(self) -> None:
        self._last_draw = time.monotonic()
        with self._lock:
            items = list(self.tracked.values())
        if not items:
            self.table.value = '<span class="ql-muted">no task enqueued yet: click Enqueue</span>'
            return
        counts: dict[str, int] = {}
        for t in items:
            counts[t.state] = counts.get(t.state, 0) + 1
        summary = " · ".join(f"{n} {s}" for s, n in counts.items())
        rows = "".join(
            f'<tr class="ql-task" data-task-id="{html.escape(t.id)}"><td><code>{html.escape(t.id[:8])}</code></td>'
            f"<td>{html.escape(t.task)}</td><td>{badge(t.state)}</td>"
            f"<td>{_worker_cell(t)}</td><td>{html.escape(t.timeline())}{_detail(t)}</td></tr>"
            for t in items[-SHOW_ROWS:][::-1])
        more = f" (newest {SHOW_ROWS} shown)" if len(items) > SHOW_ROWS else ""
        noun = "task" if len(items) == 1 else "tasks"
        self.table.value = (f"<div>{len(items)} {noun}: {html.escape(summary)}{more}</div>"
                            '<table class="ql-table"><tr><th>id</th><th>task</th><th>state</th>'
                            f"<th>worker</th><th>timeline</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        states = self.states
        done = sum(1 for s in states.values() if s == "complete")
        return (f"<EnqueuePanel {self.task.value}({args}) x{self.count.value} · "
                f"{len(states)} enqueued, {done} complete>")

