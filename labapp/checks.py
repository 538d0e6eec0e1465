"""The exercise checks: each one measures the learner's code on the live lab.

A check never reads the learner's source. It calls their function, serves their Flask app
or runs their task module on the workers, then judges what it measured (response times,
task outcomes, event streams, counts). A failure raises :class:`NotYet` with a hint that
names the measurement and the likely fix. :func:`labapp.grading.check` runs these and turns
every outcome, including a crash of the learner's code, into a "not yet" with a hint.

Checks empty the lab's queue and events first (``lab.reset()``) and put back the worker
count they change, so a check can be re-run at any time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import logging
import os
import statistics
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from flask import got_request_exception
from huey.api import TaskWrapper

from labapp import procs
from labapp.config import ConfigError

logger = logging.getLogger(__name__)

STUB_HINT = "replace the stub in the '# Your code here' cell with your code, run it, then check again"


class NotYet(Exception):
    """The exercise is not solved yet; ``hint`` says what was measured and what to try."""

    def __init__(self, hint: str, **details: Any) -> None:
        super().__init__(hint)
        self.hint = hint
        self.details = details


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One graded exercise: its id, the notebook it belongs to and the function that checks it."""

    id: str
    notebook: str
    usage: str
    run: Callable[..., tuple[str, dict[str, Any]]]


EXERCISES: dict[str, Exercise] = {}


def exercise(ex_id: str, notebook: str, usage: str) -> Callable[[Callable[..., Any]], Any]:
    """Register a check: ``run(lab, **learner_objects) -> (summary, details)`` or raise NotYet."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        EXERCISES[ex_id] = Exercise(ex_id, notebook, usage, fn)
        return fn
    return register


# --------------------------------------------------------------------------- helpers
def unsolved(value: Any) -> bool:
    """True for the placeholders an exercise starts with (``None`` or ``...``)."""
    return value is None or value is Ellipsis


def _function(name: str, fn: Any, usage: str) -> Callable[..., Any]:
    if unsolved(fn):
        raise NotYet(f"{name} is not defined yet: write it in the '# Your code here' cell, "
                     f"run that cell, then run {usage}")
    if not callable(fn):
        raise NotYet(f"{name} should be a function, got {type(fn).__name__}: pass the function "
                     f"itself, as in {usage}")
    return fn


def call(label: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run learner code; its exceptions become a hint (the check itself never crashes)."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise NotYet(f"{label} still raises NotImplementedError: {STUB_HINT}") from None
    except (NotYet, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - any learner error is a hint, not a crash
        raise NotYet(f"{label} raised {type(exc).__name__}: {exc}") from None


def load_module(lab: Any, module: str, *names: str) -> Any:
    """Import the learner's task module here and in the workers; require ``names`` in it."""
    if not (Path.cwd() / f"{module}.py").is_file():
        raise NotYet(f"there is no {module}.py next to this notebook yet: run the "
                     f"%%writefile {module}.py cell first")
    try:
        loaded = lab.load_tasks(module)
    except ConfigError as exc:
        raise NotYet(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the learner's module failed to import
        raise NotYet(f"importing {module}.py failed with {type(exc).__name__}: {exc}") from None
    for name in names:
        if not hasattr(loaded, name):
            raise NotYet(f"{module}.py defines no {name}: write it in the %%writefile cell")
    return loaded


def require_task(module: str, obj: Any, name: str) -> TaskWrapper:
    """``obj`` must be a Huey task (a function decorated with ``@huey.task()``)."""
    if not isinstance(obj, TaskWrapper):
        raise NotYet(f"{module}.{name} is a plain {type(obj).__name__}, not a task: decorate "
                     f"it with @huey.task() so calling it enqueues a job")
    return obj


@contextlib.contextmanager
def scaled(lab: Any, count: int) -> Iterator[None]:
    """Run the body with ``count`` thread workers, then put the lab's setting back."""
    before = (lab.config.workers, lab.config.worker_type)
    if before != (count, "thread"):
        lab.scale(count, "thread")
    try:
        yield
    finally:
        if (lab.config.workers, lab.config.worker_type) != before:
            lab.scale(*before)


def by_task(events: list[Any]) -> dict[str, list[Any]]:
    """Events grouped by task id, in stream order."""
    out: dict[str, list[Any]] = {}
    for event in events:
        out.setdefault(event.task_id, []).append(event)
    return out


def first_error(events: list[Any]) -> str:
    """The exception text of the first ``error`` event ('' when none)."""
    return next((e.detail for e in events if e.kind == "error"), "")


def failure_hint(detail: str) -> str:
    """A worker-side error, with the stub hint when it is the exercise's placeholder."""
    if detail.startswith("NotImplementedError"):
        return f"NotImplementedError (still the stub): {STUB_HINT}"
    return detail or "unknown error"


def post_json(url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> tuple[int, Any, float]:
    """POST JSON to ``url``; returns (status, decoded body, seconds the client waited)."""
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    seconds = time.perf_counter() - start
    try:
        return status, json.loads(raw), seconds
    except ValueError:
        return status, raw.decode("utf-8", "replace"), seconds


def token() -> str:
    """A short random tag, so keys of one check run never meet those of an earlier run."""
    return uuid.uuid4().hex[:8]


def ms(seconds: float) -> str:
    """Seconds as a short millisecond string."""
    return f"{seconds * 1000:.0f} ms"


# --------------------------------------------------------------------------- 01
@exercise("ex01_pending_jobs", "01_what_is_a_task_queue",
          'check("ex01_pending_jobs", pending_jobs=pending_jobs)')
def check_pending_jobs(lab: Any, pending_jobs: Any = None) -> tuple[str, dict[str, Any]]:
    """pending_jobs(lab) must count the jobs waiting in the broker, without taking any."""
    fn = _function("pending_jobs", pending_jobs, EXERCISES["ex01_pending_jobs"].usage)
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
    done = sum(1 for i in ids if any(e.kind == "complete" for e in history.get(i, [])))
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
    failed = [h for h in handles if not any(e.kind == "complete" for e in history.get(h.id, []))]
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


# --------------------------------------------------------------------------- 04
@exercise("ex04_schedule", "04_tools", 'check("ex04_schedule", remind=remind)')
def check_schedule(lab: Any, remind: Any = None) -> tuple[str, dict[str, Any]]:
    """remind(lab, to) must return at once and get send_email run about 2 s later by a worker."""
    fn = _function("remind", remind, EXERCISES["ex04_schedule"].usage)
    lab.reset()
    cursor = lab.cursor()
    addresses = ["ana@example.com", "ben@example.com", "eve@example.com"]
    called = {}
    for address in addresses:
        start = time.time()
        call(f"remind(lab, {address!r})", fn, lab, address)
        took = time.time() - start
        if took > 0.5:
            raise NotYet(f"remind() took {took:.1f} s to return: hand the email to the queue "
                         "with a delay and return at once (a request would wait that long)")
        called[address] = start
    # Producers record "enqueued" before enqueue returns, so the hand-over is visible now.
    handed = {}
    for event in lab.events(since=cursor):
        for address in addresses:
            if event.kind == "enqueued" and event.task == "send_email" and address in event.detail:
                handed.setdefault(address, event.task_id)
    if not handed:
        raise NotYet("no send_email job went through the queue: use Huey's API, e.g. "
                     "send_email.schedule(kwargs={'to': to}, delay=2) (not a thread or timer)")
    missing = [a for a in addresses if a not in handed]
    if missing:
        raise NotYet(f"remind(lab, {missing[0]!r}) enqueued no send_email job for that "
                     "address: pass it on as to=")
    ran: dict[str, float] = {}
    failed: dict[str, str] = {}

    def collect() -> bool:
        history = by_task(lab.events(since=cursor))
        for address, task_id in handed.items():
            evs = history.get(task_id, [])
            if any(e.kind == "complete" for e in evs):
                ran[address] = next(e.time for e in evs if e.kind == "executing")
            elif any(e.terminal for e in evs):
                failed[address] = first_error(evs)
        return len(ran) + len(failed) == len(addresses)

    if not procs.wait_until(collect, 10.0, max_interval=0.2):
        late = next(a for a in addresses if a not in ran)
        raise NotYet(f"the email to {late} was not sent within 10 s: schedule it 2 seconds "
                     "from now (delay=2), not later")
    if failed:
        address, error = next(iter(failed.items()))
        raise NotYet(f"sending the email to {address} failed in the worker: "
                     f"{failure_hint(error)}")
    delays = {a: ran[a] - called[a] for a in addresses}
    # Huey never runs a job before its eta, so a delay of d s always starts >= d s after the
    # call; 1 s splits "no delay" (~10 ms) from any whole-second delay without a flaky band.
    if min(delays.values()) < 1.0:
        raise NotYet(f"an email started {min(delays.values()):.2f} s after remind() was "
                     "called: schedule it 2 seconds from now (delay=2)")
    return (f"3 reminders handed over at once, sent after "
            f"{', '.join(f'{d:.1f}' for d in delays.values())} s by the workers",
            {"delays_s": [round(d, 3) for d in delays.values()]})


# --------------------------------------------------------------------------- 05
@exercise("ex05_retries", "05_results_failures_retries", 'check("ex05_retries")')
def check_retries(lab: Any) -> tuple[str, dict[str, Any]]:
    """100 ex05_tasks.charge(order) jobs, each failing twice first, must all succeed."""
    module = load_module(lab, "ex05_tasks", "charge")
    charge = require_task("ex05_tasks", module.charge, "charge")
    lab.reset()
    tag = token()
    handles = [call("charge(order)", charge, f"{tag}-{i:03d}") for i in range(100)]
    finished = lab.wait(handles, 25)
    history = by_task(lab.events())
    ok = [h for h in handles if any(e.kind == "complete" for e in history.get(h.id, []))]
    attempts = sum(1 for evs in history.values() for e in evs if e.kind == "executing")
    errors = sum(1 for evs in history.values() for e in evs if e.kind == "error")
    details = {"succeeded": len(ok), "attempts": attempts, "errors": errors}
    if not finished:
        raise NotYet(f"after 25 s, {100 - len(ok)} of 100 jobs were still waiting for a retry: "
                     "use a shorter retry_delay (e.g. 0.1 s, with retry_backoff=2)", **details)
    if len(ok) < 100:
        failed = next(h for h in handles if h not in ok)
        tries = sum(1 for e in history.get(failed.id, []) if e.kind == "executing")
        advice = ("did you set retries on the task that fails? Each order fails twice "
                  "before it works" if tries == 1 else "each order fails twice before it "
                  "works, so it needs retries=2 or more")
        raise NotYet(f"{100 - len(ok)} of 100 jobs failed (each was tried "
                     f"{'once' if tries == 1 else f'{tries} times'}): {advice}", **details)
    if errors == 0:
        raise NotYet("no attempt failed, so nothing was retried: charge(order) must call the "
                     "flaky service, flaky.call_local(key=order, fail_times=2)", **details)
    return (f"100 of 100 jobs succeeded after {errors} failed attempts were retried "
            f"({attempts} attempts in all)", details)


# --------------------------------------------------------------------------- 06
JOB_SECONDS = 0.2
TARGET_PER_S = 12.0
SCALE_JOBS = 60
MAX_SENSIBLE_WORKERS = 6


def drain_rate(lab: Any, count: int, seconds: float = JOB_SECONDS,
               within: float | None = None) -> tuple[float, bool]:
    """Jobs per second for ``count`` sleep jobs, first enqueued to last complete (from events).

    :param within: stop waiting after this many seconds; the rate is then what was done so
        far, and the unfinished jobs are dropped from the queue.
    :return: (jobs per second, whether all jobs finished).
    """
    lab.reset()
    handles = lab.enqueue_many("sleep", count, seconds=seconds)
    finished = lab.wait(handles, within or 10 + count * seconds)
    now = time.time()
    evs = [e for e in lab.events() if e.task == "sleep"]
    start = min(e.time for e in evs if e.kind == "enqueued")
    done = [e.time for e in evs if e.kind == "complete"]
    if not finished:
        lab.reset()
        return len(done) / (now - start), False
    return count / (max(done) - start), True


@exercise("ex06_scaling", "06_scaling_and_monitoring", 'check("ex06_scaling", workers=WORKERS)')
def check_scaling(lab: Any, workers: Any = None) -> tuple[str, dict[str, Any]]:
    """With ``workers`` thread workers, 0.2 s jobs must drain at >= 12 jobs/s (and n <= 6)."""
    if unsolved(workers):
        raise NotYet("WORKERS is still ...: measure a few worker counts, then set WORKERS to "
                      "the smallest count that reaches 12 jobs/s")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 16:
        raise NotYet(f"WORKERS={workers!r}: use a whole number of workers from 1 to 16")
    if workers > MAX_SENSIBLE_WORKERS:
        raise NotYet(f"{workers} workers would do it, but that is far more than needed: each "
                     f"worker finishes {1 / JOB_SECONDS:.0f} jobs/s; find the smallest count")
    # Past 1.5x the time the target allows, the rate can no longer reach it: stop there.
    with scaled(lab, workers):
        rate, _ = drain_rate(lab, SCALE_JOBS, within=1.5 * SCALE_JOBS / TARGET_PER_S)
    details = {"workers": workers, "jobs_per_s": round(rate, 2), "target": TARGET_PER_S,
               "ideal": workers / JOB_SECONDS}
    if rate < TARGET_PER_S:
        raise NotYet(f"with {workers} worker{'s' if workers > 1 else ''} the lab drained "
                     f"{rate:.1f} jobs/s (target {TARGET_PER_S:.0f}): each worker does at "
                     f"most {1 / JOB_SECONDS:.0f} jobs/s of {JOB_SECONDS} s jobs; add workers",
                     **details)
    return (f"{workers} workers drained {SCALE_JOBS} jobs at {rate:.1f} jobs/s (target "
            f"{TARGET_PER_S:.0f}, ideal {workers / JOB_SECONDS:.0f})", details)


# --------------------------------------------------------------------------- 07
@exercise("ex07_end_to_end", "07_myth_busters",
          'check("ex07_end_to_end", end_to_end_seconds=end_to_end_seconds)')
def check_end_to_end(lab: Any, end_to_end_seconds: Any = None) -> tuple[str, dict[str, Any]]:
    """end_to_end_seconds(lab) must report enqueue-to-complete time of its sleep job, queue wait included."""
    fn = _function("end_to_end_seconds", end_to_end_seconds,
                   EXERCISES["ex07_end_to_end"].usage)
    with scaled(lab, 2):
        lab.reset()
        busy = set(h.id for h in lab.enqueue_many("sleep", 4, seconds=0.5))  # 1 s of queue
        cursor = lab.cursor()
        answer = call("end_to_end_seconds(lab)", fn, lab)
        lab.wait(list(busy), 10)
        history = by_task(lab.events(since=cursor))
    mine = [evs for tid, evs in history.items() if tid not in busy
            and any(e.kind == "enqueued" and e.task == "sleep" for e in evs)]
    if not mine:
        raise NotYet("end_to_end_seconds did not enqueue a sleep job: enqueue one with "
                     "lab.enqueue('sleep', seconds=0.3) and wait for it")
    evs = mine[-1]
    kinds = {e.kind: e.time for e in evs}
    if "complete" not in kinds:
        raise NotYet("your sleep job had not completed when end_to_end_seconds returned: "
                     "wait for it (lab.wait(handle)) before measuring")
    truth = kinds["complete"] - kinds["enqueued"]
    run = kinds["complete"] - kinds.get("executing", kinds["complete"])
    details = {"truth_s": round(truth, 3), "run_s": round(run, 3)}
    if unsolved(answer) or isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise NotYet(f"end_to_end_seconds returned {answer!r}: return the seconds as a number",
                     **details)
    details["answer_s"] = round(float(answer), 3)
    if answer > 20 * truth:
        raise NotYet(f"you returned {answer:g}, but the job took {truth:.2f} s: return seconds, "
                     "not milliseconds", **details)
    if abs(answer - truth) > max(0.15, 0.2 * truth):
        raise NotYet(f"you returned {answer:.2f} s, but the job took {truth:.2f} s from enqueue "
                     f"to complete ({truth - run:.2f} s waiting in the queue + {run:.2f} s "
                     "running): measure from enqueue to complete", **details)
    return (f"end to end {answer:.2f} s (measured {truth:.2f} s) for a {run:.2f} s task: "
            "the queue made the response fast, not the task", details)


# --------------------------------------------------------------------------- 08
@exercise("ex08_race", "08_expert_zone", 'check("ex08_race", run_pair=run_pair)')
def check_race(lab: Any, run_pair: Any = None) -> tuple[str, dict[str, Any]]:
    """200 run_pair(lab, key) calls on 2 workers must give 200 step_b outcomes, 0 missing."""
    fn = _function("run_pair", run_pair, EXERCISES["ex08_race"].usage)
    runs = 200
    outcomes_key = f"lab.{lab.name}.race.outcomes"
    with scaled(lab, max(2, lab.config.workers)):
        lab.reset()
        tag = token()
        for i in range(runs):
            call("run_pair(lab, key)", fn, lab, f"{tag}-{i}")
        procs.wait_until(lambda: lab.redis.llen(outcomes_key) >= runs, 20.0, max_interval=0.2)
        outcomes = [o.decode() for o in lab.redis.lrange(outcomes_key, 0, -1)]
    mine = [o for o in outcomes if o.startswith(f"{tag}-")]
    missing = sum(1 for o in mine if o.endswith(":missing"))
    details = {"runs": runs, "reported": len(mine), "missing": missing}
    if len(mine) < runs:
        raise NotYet(f"only {len(mine)} of {runs} step_b runs reported back within 20 s: "
                     "run_pair must enqueue step_a and step_b for the key it gets", **details)
    if missing:
        raise NotYet(f"{missing} of {runs} runs read missing data: step_b ran before step_a had "
                     "stored its output. Enqueuing step_a first is not enough with 2 workers: "
                     "chain them (step_a.s(...).then(step_b)) or wait for step_a's result",
                     **details)
    return f"{runs} of {runs} runs on 2 workers: 0 stale reads", details


# --------------------------------------------------------------------------- 09
ENDPOINTS = {  # name: (demo task, params, does the response need the result?)
    "price": ("cpu", {"n": 2000}, True),
    "welcome_email": ("send_email", {"seconds": 0.5}, False),
    "audit_log": ("noop", {}, False),
}
SLOW = 0.05  # inline work at least this slow, whose result the user doesn't need, is queued


def measure_endpoint(lab: Any, task: str, params: dict[str, Any], samples: int = 3) -> dict[str, float]:
    """Median seconds of the work inline (/api/inline) and through the queue (enqueue → complete)."""
    inline, queued = [], []
    for _ in range(samples):
        inline.append(post_json(f"{lab.url}api/inline/{task}", params)[2])
        start = time.perf_counter()
        status, body, _ = post_json(f"{lab.url}api/enqueue/{task}", params)
        if status == 202:
            lab.wait(body["id"], 10)
        queued.append(time.perf_counter() - start)
    return {"inline_s": statistics.median(inline), "queued_s": statistics.median(queued)}


@exercise("ex09_inline_or_queue", "09_when_not_to_use_and_pitfalls",
          'check("ex09_inline_or_queue", decisions=DECISIONS)')
def check_inline_or_queue(lab: Any, decisions: Any = None) -> tuple[str, dict[str, Any]]:
    """DECISIONS must say 'inline' or 'queue' per endpoint, as the live measurements imply."""
    if unsolved(decisions) or not isinstance(decisions, dict):
        raise NotYet("DECISIONS should be a dict like {'price': 'inline', ...} with one entry "
                     f"per endpoint: {', '.join(ENDPOINTS)}")
    for name in ENDPOINTS:
        value = decisions.get(name)
        if unsolved(value) or str(value).strip().lower() not in ("inline", "queue"):
            raise NotYet(f"DECISIONS[{name!r}] is {value!r}: write 'inline' or 'queue'")
    lab.reset()
    measured = {name: measure_endpoint(lab, task, params, samples=2 if name == "welcome_email" else 3)
                for name, (task, params, _) in ENDPOINTS.items()}
    details = {n: {k: round(v * 1000, 1) for k, v in m.items()} for n, m in measured.items()}
    for name, (_, _, needs_result) in ENDPOINTS.items():
        m = measured[name]
        want = "inline" if needs_result or m["inline_s"] < SLOW else "queue"
        got = str(decisions[name]).strip().lower()
        if got == want:
            continue
        if needs_result:
            why = (f"the response shows its result, so the user waits for it anyway; the queue "
                   f"round trip took {ms(m['queued_s'])} against {ms(m['inline_s'])} inline")
        elif want == "queue":
            why = (f"it took {ms(m['inline_s'])} inside the request and the user does not need "
                   "its result to see the page")
        else:
            why = (f"it takes {ms(m['inline_s'])} inline while the queue round trip took "
                   f"{ms(m['queued_s'])} and adds moving parts")
        raise NotYet(f"{name}: you chose {got!r}, but {why}: {want}", measured_ms=details)
    return ("all three decisions match the measurements ("
            + ", ".join(f"{n} {ms(m['inline_s'])} inline" for n, m in measured.items()) + ")",
            {"measured_ms": details})
