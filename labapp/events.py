"""Task events: every Huey signal becomes one entry in a capped Redis stream.

Producers (the notebook, the Flask app) write each event at once. Workers hand events to
a background thread that writes whatever has piled up in one pipeline (group commit): the
timestamp is taken when the signal fires, so batching changes when an event becomes
visible (by about a millisecond), never the time it reports.

Besides the stream, the same pipeline keeps three small hashes the monitor reads in O(1):
the last state of each task, a count per event kind, and what each worker is running
(keyed by worker name and pid, so a task whose worker died stays visible after a restart).
"""
from __future__ import annotations

import atexit
import collections
import dataclasses
import json
import logging
import multiprocessing
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import psutil
import redis

if TYPE_CHECKING:
    from huey import RedisHuey

logger = logging.getLogger(__name__)

STREAM_MAXLEN = 200_000
LINGER = 0.005  # seconds a worker's event writer collects events before one pipelined write
DETAIL_MAX = 120
#: Events after which a task will not run again (an ``error`` only when no retries are left).
TERMINAL = {"complete", "revoked", "expired", "canceled", "interrupted"}
#: Events that end a task only when it has no retries left (else ``retrying`` follows).
FINAL_WITHOUT_RETRIES = {"error", "locked"}
#: Events that end a worker's current task (it is then no longer busy). ``retrying`` is
#: here because a task that raises ``RetryTask`` emits no ``error``, only ``retrying``.
WORKER_DONE = {"complete", "error", "canceled", "interrupted", "locked", "timeout",
               "rate-limited", "retrying"}


def key(name: str, *parts: str) -> str:
    """The Redis key ``lab.<name>.<part>.…`` of lab ``name``: every key a lab writes has this shape.

    ``key("demo", "flaky", "k1")`` is ``"lab.demo.flaky.k1"``; ``key("demo", "*")`` is the
    ``SCAN`` pattern for all of them.
    """
    return ".".join(("lab", name, *parts))


def keys(name: str) -> dict[str, str]:
    """The Redis keys this module owns for lab ``name`` (all prefixed with it)."""
    return {"stream": key(name, "events"), "state": key(name, "state"),
            "counts": key(name, "counts"), "busy": key(name, "busy")}


@dataclasses.dataclass(frozen=True)
class Event:
    """One state change of one task, as recorded by the process where it happened."""

    id: str            #: stream id (orders events; use as ``since=`` cursor)
    kind: str          #: enqueued, scheduled, executing, complete, error, retrying, ...
    task_id: str
    task: str          #: task name, e.g. ``sleep``
    worker: str        #: ``worker-1`` for workers, ``web``/``notebook`` for producers
    pid: int
    time: float        #: ``time.time()`` when the signal fired
    retries: int       #: retries left at that moment
    detail: str = ""   #: arguments for ``enqueued``, the exception for ``error``

    @property
    def terminal(self) -> bool:
        """True when the task will not run again after this event."""
        return self.kind in TERMINAL or (self.kind in FINAL_WITHOUT_RETRIES and self.retries == 0)


def worker_label() -> str:
    """Name of the calling worker (``worker-1``, …) or of the producer role."""
    role = os.environ.get("LAB_ROLE", "notebook")
    if role != "worker":
        return role
    name = threading.current_thread().name
    if not name.startswith("Worker"):
        name = multiprocessing.current_process().name
    prefix = os.environ.get("LAB_WORKER_PREFIX", "")
    return prefix + name.lower()


_tag: tuple[int, str] = (0, "")


def process_tag() -> str:
    """``pid|start time|host`` of the calling process: who a worker is, beyond a bare pid.

    A pid alone can be reused by an unrelated process, or belong to a worker on another
    host; the start time and host name tell them apart.
    """
    global _tag
    pid = os.getpid()
    if _tag[0] != pid:
        try:
            started = repr(psutil.Process(pid).create_time())
        except psutil.Error:  # pragma: no cover - we are alive
            started = "0"
        _tag = (pid, f"{pid}|{started}|{socket.gethostname()}")
    return _tag[1]


def process_alive(pid: int, started: float | None, host: str | None) -> bool | None:
    """Whether the process a tag names still exists: None when it is on another host (unknown).

    Like ``psutil.pid_exists`` (a process not yet reaped still counts), but a pid now used
    by a process started at another time is not the same process.
    """
    if host is not None and host != socket.gethostname():
        return None
    try:
        proc = psutil.Process(pid)
        return started is None or abs(proc.create_time() - started) < 0.01
    except psutil.Error:
        return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def build_fields(signal: str, task: Any, exc: BaseException | None = None,
                 now: float | None = None) -> dict[str, str]:
    """The stream entry for one Huey signal (pure; ``now`` for tests)."""
    if signal == "error" and exc is not None:
        detail = f"{type(exc).__name__}: {exc}"[:DETAIL_MAX]
    elif signal == "enqueued":
        args, kwargs = task.data if task.data else ((), {})
        parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
        detail = ", ".join(parts)[:DETAIL_MAX]
    else:
        detail = ""
    return {"k": signal, "i": task.id, "n": task.name, "w": worker_label(),
            "p": str(os.getpid()), "t": repr(time.time() if now is None else now),
            "r": str(task.retries or 0), "d": detail,
            "c": process_tag().split("|", 1)[1]}


FIELDS = ("k", "i", "n", "w", "p", "t", "r", "d", "c")
# One script call records a whole batch, passed as one JSON argument: json.dumps runs in C,
# so the worker process (whose GIL the task threads need) spends almost nothing on events;
# the server does the unpacking on its own core.
_RECORD_LUA = """
local done = {}
for _, kind in ipairs(cjson.decode(ARGV[2])) do done[kind] = true end
local batch = cjson.decode(ARGV[3])
for _, e in ipairs(batch) do
  local k, i, n, w, p, t, r, d, c = e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9]
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
             'k', k, 'i', i, 'n', n, 'w', w, 'p', p, 't', t, 'r', r, 'd', d)
  -- an error that will be retried is not a final state: record it as retrying at once
  local state = k
  if k == 'error' and r ~= '0' then state = 'retrying' end
  redis.call('HSET', KEYS[2], i, state)
  redis.call('HINCRBY', KEYS[3], k, 1)
  if k == 'executing' then
    local v = i .. '|' .. n .. '|' .. t .. '|' .. p
    if c ~= '' then v = v .. '|' .. c end  -- the worker's start time and host
    redis.call('HSET', KEYS[4], w .. '@' .. p, v)
  elseif done[k] then
    redis.call('HDEL', KEYS[4], w .. '@' .. p)
  end
end
return #batch
"""
_scripts: dict[int, Any] = {}


def write(conn: redis.Redis, name: str, batch: list[dict[str, str]]) -> int:
    """Record a batch of events of lab ``name`` in one round trip; returns how many."""
    if not batch:
        return 0
    script = _scripts.get(id(conn))
    if script is None:
        script = _scripts[id(conn)] = conn.register_script(_RECORD_LUA)
    k = keys(name)
    packed = json.dumps([[fields.get(f, "") for f in FIELDS] for fields in batch])
    return int(script(keys=[k["stream"], k["state"], k["counts"], k["busy"]],
                      args=[STREAM_MAXLEN, _DONE_JSON, packed]))


_DONE_JSON = "[" + ",".join(f'"{kind}"' for kind in sorted(WORKER_DONE)) + "]"


class EventRecorder:
    """Huey signal receiver that records events for the Huey instance it is connected to.

    Producers (``batched=False``) write each event before the signal returns, so an
    ``enqueued`` event always exists before the task can start. Workers (``batched=True``)
    group events: the worker thread that finds the last write more than :data:`LINGER`
    seconds old writes everything pending itself, in one round trip; events that arrive
    sooner wait for the next such write, or for a helper thread that writes stragglers
    when the worker goes quiet. Writing from the worker thread costs no thread switch,
    which is what made a dedicated writer thread expensive for short tasks.
    """

    def __init__(self, huey: RedisHuey, batched: bool = False) -> None:
        self.huey = huey
        self.batched = batched
        self._pid = 0
        if batched:
            atexit.register(self.flush)

    def _reset(self) -> None:
        """Fresh state for this process (the first event, or the first after a fork)."""
        self._pid = os.getpid()
        self._pending: collections.deque[tuple[str, dict[str, str]]] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._last = 0.0
        threading.Thread(target=self._write_stragglers, name="lab-events", daemon=True).start()

    def __call__(self, signal: str, task: Any, exc: BaseException | None = None) -> None:
        fields = build_fields(signal, task, exc)
        name = self.huey.name
        if not self.batched:
            write(self.huey.storage.conn, name, [fields])
            return
        if self._pid != os.getpid():
            self._reset()
        self._pending.append((name, fields))
        if time.monotonic() - self._last >= LINGER and self._lock.acquire(blocking=False):
            try:
                self._write_pending()
            finally:
                self._lock.release()
        elif not self._wake.is_set():
            self._wake.set()

    def _write_stragglers(self) -> None:
        while True:
            self._wake.wait()
            pause = self._last + LINGER - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._wake.clear()
            with self._lock:
                self._write_pending()

    def _write_pending(self) -> None:
        """Write everything pending (the caller holds ``_lock``)."""
        self._last = time.monotonic()
        while self._pending:
            batches: dict[str, list[dict[str, str]]] = {}
            for _ in range(min(len(self._pending), 500)):
                name, fields = self._pending.popleft()
                batches.setdefault(name, []).append(fields)
            for name, batch in batches.items():
                try:
                    write(self.huey.storage.conn, name, batch)
                except redis.RedisError as exc:  # the server is gone (durability lesson)
                    logger.warning("dropped %d task events: %s", len(batch), exc)

    def flush(self, timeout: float = 2.0) -> bool:
        """Write every pending event now; False if another write held on past ``timeout``."""
        if not self.batched or self._pid != os.getpid():
            return True
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            self._write_pending()
        finally:
            self._lock.release()
        return True


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}


def parse(stream_id: bytes | str, raw: dict[bytes, bytes]) -> Event:
    """Turn one stream entry into an :class:`Event`."""
    f = _decode(raw)
    sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return Event(id=sid, kind=f["k"], task_id=f["i"], task=f["n"], worker=f["w"],
                 pid=int(f["p"]), time=float(f["t"]), retries=int(f["r"]), detail=f.get("d", ""))


def read(conn: redis.Redis, name: str, since: str | None = None, count: int = 10_000,
         block: float | None = None) -> list[Event]:
    """Events of lab ``name`` after stream id ``since`` (all when None).

    :param block: seconds to wait for the first new event (None = do not wait).
    """
    stream = keys(name)["stream"]
    cursor = since or "0-0"
    if block is None:
        entries = conn.xrange(stream, min=f"({cursor}" if since else "-", count=count)
        return [parse(sid, raw) for sid, raw in entries]
    reply = conn.xread({stream: cursor}, count=count, block=max(1, int(block * 1000)))
    return [parse(sid, raw) for _, entries in reply for sid, raw in entries]


def read_all(conn: redis.Redis, name: str, since: str | None = None) -> list[Event]:
    """Every event after ``since``, paging through the stream."""
    out: list[Event] = []
    while True:
        page = read(conn, name, since=since, count=10_000)
        out.extend(page)
        if len(page) < 10_000:
            return out
        since = page[-1].id


def last_id(conn: redis.Redis, name: str) -> str:
    """Stream id of the newest event (``0-0`` when there is none): a cursor for "from now on"."""
    newest = conn.xrevrange(keys(name)["stream"], count=1)
    return newest[0][0].decode() if newest else "0-0"


def follow(conn: redis.Redis, name: str, since: str, timeout: float,
           poll: float = 0.5) -> Iterator[Event | None]:
    """Events after ``since`` as they are recorded, until ``timeout`` seconds pass.

    Yields ``None`` whenever ``poll`` seconds pass without one, so a caller can check other
    things (a lost worker, an interrupt) without busy waiting. Stop by breaking out.
    """
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        batch = read(conn, name, since=since, block=min(remaining, poll))
        if not batch:
            yield None
        for event in batch:
            since = event.id
            yield event


@dataclasses.dataclass(frozen=True)
class Busy:
    """A task a worker has started and not finished (as the busy hash records it)."""

    worker: str
    task_id: str
    task: str
    since: float   #: ``time.time()`` of its ``executing`` event
    pid: int       #: the worker process
    started: float | None = None  #: that process's start time (tells a reused pid apart)
    host: str | None = None       #: the host it runs on

    @property
    def lost(self) -> bool:
        """True when the worker process died: the task will never finish.

        Decided by pid *and* start time on this host; a worker on another host is never
        declared lost from here (its death cannot be seen).
        """
        return process_alive(self.pid, self.started, self.host) is False


def busy(conn: redis.Redis, name: str) -> list[Busy]:
    """What every worker of lab ``name`` is running now, including tasks of dead workers."""
    return parse_busy(conn.hgetall(keys(name)["busy"]))


def parse_busy(raw: dict[bytes, bytes]) -> list[Busy]:
    """The busy hash as read with HGETALL (e.g. inside a pipeline) as :class:`Busy` records."""
    out = []
    for field, value in raw.items():
        task_id, task, since, pid, *tag = value.decode().split("|")
        started, host = (float(tag[0]), tag[1]) if len(tag) == 2 else (None, None)
        out.append(Busy(field.decode().rsplit("@", 1)[0], task_id, task, float(since), int(pid),
                        started, host))
    return out


def states(conn: redis.Redis, name: str, task_ids: Iterable[str]) -> dict[str, str | None]:
    """Last recorded event kind of each task id (None when unknown)."""
    ids = list(task_ids)
    if not ids:
        return {}
    values = conn.hmget(keys(name)["state"], ids)
    return {i: (v.decode() if v else None) for i, v in zip(ids, values)}


def clear(conn: redis.Redis, name: str) -> None:
    """Delete every event key of lab ``name``."""
    conn.delete(*keys(name).values())
