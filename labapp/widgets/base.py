"""Shared pieces of the widgets: their CSS, one-line error messages, and the base class."""
from __future__ import annotations

import html
import logging
import threading
import weakref
from typing import Any, Callable, TYPE_CHECKING

import ipywidgets as w
import redis

from labapp import events
from labapp import tasks
from labapp.config import ConfigError
from labapp.stack import LabError
from labapp.stack import running_labs

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)

EXPECTED_ERRORS = (ValueError, LookupError, LabError, ConfigError, redis.RedisError,
             tasks.LabNotRunning, OSError)

CSS = """<style>
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


def current_lab(lab: Lab) -> Lab:
    """``lab`` if it runs, else the lab restarted under the same name (re-running the first cell)."""
    labs = running_labs()
    if lab in labs:
        return lab
    for other in labs:
        if other.name == lab.name:
            return other
    raise LabStopped(f"the lab ({lab.name}) is stopped: run `lab = Lab.start()` again, then retry")


def plural(n: int, noun: str) -> str:
    """``1 thread worker``, ``3 thread workers``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


STOP_POLL = 5.0   # seconds: an external server does not die with the lab, so look this often
_WATCHED: dict[int, tuple[threading.Thread, list[weakref.WeakMethod]]] = {}
_WATCH_LOCK = threading.Lock()


def on_lab_stop(lab: Lab, callback: Callable[[], None]) -> None:
    """Call ``callback`` (a bound method, held weakly) once ``lab`` stops.

    One daemon thread per lab sleeps in a blocking read on the lab's server, which fails the
    moment ``lab.stop()`` kills the server; an external server is looked at every
    :data:`STOP_POLL` seconds. The thread ends with the lab.
    """
    with _WATCH_LOCK:
        entry = _WATCHED.get(id(lab))
        if entry is None or not entry[0].is_alive():
            listeners: list[weakref.WeakMethod] = []
            thread = threading.Thread(target=_watch_stop, args=(lab, listeners),
                                      name=f"ql-stop-{lab.name}", daemon=True)
            entry = _WATCHED[id(lab)] = (thread, listeners)
            thread.start()
        ref = weakref.WeakMethod(callback)  # type: ignore[arg-type]
        if ref not in entry[1]:
            entry[1].append(ref)


def _watch_stop(lab: Lab, listeners: list[weakref.WeakMethod]) -> None:
    conn = None
    try:
        conn = redis.Redis.from_url(lab.redis_url, socket_timeout=STOP_POLL + 5)
        # a key nobody writes: BLPOP just waits
        never = events.key(lab.name, "widgets", "stop-watch")
        while lab in running_labs():
            try:
                conn.blpop([never], timeout=STOP_POLL)
            except redis.RedisError:
                # The server went away: lab.stop() is under way (or a crash). Wait for it.
                threading.Event().wait(0.2)
    except Exception:  # noqa: BLE001 - a watcher must never die noisily
        logger.debug("stop watcher failed", exc_info=True)
    finally:
        if conn is not None:
            conn.close()
        with _WATCH_LOCK:
            _WATCHED.pop(id(lab), None)
    for ref in list(listeners):
        callback = ref()
        if callback is not None:
            try:
                callback()
            except Exception:  # noqa: BLE001
                logger.debug("stop callback failed", exc_info=True)


def first_line(text: object, fallback: str) -> str:
    """The first line of ``text`` (stripped), or ``fallback`` when there is none."""
    lines = str(text).strip().splitlines()
    return lines[0] if lines else fallback


def error_html(message: str) -> str:
    return f'<span class="ql-error">⚠ {html.escape(first_line(message, "failed"))}</span>'


def explain_error(exc: BaseException, retry: str) -> str:
    """One line for the learner: what went wrong and what to do."""
    if isinstance(exc, (redis.RedisError, OSError)):
        return ("the queue's server is not reachable: restart the lab with "
                f"`lab = Lab.start()`, then {retry}")
    text = first_line(exc, type(exc).__name__)
    if isinstance(exc, (ValueError, LookupError)) and not isinstance(exc, ConfigError):
        return f"{text} - fix it, then {retry}"
    return text


def badge(state: str) -> str:
    safe = html.escape(state)
    return f'<span class="ql-state ql-state-{safe}">{safe}</span>'


class LabWidget(w.VBox):
    """A VBox whose plain-text form is its whole repr (ipywidgets cuts it at 110 characters)."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict) and "text/plain" in data:
            data["text/plain"] = repr(self)  # what headless runs and graders read
        return data
