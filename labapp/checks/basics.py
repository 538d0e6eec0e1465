"""Checks for exercises 01-03: count the queue, enqueue from Flask, run tasks on the workers."""
from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import statistics
import threading
import time
from typing import Any, Iterator

from flask import got_request_exception

from labapp import procs
from labapp.checks._common import EXERCISES
from labapp.checks._common import NotYet
from labapp.checks._common import by_task
from labapp.checks._common import call
from labapp.checks._common import completed
from labapp.checks._common import exercise
from labapp.checks._common import failure_hint
from labapp.checks._common import first_error
from labapp.checks._common import load_module
from labapp.checks._common import ms
from labapp.checks._common import require_function
from labapp.checks._common import require_task
from labapp.checks._common import scaled
from labapp.checks._common import unsolved

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- 01
@exercise("ex01_pending_jobs", "01_what_is_a_task_queue",
          'check("ex01_pending_jobs", pending_jobs=pending_jobs)')
def check_pending_jobs(lab: Any, pending_jobs: Any = None) -> tuple[str, dict[str, Any]]:
    """pending_jobs(lab) must count the jobs waiting in the broker, without taking any."""
    fn = require_function("pending_jobs", pending_jobs, EXERCISES["ex01_pending_jobs"].usage)
    seen = []
    with scaled(lab, 0):
        lab.reset()
        for batch in (0, 7, 16):
            if batch:
                lab.enqueue_many("noop", batch)
            waiting = lab.queue_length()
            answer = call("pending_jobs(lab)", fn, lab)
            left = lab.queue_length()
            if left < waiting:
                raise NotYet(f"the queue shrank from {waiting} to {left} jobs while "
                             "pending_jobs ran: count the jobs (LLEN), don't take them (LPOP)")
            if unsolved(answer) or isinstance(answer, bool) or not isinstance(answer, int):
                raise NotYet(f"pending_jobs(lab) returned {answer!r}: return the number of "
                             "waiting jobs as an int")
            if answer != waiting:
                raise NotYet(f"pending_jobs(lab) returned {answer} while {waiting} jobs were "
                             "waiting: the queue is one Redis list; find its key with "
                             "lab.redis.keys('*') and count it with lab.redis.llen(key)")
            seen.append(answer)
    if lab.config.workers:  # the restored workers drain the queue: the count must follow
        procs.wait_until(lambda: lab.queue_length() == 0, 10.0)
        answer = call("pending_jobs(lab)", fn, lab)
        if answer != lab.queue_length():
            raise NotYet(f"after the workers emptied the queue, pending_jobs(lab) still "
                         f"returned {answer}: read the list's length each time you are called")
        seen.append(answer)
    return (f"pending_jobs counted {', '.join(map(str, seen))} jobs, matching the broker "
            "each time", {"counts": seen})


# --------------------------------------------------------------------------- 02
@contextlib.contextmanager
def serve(app: Any, threads: int = 2) -> Iterator[int]:
    """Serve a Flask app with waitress (a bounded thread pool) on a free port; yields the port."""
    from waitress.server import create_server
    server = create_server(app, host="127.0.0.1", port=0, threads=threads, ident="ex02")
    thread = threading.Thread(target=server.run, name="check-waitress", daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        server.close()
        server.task_dispatcher.shutdown(timeout=2)
        thread.join(3)


def _timed_post(port: int, path: str) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    start = time.perf_counter()
    try:
        conn.request("POST", path, body=b"", headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read(), time.perf_counter() - start
    finally:
        conn.close()


@exercise("ex02_report_endpoint", "02_why_in_flask", 'check("ex02_report_endpoint")')
def check_report_endpoint(lab: Any) -> tuple[str, dict[str, Any]]:
    """POST /report/<user> of ex02_app.create_app() must answer 202 + id in < 50 ms (median)."""
    module = load_module(lab, "ex02_app", "create_app", "build_report")
    require_task("ex02_app", module.build_report, "build_report")
    app = call("create_app()", module.create_app)
    if not hasattr(app, "wsgi_app"):
        raise NotYet(f"create_app() returned {type(app).__name__}: return the Flask app")
    lab.reset()
    failures: list[BaseException] = []

    def record_failure(sender: Any, exception: BaseException, **_: Any) -> None:
        failures.append(exception)

    quiet = [logging.getLogger("waitress"), app.logger]
    levels = [lg.level for lg in quiet]
    for lg in quiet:  # the learner's tracebacks become the hint instead of flooding the cell
        lg.setLevel(logging.CRITICAL)
    paths = [f"/report/user{i}" for i in range(12)]
    samples: list[tuple[int, bytes, float]] = []
    try:
        with got_request_exception.connected_to(record_failure, app), serve(app) as port:
            _timed_post(port, "/__warm_up__")  # Flask's first request pays one-off setup costs
            threads = [threading.Thread(target=lambda p=paths[i::4]: samples.extend(
                _timed_post(port, x) for x in p)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    if len(samples) < len(paths):
        raise NotYet(f"only {len(samples)} of {len(paths)} requests were answered within 30 s")
    median = statistics.median(s[2] for s in samples)
    statuses = sorted({s[0] for s in samples})
    details = {"median_ms": round(median * 1000, 1), "statuses": statuses}
    if failures:
        exc = failures[0]
        raise NotYet(f"POST /report/<user> answered 500: your handler raised "
                     f"{failure_hint(f'{type(exc).__name__}: {exc}')}", **details)
    if 404 in statuses or 405 in statuses:
        raise NotYet("POST /report/<user> is not a route of your app (answered 404/405): "
                     "keep @app.post('/report/<user>')", **details)
    if median >= 0.05:
        raise NotYet(f"the median response took {ms(median)} (limit 50 ms): the handler still "
                     "waits for the report; call build_report(user) (that enqueues it) and "
                     "answer at once", **details)
    if statuses != [202]:
        raise NotYet(f"the endpoint answered {statuses}: answer 202 (Accepted), e.g. "
                     "return jsonify(id=result.id), 202", **details)
    try:
        ids = [json.loads(body)["id"] for _, body, _ in samples]
    except (ValueError, KeyError, TypeError):
        ids = []
    if not ids or not all(isinstance(i, str) for i in ids):
        raise NotYet("answer with JSON holding the task id, e.g. jsonify(id=result.id)",
                     **details)
    if not lab.wait(ids, 15):
        raise NotYet("the 12 reports were enqueued but not all built within 15 s: "
                      "are the workers running? (lab.status())", **details)
    history = by_task(lab.events())
    done = sum(1 for i in ids if completed(history.get(i, [])))
    if done < len(ids):
        errors = [first_error(history.get(i, [])) for i in ids]
        raise NotYet(f"{len(ids) - done} of {len(ids)} build_report jobs failed in the "
                     f"workers: {failure_hint(next(filter(None, errors), ''))}", **details)
    return (f"12 requests from 4 clients: median {ms(median)}, all 202, and the workers "
            "built all 12 reports", details)


# --------------------------------------------------------------------------- 03
@exercise("ex03_task_module", "03_workers_are_processes", 'check("ex03_task_module")')
def check_task_module(lab: Any) -> tuple[str, dict[str, Any]]:
    """ex03_tasks.shout(text) must run on the workers and return {'text': TEXT, 'pid': worker}."""
    module = load_module(lab, "ex03_tasks", "shout")
    shout = require_task("ex03_tasks", module.shout, "shout")
    lab.reset()
    texts = [f"hello {i}" for i in range(10)]
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
    worker_pids = set(status["workers"])
    pids = set()
    for text, handle in zip(texts, handles):
        value = lab.result(handle)
        if not isinstance(value, dict):
            raise NotYet(f"shout({text!r}) returned {value!r}: return a dict like "
                         "{'text': text.upper(), 'pid': os.getpid()}")
        if value.get("text") != text.upper():
            raise NotYet(f"shout({text!r}) returned text {value.get('text')!r}: "
                         f"expected {text.upper()!r}")
        if value.get("pid") not in worker_pids:
            raise NotYet(f"shout returned pid {value.get('pid')!r}, which is not a worker "
                         f"(workers: {sorted(worker_pids)}): return os.getpid() from inside "
                         "the task")
        pids.add(value["pid"])
    return (f"10 of 10 jobs ran in worker pid {', '.join(map(str, sorted(pids)))}; this "
            f"notebook is pid {os.getpid()}, Flask is pid {status['web']}",
            {"worker_pids": sorted(pids), "kernel_pid": os.getpid(), "web_pid": status["web"]})
