"""The Flask app: an app factory, JSON endpoints over the whitelisted tasks, a live monitor page.

Run it the way production would, behind waitress with a bounded pool of request threads::

    python -m labapp.web --threads 4 --port 0 --port-file web.port

Every error is JSON with a one-line ``error`` message; nothing returns a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

import redis
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from labapp import events
from labapp import stats
from labapp import tasks

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
bp = Blueprint("lab", __name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the lab's Flask app; ``LAB_NAME``/``LAB_REDIS_URL`` (or config keys) pick the lab."""
    app = Flask(__name__)
    app.config.from_mapping(
        LAB_NAME=os.environ.get("LAB_NAME"),
        LAB_REDIS_URL=os.environ.get("LAB_REDIS_URL"),
        MAX_CONTENT_LENGTH=MAX_BODY,
        STUCK_AFTER=stats.STUCK_AFTER,
    )
    if test_config:
        app.config.update(test_config)
    if app.config["LAB_NAME"] and app.config["LAB_REDIS_URL"]:
        lab = (app.config["LAB_NAME"], app.config["LAB_REDIS_URL"])
        tasks.bind(*lab)
        # One process may host apps of several labs (tests do): bind per request (cheap).
        app.before_request(lambda: tasks.bind(*lab))
    # Behind jupyter-server-proxy the app lives under /…/proxy/<port>/; pages use relative URLs.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(redis.RedisError, _broker_error)
    app.register_error_handler(tasks.LabNotRunning, _broker_error)
    return app


def _http_error(exc: HTTPException) -> Any:
    return jsonify(error=f"{exc.name}: {exc.description}"), exc.code


def _broker_error(exc: Exception) -> Any:
    return jsonify(error=f"the queue's server is not reachable ({type(exc).__name__}): "
                         "restart the lab with lab.start()"), 503


def _params() -> dict[str, Any]:
    """The JSON body as a dict ({} when empty); a 400 for anything else."""
    if not request.get_data(cache=True):
        return {}
    try:
        body = json.loads(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("the body is not valid JSON: send e.g. {\"seconds\": 1}") from None
    if not isinstance(body, dict):
        raise _BadRequest("send a JSON object of parameters, e.g. {\"seconds\": 1}")
    return body


class _BadRequest(HTTPException):
    code = 400
    name = "Bad Request"

    def __init__(self, description: str) -> None:
        super().__init__(description)


def _validated(task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return tasks.validate(task, _params())
    except LookupError as exc:
        raise _NotFound(str(exc)) from None
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None


class _NotFound(_BadRequest):
    code = 404
    name = "Not Found"


@bp.get("/")
def index() -> Any:
    return render_template("index.html", lab=tasks.huey.name, tasks=sorted(tasks.SPECS))


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(ok=True, lab=tasks.huey.name, pid=os.getpid())


@bp.get("/api/hello")
def hello() -> Any:
    """The cheapest possible endpoint: the baseline every other latency is compared with."""
    return jsonify(message="hello", pid=os.getpid())


@bp.post("/api/inline/<task>")
def inline(task: str) -> Any:
    """Run the task inside this request (the wrong way for slow work)."""
    args, _options = _validated(task)
    start = time.perf_counter()
    try:
        result = tasks.TASKS[task].call_local(**args)
    except Exception as exc:  # the task's own failure reaches the user, as it would in an app
        return jsonify(task=task, error=f"{type(exc).__name__}: {exc}",
                       seconds=time.perf_counter() - start), 500
    return jsonify(task=task, result=result, seconds=time.perf_counter() - start)


@bp.post("/api/enqueue/<task>")
def enqueue(task: str) -> Any:
    """Hand the task to the queue and answer at once: 202 and the task id."""
    args, options = _validated(task)
    result = tasks.huey.enqueue(tasks.TASKS[task].s(**args, **options))
    return jsonify(id=result.id, task=task, status_url=f"api/tasks/{result.id}"), 202


@bp.get("/api/tasks/<task_id>")
def task_status(task_id: str) -> Any:
    """Last recorded state of a task and, once complete, its result."""
    if len(task_id) > 64:
        raise _BadRequest("task ids are at most 64 characters")
    state = events.states(tasks.huey.storage.conn, tasks.huey.name, [task_id])[task_id]
    if state is None:
        raise _NotFound(f"no task with id {task_id!r} in this lab")
    body: dict[str, Any] = {"id": task_id, "state": state}
    if state in ("complete", "error"):
        try:
            body["result"] = tasks.huey.result(task_id, preserve=True)
        except Exception as exc:  # huey raises TaskException for a stored error
            body["error"] = str(getattr(exc, "metadata", {}).get("error", exc))
    return jsonify(body)


@bp.get("/api/stats")
def api_stats() -> Any:
    """Queue length, per-kind counts, busy/stuck workers and throughput (polled by /monitor)."""
    return jsonify(stats.snapshot(tasks.huey, stuck_after=current_app.config["STUCK_AFTER"]))


@bp.get("/monitor")
def monitor() -> Any:
    return render_template("monitor.html", lab=tasks.huey.name,
                           stuck_after=current_app.config["STUCK_AFTER"])


def main(argv: list[str] | None = None) -> int:
    """Serve the app with waitress on 127.0.0.1 (the lab starts this as its ``web`` process)."""
    parser = argparse.ArgumentParser(prog="python -m labapp.web", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--threads", type=int, default=4, help="request threads (default 4)")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    opts = parser.parse_args(argv)
    if not 1 <= opts.threads <= 64:
        parser.error("--threads must be 1 to 64")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s web %(levelname)s %(message)s")
    if os.environ.get("LAB_PARENT_PID"):
        from labapp import procs
        procs.die_with_parent(int(os.environ["LAB_PARENT_PID"]))
    from waitress.server import create_server
    try:
        server = create_server(create_app(), host="127.0.0.1", port=opts.port,
                               threads=opts.threads, ident="queue-lab")
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{opts.port} ({exc.strerror}): choose another port "
              "or 0 for any free one", file=sys.stderr)
        return 2
    if opts.port_file:
        tmp = f"{opts.port_file}.tmp"
        with open(tmp, "w") as fh:
            fh.write(str(server.effective_port))
        os.replace(tmp, opts.port_file)
    logger.info("serving on http://127.0.0.1:%s with %d threads", server.effective_port,
                opts.threads)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
