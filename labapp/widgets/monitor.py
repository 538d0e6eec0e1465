"""Monitor: queue length, busy workers, throughput, failures, stuck and lost tasks, live."""
from __future__ import annotations

import html
import logging
import threading
import time
import types
import weakref
from typing import Any, TYPE_CHECKING

import ipywidgets as w
import redis
from huey.storage import RedisStorage

from labapp import events
from labapp import stats
from labapp.stack import running_labs
from labapp.widgets.base import CSS
from labapp.widgets.base import LabWidget
from labapp.widgets.base import badge
from labapp.widgets.base import error_html
from labapp.widgets.base import explain_error

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)

MONITOR_MIN_INTERVAL = 0.5  # Monitor redraws at most twice a second


def _rate(s: dict[str, Any]) -> str:
    """The tasks/s card: a rate only when something finished over a measurable time."""
    if not s.get("done_recent") or not s.get("rate_span_s"):
        return "–"
    return f"{s['throughput_per_s']:g}"


def _rate_note(s: dict[str, Any]) -> str:
    """What the tasks/s card was computed from, in words (numbers of this snapshot)."""
    done, span = s.get("done_recent", 0), s.get("rate_span_s", 0.0)
    if not done:
        return f"tasks/s: nothing finished in the last {stats.WINDOW:.0f} s"
    noun = "task" if done == 1 else "tasks"
    if not span:
        return f"tasks/s: {done} {noun} finished, too close together to time"
    return f"tasks/s = {done} {noun} finished ÷ {span:.1f} s of activity (within the last {stats.WINDOW:.0f} s)"


def _stuck_note(s: dict[str, Any]) -> str:
    """The stuck rule and each known task's limit, from this snapshot."""
    limits = " · ".join(f"{task} {lim['describe']}"
                        for task, lim in s.get("stuck_limits", {}).items())
    return (f"{s.get('stuck_rule', 'stuck = running too long')}"
            f"{': ' + limits if limits else ''}; lost = its worker died.")


class Monitor(LabWidget):
    """Live view of the lab: queue length, busy workers, throughput, failures, stuck/lost tasks.

    A task is stuck when it runs longer than ``stuck_after`` seconds if given, else longer than
    its own limit, measured from its recent run times (:func:`labapp.stats.stuck_limit`); the
    footnote says each task's limit.

    Updates come from a daemon thread that sleeps on the events stream (a blocking read), so
    an idle lab costs nothing; it redraws at most twice a second and stops when the lab
    stops or on :meth:`stop`. :meth:`refresh` redraws at once and returns the numbers.
    """

    _instances: "weakref.WeakSet[Monitor]" = weakref.WeakSet()

    def __init__(self, lab: Lab, interval: float = MONITOR_MIN_INTERVAL,
                 stuck_after: float | None = stats.STUCK_AFTER, idle_wait: float = 2.0,
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
        super().__init__([w.HTML(CSS), self.html, self.status])
        self.add_class("ql-box")
        self.add_class("ql-monitor")
        for other in list(Monitor._instances):  # re-running the cell replaces the old monitor
            if other.lab.name == lab.name and other.running:
                other.stop("stopped: a newer Monitor for this lab runs below")
        Monitor._instances.add(self)
        try:
            self.refresh()
        except redis.RedisError as exc:
            self.status.value = error_html(explain_error(exc, "create the Monitor again"))
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
        workers = conn.hkeys(events.key(self.lab.name, "workers"))
        snap["workers"] = sorted((k.decode() for k in workers),
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
                    self._live_status(error_html("the queue's server is not reachable: "
                                                  "retrying every second"))
                    if self._stop.wait(1.0):
                        break
        except Exception:  # noqa: BLE001 - a widget thread must never die noisily
            logger.exception("Monitor thread failed")
            self._live_status(error_html("the monitor failed: create a new Monitor(lab)"))
        finally:
            conn.close()

    def _draw(self, s: dict[str, Any]) -> str:
        counts = s["counts"]
        cards = [("queued", s["queued"], False), ("scheduled", s["scheduled"], False),
                 ("running", len(s["busy"]), False), ("complete", counts.get("complete", 0), False),
                 ("errors", counts.get("error", 0), counts.get("error", 0) > 0),
                 ("tasks/s", _rate(s), False),
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
                            "<td></td><td></td><td></td></tr>")
                continue
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(b['task'])} "
                        f"<code>{html.escape(b['task_id'][:8])}</code></td>"
                        f"<td>{b['running_for']:.1f} s</td>"
                        f"<td>{stats.format_seconds(b['stuck_after'])}</td>"
                        f"<td>{badge(b['state'])}</td></tr>")
        table = ("<table class='ql-table'><tr><th>worker</th><th>task</th><th>running for</th>"
                 f"<th>stuck after</th><th>state</th></tr>{''.join(rows)}</table>" if rows else
                 "<div class='ql-muted'>no worker running</div>")
        try:
            link = (f' · <a href="{html.escape(self.lab.public_url)}monitor" target="_blank">'
                    "open the /monitor page</a>")
        except Exception:  # noqa: BLE001 - the port is unknown once the lab stopped
            link = ""
        return (f"<div><b>Monitor</b> <span class='ql-muted'>{html.escape(s['lab'])} · "
                f"{html.escape(_rate_note(s))}{link}</span></div>"
                f"<div class='ql-cards'>{cards_html}</div>{table}"
                f"<div class='ql-muted'>{html.escape(_stuck_note(s))}</div>")

    def __repr__(self) -> str:
        s = self.snapshot or {}
        c = s.get("counts", {})
        state = "live" if self.running else "stopped"
        return (f"<Monitor {self.lab.name} {state}: queued {s.get('queued', '?')}, running "
                f"{len(s.get('busy', []))}, complete {c.get('complete', 0)}, errors "
                f"{c.get('error', 0)}, stuck/lost {len(s.get('stuck', []))}>")

