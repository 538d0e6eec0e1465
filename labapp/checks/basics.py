"""Checks for exercises 01-03: count the queue, enqueue from Flask, run tasks on the workers."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import threading
from typing import TYPE_CHECKING, Any, Iterator

import redis
from flask import got_request_exception

from labapp import tasks
from labapp.checks._common import EXERCISES
from labapp.checks._common import NotYet
from labapp.checks._common import by_task
from labapp.checks._common import call
from labapp.checks._common import completed
from labapp.checks._common import draw
from labapp.checks._common import enqueued_with
from labapp.checks._common import exercise
from labapp.checks._common import failure_hint
from labapp.checks._common import first_error
from labapp.checks._common import load_module
from labapp.checks._common import require_function
from labapp.checks._common import require_task
from labapp.checks._common import timed_post
from labapp.checks._common import on_worker
from labapp.checks._common import token
from labapp.checks._common import unsolved
from labapp.checks._common import worker_pids
from labapp.units import duration

if TYPE_CHECKING:
    from labapp.stack import Lab


# --------------------------------------------------------------------------- 01
QUEUE_TASKS = ("sleep", "noop", "send_email", "cpu", "record", "flaky")


def _task_name(answer: Any) -> str | None:
    """The demo task's short name in ``answer`` ('labapp.tasks.sleep' and 'sleep' both count)."""
    return answer.rsplit(".", 1)[-1] if isinstance(answer, str) else None


@exercise("ex01_pending_jobs", "01_what_is_a_task_queue",
          'check("ex01_pending_jobs", pending_jobs=pending_jobs, next_task=next_task)')
def check_pending_jobs(lab: Lab, pending_jobs: Any = None,
                       next_task: Any = None) -> tuple[str, dict[str, Any]]:
    """pending_jobs(redis, queue) counts a queue; next_task(redis, queue) names its oldest job.

    The check builds a private Huey queue of its own in the lab's server (a list under a
    random key, holding a random number of real Huey messages in a random order), hands the
    functions a fresh redis client and that key, and changes the list between calls. The
    lab's own queue holds a different number of jobs, so counting that one does not pass.
    """
    usage = EXERCISES["ex01_pending_jobs"].usage
    count_fn = require_function("pending_jobs", pending_jobs, usage)
    next_fn = require_function("next_task", next_task, usage)
    rand = draw()
    client = redis.Redis.from_url(lab.redis_url)
    queue = f"huey.redis.ex01_{token()}"
    steps: list[dict[str, Any]] = []

    def push(count: int) -> None:
        for _ in range(count):  # what huey.enqueue does: one pickled message, LPUSH
            name = rand.choice(QUEUE_TASKS)
            client.lpush(queue, lab.huey.serialize_task(tasks.signature(name, {})))

    def name_at(index: int) -> str | None:  # -1: the oldest job (RPOP's end), 0: the newest
        raw = client.lindex(queue, index)
        return None if raw is None else lab.huey.serializer.deserialize(raw).name.rsplit(".", 1)[-1]

    plan = [("filled", rand.randint(5, 30)), ("more jobs arrived", rand.randint(3, 12)),
            ("a worker took some", -rand.randint(2, 4)), ("a worker took them all", None)]
    try:
        for what, change in plan:
            if change is None:
                client.delete(queue)
            elif change > 0:
                push(change)
                while name_at(-1) == name_at(0):  # so that "which end" makes a difference
                    push(1)
            else:
                for _ in range(-change):
                    client.rpop(queue)  # a worker takes the oldest job (Huey: BRPOP)
            before = client.lrange(queue, 0, -1)
            truth = {"step": what, "waiting": len(before), "next": name_at(-1),
                     "lab_queue": lab.queue_length()}
            steps.append(truth)
            count = call("pending_jobs(client, queue)", count_fn, client, queue)
            name = call("next_task(client, queue)", next_fn, client, queue)
            after = client.lrange(queue, 0, -1)
            if after != before:
                raise NotYet(f"the list lost or gained jobs while your functions ran ({what}): "
                             "read it without taking anything (LLEN, LINDEX read; RPOP, LPOP "
                             "and BRPOP take)", steps=steps)
            _judge_step(count, name, truth, name_at(0), steps)
    finally:
        client.delete(queue)
        client.close()
    counts = ", ".join(str(s["waiting"]) for s in steps)
    return (f"a private queue of {counts} jobs was counted right each time, and the next job named "
            "right, without taking any", {"steps": steps})


def _judge_step(count: Any, name: Any, truth: dict[str, Any], newest: str | None,
                steps: list[dict[str, Any]]) -> None:
    """The answers after one change of the queue, against what it held (else :class:`NotYet`)."""
    if unsolved(count) or isinstance(count, bool) or not isinstance(count, int):
        raise NotYet(f"pending_jobs returned {count!r}: return the number of waiting "
                     "jobs as an int", steps=steps)
    if count != truth["waiting"]:
        if count == truth["lab_queue"] and truth["waiting"] != truth["lab_queue"]:
            raise NotYet("pending_jobs counted the lab's own queue, not the list it was "
                         "given: use the redis client and queue key passed to it",
                         steps=steps)
        raise NotYet(f"pending_jobs returned {count} after the queue was {truth['step']}, "
                     "which is not what the list held: ask the server for the length of the "
                     "list named by `queue` (notebook 01, 'Look inside the broker')",
                     steps=steps)
    if truth["next"] is None:
        if name is not None:
            raise NotYet(f"with nothing waiting, next_task returned {name!r}: return None "
                         "when the list is empty", steps=steps)
        return
    if _task_name(name) != truth["next"]:
        hint = (f"next_task returned {name!r}: return the task name of the job a worker "
                "takes next (deserialize it with lab.huey.serializer and read .name)")
        if _task_name(name) == newest:
            hint = (f"next_task named the job added last ({name!r}): Huey adds jobs on one "
                    "end of the list and workers take them from the other; which end is "
                    "the oldest?")
        raise NotYet(hint, steps=steps)


# --------------------------------------------------------------------------- 02
@contextlib.contextmanager
def serve(app: Any, threads: int = 2) -> Iterator[int]:
    """Serve a Flask app with waitress (a bounded thread pool) on a free port; yields the port."""
    from waitress.server import create_server
    server = create_server(app, host="127.0.0.1", port=0, threads=threads, ident="ex02")
    thread = threading.Thread(target=server.run, name="check-waitress", daemon=True)
    thread.start()
    def close_all() -> None:  # runs in the server's own loop thread, between two polls
        for channel in list(server._map.values()):
            channel.close()

    try:
        yield int(server.effective_port)
    finally:
        # Closing sockets from this thread while the loop polls them makes the loop raise
        # (EBADF); the trigger hands the closing to the loop itself, which then ends.
        server.trigger.pull_trigger(close_all)
        thread.join(3)
        server.task_dispatcher.shutdown(timeout=2)


# Half of the 0.3 s one report takes: a handler that builds even one report inline cannot
# answer this fast, while handing over takes milliseconds (with room for a busy machine).
REPORT_LIMIT = 0.15


@exercise("ex02_report_endpoint", "02_why_in_flask", 'check("ex02_report_endpoint")')
def check_report_endpoint(lab: Lab) -> tuple[str, dict[str, Any]]:
    """POST /report/<user> of ex02_app.create_app() must answer 202 + the task id at once.

    12 requests for randomly named users, from 4 clients at once, against 2 request
    threads; then every user's report must have gone through the queue (an ``enqueued``
    event naming that user, whose id the response gave) and been built by a worker.
    """
    module = load_module(lab, "ex02_app", "create_app", "build_report")
    require_task("ex02_app", module.build_report, "build_report")
    app = call("create_app()", module.create_app)
    if not hasattr(app, "wsgi_app"):
        raise NotYet(f"create_app() returned {type(app).__name__}: return the Flask app")
    lab.reset()
    cursor = lab.cursor()
    rand = draw()
    users = [f"u{rand.randrange(10**6):06d}" for _ in range(12)]
    samples, failures = _post_reports(app, users)
    if len(samples) < len(users):
        raise NotYet(f"only {len(samples)} of {len(users)} requests were answered within 30 s")
    median = statistics.median(s[2] for s in samples.values())
    statuses = sorted({s[0] for s in samples.values()})
    details: dict[str, Any] = {"users": users, "median_ms": round(median * 1000, 1),
                               "statuses": statuses}
    answered = _answered_ids(samples, failures, statuses, median, details)
    _judge_jobs(lab, cursor, users, answered, details)
    return (f"12 requests from 4 clients: median {duration(median)}, all 202 with their task "
            "ids, and the workers built all 12 reports", details)


def _post_reports(app: Any, users: list[str]
                  ) -> tuple[dict[str, tuple[int, bytes, float]], list[BaseException]]:
    """POST /report/<user> for every user from 4 clients at once, the app on 2 request threads.

    Returns ``{user: (status, body, seconds)}`` and the exceptions the app's handler raised.
    """
    failures: list[BaseException] = []

    def record_failure(sender: Any, exception: BaseException, **_: Any) -> None:
        failures.append(exception)

    quiet = [logging.getLogger("waitress"), app.logger]
    levels = [lg.level for lg in quiet]
    for lg in quiet:  # the learner's tracebacks become the hint instead of flooding the cell
        lg.setLevel(logging.CRITICAL)
    samples: dict[str, tuple[int, bytes, float]] = {}
    try:
        with got_request_exception.connected_to(record_failure, app), serve(app) as port:
            timed_post(port, "/__warm_up__")  # Flask's first request pays one-off setup costs
            threads = [threading.Thread(target=lambda part=users[i::4]: samples.update(
                (u, timed_post(port, f"/report/{u}")) for u in part)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    return samples, failures


def _answered_ids(samples: dict[str, tuple[int, bytes, float]], failures: list[BaseException],
                  statuses: list[int], median: float, details: dict[str, Any]) -> dict[str, str]:
    """The task id each response gave, once the responses look right (else :class:`NotYet`)."""
    if failures:
        exc = failures[0]
        raise NotYet(f"POST /report/<user> answered 500: your handler raised "
                     f"{failure_hint(f'{type(exc).__name__}: {exc}')}", **details)
    if 404 in statuses or 405 in statuses:
        raise NotYet("POST /report/<user> is not a route of your app (answered 404/405): "
                     "keep @app.post('/report/<user>')", **details)
    if median >= REPORT_LIMIT:
        raise NotYet(f"the median response took {duration(median)} "
                     f"(limit {duration(REPORT_LIMIT)}): the "
                     "handler still waits for the report; hand it to the queue and answer at "
                     "once", **details)
    if statuses != [202]:
        raise NotYet(f"the endpoint answered {statuses}: answer 202 (Accepted), the status "
                     "for 'taken on, not done yet'", **details)
    answered = {}
    for user, (_, body, _) in samples.items():
        try:
            answered[user] = json.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            raise NotYet("answer with JSON holding the task id under 'id', so the page can ask "
                         "about the task later", **details) from None
    return answered


def _judge_jobs(lab: Lab, cursor: str, users: list[str], answered: dict[str, str],
                details: dict[str, Any]) -> None:
    """Each request enqueued one build_report for its user, gave that job's id, and a worker
    built it (else :class:`NotYet`)."""
    # Which task did each request enqueue? (the producer records 'enqueued' before returning)
    mine = lambda: lab.events(since=cursor)  # noqa: E731
    jobs = {u: enqueued_with(mine(), "build_report", repr(u)) for u in users}
    lost = [u for u in users if not jobs[u]]
    if len(lost) == len(users) and not any(
            e.kind == "enqueued" and e.task == "build_report" for e in mine()):
        raise NotYet(f"none of the {len(users)} requests enqueued a build_report job, so no "
                     "worker will ever build those reports: work started inside the app (a "
                     "thread, or a call in the handler) never reaches the queue", **details)
    if lost:
        raise NotYet(f"{len(lost)} of {len(users)} requests enqueued no build_report job for "
                     f"their user (e.g. {lost[0]}): call the task with the user from the URL",
                     **details)
    wrong_id = [u for u in users if answered[u] not in {evs[0].task_id for evs in jobs[u]}]
    if wrong_id:
        raise NotYet(f"the response for {wrong_id[0]} gave id {answered[wrong_id[0]]!r}, which is "
                     "not the id of the job it enqueued: answer with the id of the result "
                     "handle the task call returned", **details)
    ids = list(answered.values())
    if not lab.wait(ids, 15):
        raise NotYet("the 12 reports were enqueued but not all built within 15 s: "
                     "are the workers running? (lab.status())", **details)
    history, pids = by_task(mine()), worker_pids(lab)
    for user, task_id in answered.items():
        evs = history.get(task_id, [])
        if not completed(evs):
            raise NotYet(f"the report for {user} failed in the worker: "
                         f"{failure_hint(first_error(evs))}", **details)
        if on_worker(evs, "complete", pids) is None:
            raise NotYet(f"the report for {user} was not built by a worker: let the workers "
                         "run it", **details)


# --------------------------------------------------------------------------- 03
WORDS = ("queue", "worker", "broker", "flask", "retry", "pickle", "redis", "huey", "task",
         "result", "backoff", "thread", "process", "schedule")


@exercise("ex03_task_module", "03_workers_are_processes", 'check("ex03_task_module")')
def check_task_module(lab: Lab) -> tuple[str, dict[str, Any]]:
    """ex03_tasks.shout(text) must run on the workers and return {'text': TEXT, 'pid': worker}.

    The texts are drawn at random; each returned pid must be the pid of the worker that
    the events show running that very job.
    """
    module = load_module(lab, "ex03_tasks", "shout")
    shout = require_task("ex03_tasks", module.shout, "shout")
    lab.reset()
    rand = draw()
    texts = [" ".join(rand.sample(WORDS, 2)) + f" {rand.randrange(1000)}" for _ in range(10)]
    handles = [call(f"shout({t!r})", shout, t) for t in texts]
    if not lab.wait(handles, 15):
        raise NotYet("after 15 s not all 10 shout jobs had finished: are the workers "
                      "running? (lab.status())")
    history = by_task(lab.events())
    failed = [h for h in handles if not completed(history.get(h.id, []))]
    if failed:
        raise NotYet(f"{len(failed)} of 10 shout jobs failed in the workers: "
                     f"{failure_hint(first_error(history.get(failed[0].id, [])))}")
    status = lab.status()
    worker_pid_set = set(status["workers"])
    pids = set()
    for text, handle in zip(texts, handles):
        value = lab.result(handle)
        ran = on_worker(history[handle.id], "executing", worker_pid_set)
        if not isinstance(value, dict):
            raise NotYet(f"shout({text!r}) returned {value!r}: return a dict with the keys "
                         "'text' and 'pid'")
        if value.get("text") != text.upper():
            raise NotYet(f"shout({text!r}) returned text {value.get('text')!r}: return the text "
                         "it was given, in capitals")
        if ran is None or value.get("pid") != ran.pid:
            where = "not a worker" if value.get("pid") not in worker_pid_set else \
                "not the worker that ran this job"
            raise NotYet(f"shout returned pid {value.get('pid')!r}, which is {where} (workers: "
                         f"{sorted(worker_pid_set)}): ask the operating system, inside the task, "
                         "which process is running it (notebook 03, 'Who is who')")
        pids.add(value["pid"])
    return (f"10 of 10 jobs ran in worker pid {', '.join(map(str, sorted(pids)))}; this "
            f"notebook is pid {os.getpid()}, Flask is pid {status['web']}",
            {"texts": texts, "worker_pids": sorted(pids), "kernel_pid": os.getpid(),
             "web_pid": status["web"]})
