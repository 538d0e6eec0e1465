"""The Flask app: an app factory, JSON endpoints over the whitelisted tasks, a live monitor page.

Run it the way production would, behind waitress with a bounded pool of request threads::

    python -m labapp.web --threads 4 --port 0 --port-file web.port

Every error is JSON with a one-line ``error`` message; nothing returns a traceback.

Security model (a shared machine, hostile pages in the learner's browser):

* **Host** — like Jupyter Server's ``check_host``: only loopback names (``127.0.0.1``,
  ``localhost``, plus ``LAB_TRUSTED_HOSTS``) are accepted, through Flask's own host
  validation, which defeats DNS rebinding (a rebinding page sends its own domain as Host).
  On a hub the learner's browser is remote and reaches the app only through Jupyter's
  authenticated proxy; a request carrying the proxy's ``X-Forwarded-Prefix`` for this very
  app (``$JUPYTERHUB_SERVICE_PREFIX``/proxy/<port>) is accepted whatever its Host.
* **Cross-origin** — state-changing requests (POST) are refused when the browser says they
  come from another site (``Sec-Fetch-Site``), or, from older browsers, when ``Origin``
  differs from ``Host`` (Jupyter Server's ``check_origin``). Scripts send neither header.
* **JSON only** — a POST body must be ``application/json`` (else 415), so an HTML form or a
  ``text/plain`` fetch, which browsers send without asking, cannot reach a task. Only a
  script (no ``Origin``, no ``Sec-Fetch-*``) may keep the form label urllib and curl put on
  every body, and its body must still be JSON. Bodies are capped by Flask's
  ``MAX_CONTENT_LENGTH``; any malformed body is a 4xx.
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
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Request, current_app, jsonify, render_template, request
from werkzeug.exceptions import Forbidden, HTTPException, SecurityError, UnsupportedMediaType
from werkzeug.middleware.proxy_fix import ProxyFix

from labapp import events
from labapp import stats
from labapp import tasks

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
#: Host names the app answers to directly (Jupyter Server's default ``local_hostnames``).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
bp = Blueprint("lab", __name__)


def trusted_hosts(env: dict[str, str] | None = None) -> list[str]:
    """Loopback names plus ``LAB_TRUSTED_HOSTS`` (comma-separated, e.g. a hub's domain)."""
    env = os.environ if env is None else env
    extra = [h.strip().lower() for h in env.get("LAB_TRUSTED_HOSTS", "").split(",") if h.strip()]
    return [*LOOPBACK_HOSTS, *extra]


def via_jupyter_proxy(environ: dict[str, Any], hub_prefix: str | None) -> bool:
    """True for a request jupyter-server-proxy forwarded to this app on a hub.

    The proxy (``jupyter_server_proxy.handlers``) sets ``X-Forwarded-Prefix`` to
    ``<base_url>proxy/<port>``; on a hub ``base_url`` is ``$JUPYTERHUB_SERVICE_PREFIX``.
    """
    if not hub_prefix:
        return False
    port = environ.get("SERVER_PORT", "")
    expected = f"{hub_prefix.rstrip('/')}/proxy/{port}"
    return bool(port) and environ.get("HTTP_X_FORWARDED_PREFIX", "").rstrip("/") == expected


class LabRequest(Request):
    """A request whose ``Host`` werkzeug validates against the lab's trusted hosts.

    Flask checks the Host before an app context exists, so each app gets a subclass that
    knows its config (:func:`create_app`).
    """

    lab_config: dict[str, Any] = {"LAB_HUB_PREFIX": None, "LAB_TRUSTED_HOSTS": LOOPBACK_HOSTS}

    @property  # type: ignore[override]
    def trusted_hosts(self) -> list[str] | None:
        """Hosts werkzeug accepts (None = any, for a request through the hub's proxy)."""
        config = self.lab_config
        if via_jupyter_proxy(self.environ, config["LAB_HUB_PREFIX"]):
            return None
        return list(config["LAB_TRUSTED_HOSTS"])

    @trusted_hosts.setter
    def trusted_hosts(self, value: Any) -> None:  # Flask assigns TRUSTED_HOSTS when set
        pass


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the lab's Flask app; ``LAB_NAME``/``LAB_REDIS_URL`` (or config keys) pick the lab."""
    app = Flask(__name__)
    app.request_class = type("LabRequest", (LabRequest,), {"lab_config": app.config})
    app.config.from_mapping(
        LAB_NAME=os.environ.get("LAB_NAME"),
        LAB_REDIS_URL=os.environ.get("LAB_REDIS_URL"),
        LAB_TRUSTED_HOSTS=trusted_hosts(),
        LAB_HUB_PREFIX=os.environ.get("JUPYTERHUB_SERVICE_PREFIX"),
        MAX_CONTENT_LENGTH=MAX_BODY,
        STUCK_AFTER=stats.STUCK_AFTER,
    )
    if test_config:
        app.config.update(test_config)
    if app.config["LAB_NAME"] and app.config["LAB_REDIS_URL"]:
        # The app's own Huey instance (one process may host apps of several labs: tests do).
        app.extensions["huey"] = tasks.make_huey(app.config["LAB_NAME"],
                                                 app.config["LAB_REDIS_URL"])
    # Behind jupyter-server-proxy the app lives under /…/proxy/<port>/; pages use relative URLs.
    # Only the prefix is taken from X-Forwarded-*: trusting X-Forwarded-Host would let a
    # DNS-rebinding page (which may set any header on its "same-origin" requests) pass the
    # Host check by claiming 127.0.0.1.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=0, x_host=0, x_port=0,  # type: ignore[method-assign]
                            x_prefix=1)
    app.before_request(_refuse_cross_site)
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(redis.RedisError, _broker_error)
    app.register_error_handler(tasks.LabNotRunning, _broker_error)
    return app


def lab_huey() -> tasks.LabHuey:
    """The current app's Huey instance; :class:`~labapp.tasks.LabNotRunning` (a 503) without one."""
    try:
        return current_app.extensions["huey"]
    except KeyError:
        raise tasks.LabNotRunning("this app has no lab: set LAB_NAME and LAB_REDIS_URL") from None


def _lab_name() -> str:
    return current_app.config["LAB_NAME"] or "unbound"


def _http_error(exc: HTTPException) -> Any:
    hint = ""
    if isinstance(exc, SecurityError):  # werkzeug's refusal of an untrusted Host
        hint = (": open the lab at 127.0.0.1 or through Jupyter's proxy, or add that name to "
                "LAB_TRUSTED_HOSTS before starting the lab")
    return jsonify(error=f"{exc.name}: {exc.description}{hint}"), exc.code


def _broker_error(exc: Exception) -> Any:
    return jsonify(error=f"the queue's server is not reachable ({type(exc).__name__}): "
                         "restart the lab with lab.restart()"), 503


def _refuse_cross_site() -> None:
    """403 for a state-changing request another site's page made; 415 for a non-JSON body."""
    if request.method in SAFE_METHODS:
        return
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None:
        cross = site not in ("same-origin", "none")
    elif origin is not None:
        cross = origin == "null" or urlsplit(origin.lower()).netloc != request.host.lower()
    else:
        cross = False  # not a browser (the notebook, curl, a test)
    if cross:
        raise Forbidden(f"cross-site request refused (Origin {origin or '-'}, Sec-Fetch-Site "
                        f"{site or '-'}): use the lab's own pages or call it from the notebook")
    if (request.content_length or request.content_type) and not request.is_json:
        # urllib and curl label every body they send as a form; a script (no browser
        # headers) may keep that label, its body must still be JSON. Browsers never pass.
        script_form = (request.mimetype == "application/x-www-form-urlencoded"
                       and origin is None and site is None
                       and not any(h.startswith("Sec-Fetch-") for h in request.headers.keys()))
        if not script_form:
            raise UnsupportedMediaType(f"send JSON with 'Content-Type: application/json', not "
                                       f"{request.mimetype or 'a body without a type'}")


def _params() -> dict[str, Any]:
    """The JSON body as a dict ({} when empty); a 400 for anything else."""
    if not request.get_data(cache=True):
        return {}
    try:
        body = json.loads(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _BadRequest("the body is not valid JSON (or nested too deeply): send e.g. "
                          "{\"seconds\": 1}") from None
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
    return render_template("index.html", lab=_lab_name(), tasks=sorted(tasks.SPECS))


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(ok=True, lab=_lab_name(), pid=os.getpid())


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
    result = lab_huey().enqueue(tasks.TASKS[task].s(**args, **options))
    return jsonify(id=result.id, task=task, status_url=f"api/tasks/{result.id}"), 202


@bp.get("/api/tasks/<task_id>")
def task_status(task_id: str) -> Any:
    """Last recorded state of a task and, once complete, its result."""
    if len(task_id) > 64:
        raise _BadRequest("task ids are at most 64 characters")
    huey = lab_huey()
    state = events.states(huey.storage.conn, huey.name, [task_id])[task_id]
    if state is None:
        raise _NotFound(f"no task with id {task_id!r} in this lab")
    body: dict[str, Any] = {"id": task_id, "state": state}
    if state in ("complete", "error"):
        try:
            body["result"] = huey.result(task_id, preserve=True)
        except Exception as exc:  # huey raises TaskException for a stored error
            body["error"] = str(getattr(exc, "metadata", {}).get("error", exc))
    return jsonify(body)


@bp.get("/api/stats")
def api_stats() -> Any:
    """Queue length, per-kind counts, busy/stuck workers and throughput (polled by /monitor)."""
    return jsonify(stats.snapshot(lab_huey(), stuck_after=current_app.config["STUCK_AFTER"]))


@bp.get("/monitor")
def monitor() -> Any:
    return render_template("monitor.html", lab=_lab_name(),
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
