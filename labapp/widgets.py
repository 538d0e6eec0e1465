"""Notebook widgets: enqueue tasks, change the workers, watch the queue live, predict then measure.

* :class:`EnqueuePanel` - pick a demo task and its parameters, enqueue it, watch each task go
  pending → executing → complete (or error).
* :class:`WorkerControl` - how many workers, threads or processes, and a button that kills one.
* :class:`Monitor` - queue length, what each worker runs, throughput, failures, stuck and lost
  tasks; updated live from a background thread (the lab's answer to Flower).
* :class:`Predict` - commit to an answer, run the experiment, compare the two.
* :class:`StackDiagram` - the lab's processes, drawn from the running system.

Every widget also works without a browser: call ``.click()`` on its buttons or set ``.value``,
which is how the tests and headless runs drive them. Errors appear inside the widget as one
line saying what to do; a button never prints a traceback. Set ``LAB_AUTO_PREDICT=1`` (tests
and grading do) and a :class:`Predict` commits its default answer as soon as it is displayed.
"""
from __future__ import annotations

import html
import logging
import os
import re
import signal
import threading
import time
import types
import weakref
from typing import Any, Callable, Sequence

import ipywidgets as w
import redis
from huey.storage import RedisStorage
from traitlets import TraitError

from labapp import events
from labapp import stats
from labapp import tasks
from labapp.config import ConfigError
from labapp.stack import Lab
from labapp.stack import LabError
from labapp.stack import running_labs

logger = logging.getLogger(__name__)

AUTO_ENV = "LAB_AUTO_PREDICT"
MAX_COUNT = 100          # tasks one click may enqueue (the table stays readable)
SHOW_ROWS = 8            # newest tasks listed by EnqueuePanel
PANEL_MIN_INTERVAL = 0.2  # EnqueuePanel redraws at most 5 times a second
MONITOR_MIN_INTERVAL = 0.5  # Monitor redraws at most twice a second
FINAL = {"complete", "error", "revoked", "expired", "canceled", "interrupted", "locked",
         "lost"}
_EXPECTED = (ValueError, LookupError, LabError, ConfigError, redis.RedisError,
             tasks.LabNotRunning, OSError)

_CSS = """<style>
.ql-box { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px; }
.ql-box .widget-html-content { line-height: 1.45; }
.ql-box .widget-hbox > .widget-html .widget-html-content { line-height: var(--jp-widgets-inline-height, 28px); }
.ql-box a { color: var(--jp-content-link-color, #1a73e8); text-decoration: underline; }
.ql-table { border-collapse: collapse; margin: 4px 0; }
.ql-table td, .ql-table th { padding: 2px 10px 2px 0; text-align: left; border-bottom: 1px solid #e4e4e4; }
.ql-table th { font-weight: 600; color: #555; }
.ql-state { padding: 1px 6px; border-radius: 8px; font-weight: 600; color: #fff; background: #888; }
.ql-state-pending, .ql-state-scheduled { background: #9e9e9e; }
.ql-state-executing, .ql-state-retrying { background: #1f77b4; }
.ql-state-complete { background: #2ca02c; }
.ql-state-error, .ql-state-lost, .ql-state-stuck { background: #d62728; }
.ql-error { color: #b2182b; font-weight: 600; }
.ql-ok { color: #1b7837; }
.ql-muted { color: #777; }
.ql-cards { display: flex; gap: 8px; flex-wrap: wrap; margin: 4px 0; }
.ql-card { border: 1px solid #ddd; border-radius: 6px; padding: 4px 10px; min-width: 84px; }
.ql-card b { display: block; font-size: 20px; }
.ql-bad b { color: #d62728; }
</style>"""


class LabStopped(RuntimeError):
    """The widget's lab was stopped and no lab with its name runs any more."""


def _auto() -> bool:
    """True when nobody is there to click (tests, grading): ``LAB_AUTO_PREDICT=1``."""
    return os.environ.get(AUTO_ENV, "").strip() not in ("", "0", "false", "no")


def _current(lab: Lab) -> Lab:
    """``lab`` if it runs, else the lab restarted under the same name (re-running the first cell)."""
    labs = running_labs()
    if lab in labs:
        return lab
    for other in labs:
        if other.name == lab.name:
            return other
    raise LabStopped(f"the lab ({lab.name}) is stopped: run `lab = Lab.start()` again, then retry")


def _error_html(message: str) -> str:
    first = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    return f'<span class="ql-error">⚠ {html.escape(first)}</span>'


def _explain(exc: BaseException, retry: str) -> str:
    """One line for the learner: what went wrong and what to do."""
    if isinstance(exc, (redis.RedisError, OSError)):
        return ("the queue's server is not reachable: restart the lab with "
                f"`lab = Lab.start()`, then {retry}")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (ValueError, LookupError)) and not isinstance(exc, ConfigError):
        return f"{text} - fix it, then {retry}"
    return text


def _badge(state: str) -> str:
    safe = html.escape(state)
    return f'<span class="ql-state ql-state-{safe}">{safe}</span>'


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _kinds(worker_type: str) -> str:
    return "processes" if worker_type == "process" else f"{worker_type}s"


def _plain(text: str) -> str:
    """HTML reduced to one line of text (for reprs)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", text))).strip()


class _LabWidget(w.VBox):
    """A VBox whose plain-text form is its whole repr (ipywidgets cuts it at 110 characters)."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict) and "text/plain" in data:
            data["text/plain"] = repr(self)  # what headless runs and graders read
        return data


# --------------------------------------------------------------------------- EnqueuePanel
class _Tracked:
    """What the panel knows about one task it enqueued."""

    __slots__ = ("id", "task", "state", "times", "worker", "detail")

    def __init__(self, task_id: str, task: str) -> None:
        self.id, self.task, self.state = task_id, task, "pending"
        self.times: dict[str, float] = {}
        self.worker, self.detail = "", ""

    def apply(self, event: events.Event) -> None:
        kind = "pending" if event.kind == "enqueued" else event.kind
        if event.kind == "error" and event.retries > 0:
            kind = "retrying"  # the task will run again
        self.times.setdefault(kind, event.time)
        if event.kind == "executing":
            self.worker = event.worker
        if event.kind == "error":
            self.detail = event.detail
        if self.state not in FINAL or kind in FINAL:
            self.state = kind

    def timeline(self) -> str:
        start = self.times.get("pending")
        if start is None:
            return ""
        steps = [f"{kind} +{_ms(t - start)}" for kind, t in self.times.items() if kind != "pending"]
        return " → ".join(["pending", *steps])


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


class EnqueuePanel(_LabWidget):
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
        self._thread: threading.Thread | None = None
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
            w.HTML(_CSS),
            w.HBox([self.task, self._params_box]),
            w.HBox([w.HTML('<span class="ql-muted">Huey options:</span>'), *self.options.values()]),
            w.HBox([self.count, self.button]),
            self.message, self.table])
        self.add_class("ql-box")
        self.add_class("ql-enqueue")
        if task not in tasks.SPECS:
            self.message.value = _error_html(
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
            self.message.value = _error_html(f"{problems[0]} (showing the default)"
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
            self.lab = lab = _current(self.lab)
            cursor = lab.cursor()  # before enqueueing, so the watcher misses no event
            handles = [lab.enqueue(task, **params) for _ in range(count)]
        except _EXPECTED + (LabStopped,) as exc:
            self.message.value = _error_html(_explain(exc, "click Enqueue again"))
            return []
        ids = [h.id for h in handles]
        with self._lock:
            for task_id in ids:
                self.tracked[task_id] = _Tracked(task_id, task)
            self._done.clear()
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._watch, args=(lab, cursor),
                                                name="ql-enqueue-panel", daemon=True)
                self._thread.start()
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
    def _pending(self) -> list[str]:
        return [i for i, t in self.tracked.items() if t.state not in FINAL]

    def _watch(self, lab: Lab, cursor: str) -> None:
        """Follow the events stream (blocking reads: no polling) until all tasks finished."""
        conn = redis.Redis.from_url(lab.redis_url, socket_timeout=10)
        dirty = False
        try:
            while not self._stop.is_set():
                with self._lock:
                    if not self._pending():
                        break
                # Throttled, never dropped: a change too soon after the last redraw is
                # drawn when the interval is up, so a short "executing" still shows.
                wait = self._last_draw + PANEL_MIN_INTERVAL - time.monotonic()
                if dirty and wait <= 0:
                    self._render()
                    dirty = False
                try:
                    batch = events.read(conn, lab.name, since=cursor,
                                        block=max(wait, 0.01) if dirty else 1.0)
                except redis.RedisError:
                    if lab not in running_labs():
                        self.message.value = _error_html(
                            "the lab stopped before these tasks finished: run `lab = Lab.start()`")
                        with self._lock:
                            for t in self.tracked.values():
                                if t.state not in FINAL:
                                    t.state = "lost"
                        break
                    self._stop.wait(1.0)  # the server restarts (durability lesson): try again
                    continue
                with self._lock:
                    for event in batch:
                        cursor = event.id
                        tracked = self.tracked.get(event.task_id)
                        if tracked is not None:
                            tracked.apply(event)
                            dirty = True
        except Exception:  # noqa: BLE001 - a widget thread must never die noisily
            logger.exception("EnqueuePanel watcher failed")
        finally:
            conn.close()
            with self._lock:
                self._thread = None
                if not self._pending():
                    self._done.set()
            self._render()

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
            f"<td>{html.escape(t.task)}</td><td>{_badge(t.state)}</td>"
            f"<td>{html.escape(t.worker)}</td><td>{html.escape(t.timeline())}"
            f"{'<br><small>last error: ' + html.escape(t.detail) + '</small>' if t.detail else ''}</td></tr>"
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


# --------------------------------------------------------------------------- WorkerControl
class WorkerControl(_LabWidget):
    """Choose how many workers run and of which type, kill one, and see their PIDs.

    From code: set ``control.workers.value`` / ``control.worker_type.value`` and call
    ``control.apply_button.click()``; ``control.kill_button.click()`` kills the worker chosen
    in ``control.target``.
    """

    def __init__(self, lab: Lab, max_workers: int = 8) -> None:
        self.lab = lab
        self.workers = w.IntSlider(value=min(lab.config.workers, max_workers), min=0,
                                   max=max_workers, description="workers",
                                   continuous_update=False)
        self.worker_type = w.ToggleButtons(options=["thread", "process"],
                                           value=lab.config.worker_type,
                                           tooltips=["N threads in one consumer process",
                                                     "N separate worker processes"],
                                           style={"button_width": "80px"})
        self.apply_button = w.Button(description="Apply", button_style="primary", icon="check",
                                     tooltip="restart the workers with these settings")
        self.target = w.Dropdown(description="worker", options=[],
                                 layout=w.Layout(width="200px"))
        self.kill_button = w.Button(description="Kill a worker", button_style="danger",
                                    icon="skull", tooltip="SIGKILL, as a crash would")
        self.message = w.HTML()
        self.table = w.HTML()
        self.apply_button.on_click(lambda _b: self.apply())
        self.kill_button.on_click(lambda _b: self.kill())
        super().__init__([w.HTML(_CSS),
                          w.HBox([self.workers, self.worker_type, self.apply_button]),
                          w.HBox([self.target, self.kill_button]),
                          self.message, self.table])
        self.add_class("ql-box")
        self.add_class("ql-workers")
        self.refresh()

    def apply(self) -> bool:
        """Restart the workers with the chosen count and type (graceful); True on success."""
        try:
            self.lab = lab = _current(self.lab)
            self.message.value = '<span class="ql-muted">restarting the workers…</span>'
            t0 = time.perf_counter()
            lab.scale(self.workers.value, self.worker_type.value)
        except _EXPECTED + (LabStopped,) as exc:
            self.message.value = _error_html(_explain(exc, "click Apply again"))
            return False
        n = self.workers.value
        self.message.value = (f'<span class="ql-ok">{n} {self.worker_type.value} worker'
                              f'{"s" if n != 1 else ""} running ({time.perf_counter() - t0:.1f} s)'
                              "</span>")
        self.refresh()
        return True

    def kill(self) -> int | None:
        """SIGKILL the chosen worker; returns the pid killed (None after an error)."""
        try:
            self.lab = lab = _current(self.lab)
            names = lab.status()["worker_names"]
            if not names:
                raise LabError("no worker is running: move the slider above 0 and click Apply")
            index = names.index(self.target.value) if self.target.value in names else 0
            before = lab.status()["workers"]
            pid = lab.kill_worker(index, signal.SIGKILL)
        except _EXPECTED + (LabStopped,) as exc:
            self.message.value = _error_html(_explain(exc, "click Kill again"))
            return None
        if lab.config.worker_type == "thread":
            self.message.value = _error_html(
                f"killed pid {pid}: thread workers share that one process, so all "
                f"{len(before)} died. Queued tasks wait in the broker; click Apply to start "
                "workers again")
        else:
            self.message.value = (f'<span class="ql-ok">killed {html.escape(names[index])} '
                                  f"(pid {pid}); Huey's consumer starts a replacement in about "
                                  "a second - watch for its new pid below</span>")
        threading.Thread(target=self._follow, args=(lab, before), name="ql-worker-control",
                         daemon=True).start()
        self.refresh()
        return pid

    def _follow(self, lab: Lab, before: list[int], timeout: float = 5.0) -> None:
        """Refresh until the worker PIDs changed (a replacement started) or ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and lab in running_labs():
                if lab.status()["workers"] != before:
                    break
                time.sleep(0.2)  # a few polls for at most 5 s after a click
            self.refresh()
        except Exception:  # noqa: BLE001 - best effort display refresh
            logger.debug("WorkerControl refresh after kill failed", exc_info=True)

    @property
    def pids(self) -> list[int]:
        """PIDs of the running workers (thread workers all show their consumer's pid)."""
        try:
            return _current(self.lab).status()["workers"]
        except (LabStopped, redis.RedisError):
            return []

    def refresh(self) -> None:
        """Redraw the list of workers and their PIDs."""
        try:
            lab = _current(self.lab)
            st = lab.status()
        except (LabStopped, redis.RedisError) as exc:
            self.table.value = _error_html(_explain(exc, "click Apply"))
            self.target.options = []
            return
        names, pids = st["worker_names"], st["workers"]
        keep = self.target.value if self.target.value in names else (names[0] if names else None)
        if tuple(names) != tuple(self.target.options):
            self.target.options = names
        self.target.value = keep
        if not names:
            self.table.value = ('<span class="ql-muted">no worker running: tasks wait in the '
                                "queue until you start some</span>")
            return
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td><code>{p}</code></td></tr>"
                       for n, p in zip(names, pids))
        where = (f"threads inside consumer pid {st['consumer']}" if st["worker_type"] == "thread"
                 else f"processes forked by consumer pid {st['consumer']}")
        self.table.value = (f"<div>{len(names)} {html.escape(st['worker_type'])} workers "
                            f"({html.escape(where)}) · Flask pid {st['web']} · broker pid "
                            f"{st['broker']}</div><table class='ql-table'><tr><th>worker</th>"
                            f"<th>pid</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        return (f"<WorkerControl {self.workers.value} {self.worker_type.value} workers "
                f"selected · running pids {self.pids}>")


# --------------------------------------------------------------------------- Monitor
class Monitor(_LabWidget):
    """Live view of the lab: queue length, busy workers, throughput, failures, stuck/lost tasks.

    Updates come from a daemon thread that sleeps on the events stream (a blocking read), so
    an idle lab costs nothing; it redraws at most twice a second and stops when the lab
    stops or on :meth:`stop`. :meth:`refresh` redraws at once and returns the numbers.
    """

    _instances: "weakref.WeakSet[Monitor]" = weakref.WeakSet()

    def __init__(self, lab: Lab, interval: float = MONITOR_MIN_INTERVAL,
                 stuck_after: float = stats.STUCK_AFTER, idle_wait: float = 2.0,
                 start: bool = True) -> None:
        self.lab = lab
        self.interval = max(float(interval), MONITOR_MIN_INTERVAL)
        self.stuck_after = stuck_after
        self.idle_wait = idle_wait
        self.snapshot: dict[str, Any] | None = None
        self.updates = 0
        self.html = w.HTML()
        self.status = w.HTML()
        self._stop = threading.Event()
        self._status_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._view = types.SimpleNamespace(
            name=lab.name, storage=RedisStorage(lab.name, url=lab.redis_url))
        super().__init__([w.HTML(_CSS), self.html, self.status])
        self.add_class("ql-box")
        self.add_class("ql-monitor")
        for other in list(Monitor._instances):  # re-running the cell replaces the old monitor
            if other.lab.name == lab.name and other.running:
                other.stop("stopped: a newer Monitor for this lab runs below")
        Monitor._instances.add(self)
        try:
            self.refresh()
        except redis.RedisError as exc:
            self.status.value = _error_html(_explain(exc, "create the Monitor again"))
        if start:
            self.start()

    @property
    def running(self) -> bool:
        """True while the background thread updates the display."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> "Monitor":
        """Start (or keep) the live updates."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ql-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, reason: str = "stopped: call .start() to resume") -> None:
        """Stop the live updates (the last numbers stay on screen)."""
        with self._status_lock:
            self._stop.set()
            self.status.value = f'<span class="ql-muted">{html.escape(reason)}</span>'

    def _live_status(self, value: str) -> None:
        """Show ``value`` unless the monitor was stopped meanwhile (its reason stays)."""
        with self._status_lock:
            if not self._stop.is_set():
                self.status.value = value

    def refresh(self) -> dict[str, Any]:
        """Read the numbers now, redraw, and return them (the same as ``/api/stats``)."""
        snap = stats.snapshot(self._view, stuck_after=self.stuck_after)
        conn = self._view.storage.conn
        snap["workers"] = sorted((k.decode() for k in conn.hkeys(f"lab.{self.lab.name}.workers")),
                                 key=lambda n: int(n.rsplit("-", 1)[-1]) if n[-1].isdigit() else 0)
        self.snapshot = snap
        self.updates += 1
        self.html.value = self._draw(snap)
        return snap

    def _loop(self) -> None:
        conn = redis.Redis.from_url(self.lab.redis_url, socket_timeout=self.idle_wait + 5)
        stream = events.keys(self.lab.name)["stream"]
        try:
            while not self._stop.is_set():
                if self.lab not in running_labs():
                    self.stop("lab stopped: the monitor is off (run `lab = Lab.start()` and "
                              "create a new Monitor)")
                    break
                t0 = time.monotonic()
                try:
                    # Taken before the snapshot, so an event arriving meanwhile wakes us below.
                    cursor = events.last_id(conn, self.lab.name)
                    snap = self.refresh()
                    self._live_status(f'<span class="ql-muted">live · updated '
                                      f'{time.strftime("%H:%M:%S")}</span>')
                    # Throttle: at most one redraw per interval, however busy the queue.
                    if self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0))):
                        break
                    # Sleep on the events stream; wake early only when something happens.
                    # While tasks run, wake at least each second so "running for" ages.
                    busy = snap["busy"] or snap["queued"] or snap["scheduled"]
                    block = 1.0 if busy else self.idle_wait
                    conn.xread({stream: cursor}, count=1, block=int(block * 1000))
                except redis.RedisError:
                    self._live_status(_error_html("the queue's server is not reachable: "
                                                  "retrying every second"))
                    if self._stop.wait(1.0):
                        break
        except Exception:  # noqa: BLE001 - a widget thread must never die noisily
            logger.exception("Monitor thread failed")
            self._live_status(_error_html("the monitor failed: create a new Monitor(lab)"))
        finally:
            conn.close()

    def _draw(self, s: dict[str, Any]) -> str:
        counts = s["counts"]
        cards = [("queued", s["queued"], False), ("scheduled", s["scheduled"], False),
                 ("running", len(s["busy"]), False), ("complete", counts.get("complete", 0), False),
                 ("errors", counts.get("error", 0), counts.get("error", 0) > 0),
                 ("tasks/s", s["throughput_per_s"], False),
                 ("stuck/lost", len(s["stuck"]), bool(s["stuck"]))]
        cards_html = "".join(
            f'<div class="ql-card{" ql-bad" if bad else ""}" data-metric="{name}">'
            f"<b>{value}</b>{name}</div>" for name, value, bad in cards)
        busy = {b["worker"]: b for b in s["busy"]}
        names = list(dict.fromkeys([*s.get("workers", []), *busy]))
        rows = []
        for name in names:
            b = busy.get(name)
            if b is None:
                rows.append(f"<tr><td>{html.escape(name)}</td><td class='ql-muted'>idle</td>"
                            "<td></td><td></td></tr>")
                continue
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(b['task'])} "
                        f"<code>{html.escape(b['task_id'][:8])}</code></td>"
                        f"<td>{b['running_for']:.1f} s</td><td>{_badge(b['state'])}</td></tr>")
        table = ("<table class='ql-table'><tr><th>worker</th><th>task</th><th>running for</th>"
                 f"<th>state</th></tr>{''.join(rows)}</table>" if rows else
                 "<div class='ql-muted'>no worker running</div>")
        try:
            link = (f' · <a href="{html.escape(self.lab.public_url)}monitor" target="_blank">'
                    "open the /monitor page</a>")
        except Exception:  # noqa: BLE001 - the port is unknown once the lab stopped
            link = ""
        return (f"<div><b>Monitor</b> <span class='ql-muted'>{html.escape(s['lab'])} · throughput "
                f"over the last {stats.WINDOW:.0f} s · stuck = running over "
                f"{self.stuck_after:g} s, lost = its worker died{link}</span></div>"
                f"<div class='ql-cards'>{cards_html}</div>{table}")

    def __repr__(self) -> str:
        s = self.snapshot or {}
        c = s.get("counts", {})
        state = "live" if self.running else "stopped"
        return (f"<Monitor {self.lab.name} {state}: queued {s.get('queued', '?')}, running "
                f"{len(s.get('busy', []))}, complete {c.get('complete', 0)}, errors "
                f"{c.get('error', 0)}, stuck/lost {len(s.get('stuck', []))}>")


# --------------------------------------------------------------------------- Predict
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


# --------------------------------------------------------------------------- StackDiagram
class StackDiagram:
    """The lab's parts as they run now: producer → broker (the queue) → workers, with real PIDs."""

    def __init__(self, lab: Lab) -> None:
        self.lab = _current(lab)
        st = self.lab.status()
        huey = self.lab.huey
        self.status = st
        self.queue_key: str = huey.storage.queue_key
        self.queue_length: int = self.lab.queue_length()
        self.kernel_pid = os.getpid()

    def __repr__(self) -> str:
        st = self.status
        workers = ", ".join(f"{n} (pid {p})" for n, p in zip(st["worker_names"], st["workers"]))
        return "\n".join([
            f"notebook kernel (pid {self.kernel_pid}) ─┐",
            f"Flask app 'web' (pid {st['web']}, {st['url']}) ─┴─ enqueue ─► "
            f"broker (pid {st['broker']}, {st['redis_url']})",
            f"    queue {self.queue_key!r}: {self.queue_length} waiting ─► "
            f"workers: {workers or 'none'} ({_kinds(st['worker_type'])} of consumer pid "
            f"{st['consumer']})",
            "    ◄── results and events go back through the broker",
        ])

    def _repr_html_(self) -> str:
        st = self.status
        e = html.escape

        def box(color: str, body: str) -> str:
            return (f"<div style='border:2px solid {color};border-radius:8px;padding:5px 9px;"
                    f"margin:3px 0;background:#fff'>{body}</div>")

        def column(width: int, boxes: str, caption: str) -> str:
            return (f"<div style='width:{width}px;flex:none;display:flex;flex-direction:column;"
                    f"justify-content:center'>{boxes}<div style='color:#666;font-size:12px'>"
                    f"{caption}</div></div>")

        def arrow(label: str) -> str:
            return ("<div style='flex:none;align-self:center;text-align:center;color:#555;"
                    f"padding:0 4px'>{label}<div style='font-size:22px;line-height:1'>⟶</div></div>")

        wrap = "style='word-break:break-all'"
        workers = "".join(box("#2ca02c", f"<b>{e(n)}</b> · pid <code>{p}</code>")
                          for n, p in zip(st["worker_names"], st["workers"])) or \
            "<div style='color:#777'>no worker running</div>"
        producers = (box("#1f77b4", f"<b>notebook</b> (this kernel)<br>pid <code>{self.kernel_pid}</code>")
                     + box("#1f77b4", f"<b>Flask app</b> (web)<br>pid <code>{st['web']}</code><br>"
                                      f"<code {wrap}>{e(st['url'])}</code>"))
        broker = box("#ff7f0e", f"<b>broker</b> (Valkey, speaks Redis)<br>pid "
                                f"<code>{e(str(st['broker']))}</code><br><code {wrap}>"
                                f"{e(st['redis_url'])}</code><br>queue <code {wrap}>"
                                f"{e(self.queue_key)}</code>: <b>{self.queue_length}</b> waiting")
        return (
            "<div class='ql-diagram' style='font-family:system-ui,sans-serif;font-size:13px;"
            "display:flex;align-items:stretch;gap:2px;overflow-x:auto'>"
            + column(215, producers, "producers: they enqueue")
            + arrow("enqueue")
            + column(280, broker, "holds tasks, results and events")
            + arrow("dequeue")
            + column(185, workers, f"workers: {_kinds(st['worker_type'])} of consumer pid "
                                   f"<code>{st['consumer']}</code>")
            + "</div><div style='font-size:12px;color:#666;margin-top:4px'>Results and events "
            "flow back into the broker; the notebook and the Flask app read them from there.</div>")


__all__ = ["EnqueuePanel", "WorkerControl", "Monitor", "Predict", "StackDiagram", "LabStopped"]
