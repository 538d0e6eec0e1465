"""Production patterns, live (09): a second worker process on the same broker, the app factory.

* :func:`second_worker` starts one more consumer with the same command a learner would type
  in a terminal (``lab.worker_command()``), the way a second machine would join, enqueues a
  batch and counts which consumer ran each task.
* :func:`app_factory` builds the Flask app with :func:`labapp.web.create_app`, posts to its
  enqueue view through Flask's test client, and follows the task to ``complete``: the view
  only validates and calls the queue that :mod:`labapp.tasks` owns.
"""
from __future__ import annotations

import collections
import dataclasses
import shlex
import signal
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labapp import procs
from labapp.experiments._common import Progress
from labapp.experiments._common import check_range

if TYPE_CHECKING:
    from labapp.stack import Lab


@dataclasses.dataclass
class SecondWorkerResult:
    """Which consumer process ran each task of one batch."""

    command: str                      #: what was run, as typed in a terminal
    extra_pid: int                    #: the extra consumer's process id
    ran_by: dict[str, str]            #: task id -> "lab" or "extra"
    ready_s: float                    #: seconds until the extra consumer said it had started
    seconds: float                    #: wall time of the batch

    @property
    def counts(self) -> dict[str, int]:
        c = collections.Counter(self.ran_by.values())
        return {"lab": c.get("lab", 0), "extra": c.get("extra", 0)}

    @property
    def teaches_lesson(self) -> bool:
        """True when the extra process took a share of the batch beside the lab's workers."""
        c = self.counts
        return c["extra"] > 0 and c["lab"] > 0 and sum(c.values()) == len(self.ran_by)

    def conclusions(self) -> list[str]:
        c, n = self.counts, len(self.ran_by)
        done = c["lab"] + c["extra"]
        out = [f"A second consumer process (pid {self.extra_pid}), started with the same "
               f"command a terminal on another machine would run, was ready after "
               f"{self.ready_s:.1f} s."]
        if c["extra"]:
            out.append(f"Of {n} tasks it ran {c['extra']}, the lab's own workers {c['lab']}: "
                       f"both took work from the one queue, with no change to the app.")
        else:
            out.append(f"It ran none of the {n} tasks this time (the lab's workers emptied the "
                       f"queue first): try more tasks.")
        if done < n:
            out.append(f"{n - done} task(s) did not finish in time.")
        return out

    def __repr__(self) -> str:
        return "Second worker:\n  " + "\n  ".join(self.conclusions())


def second_worker(lab: Lab, tasks: int = 12, seconds: float = 0.3,
                  timeout: float = 30.0) -> SecondWorkerResult:
    """Start an extra consumer from the command line, enqueue ``tasks`` sleeps, count who ran them.

    The extra consumer is stopped gracefully (SIGINT) at the end; it dies with this kernel
    in any case.
    """
    check_range("tasks", tasks, 2, 200, integer=True)
    check_range("seconds", seconds, 0.0, 5.0)
    check_range("timeout", timeout, 5.0, 120.0)
    if not lab.status()["workers"]:
        raise RuntimeError("the lab has no workers: run lab.scale(2) first")
    command = lab.worker_command(1)
    log = Path(tempfile.mkstemp(prefix="queue-lab-worker-", suffix=".log")[1])
    progress = Progress("second worker", tasks + 1)
    t0 = time.perf_counter()
    proc = procs.spawn(shlex.split(command), log_path=log)
    try:
        def ready() -> bool:
            return proc.poll() is not None or "Huey consumer started" in log.read_text()

        if not procs.wait_until(ready, timeout, max_interval=0.1) or proc.poll() is not None:
            raise RuntimeError(f"the extra worker did not start; its log:\n{procs.tail(log)}")
        ready_s = time.perf_counter() - t0
        progress.update(1, "extra worker ready")
        cursor = lab.cursor()
        start = time.perf_counter()
        handles = lab.enqueue_many("sleep", tasks, seconds=seconds)
        lab.wait(handles, timeout=timeout)
        elapsed = time.perf_counter() - start
        progress.update(tasks, "batch done")
        ids = {h.id for h in handles}
        ran_by = {}
        for ev in lab.events(since=cursor):
            if ev.task_id in ids and ev.kind == "complete":
                ran_by[ev.task_id] = "extra" if "/" in ev.worker else "lab"
        return SecondWorkerResult(command=command, extra_pid=proc.pid,
                                  ran_by={h.id: ran_by.get(h.id, "not finished") for h in handles},
                                  ready_s=ready_s, seconds=elapsed)
    finally:
        procs.stop_group(proc, signal.SIGINT, grace=3.0)
        log.unlink(missing_ok=True)
        progress.close()


@dataclasses.dataclass
class AppFactoryResult:
    """One request through the app factory's enqueue view, and the task it created."""

    status: int                 #: HTTP status of POST /api/enqueue/<task>
    body: dict[str, Any]        #: its JSON body
    final: dict[str, Any]       #: GET /api/tasks/<id> once the task finished
    bad_status: int             #: HTTP status of a request naming a task not on the whitelist
    bad_body: dict[str, Any]
    seconds: float              #: request time of the POST

    def conclusions(self) -> list[str]:
        return [f"POST api/enqueue/send_email answered {self.status} in "
                f"{self.seconds * 1e3:.1f} ms with task id {self.body.get('id', '?')[:8]}; the "
                f"task then ended in state {self.final.get('state')!r} with result "
                f"{self.final.get('result')!r}.",
                f"A request naming a task that is not on the whitelist got {self.bad_status}: "
                f"{self.bad_body.get('error', '')}"]

    def __repr__(self) -> str:
        return "App factory:\n  " + "\n  ".join(self.conclusions())


def app_factory(lab: Lab, timeout: float = 15.0) -> AppFactoryResult:
    """Build the Flask app with ``create_app``, enqueue through its view, follow the task."""
    from labapp.web import create_app

    if not lab.status()["workers"]:
        raise RuntimeError("the lab has no workers: run lab.scale(2) first")
    app = create_app({"LAB_NAME": lab.name, "LAB_REDIS_URL": lab.redis_url, "TESTING": True})
    client = app.test_client()
    t = time.perf_counter()
    response = client.post("/api/enqueue/send_email", json={"to": "ada@example.com",
                                                             "seconds": 0.2})
    seconds = time.perf_counter() - t
    body = response.get_json()
    if response.status_code == 202:
        lab.wait(body["id"], timeout=timeout)
    final = client.get(f"/api/tasks/{body.get('id', 'none')}").get_json()
    bad = client.post("/api/enqueue/os.system", json={})
    return AppFactoryResult(status=response.status_code, body=body, final=final,
                            bad_status=bad.status_code, bad_body=bad.get_json(),
                            seconds=seconds)


def notebook_sized(lab: Lab) -> SecondWorkerResult:
    """The run notebook 09 makes: 12 tasks of 0.3 s with one extra consumer."""
    return second_worker(lab, tasks=12, seconds=0.3)
