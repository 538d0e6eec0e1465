"""Durability: which queued tasks survive a broker crash, and what keeping them costs.

The lab's own server is crashed for real (SIGKILL) in two modes: in memory only, and with
an append-only file fsynced on every write (``appendfsync always``). RabbitMQ, when one is
reachable at ``AMQP_URL``, is shared with the rest of the machine, so it is *not* killed:
only the producer's connection is cut, and the result says so.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from typing import Any, Sequence

from labapp.broker import BrokerError
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import percentile

logger = logging.getLogger(__name__)

MODES = ("memory", "aof_always")
MAX_TASKS = 5000
AMQP_URL_DEFAULT = "amqp://guest:guest@127.0.0.1:5672//"
RABBITMQ_HINT = ("start one (e.g. `docker run -d -p 5672:5672 rabbitmq:3`) and set "
                 "AMQP_URL=amqp://guest:guest@host:5672// to include it")


@dataclasses.dataclass
class DurabilityRun:
    """One broker/mode: N tasks enqueued (each timed), a crash, and how many were still queued."""

    key: str                    #: memory, aof_always, rabbitmq_durable, rabbitmq_transient
    label: str                  #: human name for tables and plots
    n: int
    enqueue_s: list[float]      #: seconds per enqueue call (raw samples)
    elapsed_s: float            #: wall time of the whole enqueue loop
    queued_before: int          #: tasks in the queue just before the crash
    survivors: int              #: tasks in the queue after the restart / reconnect
    crashed: str                #: what was crashed, in words
    down_s: float = float("nan")  #: seconds from SIGKILL to the server answering again

    @property
    def throughput_per_s(self) -> float:
        """Enqueued tasks per second over the whole loop."""
        return self.n / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    @property
    def enqueue_p50_ms(self) -> float:
        """Median time of one enqueue call, in milliseconds."""
        return percentile(self.enqueue_s, 50) * 1000


@dataclasses.dataclass
class DurabilityResult:
    """Survivors and enqueue throughput per broker mode (raw per-enqueue timings kept)."""

    n: int
    runs: list[DurabilityRun]
    rabbitmq_note: str          #: why RabbitMQ was skipped, or what was (not) crashed there

    def run(self, key: str) -> DurabilityRun:
        """The run for ``key`` (e.g. ``"memory"``)."""
        for r in self.runs:
            if r.key == key:
                return r
        raise KeyError(f"no run {key!r}: have {', '.join(r.key for r in self.runs)}")

    @property
    def survivors(self) -> dict[str, int]:
        """Tasks still queued after the crash, per run key."""
        return {r.key: r.survivors for r in self.runs}

    @property
    def throughput_per_s(self) -> dict[str, float]:
        """Enqueue throughput (tasks/s) per run key."""
        return {r.key: r.throughput_per_s for r in self.runs}

    @property
    def aof_cost(self) -> float:
        """AOF-always throughput as a fraction of in-memory throughput (NaN if one is missing)."""
        t = self.throughput_per_s
        if "memory" in t and "aof_always" in t:
            return t["aof_always"] / t["memory"]
        return float("nan")

    def __repr__(self) -> str:
        lines = [f"Durability: {self.n} tasks queued, then the broker crashed"]
        for r in self.runs:
            lines.append(f"  {r.label:<37} survivors {r.survivors:>5}/{r.queued_before:<5} "
                         f"enqueue {r.throughput_per_s:8.0f} tasks/s "
                         f"(p50 {r.enqueue_p50_ms:.3f} ms)  [{r.crashed}]")
        if self.aof_cost == self.aof_cost:
            lines.append(f"  AOF always keeps {self.aof_cost:.0%} of in-memory enqueue throughput")
        lines.append(f"  RabbitMQ: {self.rabbitmq_note}")
        return "\n".join(lines)


def durability(lab: Any, n: int = 300, modes: Sequence[str] = MODES, rabbitmq: bool = True,
               amqp_url: str | None = None) -> DurabilityResult:
    """Enqueue ``n`` tasks with no worker running, crash the broker, restart it, count survivors.

    Runs once per mode of the lab's own server (``"memory"``, ``"aof_always"``) and, when
    ``rabbitmq`` and a RabbitMQ answers at ``amqp_url`` (default ``AMQP_URL``), once for a
    durable queue with persistent messages and once for a transient queue. The crash wipes
    *everything* the in-memory server held (the lab's events too); workers and the broker
    mode are restored afterwards, also when interrupted.
    """
    check_range("n", n, 1, MAX_TASKS, integer=True)
    modes = tuple(modes)
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        raise ValueError(f"modes={modes!r}: choose one or both of {MODES}")
    if lab.config.external:
        raise BrokerError(f"durability() kills the broker, and this lab uses an external server "
                          f"({lab.redis_url}) it must not kill: unset REDIS_URL and restart the lab")
    url = amqp_url or os.environ.get("AMQP_URL") or AMQP_URL_DEFAULT
    workers, worker_type, durable = lab.config.workers, lab.config.worker_type, lab.config.durable
    runs: list[DurabilityRun] = []
    progress = Progress("durability", len(modes) + (2 if rabbitmq else 0))
    try:
        lab.scale(0)  # nobody consumes: every enqueued task is still in the queue at the crash
        for mode in modes:
            runs.append(_crash_lab_broker(lab, mode, n))
            progress.update(1, mode)
        note = "not asked for (rabbitmq=False)"
        if rabbitmq:
            try:
                rabbit_runs, note = _rabbitmq_runs(url, n, lab.name)
            except Exception as exc:  # noqa: BLE001 - optional part: keep the valkey results
                logger.warning("RabbitMQ part failed: %s", exc)
                rabbit_runs, note = [], f"failed: {type(exc).__name__}: {exc}"
            runs.extend(rabbit_runs)
            progress.update(2, "rabbitmq")
    finally:
        try:
            lab.set_durable(durable)
        finally:
            lab.scale(workers, worker_type)
            progress.close()
    return DurabilityResult(n=n, runs=runs, rabbitmq_note=note)


def _crash_lab_broker(lab: Any, mode: str, n: int) -> DurabilityRun:
    lab.set_durable(mode == "aof_always")
    storage = lab.huey.storage
    storage.flush_queue()  # an older AOF may hold tasks from a previous run
    timings = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        lab.enqueue("noop")
        timings.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    before = lab.queue_length()
    down = lab.crash_broker()
    survivors = lab.queue_length()
    storage.flush_queue()  # the survivors did their job; no worker should run them later
    label = {"memory": "lab valkey, in memory",
             "aof_always": "lab valkey, AOF appendfsync always"}[mode]
    return DurabilityRun(key=mode, label=label, n=n, enqueue_s=timings, elapsed_s=elapsed,
                         queued_before=before, survivors=survivors,
                         crashed="broker SIGKILLed and restarted", down_s=down)


def _rabbitmq_runs(url: str, n: int, name: str) -> tuple[list[DurabilityRun], str]:
    """Publish to a durable and a transient queue, cut the connection, count what is queued."""
    try:
        import kombu
    except ImportError:
        return [], "skipped: kombu is not installed (pip install -e '.[compare]')"
    try:
        conn = kombu.Connection(url, connect_timeout=2,
                                transport_options={"confirm_publish": True})
        conn.connect()
    except Exception as exc:  # noqa: BLE001 - any failure means "no RabbitMQ here"
        safe = url.split("@")[-1]
        return [], f"skipped: no RabbitMQ at {safe} ({type(exc).__name__}); {RABBITMQ_HINT}"
    variants = {  # key: (durable queue, delivery_mode), 2 = persistent, 1 = transient
        "rabbitmq_durable": (True, 2, "RabbitMQ, durable queue + persistent"),
        "rabbitmq_transient": (False, 1, "RabbitMQ, transient queue + messages"),
    }
    queues = {k: kombu.Queue(f"queue_lab.{name}.{k}", routing_key=f"queue_lab.{name}.{k}",
                             exchange="", durable=d, auto_delete=False)
              for k, (d, _, _) in variants.items()}
    measured = {}
    try:
        channel = conn.channel()
        producer = kombu.Producer(channel)
        for key, (_, mode, _) in variants.items():
            bound = queues[key](channel)
            bound.declare()
            bound.purge()
            timings = []
            t0 = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                # confirm_publish: returns once the server took the message (for a
                # persistent message on a durable queue: once it is on disk)
                producer.publish(b"noop", routing_key=queues[key].name, delivery_mode=mode,
                                 declare=[])
                timings.append(time.perf_counter() - t)
            measured[key] = (timings, time.perf_counter() - t0)
        # A producer crash: the socket goes away with no AMQP close handshake.
        sock = conn.connection.sock
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    finally:
        try:
            conn.release()
        except Exception:  # noqa: BLE001 - the connection was cut on purpose
            pass
    runs = []
    with kombu.Connection(url, connect_timeout=2) as again:
        channel = again.channel()
        for key, (_, _, label) in variants.items():
            _, count, _ = channel.queue_declare(queues[key].name, passive=True)
            channel.queue_delete(queues[key].name)  # leave the shared server as we found it
            timings, elapsed = measured[key]
            runs.append(DurabilityRun(key=key, label=label, n=n, enqueue_s=timings,
                                      elapsed_s=elapsed, queued_before=n, survivors=count,
                                      crashed="producer connection cut; server NOT killed"))
    note = ("the shared RabbitMQ server was not killed, only our connection was cut; on a "
            "server restart only the durable queue's persistent messages would remain "
            "(RabbitMQ's documented guarantee, not measured here)")
    return runs, note
