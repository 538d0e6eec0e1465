"""Shared pieces of the exercise checks: the registry, the "not yet" signal and helpers.

A check registers itself with :func:`exercise`; :data:`EXERCISES` maps each exercise id to
its :class:`Exercise` in the order the modules register them (01 first). The helpers run
the learner's code safely (:func:`call`), load their task module (:func:`load_module`)
and read the event stream. A check that needs other workers uses
:func:`labapp.experiments._control.arranged`, as the experiments do.
"""
from __future__ import annotations

import http.client
import dataclasses
import random
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from huey.api import TaskWrapper

from labapp.config import ConfigError

if TYPE_CHECKING:
    from labapp.stack import Lab

STUB_HINT = "replace the stub in the '# Your code here' cell with your code, run it, then check again"


class NotYet(Exception):
    """The exercise is not solved yet; ``hint`` says what was measured and what to try."""

    def __init__(self, hint: str, **details: Any) -> None:
        super().__init__(hint)
        self.hint = hint
        self.details = details


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One graded exercise: its id, the notebook it belongs to and the function that checks it."""

    id: str
    notebook: str
    usage: str
    run: Callable[..., tuple[str, dict[str, Any]]]


EXERCISES: dict[str, Exercise] = {}


def exercise(ex_id: str, notebook: str, usage: str) -> Callable[[Callable[..., Any]], Any]:
    """Register a check: ``run(lab, **learner_objects) -> (summary, details)`` or raise NotYet."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        EXERCISES[ex_id] = Exercise(ex_id, notebook, usage, fn)
        return fn
    return register


# --------------------------------------------------------------------------- helpers
def unsolved(value: Any) -> bool:
    """True for the placeholders an exercise starts with (``None`` or ``...``)."""
    return value is None or value is Ellipsis


def require_function(name: str, fn: Any, usage: str) -> Callable[..., Any]:
    """``fn`` must be the learner's function; ``usage`` is the check call to show them."""
    if unsolved(fn):
        raise NotYet(f"{name} is not defined yet: write it in the '# Your code here' cell, "
                     f"run that cell, then run {usage}")
    if not callable(fn):
        raise NotYet(f"{name} should be a function, got {type(fn).__name__}: pass the function "
                     f"itself, as in {usage}")
    return fn


def call(label: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run learner code; its exceptions become a hint (the check itself never crashes)."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise NotYet(f"{label} still raises NotImplementedError: {STUB_HINT}") from None
    except (NotYet, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - any learner error is a hint, not a crash
        raise NotYet(f"{label} raised {type(exc).__name__}: {exc}") from None


def load_module(lab: Lab, module: str, *names: str) -> Any:
    """Import the learner's task module here and in the workers; require ``names`` in it."""
    if not (Path.cwd() / f"{module}.py").is_file():
        raise NotYet(f"there is no {module}.py next to this notebook yet: run the "
                     f"%%writefile {module}.py cell first")
    try:
        loaded = lab.load_tasks(module)
    except ConfigError as exc:
        raise NotYet(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the learner's module failed to import
        raise NotYet(f"importing {module}.py failed with {type(exc).__name__}: {exc}") from None
    for name in names:
        if not hasattr(loaded, name):
            raise NotYet(f"{module}.py defines no {name}: write it in the %%writefile cell")
    return loaded


def require_task(module: str, obj: Any, name: str) -> TaskWrapper:
    """``obj`` must be a Huey task (a function decorated with ``@huey.task()``)."""
    if not isinstance(obj, TaskWrapper):
        raise NotYet(f"{module}.{name} is a plain {type(obj).__name__}, not a task: decorate "
                     f"it with @huey.task() so calling it enqueues a job")
    return obj


def by_task(events: list[Any]) -> dict[str, list[Any]]:
    """Events grouped by task id, in stream order."""
    out: dict[str, list[Any]] = {}
    for event in events:
        out.setdefault(event.task_id, []).append(event)
    return out


def completed(events: list[Any]) -> bool:
    """True when one of a task's ``events`` is ``complete``."""
    return any(e.kind == "complete" for e in events)


def first_error(events: list[Any]) -> str:
    """The exception text of the first ``error`` event ('' when none)."""
    return next((e.detail for e in events if e.kind == "error"), "")


def failure_hint(detail: str) -> str:
    """A worker-side error, with the stub hint when it is the exercise's placeholder."""
    if detail.startswith("NotImplementedError"):
        return f"NotImplementedError (still the stub): {STUB_HINT}"
    return detail or "unknown error"


def token() -> str:
    """A short random tag, so keys of one check run never meet those of an earlier run."""
    return uuid.uuid4().hex[:8]


def draw() -> random.Random:
    """A random generator for one check run, seeded by the operating system.

    Scenarios drawn with it differ on every run, so an answer remembered from an earlier
    run (or copied from a hint) does not pass the next one. Checks put what they drew in
    ``details``, so a teacher can see the scenario a learner was judged on.
    """
    return random.SystemRandom()


def worker_pids(lab: Lab) -> set[int]:
    """Process ids of the lab's running workers (thread workers share their consumer's)."""
    return set(lab.status()["workers"])


def on_worker(events: list[Any], kind: str, pids: set[int]) -> Any:
    """The first ``kind`` event among a task's ``events`` recorded by a worker in ``pids``."""
    return next((e for e in events if e.kind == kind and e.pid in pids), None)


def enqueued_with(events: list[Any], task: str, text: str) -> list[list[Any]]:
    """Event lists (by task) of ``task`` tasks whose ``enqueued`` detail mentions ``text``."""
    found = []
    for evs in by_task(events).values():
        if any(e.kind == "enqueued" and e.task == task and text in e.detail for e in evs):
            found.append(evs)
    return found


def timed_post(port: int, path: str) -> tuple[int, bytes, float]:
    """POST an empty body to 127.0.0.1:``port``; returns (status, body, seconds waited)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    start = time.perf_counter()
    try:
        conn.request("POST", path, body=b"", headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read(), time.perf_counter() - start
    finally:
        conn.close()
