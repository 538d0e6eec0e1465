"""Workers are separate processes (03): where tasks run, and who survives whose death.

Four short experiments, each returning a result that states what its run showed
(``conclusions()``) and whether it supports the notebook's lesson (``teaches_lesson``):

- :func:`where_tasks_run`: the PIDs that ran a few tasks, against the Flask app's and the kernel's;
- :func:`worker_killed`: SIGKILL a busy worker while a probe asks the Flask app ``/api/hello``
  every 0.1 s; the consumer starts a replacement, the task it was running is lost;
- :func:`flask_stopped`: SIGTERM the Flask app (or SIGKILL it, ``crash=True``: 07's belief 2)
  while the workers have tasks; they finish them;
- :func:`extra_worker`: the same batch of tasks before and after starting one more worker
  with ``lab.worker_command()`` (what you would type in a terminal, on this or another machine).

Each keeps its own timeline (probes, task events, marked moments) for
:func:`labapp.plots.plot_survival`, so a plot spans the experiment, not the reading time.
"""
from __future__ import annotations

import collections
import dataclasses
import http.client
import json
import os
import shlex
import signal
import threading
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from labapp import events
from labapp import procs
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range
from labapp.experiments._common import percentile
from labapp.experiments._control import arranged
from labapp.experiments._control import require_running
from labapp.experiments._control import settle

if TYPE_CHECKING:
    from labapp.stack import Lab

PROBE_EVERY = 0.1       # seconds between two /api/hello probes
PROBE_TIMEOUT = 2.0     # a probe that gets no answer in this time counts as unanswered
REPLACEMENT_TIMEOUT = 10.0


# ----------------------------------------------------------------------------- probing Flask
def hello(url: str, timeout: float = PROBE_TIMEOUT) -> tuple[float, float | None, Any]:
    """GET ``url + 'api/hello'`` once: (time sent, ms or None if nobody answered, pid or error name)."""
    sent, start = time.time(), time.perf_counter()
    try:
        with urllib.request.urlopen(url + "api/hello", timeout=timeout) as reply:
            pid = json.load(reply)["pid"]
    except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
        # Any of these means "no (usable) answer": HTTPException e.g. IncompleteRead when the
        # server dies while answering, ValueError/KeyError a cut-off or foreign body;
        # URLError wraps e.g. ConnectionRefusedError.
        reason = getattr(error, "reason", None)
        return sent, None, type(reason if isinstance(reason, BaseException) else error).__name__
    return sent, (time.perf_counter() - start) * 1000, pid


class Prober:
    """A background thread that probes the Flask app every ``every`` seconds until stopped."""

    def __init__(self, url: str, every: float = PROBE_EVERY) -> None:
        self.url, self.every = url, every
        self.probes: list[tuple[float, float | None, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hello-probe", daemon=True)

    def _run(self) -> None:
        while True:
            self.probes.append(hello(self.url))
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> "Prober":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT + 1)


def _answered(probes: list[tuple[float, float | None, Any]]) -> list[float]:
    return [ms for _, ms, _ in probes if ms is not None]


def _short(task_id: str) -> str:
    return task_id[:8]


# ----------------------------------------------------------------------------- where
@dataclasses.dataclass(frozen=True)
class WhereResult:
    """Which processes ran a few tasks, and the PIDs of the Flask app, the kernel and the workers."""

    ran_on: tuple[int, ...]
    web: int | None
    kernel: int
    workers: tuple[int, ...]

    @property
    def where(self) -> str:
        """``inside the Flask app``, ``in this notebook`` or ``in separate worker processes``."""
        if self.web in self.ran_on:
            return "inside the Flask app"
        if self.kernel in self.ran_on:
            return "in this notebook"
        return "in separate worker processes"

    @property
    def teaches_lesson(self) -> bool:
        """03's lesson: tasks run in worker processes, neither in Flask nor in the notebook."""
        return bool(self.ran_on) and self.where == "in separate worker processes"

    def conclusions(self) -> list[str]:
        """What this run showed."""
        pids = ", ".join(map(str, self.ran_on)) or "none"
        out = [f"The tasks ran in process(es) {pids}; the Flask app is pid {self.web} and this "
               f"notebook is pid {self.kernel}: they ran {self.where}."]
        if self.teaches_lesson and set(self.ran_on) <= set(self.workers):
            out.append(f"Those are worker processes (workers now: "
                       f"{', '.join(map(str, self.workers))}).")
        return out


def where_tasks_run(lab: Lab, tasks: int = 4, seconds: float = 0.1) -> WhereResult:
    """Enqueue ``tasks`` short tasks and record the PID of the process that ran each."""
    check_range("tasks", tasks, 1, 50, integer=True)
    check_range("seconds", seconds, 0, 5)
    require_running(lab)
    cursor = lab.cursor()
    handles = lab.enqueue_many("sleep", tasks, seconds=seconds)
    lab.wait(handles, timeout=10 + tasks * seconds)
    ids = {h.id for h in handles}
    ran_on = sorted({e.pid for e in lab.events(since=cursor)
                     if e.kind == "executing" and e.task_id in ids})
    status = lab.status()
    return WhereResult(tuple(ran_on), status["web"], os.getpid(), tuple(status["workers"]))


# ----------------------------------------------------------------------------- a worker killed
def wait_for_replacement(lab: Lab, worker: str, old_pid: int,
                         timeout: float = REPLACEMENT_TIMEOUT) -> tuple[int | None, float]:
    """Wait until process worker ``worker`` runs under a pid other than ``old_pid``.

    Huey's consumer replaces a dead process worker at its next health check (the lab runs
    it with ``-c 1``: every second); the replacement registers itself when it starts.
    Returns (new pid or None on timeout, seconds waited); the lab's workers list is polled
    at least every 50 ms, so the seconds are an upper bound of when it was running.
    """
    start = time.monotonic()
    found: list[int] = []

    def replaced() -> bool:
        status = lab.status()
        new = dict(zip(status["worker_names"], status["workers"])).get(worker)
        if new is not None and new != old_pid:
            found[:] = [new]
        return bool(found)

    procs.wait_until(replaced, timeout, max_interval=0.05)
    return (found[0] if found else None), time.monotonic() - start



@dataclasses.dataclass(frozen=True)
class KillResult:
    """A busy worker SIGKILLed while the Flask app was probed; what happened to Flask and the tasks."""

    probes: tuple[tuple[float, float | None, Any], ...]
    events: tuple[Any, ...]                #: every task event of the episode
    marks: dict[str, float]                #: moment -> time.time()
    task_ids: tuple[str, ...]
    killed_worker: str
    killed_pid: int
    replacement_pid: int | None
    replaced_after: float                  #: seconds from the kill until the replacement was seen running (NaN: none)
    lost: tuple[str, ...]                  #: tasks running on the killed worker, never finished
    completed: tuple[str, ...]

    @property
    def after_kill(self) -> list[tuple[float, float | None, Any]]:
        """Probes sent after the kill."""
        t = self.marks["worker killed"]
        return [p for p in self.probes if p[0] > t]

    @property
    def teaches_lesson(self) -> bool:
        """03's lesson: Flask kept answering, the consumer replaced the worker, the task it was
        running was lost and every other task completed."""
        after = self.after_kill
        return (len(after) >= 3 and len(_answered(after)) == len(after)
                and self.replacement_pid is not None and len(self.lost) >= 1
                and len(self.completed) == len(self.task_ids) - len(self.lost))

    def conclusions(self) -> list[str]:
        """What this run showed."""
        after = self.after_kill
        answered = _answered(after)
        if after and len(answered) == len(after):
            out = [f"After {self.killed_worker} (pid {self.killed_pid}) was killed, the Flask "
                   f"app answered all {len(after)} requests (median "
                   f"{percentile(answered, 50):.1f} ms): it did not notice."]
        else:
            out = [f"After {self.killed_worker} (pid {self.killed_pid}) was killed, the Flask "
                   f"app answered {len(answered)} of {len(after)} requests: something else "
                   "disturbed it this time; see lab.logs('web')."]
        if self.replacement_pid is not None:
            out.append(f"A replacement {self.killed_worker} (pid {self.replacement_pid}) was "
                       f"running {self.replaced_after:.2f} s after the kill: the consumer "
                       "checks its worker processes once a second and starts a new one for "
                       "each dead one.")
        else:
            out.append(f"No replacement worker was running within {REPLACEMENT_TIMEOUT:.0f} s "
                       "of the kill: see lab.logs('worker').")
        done = f"{len(self.completed)} of {len(self.task_ids)} tasks completed"
        if self.lost:
            ids = ", ".join(_short(t) for t in self.lost)
            out.append(f"Task {ids} was running on the killed worker and never finished: "
                       f"nobody runs it again. {done}.")
        else:
            out.append(f"No task was lost this time (the killed worker had finished its task); "
                       f"{done}.")
        return out


def worker_killed(lab: Lab, tasks: int = 6, seconds: float = 0.5,
                  timeout: float = 15.0) -> KillResult:
    """SIGKILL a worker that is running a task while probing the Flask app every 0.1 s.

    Needs process workers (``Lab.start(worker_type="process")``): a thread worker cannot be
    killed alone. Waits for the replacement worker and for every task that can still finish.
    """
    check_range("tasks", tasks, 2, 50, integer=True)
    check_range("seconds", seconds, 0.1, 5)
    require_running(lab)
    if lab.config.worker_type != "process" or lab.config.workers < 1:
        raise ValueError("worker_killed needs process workers: lab.scale(2, 'process')")
    settle(lab)
    conn, name = lab.redis, lab.name
    cursor = lab.cursor()
    with Prober(lab.url) as prober, Progress("worker_killed", 3) as progress:
        time.sleep(3 * PROBE_EVERY)  # a few answers before anything happens, for comparison
        handles = lab.enqueue_many("sleep", tasks, seconds=seconds)
        ids = [h.id for h in handles]
        busy: list[events.Busy] = []

        def all_busy() -> bool:
            busy[:] = [b for b in events.busy(conn, name) if b.task_id in ids and not b.lost]
            return len(busy) >= min(lab.config.workers, tasks)

        if not procs.wait_until(all_busy, timeout) or not busy:
            raise RuntimeError(f"the workers did not start the tasks within {timeout:.0f} s: "
                               "see lab.logs('worker')")
        victim = min(busy, key=lambda b: b.worker)
        # Kill it halfway through its task, so the lost work shows on the timeline.
        time.sleep(max(0.0, victim.since + seconds / 2 - time.time()))
        killed_at = time.time()
        os.kill(victim.pid, signal.SIGKILL)
        progress.update(1, "killed")
        new_pid, _ = wait_for_replacement(lab, victim.worker, victim.pid)
        progress.update(1, "replaced")
        replacement = [new_pid] if new_pid is not None else []
        seen_at = time.time()
        lost = {victim.task_id}
        others = set(ids) - lost

        def others_done() -> bool:
            return all(s == "complete" for s in events.states(conn, name, others).values())

        procs.wait_until(others_done, timeout, max_interval=0.05)
        progress.update(1, "tasks done")
        time.sleep(2 * PROBE_EVERY)
    marks = {"worker killed": killed_at}
    after = float("nan")
    if replacement:
        after = seen_at - killed_at
        marks["replacement running"] = seen_at
    evs = tuple(lab.events(since=cursor))
    states = events.states(conn, name, ids)
    completed = tuple(t for t in ids if states.get(t) == "complete")
    lost_ids = tuple(t for t in ids if t == victim.task_id and states.get(t) != "complete")
    return KillResult(tuple(prober.probes), evs, marks, tuple(ids), victim.worker, victim.pid,
                      replacement[0] if replacement else None, after, lost_ids, completed)


# ----------------------------------------------------------------------------- Flask stopped
@dataclasses.dataclass(frozen=True)
class StopResult:
    """The Flask app stopped (SIGTERM, or SIGKILL) and restarted while the workers had tasks."""

    probes: tuple[tuple[float, float | None, Any], ...]
    events: tuple[Any, ...]
    marks: dict[str, float]
    task_ids: tuple[str, ...]
    web_pid: int
    new_web_pid: int | None
    signal_name: str = "SIGTERM"   #: how the Flask app was stopped

    @property
    def down(self) -> tuple[float, float]:
        """(stopped, restarted) as ``time.time()``."""
        return self.marks["Flask stopped"], self.marks["Flask restarted"]

    @property
    def done_while_down(self) -> list[float]:
        """``time.time()`` of each of the episode's tasks that completed while Flask was down."""
        lo, hi = self.down
        return [e.time for e in self.events
                if e.kind == "complete" and e.task_id in self.task_ids and lo <= e.time <= hi]

    @property
    def completed(self) -> set[str]:
        """The episode's tasks that completed (while Flask was down or not)."""
        return {e.task_id for e in self.events
                if e.kind == "complete" and e.task_id in self.task_ids}

    @property
    def answer(self) -> str | None:
        """07's belief 2: ``run`` when every task completed and some while Flask was down,
        ``die`` when none completed while it was down, None otherwise (settles nothing)."""
        if not self.done_while_down:
            return "die"
        return "run" if len(self.completed) == len(self.task_ids) else None

    @property
    def unanswered(self) -> list[tuple[float, float | None, Any]]:
        """Probes nobody answered."""
        return [p for p in self.probes if p[1] is None]

    @property
    def cut_off(self) -> list[tuple[float, float | None, Any]]:
        """Unanswered probes sent just before the stop: in flight when the signal ended the
        process (waitress installs no SIGTERM handler, so the process exits mid-request)."""
        lo, _ = self.down
        return [p for p in self.unanswered if lo - PROBE_TIMEOUT <= p[0] < lo]

    @property
    def stray(self) -> list[tuple[float, float | None, Any]]:
        """Unanswered probes that neither the stop nor the downtime explains."""
        lo, hi = self.down
        return [p for p in self.unanswered if not lo - PROBE_TIMEOUT <= p[0] <= hi]

    @property
    def teaches_lesson(self) -> bool:
        """03's lesson: while Flask was down the workers still finished tasks; only probes sent
        while it was down (or in flight when it stopped) went unanswered, and the restarted
        app answered again."""
        lo, hi = self.down
        after = [p for p in self.probes if p[0] > hi]
        return (len(self.done_while_down) >= 1 and len(self.unanswered) >= 1
                and not self.stray and bool(after) and all(p[1] is not None for p in after))

    def conclusions(self) -> list[str]:
        """What this run showed."""
        lo, hi = self.down
        during = [p for p in self.probes if lo <= p[0] <= hi]
        missed = [p for p in during if p[1] is None]
        errors = ", ".join(sorted({str(p[2]) for p in missed})) or "none"
        how = "killed with SIGKILL" if self.signal_name == "SIGKILL" else "stopped"
        out = [f"The Flask app (pid {self.web_pid}) was {how} and down for {hi - lo:.2f} s: "
               f"{len(missed)} of {len(during)} requests sent meanwhile got no answer ({errors})."]
        if self.cut_off:
            out.append(f"{len(self.cut_off)} request(s) sent just before the stop got no answer "
                       f"either: they were in flight when {self.signal_name} ended the process.")
        if self.stray:
            out.append(f"{len(self.stray)} requests outside that window got no answer either: "
                       "the machine may be overloaded.")
        done = self.done_while_down
        if done:
            out.append(f"Meanwhile the workers completed {len(done)} of {len(self.task_ids)} "
                       f"tasks, the last {max(done) - lo:.2f} s after Flask stopped: they talk "
                       "to the broker, not to Flask.")
        else:
            out.append("No task completed while Flask was down this time (the workers had "
                       "finished before it stopped, or did not run): see lab.logs('worker').")
        after = [p for p in self.probes if p[0] > hi]
        out.append(f"Restarted (pid {self.new_web_pid}, same port), it answered "
                   f"{len(_answered(after))} of {len(after)} requests.")
        return out


def flask_stopped(lab: Lab, tasks: int = 6, seconds: float = 0.3,
                  timeout: float = 15.0, crash: bool = False) -> StopResult:
    """Stop the Flask app with SIGTERM once the workers are busy, wait for the tasks, restart it.

    ``crash=True`` sends SIGKILL instead: no chance to clean up, as in a crash. The probe asks
    ``/api/hello`` every 0.1 s throughout. The app is restarted even when the cell is interrupted.
    """
    check_range("tasks", tasks, 1, 50, integer=True)
    check_range("seconds", seconds, 0.05, 5)
    require_running(lab)
    if lab.config.workers < 1:
        raise ValueError("flask_stopped needs workers: lab.scale(2)")
    sig = signal.SIGKILL if crash else signal.SIGTERM
    settle(lab)
    conn, name = lab.redis, lab.name
    cursor = lab.cursor()
    web = lab.web
    marks: dict[str, float] = {}
    try:
        with Prober(lab.url) as prober, Progress("flask_stopped", 3) as progress:
            time.sleep(3 * PROBE_EVERY)
            handles = lab.enqueue_many("sleep", tasks, seconds=seconds)
            ids = [h.id for h in handles]
            if not procs.wait_until(lambda: any(b.task_id in ids for b in events.busy(conn, name)),
                                    timeout):
                raise RuntimeError("no worker started a task: see lab.logs('worker')")
            marks["Flask stopped"] = time.time()
            web.send_signal(sig)
            procs.wait_until(lambda: web.poll() is not None, 5)
            progress.update(1, "Flask stopped")
            lab.wait(ids, timeout=timeout)
            progress.update(1, "tasks done")
            time.sleep(2 * PROBE_EVERY)  # a probe or two after the last task, still down
            lab.restart_web()
            marks["Flask restarted"] = time.time()  # running again: restart_web waited for it
            progress.update(1, "Flask restarted")
            time.sleep(5 * PROBE_EVERY)
    finally:
        if lab.web is None or lab.web.poll() is not None:
            lab.restart_web()  # interrupted while it was down: bring it back
    return StopResult(tuple(prober.probes), tuple(lab.events(since=cursor)), marks, tuple(ids),
                      web.pid, lab.status()["web"], sig.name)


# ----------------------------------------------------------------------------- a worker from elsewhere
@dataclasses.dataclass(frozen=True)
class ExtraWorkerResult:
    """The same batch before and after one more worker joined from its own command line."""

    command: str
    tasks: int
    seconds: float
    lab_workers: int
    extra_pid: int
    extra_names: tuple[str, ...]                          #: worker names it registered
    alone: float                                          #: seconds for the batch, lab workers only
    together: float                                       #: seconds for the batch with the extra worker
    shares: dict[str, int]                                #: worker name -> tasks run (second batch)
    exit_code: int | None

    @property
    def extra_ran(self) -> int:
        """Tasks of the second batch the extra worker ran."""
        return sum(n for w, n in self.shares.items() if w in self.extra_names)

    @property
    def teaches_lesson(self) -> bool:
        """03's lesson: the extra worker took a share of the work and the batch finished sooner."""
        return self.extra_ran >= 1 and self.together < self.alone

    def conclusions(self) -> list[str]:
        """What this run showed."""
        n = self.lab_workers
        out = [f"The lab's {n} workers alone ran {self.tasks} tasks of {self.seconds:g} s in "
               f"{self.alone:.2f} s."]
        line = (f"With the extra worker (pid {self.extra_pid}) they took {self.together:.2f} s; "
                f"it ran {self.extra_ran} of {self.tasks}")
        if self.teaches_lesson:
            line += (": one more worker, connected only to the broker, added capacity; nobody "
                     "told the Flask app or the other workers about it.")
        elif self.extra_ran:
            line += (", but the batch was not faster this time: the machine was probably busy "
                     "with something else; run it again.")
        else:
            line += ": it took no task this time (it may have started too late); run it again."
        out.append(line)
        if self.exit_code is not None:
            out.append(f"Stopped with SIGINT (Ctrl+C in its terminal), it exited with code "
                       f"{self.exit_code} after finishing what it was running.")
        return out


def _batch(lab: Lab, tasks: int, seconds: float, timeout: float) -> tuple[float, dict[str, int]]:
    settle(lab)
    cursor = lab.cursor()
    start = time.time()
    handles = lab.enqueue_many("sleep", tasks, seconds=seconds)
    ids = {h.id for h in handles}
    if not lab.wait(handles, timeout=timeout):
        raise RuntimeError(f"the batch did not finish within {timeout:.0f} s: "
                           "see lab.logs('worker')")
    evs = [e for e in lab.events(since=cursor) if e.task_id in ids]
    end = max(e.time for e in evs if e.kind == "complete")
    shares = collections.Counter(e.worker for e in evs if e.kind == "executing")
    return end - start, dict(sorted(shares.items()))


def extra_worker(lab: Lab, tasks: int = 12, seconds: float = 0.2, command: str | None = None,
                 timeout: float = 30.0) -> ExtraWorkerResult:
    """Run a batch on the lab's workers, start one more worker with ``command`` (default
    ``lab.worker_command()``, as typed in a terminal), run the batch again, stop it with SIGINT.

    The extra worker is a separate program connected only to the broker; its log is
    ``extra-worker.log`` in the lab's run directory.
    """
    check_range("tasks", tasks, 2, 200, integer=True)
    check_range("seconds", seconds, 0.05, 2)
    require_running(lab)
    if lab.config.workers < 1:
        raise ValueError("extra_worker compares against the lab's own workers: lab.scale(2)")
    command = command or lab.worker_command()
    progress = Progress("extra_worker", 3)
    alone, _ = _batch(lab, tasks, seconds, timeout)
    progress.update(1, "lab workers alone")
    before = set(lab.status()["worker_names"])
    log = lab.config.run_dir / "extra-worker.log"
    extra = procs.spawn(shlex.split(command), log_path=log)
    try:
        if not procs.wait_until(lambda: extra.poll() is not None
                                or extra.pid in lab.status()["workers"], 20):
            raise RuntimeError(f"the extra worker did not start within 20 s:\n{procs.tail(log)}")
        if extra.poll() is not None:
            raise RuntimeError(f"the extra worker exited with code {extra.returncode}:\n"
                               f"{procs.tail(log)}")
        names = tuple(sorted(set(lab.status()["worker_names"]) - before))
        progress.update(1, "extra worker running")
        together, shares = _batch(lab, tasks, seconds, timeout)
        progress.update(1, "with the extra worker")
    finally:
        procs.stop_group(extra, signal.SIGINT, grace=5)
        progress.close()
    return ExtraWorkerResult(command, tasks, seconds, lab.config.workers, extra.pid, names,
                             alone, together, shares, extra.returncode)


# ----------------------------------------------------------------------------- notebook sizes
def notebook_sized_where(lab: Lab) -> WhereResult:
    """03's Predict: 4 tasks of 0.1 s."""
    return where_tasks_run(lab, tasks=4, seconds=0.1)


def notebook_sized_kill(lab: Lab) -> KillResult:
    """03's kill: 6 tasks of 0.5 s on 2 process workers (notebook 03 starts its lab so)."""
    with arranged(lab, workers=2, worker_type="process"):
        return worker_killed(lab, tasks=6, seconds=0.5)


def notebook_sized_stop(lab: Lab) -> StopResult:
    """03's Flask stop: 6 tasks of 0.3 s."""
    return flask_stopped(lab, tasks=6, seconds=0.3)


def notebook_sized_extra(lab: Lab) -> ExtraWorkerResult:
    """03's extra worker: 12 tasks of 0.2 s before and after."""
    return extra_worker(lab, tasks=12, seconds=0.2)
