"""Worker loss: a worker killed mid-task loses that task; a graceful restart loses nothing.

Huey takes a task off the Redis list when a worker starts it, so a worker that dies while
running it takes the task with it: at-most-once delivery. The events stream shows the
task ``executing`` and never ``complete``. A graceful restart (SIGINT) lets running tasks
finish and leaves queued ones in the queue for the next workers.
"""
from __future__ import annotations

import dataclasses
import logging
import signal
import time
from typing import TYPE_CHECKING, Any

from labapp import procs
from labapp.stats import STUCK_FACTOR
from labapp.stats import STUCK_FALLBACK
from labapp.stats import STUCK_MIN
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._control import arranged

if TYPE_CHECKING:
    from labapp.stack import Lab

logger = logging.getLogger(__name__)

WORKER_TYPES = ("process", "thread")


@dataclasses.dataclass
class LossPhase:
    """One scenario: the tasks, every event they produced, and the moment of the kill/restart."""

    how: str                    #: "sigkill" or "graceful"
    task_ids: list[str]         #: in enqueue order
    events: list[Any]           #: labapp.events.Event of these tasks, oldest first
    start: float                #: time.time() just before the first enqueue
    action_time: float          #: time.time() of the SIGKILL / of starting the graceful restart
    end: float                  #: time.time() when the phase stopped waiting
    killed_pid: int | None = None
    killed_worker: str = ""
    #: tasks whose return value is in Huey's result store: proof they ran to the end, even
    #: if their ``complete`` event was not recorded
    results: list[str] = dataclasses.field(default_factory=list)

    def kinds(self, task_id: str) -> list[str]:
        """Event kinds of one task, in order."""
        return [e.kind for e in self.events if e.task_id == task_id]

    @property
    def completed(self) -> list[str]:
        """Tasks that finished: a ``complete`` event, or their result in the result store."""
        return [t for t in self.task_ids if "complete" in self.kinds(t) or t in self.results]

    @property
    def unrecorded(self) -> list[str]:
        """Completed tasks whose ``complete`` event is missing (the worker exited before writing it)."""
        return [t for t in self.completed if "complete" not in self.kinds(t)]

    @property
    def lost(self) -> list[str]:
        """Tasks that never finished: no ``complete`` event and no stored result."""
        done = set(self.completed)
        return [t for t in self.task_ids if t not in done]


@dataclasses.dataclass
class WorkerLossResult:
    """The SIGKILL phase and the graceful-restart phase, with every event of their tasks."""

    worker_type: str
    workers: int
    seconds: float
    kill: LossPhase
    graceful: LossPhase

    @property
    def lost_on_kill(self) -> int:
        """Tasks lost when a worker was SIGKILLed mid-task."""
        return len(self.kill.lost)

    @property
    def lost_on_restart(self) -> int:
        """Tasks lost in the graceful restart (expected 0)."""
        return len(self.graceful.lost)

    @property
    def redelivered(self) -> bool:
        """True when a task running on the killed worker was later completed after all."""
        k = self.kill
        return any(t in k.completed for t in k.task_ids
                   if any(e.kind == "executing" and e.pid == k.killed_pid for e in k.events
                          if e.task_id == t) and
                   not any(e.kind == "complete" and e.pid == k.killed_pid for e in k.events
                           if e.task_id == t))

    @property
    def teaches_lesson(self) -> bool:
        """True when the SIGKILL lost a running task for good and the graceful restart lost none."""
        return self.lost_on_kill > 0 and not self.redelivered and self.lost_on_restart == 0

    def verdict(self) -> str | None:
        """``no`` when the killed worker's task was lost, ``yes`` when another worker ran it,
        None when the kill hit no running task (the run settles nothing)."""
        if self.redelivered:
            return "yes"
        return "no" if self.lost_on_kill else None

    def conclusions(self) -> list[str]:
        """What this run showed, numbers included."""
        k, g = self.kill, self.graceful
        who = (k.killed_worker if self.worker_type == "process"
               else f"the consumer process holding all {self.workers} thread workers")
        out = []
        if self.lost_on_kill:
            out.append(f"SIGKILL of {who} mid-task: {self.lost_on_kill} of {len(k.task_ids)} "
                       f"tasks started ('executing') and never completed; no worker ran "
                       f"{'it' if self.lost_on_kill == 1 else 'them'} again. "
                       f"{len(k.completed)} completed.")
        else:
            out.append(f"SIGKILL of {who}: all {len(k.task_ids)} tasks completed this time "
                       f"(the kill missed the running task): nothing was lost, by luck.")
        if self.redelivered:
            out.append("A task the killed worker had started completed later: it was run "
                       "again, which Huey on Redis does not do by itself. Check the logs.")
        out.append(f"Graceful restart (SIGINT) with tasks running and queued: "
                   f"{len(g.completed)} of {len(g.task_ids)} completed, {self.lost_on_restart} lost"
                   + ("." if not self.lost_on_restart else
                      ": a graceful restart should lose none; did a task outlast the "
                      "shutdown timeout?"))
        return out

    def __repr__(self) -> str:
        k, g = self.kill, self.graceful
        lost = ", ".join(f"{t[:8]} ({' → '.join(k.kinds(t))}, no completion)" for t in k.lost)
        who = (f"{k.killed_worker} (pid {k.killed_pid})" if self.worker_type == "process" else
               f"the consumer (pid {k.killed_pid}, all {self.workers} thread workers)")
        return (f"Worker loss ({self.workers} {self.worker_type} workers, tasks of {self.seconds} s):\n"
                f"  SIGKILL {who} mid-task: "
                f"{len(k.completed)}/{len(k.task_ids)} completed, {len(k.lost)} lost"
                f"{': ' + lost if lost else ''}\n"
                f"  graceful restart with tasks running and queued: "
                f"{len(g.completed)}/{len(g.task_ids)} completed, {len(g.lost)} lost"
                + "".join(f"\n  ({len(p.unrecorded)} completed task(s) of the {p.how} phase "
                          "have a stored result but no 'complete' event)"
                          for p in (k, g) if p.unrecorded))


def worker_loss(lab: Lab, tasks: int = 4, seconds: float = 0.5, workers: int = 2,
                worker_type: str = "process", timeout: float = 20.0) -> WorkerLossResult:
    """SIGKILL a worker while it runs a task, then restart the workers gracefully; compare losses.

    Uses ``tasks`` × ``sleep(seconds)`` per phase on ``workers`` workers. Process workers
    die alone (Huey starts a replacement); thread workers share one process, so killing
    one kills all and the lab restarts them. Workers are restored afterwards.
    """
    check_range("tasks", tasks, 2, 50, integer=True)
    check_range("seconds", seconds, 0.1, 5.0)
    check_range("workers", workers, 1, 8, integer=True)
    check_range("timeout", timeout, 2.0, 120.0)
    if worker_type not in WORKER_TYPES:
        raise ValueError(f"worker_type={worker_type!r}: use one of {WORKER_TYPES}")
    if tasks <= workers:
        raise ValueError(f"tasks={tasks} must be more than workers={workers}, so some "
                         f"tasks are still queued during the restart")
    # arranged() also replaces a consumer that died with its threads.
    with arranged(lab, workers=workers, worker_type=worker_type), \
            Progress("worker_loss", 2) as progress:
        kill = _phase(lab, "sigkill", tasks, seconds, timeout)
        progress.update(1, "sigkill")
        graceful = _phase(lab, "graceful", tasks, seconds, timeout)
        progress.update(1, "graceful restart")
    return WorkerLossResult(worker_type=worker_type, workers=workers, seconds=seconds,
                            kill=kill, graceful=graceful)


def _phase(lab: Lab, how: str, count: int, seconds: float, timeout: float) -> LossPhase:
    cursor = lab.cursor()
    start = time.time()
    handles = lab.enqueue_many("sleep", count, seconds=seconds)
    ids = [h.id for h in handles]
    mine = set(ids)
    first = _first_executing(lab, cursor, mine, timeout)
    action = time.time()
    killed_pid, killed_worker, doomed = None, "", set()
    if how == "sigkill":
        pids = lab.status()["workers"]
        killed_pid, killed_worker = first.pid, first.worker
        lab.kill_worker(pids.index(first.pid), signal.SIGKILL)
        doomed = _doomed(lab, cursor, mine, first.pid)
        if lab.config.worker_type == "thread":
            lab.restart_workers()  # the whole consumer died: start a new one for the rest
    else:
        lab.restart_workers()
    finished: set[str] = set()

    def all_finished() -> bool:
        finished.clear()
        finished.update(_finished(lab, cursor, mine))
        return mine - doomed <= finished

    if not procs.wait_until(all_finished, timeout, max_interval=0.05):
        logger.warning("worker_loss %s: some tasks did not finish in %.0f s", how, timeout)
    if doomed:
        # The doomed tasks would have finished by now; poll briefly so a late completion
        # (which would disprove the lesson) is seen rather than missed.
        procs.wait_until(lambda: bool(doomed & _finished(lab, cursor, doomed)), 0.2)
    events = [e for e in lab.events(since=cursor) if e.task_id in mine]
    storage = lab.huey.storage
    results = [i for i in ids if storage.has_data_for_key(i)]
    return LossPhase(how=how, task_ids=ids, events=events, start=start, action_time=action,
                     end=time.time(), killed_pid=killed_pid, killed_worker=killed_worker,
                     results=results)


def _first_executing(lab: Lab, cursor: str, mine: set[str], timeout: float) -> Any:
    found: list[Any] = []

    def seen() -> bool:
        found[:] = [e for e in lab.events(since=cursor)
                    if e.kind == "executing" and e.task_id in mine]
        return bool(found)

    if not procs.wait_until(seen, timeout):
        raise TimeoutError(f"no worker started a task within {timeout} s: "
                           f"see lab.logs('worker')")
    return found[0]


def _doomed(lab: Lab, cursor: str, mine: set[str], pid: int) -> set[str]:
    """Tasks that died with process ``pid`` (call right after killing it)."""
    if lab.config.worker_type == "thread":
        # Every worker thread died with the consumer: whatever it had taken off the queue
        # and not completed is gone, even a task whose "executing" event it had not
        # written yet. Nobody dequeues until the consumer is restarted.
        queued = {t.id for t in lab.huey.pending()}
        done = {e.task_id for e in lab.events(since=cursor) if e.terminal}
        return mine - queued - done
    running: set[str] = set()
    for e in lab.events(since=cursor):  # a process worker runs one task at a time
        if e.task_id not in mine:
            continue
        if e.kind == "executing" and e.pid == pid:
            running.add(e.task_id)
        elif e.terminal or e.kind == "error":
            running.discard(e.task_id)
    return running


def _finished(lab: Lab, cursor: str, ids: set[str]) -> set[str]:
    """Tasks of ``ids`` with a final event or a stored result.

    The result store is checked too because a worker that exits right after a task can
    take that task's ``complete`` event with it; its result is written before the event.
    """
    done = {e.task_id for e in lab.events(since=cursor) if e.terminal and e.task_id in ids}
    storage = lab.huey.storage
    return done | {i for i in ids - done if storage.has_data_for_key(i)}


def notebook_sized_worker_loss(lab: Lab) -> WorkerLossResult:
    """The run notebook 08 makes: 4 tasks of 0.5 s on 2 process workers."""
    return worker_loss(lab, tasks=4, seconds=0.5, workers=2, worker_type="process")


# --------------------------------------------------------------------------- the monitor demo
@dataclasses.dataclass
class LostTaskDemo:
    """One slow task, seen running, then stuck, then lost when its worker is killed."""

    task_id: str
    worker: str
    killed_pid: int
    stuck_after: float          #: the monitor's fixed threshold, in seconds
    stuck_seen_after: float     #: seconds of running when the monitor first said "stuck"
    states: list[str]           #: the monitor's state for the task at each step
    kinds: list[str]            #: the task's event kinds, in order
    result: Any                 #: what the result store holds for it (None: nothing)
    replacement_pid: int | None  #: the new worker process, None if none appeared in time
    replaced_after: float       #: seconds from the kill until the replacement was seen

    @property
    def lost(self) -> bool:
        return "complete" not in self.kinds and self.result is None

    @property
    def teaches_lesson(self) -> bool:
        """The monitor saw running → stuck → lost, the task never finished, a replacement came."""
        return (self.lost and self.states[-2:] == ["stuck", "lost"]
                and self.replacement_pid is not None)

    def conclusions(self) -> list[str]:
        """What this demo showed, numbers included."""
        out = [f"Task {self.task_id[:8]} ran on {self.worker} (pid {self.killed_pid}); the "
               f"monitor showed it as {' → '.join(self.states)}.",
               f"'stuck' here means running longer than {self.stuck_after:g} s, a fixed "
               f"threshold given to this monitor (without one, a monitor derives each task's "
               f"limit from its measured run times: {STUCK_FACTOR:g} × their p95, at least "
               f"{STUCK_MIN:g} s, {STUCK_FALLBACK:g} s with no history). It said 'stuck' after "
               f"{self.stuck_seen_after:.1f} s."]
        if self.lost:
            out.append(f"After the SIGKILL its events are {' → '.join(self.kinds)}: no "
                       f"'complete', no error, no stored result. It will never finish.")
        else:
            out.append(f"Unexpected: its events are {' → '.join(self.kinds)} and its result "
                       f"is {self.result!r}, so the task was not lost this time.")
        if self.replacement_pid:
            out.append(f"Huey's consumer started a replacement worker (pid "
                       f"{self.replacement_pid}) {self.replaced_after:.1f} s after the kill; it "
                       f"knows nothing of the lost task.")
        else:
            out.append("No replacement worker appeared in time: see lab.logs('worker').")
        return out

    def __repr__(self) -> str:
        return "Lost-task demo:\n  " + "\n  ".join(self.conclusions())


def lost_task(lab: Lab, seconds: float = 5.0, stuck_after: float = 1.0, monitor: Any = None,
              timeout: float = 15.0) -> LostTaskDemo:
    """Start one slow ``sleep`` task, wait until the monitor calls it stuck, SIGKILL its worker.

    Uses 2 process workers (restored afterwards), so the other worker survives and Huey's
    consumer replaces the dead one. ``monitor`` (a :class:`labapp.widgets.Monitor`) is
    refreshed at each step so the learner sees the states change.
    """
    check_range("seconds", seconds, 1.0, 30.0)
    check_range("stuck_after", stuck_after, 0.1, seconds - 0.5)
    check_range("timeout", timeout, 2.0, 60.0)
    from labapp import stats

    states: list[str] = []

    def state(task_id: str) -> str | None:
        snap = stats.snapshot(lab.huey, stuck_after=stuck_after)
        if monitor is not None:
            monitor.refresh()
        return next((b["state"] for b in snap["busy"] if b["task_id"] == task_id), None)

    def note(s: str | None) -> None:
        if s and (not states or states[-1] != s):
            states.append(s)

    try:
        with arranged(lab, workers=2, worker_type="process") as cursor:
            handle = lab.enqueue("sleep", seconds=seconds)
            first = _first_executing(lab, cursor, {handle.id}, timeout)
            note(state(handle.id))
            seen: list[str | None] = [None]
            if not procs.wait_until(lambda: seen.__setitem__(0, state(handle.id)) or
                                    seen[0] == "stuck", stuck_after + timeout, max_interval=0.1):
                raise TimeoutError(f"the monitor never called the task stuck within "
                                   f"{stuck_after + timeout:.0f} s")
            note(seen[0])
            stuck_seen = time.time() - first.time
            before = lab.status()["workers"]
            lab.kill_worker(before.index(first.pid), signal.SIGKILL)
            killed = time.time()
            fresh: list[int] = []

            def replaced() -> bool:
                fresh[:] = [p for p in lab.status()["workers"] if p not in before]
                return bool(fresh)

            procs.wait_until(replaced, timeout, max_interval=0.1)
            replaced_after = time.time() - killed
            procs.wait_until(lambda: seen.__setitem__(0, state(handle.id)) or seen[0] == "lost",
                             5.0, max_interval=0.1)
            note(seen[0])
            kinds = [e.kind for e in lab.events(since=cursor) if e.task_id == handle.id]
            result = lab.result(handle)
    finally:
        if monitor is not None:
            monitor.refresh()
    return LostTaskDemo(task_id=handle.id, worker=first.worker, killed_pid=first.pid,
                        stuck_after=stuck_after, stuck_seen_after=stuck_seen, states=states,
                        kinds=kinds, result=result, replacement_pid=fresh[0] if fresh else None,
                        replaced_after=replaced_after)


def notebook_sized_lost_task(lab: Lab) -> LostTaskDemo:
    """The monitor demo notebook 08 runs: one 5 s task, stuck after 1 s, its worker killed."""
    return lost_task(lab, seconds=5.0, stuck_after=1.0)
