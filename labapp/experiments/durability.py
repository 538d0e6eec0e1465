"""Durability: which queued tasks survive a broker crash, and what keeping them costs.

Every broker here is crashed for real with SIGKILL, then started again on the same data:

* the lab's own valkey server in three modes: in memory only, with an append-only file
  fsynced once a second (``appendfsync everysec``) and on every write (``always``);
* a *private* RabbitMQ node (:mod:`labapp.rabbit`, never the machine's shared one), with a
  durable queue of persistent messages, a durable queue of transient messages, and a
  transient queue, when ``rabbitmq-server`` is installed.

What SIGKILL tests is a crash of the broker *process*. Data a server has handed to the
operating system (written, not yet fsynced) survives that; only a power cut or a kernel
crash separates ``everysec`` from ``always``, and no notebook can pull the plug.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from typing import TYPE_CHECKING, Any, Sequence

from labapp.broker import BrokerError
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import percentile
from labapp.experiments._control import arranged

if TYPE_CHECKING:
    from labapp.stack import Lab

MODES = ("memory", "aof_everysec", "aof_always")
RABBIT_MODES = ("rabbitmq_durable", "rabbitmq_durable_queue", "rabbitmq_transient")
MAX_TASKS = 5000
NOTEBOOK_N = 300
LABELS = {
    "memory": "valkey, in memory",
    "aof_everysec": "valkey, AOF fsync every second",
    "aof_always": "valkey, AOF fsync always",
    "rabbitmq_durable": "RabbitMQ, durable queue + persistent messages",
    "rabbitmq_durable_queue": "RabbitMQ, durable queue + transient messages",
    "rabbitmq_transient": "RabbitMQ, transient queue",
}
#: Which runs a broker's documentation says keep their queue through a process crash.
EXPECTED_TO_KEEP = {"memory": False, "aof_everysec": True, "aof_always": True,
                    "rabbitmq_durable": True, "rabbitmq_durable_queue": False,
                    "rabbitmq_transient": False}


@dataclasses.dataclass
class DurabilityRun:
    """One broker/mode: N tasks enqueued (each timed), a crash, and how many were still queued."""

    key: str                    #: one of MODES or RABBIT_MODES
    label: str                  #: human name for tables and plots
    n: int
    enqueue_s: list[float]      #: seconds per enqueue call (raw samples)
    elapsed_s: float            #: wall time of the whole enqueue loop
    queued_before: int          #: tasks in the queue just before the crash
    survivors: int              #: tasks in the queue after the restart
    crashed: str                #: what was crashed, in words
    down_s: float = math.nan    #: seconds from SIGKILL to the server answering again
    queue_recovered: bool = True  #: False when the queue itself was gone after the restart

    @property
    def broker(self) -> str:
        """``valkey`` or ``rabbitmq``."""
        return "rabbitmq" if self.key.startswith("rabbitmq") else "valkey"

    @property
    def kept_all(self) -> bool:
        return self.queued_before > 0 and self.survivors >= self.queued_before

    @property
    def throughput_per_s(self) -> float:
        """Enqueued tasks per second over the whole loop."""
        return self.n / self.elapsed_s if self.elapsed_s > 0 else math.nan

    @property
    def enqueue_p50_ms(self) -> float:
        """Median time of one enqueue call, in milliseconds."""
        return percentile(self.enqueue_s, 50) * 1000


@dataclasses.dataclass
class DurabilityResult:
    """Survivors and enqueue throughput per broker mode (raw per-enqueue timings kept)."""

    n: int
    runs: list[DurabilityRun]
    rabbitmq_note: str          #: what was done with RabbitMQ, or why it was skipped

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
    def has_rabbitmq(self) -> bool:
        return any(r.broker == "rabbitmq" for r in self.runs)

    def cost(self, safe: str, fast: str) -> float:
        """Throughput of run ``safe`` as a fraction of run ``fast`` (NaN if one is missing)."""
        t = self.throughput_per_s
        return t[safe] / t[fast] if safe in t and fast in t and t[fast] > 0 else math.nan

    @property
    def aof_cost(self) -> float:
        """AOF-always throughput as a fraction of in-memory throughput (NaN if one is missing)."""
        return self.cost("aof_always", "memory")

    def memory_verdict(self) -> str | None:
        """``all``/``some``/``none``: what the in-memory server kept (None if it did not run)."""
        if "memory" not in self.survivors:
            return None
        r = self.run("memory")
        return "all" if r.kept_all else ("none" if r.survivors == 0 else "some")

    @property
    def teaches_lesson(self) -> bool:
        """True when every run kept (or lost) its queue as the notebook says it will.

        The lesson: in memory loses the queue, an append-only file keeps it, and on RabbitMQ
        only a durable queue of persistent messages keeps it.
        """
        return bool(self.runs) and all(r.kept_all == EXPECTED_TO_KEEP[r.key] and
                                       (r.kept_all or r.survivors == 0) for r in self.runs)

    @property
    def teaches_cost(self) -> bool:
        """True when each safe mode measured here enqueued slower than its unsafe counterpart
        (fsync always vs in memory; persistent vs transient RabbitMQ)."""
        pairs = [(a, b) for a, b in (("aof_always", "memory"),
                                     ("rabbitmq_durable", "rabbitmq_transient"))
                 if a in self.survivors and b in self.survivors]
        return bool(pairs) and all(self.cost(a, b) < 0.9 for a, b in pairs)

    def conclusions(self) -> list[str]:
        """What this run showed, one sentence per finding, numbers included."""
        out = []
        for r in self.runs:
            kept = ("kept all of them" if r.kept_all else "lost all of them" if r.survivors == 0
                    else f"kept {r.survivors}")
            out.append(f"{r.label}: {r.queued_before} tasks queued, crashed, restarted: {kept}.")
        unexpected = [r for r in self.runs if r.kept_all != EXPECTED_TO_KEEP[r.key]
                      or not (r.kept_all or r.survivors == 0)]
        for r in unexpected:
            gone = "" if r.queue_recovered else " (the queue itself was not recovered)"
            out.append(f"That is not what {r.label!r} usually does{gone} (expected: "
                       f"{'keep all' if EXPECTED_TO_KEEP[r.key] else 'lose all'}): run it again, "
                       f"and if it repeats, the broker's log says why.")
        keys = self.survivors
        if "aof_everysec" in keys and "aof_always" in keys and \
                self.run("aof_everysec").kept_all == self.run("aof_always").kept_all:
            out.append("Fsync every second and fsync always did the same here: killing the "
                       "server process does not lose what it already handed to the operating "
                       "system. They differ only when the machine itself dies (a power cut "
                       "loses up to a second with everysec), which this lab cannot simulate.")
        for safe, fast, what in (("aof_always", "memory", "valkey with fsync always"),
                                 ("aof_everysec", "memory", "valkey with fsync every second"),
                                 ("rabbitmq_durable", "rabbitmq_transient",
                                  "RabbitMQ with persistent messages")):
            ratio = self.cost(safe, fast)
            if ratio != ratio:
                continue
            slow = self.throughput_per_s[safe]
            quick = self.throughput_per_s[fast]
            if safe == "aof_everysec" and ratio >= 0.9:
                out.append(f"{what.capitalize()} enqueued {slow:,.0f} tasks/s against "
                           f"{quick:,.0f} in memory ({ratio:.0%}): its fsync runs in the "
                           f"background once a second, so an enqueue does not wait for the disk.")
            elif ratio < 0.9:
                out.append(f"Safety cost: {what} enqueued {slow:,.0f} tasks/s against "
                           f"{quick:,.0f} without it ({ratio:.0%} of the speed).")
            else:
                took = self.run(fast).elapsed_s + self.run(safe).elapsed_s
                out.append(f"{what.capitalize()} enqueued {slow:,.0f} tasks/s against "
                           f"{quick:,.0f} without it ({ratio:.0%}): no clear cost in this run. "
                           f"Both loops together lasted {took:.2f} s, short enough for other "
                           f"work on this machine to hide the difference (or the disk makes "
                           f"fsync cheap): run it again, or with a larger n.")
        if not self.has_rabbitmq:
            out.append(f"RabbitMQ: {self.rabbitmq_note}")
        return out

    def __repr__(self) -> str:
        lines = [f"Durability: {self.n} tasks queued, then the broker was SIGKILLed and restarted"]
        for r in self.runs:
            lines.append(f"  {r.label:<46} survivors {r.survivors:>5}/{r.queued_before:<5} "
                         f"enqueue {r.throughput_per_s:8,.0f} tasks/s "
                         f"(p50 {r.enqueue_p50_ms:.3f} ms)")
        lines.append(f"  RabbitMQ: {self.rabbitmq_note}")
        return "\n".join(lines)


def durability(lab: Lab, n: int = NOTEBOOK_N, modes: Sequence[str] = MODES,
               rabbitmq: bool = True) -> DurabilityResult:
    """Enqueue ``n`` tasks with no worker running, SIGKILL the broker, restart it, count survivors.

    Runs once per valkey mode in ``modes`` and, when ``rabbitmq`` and ``rabbitmq-server`` is
    installed, on a private RabbitMQ node started for this call (about 10 s more: two
    boots). The valkey crash wipes *everything* the in-memory server held (the lab's events
    too); workers and the broker mode are restored afterwards, also when interrupted.
    """
    check_range("n", n, 1, MAX_TASKS, integer=True)
    modes = tuple(modes)
    if any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        raise ValueError(f"modes={modes!r}: choose from {MODES}")
    if not modes and not rabbitmq:
        raise ValueError("nothing to crash: give at least one mode or rabbitmq=True")
    if lab.config.external and modes:
        raise BrokerError(f"durability() kills the broker, and this lab uses an external server "
                          f"({lab.redis_url}) it must not kill: unset REDIS_URL and restart the "
                          f"lab, or pass modes=() to crash only the private RabbitMQ")
    durable = lab.config.durable
    runs: list[DurabilityRun] = []
    note = "not asked for (rabbitmq=False)"
    # No worker consumes: every enqueued task is still in the queue at the crash.
    with arranged(lab, workers=0) if modes else contextlib.nullcontext(), \
            Progress("durability", len(modes) + (len(RABBIT_MODES) if rabbitmq else 0)) as progress:
        # One broker at a time: a RabbitMQ booting beside valkey would slow valkey's timings.
        try:
            for mode in modes:
                runs.append(_crash_lab_broker(lab, mode, n))
                progress.update(1, mode)
        finally:
            if modes:
                lab.set_durable(durable)
        if rabbitmq:
            rabbit_runs, note = rabbitmq_runs(n, progress)
            runs.extend(rabbit_runs)
    return DurabilityResult(n=n, runs=runs, rabbitmq_note=note)


def notebook_sized(lab: Lab) -> DurabilityResult:
    """The run notebook 08 makes: 300 tasks, every valkey mode, and RabbitMQ when installed."""
    return durability(lab, n=NOTEBOOK_N)


def _crash_lab_broker(lab: Lab, mode: str, n: int) -> DurabilityRun:
    lab.set_durable(mode != "memory")
    if mode != "memory":
        lab.redis.config_set("appendfsync", "everysec" if mode == "aof_everysec" else "always")
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
    return DurabilityRun(key=mode, label=LABELS[mode], n=n, enqueue_s=timings,
                         elapsed_s=elapsed, queued_before=before, survivors=survivors,
                         crashed="valkey-server SIGKILLed and restarted", down_s=down)


def _publish(node: Any, variants: dict[str, tuple[bool, int]], n: int,
             progress: Progress | None) -> tuple[dict[str, tuple[list[float], float]],
                                                 dict[str, int], bool]:
    """Declare each variant's queue and publish ``n`` messages to it, timing every publish.

    Returns ``{variant: (seconds per publish, seconds in all)}``, the messages each queue
    held before the crash, and whether the queue definitions were synced to disk.
    """
    import kombu

    measured: dict[str, tuple[list[float], float]] = {}
    before: dict[str, int] = {}
    # confirm_publish: publish() returns once the broker took the message (for a
    # persistent message on a durable queue, once it is written to disk)
    with kombu.Connection(node.url, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        producer = kombu.Producer(channel)
        for key, (durable, mode) in variants.items():
            kombu.Queue(key, exchange="", routing_key=key, durable=durable,
                        auto_delete=False)(channel).declare()
        synced = node.sync_definitions()  # the queues on disk: the test is about messages
        for key, (durable, mode) in variants.items():
            timings = []
            t0 = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                producer.publish(b"noop", routing_key=key, delivery_mode=mode, declare=[])
                timings.append(time.perf_counter() - t)
            measured[key] = (timings, time.perf_counter() - t0)
            before[key] = channel.queue_declare(key, passive=True).message_count
            if progress is not None:
                progress.update(1, key)
    return measured, before, synced


def _private_node() -> tuple[Any, str]:
    """A private RabbitMQ node, not started yet, or (None, why it is skipped) in one line."""
    from labapp import rabbit

    ok, why = rabbit.available()
    if not ok:
        return None, f"skipped: {why}"
    return rabbit.PrivateRabbit(), ""


def rabbitmq_runs(n: int, progress: Progress | None = None,
                  node: Any = None) -> tuple[list[DurabilityRun], str]:
    """Publish ``n`` messages per RabbitMQ variant to a private node, SIGKILL it, count survivors.

    ``node``: a :class:`labapp.rabbit.PrivateRabbit` (started or not; stopped afterwards);
    by default a new one, booted while nothing else is measured. Returns ``([], why)``, ``why``
    in one line, when no ``rabbitmq-server`` is installed.
    """
    if node is None:
        node, why = _private_node()
        if node is None:
            return [], why
    import kombu

    # key: (durable queue, delivery_mode: 2 = persistent, 1 = transient). The persistent run
    # goes last: the disk writes it leaves behind would slow the runs after it.
    variants = {
        "rabbitmq_transient": (False, 1),
        "rabbitmq_durable_queue": (True, 1),
        "rabbitmq_durable": (True, 2),
    }
    counts: dict[str, int] = {}
    missing: dict[str, bool] = {}
    if progress is not None:
        progress.update(0, "starting a private RabbitMQ node")
    with node:  # starts it unless it is running; stops it and deletes its folder at the end
        measured, before, synced = _publish(node, variants, n, progress)
        if progress is not None:
            progress.update(0, "RabbitMQ SIGKILLed, restarting")
        down = node.restart()
        with kombu.Connection(node.url) as conn:
            for key in variants:
                try:
                    counts[key] = conn.channel().queue_declare(key, passive=True).message_count
                except conn.channel_errors:  # the queue itself did not survive
                    counts[key], missing[key] = 0, True
        note = (f"a private node ({node.node}, port {node.port}) was SIGKILLed and restarted; "
                f"the machine's own RabbitMQ was not touched"
                + ("" if synced else "; its queue definitions could not be synced to disk "
                   "first (rabbitmqctl failed), so a lost durable queue may be that"))
    runs = [DurabilityRun(key=key, label=LABELS[key], n=n, enqueue_s=measured[key][0],
                          elapsed_s=measured[key][1], queued_before=before[key], survivors=counts[key],
                          crashed="private RabbitMQ node SIGKILLed and restarted", down_s=down,
                          queue_recovered=not missing.get(key))
            for key in RABBIT_MODES]  # safest first, as in the valkey rows
    return runs, note
