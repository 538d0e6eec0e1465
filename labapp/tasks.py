"""The Huey instances of the lab, and the demo tasks the curriculum uses.

One task catalogue, one Huey instance per lab:

* ``huey`` (this module's) is where tasks are *defined*: the demo tasks below and every
  learner module (``from labapp.tasks import huey`` then ``@huey.task()``) register on it.
* Each :class:`~labapp.stack.Lab` and each Flask app owns a Huey instance made by
  :func:`make_huey`: its own name and connection, sharing that one catalogue, so it can
  enqueue (``lab.huey.enqueue(task.s(...))``) and read back any task this process defined.
  Two labs in one process never touch each other's instance.
* Calling a task directly (``shout("hi")``, ``huey.result(id)``) goes through the module's
  ``huey``, so it has to point at a lab. In a worker or web process it is configured once at
  import from ``LAB_NAME``/``LAB_REDIS_URL``, which the supervisor sets. In a notebook,
  ``Lab.start()`` and ``lab.load_tasks()`` point it at their lab (:func:`point_at`); when
  that lab stops it falls back to the newest lab still running, and with none it raises
  :class:`LabNotRunning` instead of quietly talking to some other Redis. To pick a lab
  explicitly, enqueue through it: ``lab.huey.enqueue(shout.s("hi"))``.

Every demo task has a parameter spec, so the Flask endpoints and ``lab.enqueue`` accept
only whitelisted tasks with bounded values (Huey pickles what it enqueues).
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
from typing import Any, Callable

from huey import RedisHuey
from huey.api import Task, TaskWrapper
from huey.exceptions import ResultTimeout
from huey.exceptions import RetryTask

from labapp import events
from labapp.backoff import flaky_jitter_delay
from labapp.consumer import LabConsumer

READ_TIMEOUT = 0.25  # seconds a worker blocks on BRPOP; also bounds a graceful stop
MAX_TASK_SECONDS = 30.0  # the longest a demo task may run (sleep, waits): restarts wait this long


class LabNotRunning(RuntimeError):
    """Enqueueing before a lab is running (or from a process the lab did not set up)."""


class TaskNotImportable(RuntimeError):
    """The task lives in the notebook's ``__main__``, which worker processes cannot import."""


class _Unbound:
    """Storage stand-in while no lab is running here: every use explains what to do."""

    name = "unbound"
    blocking = True

    def __getattr__(self, attr: str) -> Any:
        raise LabNotRunning("no lab is running in this process: run `lab = Lab.start()` first")


class LabHuey(RedisHuey):
    """RedisHuey that refuses notebook-defined tasks and runs our consumer subclass."""

    def enqueue(self, task: Task) -> Any:
        module = type(task).__module__
        if module == "__main__":
            raise TaskNotImportable(
                f"task {task.name!r} is defined in the notebook, and workers are separate "
                "processes that cannot import it: put it in a file (e.g. `%%writefile "
                "mytasks.py`) and run `lab.load_tasks('mytasks')`")
        return super().enqueue(task)

    def create_consumer(self, **options: Any) -> Any:
        return LabConsumer(self, **options)


def _storage_kwargs(url: str) -> dict[str, Any]:
    return {"url": url, "blocking": True, "read_timeout": READ_TIMEOUT, "notify_result": True}


def _recording(instance: LabHuey, batched: bool = False) -> events.EventRecorder:
    """Connect an event recorder to ``instance`` (unless ``LAB_EVENTS=off``); returns it."""
    recorder = events.EventRecorder(instance, batched=batched)
    if os.environ.get("LAB_EVENTS", "on") != "off":  # "off" only to measure what events cost
        instance.signal()(recorder)
    return recorder


huey = LabHuey(os.environ.get("LAB_NAME", "unbound"), store_intermediate_errors=False,
               **_storage_kwargs(os.environ.get("LAB_REDIS_URL", "redis://127.0.0.1:6379/15")))
if not os.environ.get("LAB_REDIS_URL"):
    huey.storage = _Unbound()
recorder = _recording(huey, batched=os.environ.get("LAB_ROLE") == "worker")


def make_huey(name: str, url: str) -> LabHuey:
    """A Huey instance of its own for lab ``name`` on ``url``, knowing every task defined here.

    It shares the task registry of the module's ``huey`` (demo tasks and learner modules,
    including ones loaded later) and records its own events.
    """
    instance = LabHuey(name, store_intermediate_errors=False, **_storage_kwargs(url))
    instance._registry = huey._registry
    _recording(instance)
    return instance


def point_at(instance: LabHuey | None) -> None:
    """Make the module's ``huey`` talk to ``instance``'s lab (None: to no lab).

    Called by ``Lab.start()``, ``lab.load_tasks()`` and ``lab.stop()`` only: tasks called
    directly and ``huey.result`` then reach that lab.
    """
    if instance is None:
        huey.name, huey.storage = "unbound", _Unbound()
    else:
        huey.name, huey.storage = instance.name, instance.storage


def points_at(instance: LabHuey) -> bool:
    """True when the module's ``huey`` currently talks to ``instance``'s lab."""
    return huey.storage is instance.storage


# --------------------------------------------------------------------------- specs
@dataclasses.dataclass(frozen=True)
class Param:
    """One accepted argument: its type, bounds and default."""

    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    pattern: str | None = None

    def check(self, task: str, field: str, value: Any) -> Any:
        """Return ``value`` if allowed, else raise ``ValueError`` with the allowed range."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # a 400-digit integer
                raise ValueError(f"{task}: {field} is out of range "
                                 f"({self.low} to {self.high})") from None
        if isinstance(value, bool) or not isinstance(value, self.kind):
            raise ValueError(f"{task}: {field} must be a {self.kind.__name__}, "
                             f"got {type(value).__name__}")
        if self.kind is str:
            if not re.fullmatch(self.pattern or r".{0,200}", value):
                raise ValueError(f"{task}: {field} must match {self.pattern}")
        elif not (self.low <= value <= self.high):
            raise ValueError(f"{task}: {field}={value} is out of range "
                             f"({self.low} to {self.high})")
        return value


KEY = r"[A-Za-z0-9_.:-]{1,64}"
#: Huey options accepted with any task (retries are off unless asked for: Huey's default).
OPTIONS = {
    "retries": Param(int, 0, 0, 10),
    "retry_delay": Param(float, 0.0, 0.0, 30.0),
    "retry_backoff": Param(float, 0.0, 0.0, 4.0),
}
TASKS: dict[str, TaskWrapper] = {}
SPECS: dict[str, dict[str, Param]] = {}


def demo(huey_options: dict[str, Any] | None = None,
         **params: Param) -> Callable[[Callable[..., Any]], TaskWrapper]:
    """Register a function as a Huey task that HTTP and ``lab.enqueue`` may name.

    :param huey_options: passed to ``huey.task()``, e.g. ``{"context": True}`` for a task that
        needs its own ``Task`` object (it then arrives as the keyword argument ``task``).
    :param params: the accepted arguments and their bounds.
    """
    def decorator(fn: Callable[..., Any]) -> TaskWrapper:
        wrapper = huey.task(**(huey_options or {}))(fn)
        TASKS[fn.__name__] = wrapper
        SPECS[fn.__name__] = params
        return wrapper
    return decorator


def validate(task: str, params: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a request for ``task``; return (task arguments, Huey options) or raise ValueError."""
    if task not in SPECS:
        raise LookupError(f"unknown task {task!r}: choose one of {', '.join(sorted(SPECS))}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValueError(f"{task}: send a JSON object of parameters, e.g. {{}}")
    spec = SPECS[task]
    unknown = sorted(set(params) - set(spec) - set(OPTIONS))
    if unknown:
        allowed = ", ".join(list(spec) + list(OPTIONS))
        raise ValueError(f"{task}: unknown parameter {unknown[0]!r} (allowed: {allowed})")
    args = {f: p.check(task, f, params.get(f, p.default)) for f, p in spec.items()}
    options = {f: p.check(task, f, params[f]) for f, p in OPTIONS.items() if f in params}
    return args, options


def signature(task: str, params: dict[str, Any] | None = None) -> Task:
    """A validated, not yet enqueued Huey task (use ``huey.enqueue`` or ``.then``)."""
    args, options = validate(task, params)
    return TASKS[task].s(**args, **options)


def _conn() -> Any:
    """The connection of the lab the module's ``huey`` points at (a task's own lab, in a worker)."""
    return huey.storage.conn


def lab_key(*parts: str) -> str:
    """A Redis key in the namespace of the lab the module's ``huey`` points at (for tasks;
    kernel code uses ``lab.key(...)``)."""
    return events.key(huey.name, *parts)


# --------------------------------------------------------------------------- demo tasks
@demo()
def noop() -> None:
    """Do nothing: measures the queue's own overhead."""


@demo(seconds=Param(float, 1.0, 0.0, MAX_TASK_SECONDS))
def sleep(seconds: float = 1.0) -> float:
    """Wait ``seconds`` (a stand-in for I/O: an API call, a slow query); returns the seconds."""
    time.sleep(seconds)
    return seconds


@demo(n=Param(int, 1_000_000, 1, 50_000_000))
def cpu(n: int = 1_000_000) -> int:
    """Pure-Python arithmetic loop (CPU-bound: holds the GIL); returns a checksum."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


class TransientError(Exception):
    """A failure that goes away if you try again (a flaky network, a busy service)."""


@demo(key=Param(str, "flaky", pattern=KEY), fail_times=Param(int, 1, 0, 20))
def flaky(key: str = "flaky", fail_times: int = 1) -> int:
    """Fail the first ``fail_times`` attempts for ``key``, then succeed; returns the attempt."""
    attempt = _conn().incr(lab_key("flaky", key))
    if attempt <= fail_times:
        raise TransientError(f"attempt {attempt} of {key!r} failed (fails {fail_times}x)")
    return attempt


@demo({"context": True},
      key=Param(str, "flaky", pattern=KEY), fail_times=Param(int, 1, 0, 20),
      max_retries=Param(int, 3, 0, 10), base=Param(float, 1.0, 0.0, 30.0),
      factor=Param(float, 2.0, 1.0, 4.0), jitter=Param(float, 0.5, 0.0, 1.0),
      seed=Param(int, 0, 0, 2**31 - 1))
def flaky_jitter(key: str = "flaky", fail_times: int = 1, max_retries: int = 3,
                 base: float = 1.0, factor: float = 2.0, jitter: float = 0.5, seed: int = 0,
                 task: Task | None = None) -> int:
    """``flaky`` that retries itself with exponential backoff and jitter; returns the attempt.

    Huey has no jitter option, so the task asks for each retry itself by raising
    ``RetryTask(delay=...)`` with a delay from :func:`backoff_delay` (seeded by ``seed`` and
    ``key``). Huey adds one retry before it spends one on a ``RetryTask``, so the budget never
    shrinks: the task counts its own attempts and, after ``max_retries`` retries, raises the
    error for good (then the task ends in the ``error`` state).
    """
    attempt = _conn().incr(lab_key("flaky", key))
    if attempt > fail_times:
        return attempt
    if attempt > max_retries:  # the first try plus max_retries retries: give up
        if task is not None:
            task.retries = 0  # final, even if Huey's own ``retries`` option was given too
        raise TransientError(f"attempt {attempt} of {key!r} failed (fails {fail_times}x, "
                             f"no retries left of {max_retries})")
    delay = flaky_jitter_delay(key, attempt, base, factor, jitter, seed)
    raise RetryTask(f"attempt {attempt} of {key!r} failed; retrying in {delay:.2f} s",
                    delay=delay)


@demo(key=Param(str, "race", pattern=KEY), seconds=Param(float, 0.05, 0.0, 5.0))
def step_a(key: str = "race", seconds: float = 0.05) -> str:
    """First step of a pipeline: work for ``seconds``, then store its output under ``key``."""
    time.sleep(seconds)
    _conn().set(lab_key("race", key), "ready", ex=3600)
    return key


@demo(key=Param(str, "race", pattern=KEY))
def step_b(key: str = "race", *_upstream: Any) -> str:
    """Second step: read what ``step_a`` stored; returns ``ok`` or ``missing`` (a race)."""
    found = _conn().get(lab_key("race", key))
    outcome = "ok" if found else "missing"
    _conn().rpush(lab_key("race", "outcomes"), f"{key}:{outcome}")
    return outcome


@demo(key=Param(str, "stock", pattern=KEY), seconds=Param(float, 0.2, 0.0, 5.0),
      use_lock=Param(int, 0, 0, 1))
def take_stock(key: str = "stock", seconds: float = 0.2, use_lock: int = 0) -> int:
    """Take one item from a stock counter: read it, work ``seconds``, write it back minus one.

    Without a lock two copies running at once both read the same number (a lost update).
    With ``use_lock=1`` the read-work-write runs inside ``huey.lock_task``: a copy that finds
    the lock taken does not wait, it raises ``TaskLockedException`` (Huey's ``locked``
    signal; retried only when the task was enqueued with ``retries``). Returns the stock left.
    """
    def take() -> int:
        left = int(_conn().get(lab_key("stock", key)) or 0)
        time.sleep(seconds)
        _conn().set(lab_key("stock", key), left - 1, ex=3600)
        return left - 1

    if use_lock:
        with huey.lock_task(f"stock-{key}"):
            return take()
    return take()


@demo(seq=Param(int, 0, 0, 1_000_000), seconds=Param(float, 0.0, 0.0, 5.0))
def record(seq: int = 0, seconds: float = 0.0) -> int:
    """Wait ``seconds``, then append ``seq`` to a list: completion order, made visible."""
    time.sleep(seconds)
    _conn().rpush(lab_key("record"), seq)
    return seq


@demo(to=Param(str, "learner@example.com", pattern=r"[^@\s]{1,64}@[^@\s]{1,190}"),
      seconds=Param(float, 0.5, 0.0, 10.0))
def send_email(to: str = "learner@example.com", seconds: float = 0.5) -> str:
    """Pretend to send an email (waits ``seconds`` like an SMTP round trip); returns a receipt."""
    time.sleep(seconds)
    return f"sent to {to}"


@demo(key=Param(str, "race", pattern=KEY), after=Param(str, "", pattern=r"[0-9a-f-]{0,64}"),
      timeout=Param(float, 10.0, 0.0, 30.0))
def step_b_after(key: str = "race", after: str = "", timeout: float = 10.0) -> str:
    """``step_b`` that first waits (up to ``timeout`` s) for task ``after`` (step_a) to finish.

    It holds a worker while it waits, so it needs a second worker free to run step_a.
    """
    if after:
        try:
            huey.result(after, blocking=True, timeout=timeout, preserve=True)
        except ResultTimeout:
            pass  # then the read below reports "missing", which is what happened
    return step_b.call_local(key)
