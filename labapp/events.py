"""Task events: every Huey signal becomes one entry in a capped Redis stream.

Producers (the notebook, the Flask app) write each event at once. Workers hand events to
a background thread that writes whatever has piled up in one pipeline (group commit): the
timestamp is taken when the signal fires, so batching changes when an event becomes
visible (by about a millisecond), never the time it reports.

Besides the stream, the same pipeline keeps three small hashes the monitor reads in O(1):
the last state of each task, a count per event kind, and what each worker is running.
"""
from __future__ import annotations

import atexit
import collections
import dataclasses
import logging
import multiprocessing
import os
import threading
import time
from typing import Any, Iterable

import redis

logger = logging.getLogger(__name__)

STREAM_MAXLEN = 200_000
LINGER = 0.005  # seconds a worker's event writer collects events before one pipelined write
DETAIL_MAX = 120
#: Events after which a task will not run again (an ``error`` only when no retries are left).
TERMINAL = {"complete", "revoked", "expired", "canceled", "interrupted", "locked"}
#: Events that end a worker's current task (it is then no longer busy).
WORKER_DONE = {"complete", "error", "canceled", "interrupted", "locked", "timeout",
               "rate-limited"}


def keys(name: str) -> dict[str, str]:
    """The Redis keys this module owns for lab ``name`` (all prefixed with it)."""
    base = f"lab.{name}"
    return {"stream": f"{base}.events", "state": f"{base}.state",
            "counts": f"{base}.counts", "busy": f"{base}.busy"}


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
        return self.kind in TERMINAL or (self.kind == "error" and self.retries == 0)


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
            "r": str(task.retries or 0), "d": detail}


FIELDS = ("k", "i", "n", "w", "p", "t", "r", "d")
# One script call records a whole batch: packing one command with many arguments costs
# redis-py far less than four commands per event, and the worker's GIL is what we save.
_RECORD_LUA = """
local done = {}
for _, kind in ipairs(cjson.decode(ARGV[2])) do done[kind] = true end
for j = 3, #ARGV, 8 do
  local k, i, n, w, p, t, r, d = ARGV[j], ARGV[j+1], ARGV[j+2], ARGV[j+3], ARGV[j+4],
                                 ARGV[j+5], ARGV[j+6], ARGV[j+7]
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
             'k', k, 'i', i, 'n', n, 'w', w, 'p', p, 't', t, 'r', r, 'd', d)
  -- an error that will be retried is not a final state: record it as retrying at once
  local state = k
  if k == 'error' and r ~= '0' then state = 'retrying' end
  redis.call('HSET', KEYS[2], i, state)
  redis.call('HINCRBY', KEYS[3], k, 1)
  if k == 'executing' then
    redis.call('HSET', KEYS[4], w, i .. '|' .. n .. '|' .. t .. '|' .. p)
  elseif done[k] then
    redis.call('HDEL', KEYS[4], w)
  end
end
return (#ARGV - 2) / 8
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
    args: list[Any] = [STREAM_MAXLEN, _DONE_JSON]
    for fields in batch:
        args.extend(fields[f] for f in FIELDS)
    return int(script(keys=[k["stream"], k["state"], k["counts"], k["busy"]], args=args))


_DONE_JSON = "[" + ",".join(f'"{kind}"' for kind in sorted(WORKER_DONE)) + "]"


class EventRecorder:
    """Huey signal receiver that records events for the Huey instance it is connected to.

    ``batched=True`` (workers) hands events to a flusher thread; otherwise each event is
    written before the signal returns (producers, so an ``enqueued`` event always exists
    before the task can start).
    """

    def __init__(self, huey: Any, batched: bool = False) -> None:
        self.huey = huey
        self.batched = batched
        self._pending: collections.deque[tuple[str, dict[str, str]]] = collections.deque()
        self._wake = threading.Event()
        self._pid = 0
        self._writing = False
        self._thread: threading.Thread | None = None
        atexit.register(self.flush)

    def __call__(self, signal: str, task: Any, exc: BaseException | None = None) -> None:
        fields = build_fields(signal, task, exc)
        name = self.huey.name
        if not self.batched:
            write(self.huey.storage.conn, name, [fields])
            return
        if self._pid != os.getpid():  # first event, or first in a forked worker process
            self._start_flusher()
        self._pending.append((name, fields))
        if not self._wake.is_set():
            self._wake.set()

    def _start_flusher(self) -> None:
        self._pid = os.getpid()
        self._pending = collections.deque()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._flush_forever, name="lab-events",
                                        daemon=True)
        self._thread.start()

    def _flush_forever(self) -> None:
        last = 0.0
        while True:
            self._wake.wait()
            # Under load, write at most every LINGER seconds so one round trip carries many
            # events (waking per event costs a thread switch each time); when idle, write at
            # once so waiters see events promptly. Times were taken at the signal: none shift.
            pause = last + LINGER - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._wake.clear()
            self._write_pending()
            last = time.monotonic()

    def _write_pending(self) -> None:
        while self._pending:
            self._writing = True  # flush() must also wait for the batch taken off the deque
            batches: dict[str, list[dict[str, str]]] = {}
            for _ in range(min(len(self._pending), 500)):
                name, fields = self._pending.popleft()
                batches.setdefault(name, []).append(fields)
            for name, batch in batches.items():
                try:
                    write(self.huey.storage.conn, name, batch)
                except redis.RedisError as exc:  # the server is gone (durability lesson)
                    logger.warning("dropped %d task events: %s", len(batch), exc)
            self._writing = False

    def flush(self, timeout: float = 2.0) -> bool:
        """Write every event handed to the flusher; False if some are still pending at ``timeout``."""
        if not self.batched or self._pid != os.getpid():
            return True
        if self._thread is None or not self._thread.is_alive():
            self._write_pending()
            return True
        deadline = time.monotonic() + timeout
        while (self._pending or self._wake.is_set() or self._writing) \
                and time.monotonic() < deadline:
            time.sleep(0.001)
        return not (self._pending or self._writing)


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
