"""``Lab``: the learner-facing API of one running lab (start, scale, enqueue, wait, stop).

The processes themselves are run by :class:`labapp.supervisor.Supervisor` (run dir, lock,
children); ``Lab`` adds what a notebook needs: idempotent starts (re-running the start cell
keeps the lab, or says in its status line what it restarted and what that lost), graceful
restarts, the task API and readable status. Every lifecycle call holds the lab's lock, so two
threads (a widget and a cell) can never leave two consumers behind.
"""
from __future__ import annotations

import atexit
import dataclasses
import importlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, Iterable

import redis
from huey.api import Result

from labapp import events
from labapp import procs
from labapp import tasks
from labapp.broker import Broker
from labapp.broker import BrokerError
from labapp.config import ConfigError, LabConfig
from labapp.supervisor import LabError
from labapp.supervisor import Supervisor
from labapp.supervisor import cleanup_stale as _cleanup_stale

logger = logging.getLogger(__name__)

_LABS: dict[str, "Lab"] = {}
_LOCK = threading.RLock()


class LogText(str):
    """Log lines that a notebook shows as lines (its ``repr`` is the text itself)."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def cleanup_stale(run_root: Path) -> list[str]:
    """Kill and remove labs nobody owns any more; never touches this process's labs."""
    return _cleanup_stale(Path(run_root), keep=_LABS)


class Lab:
    """A running queue lab: a Redis-compatible server, the Flask app and Huey workers.

    Start one with :meth:`Lab.start`, stop it with :meth:`stop` (or ``with Lab.start() as lab``).
    """

    def __init__(self, config: LabConfig) -> None:
        self._sup = Supervisor(config)
        self.started_in: float | None = None
        self._lock = threading.RLock()
        self._client: redis.Redis | None = None
        self._huey: tasks.LabHuey | None = None

    # Parts of the lab, as attributes (read them; change them through the methods).
    @property
    def config(self) -> LabConfig:
        """The settings the lab runs with now (after scale(), load_tasks(), ...)."""
        return self._sup.config

    @config.setter
    def config(self, value: LabConfig) -> None:
        self._sup.config = value

    @property
    def broker(self) -> Broker:
        return self._sup.broker

    @property
    def web(self) -> subprocess.Popen[bytes] | None:
        return self._sup.web

    @property
    def consumer(self) -> subprocess.Popen[bytes] | None:
        return self._sup.consumer

    @property
    def port(self) -> int | None:
        return self._sup.port

    # ------------------------------------------------------------------ start / stop
    @classmethod
    def start(cls, workers: int | None = None, worker_type: str | None = None,
                   web_threads: int | None = None, name: str | None = None,
                   **settings: Any) -> "Lab":
        """Start a lab, or keep the one this process already runs under that name.

        Re-running the start cell is safe: a running lab is kept, and only what the cell
        changes is restarted (workers, web app, server), each named in the status line
        with what the restart lost (e.g. queued tasks when the server restarts).

        :param workers: Huey workers (default 2, or ``LAB_WORKERS``); 0 starts none.
        :param worker_type: ``"thread"`` (default) or ``"process"`` (``LAB_WORKER_TYPE``).
        :param web_threads: waitress request threads (default 4).
        :param name: lab name; defaults to one per Python process.
        :param settings: other :class:`~labapp.config.LabConfig` fields (``redis_url``,
            ``durable``, ``web_port``, ``task_modules``, ``run_root``) and ``quiet=True``.
        """
        quiet = bool(settings.pop("quiet", False))
        config = LabConfig.from_env(workers=workers, worker_type=worker_type,
                                    web_threads=web_threads, name=name, **settings)
        with _LOCK:
            running = _LABS.get(config.name)
            note = "started"
            if running is not None:
                changes = running._adopt(config, quiet)
                if changes is not None:
                    tasks.point_at(running.huey)
                    running._announce(quiet, note="; ".join(changes) or "already running")
                    return running
                lost = running._queued_summary()
                diff = running._diff(config)
                why = "a part of it had stopped" if diff == "none" else f"settings changed ({diff})"
                note = f"{why}: restarted the whole lab{lost}"
                running.stop(quiet=True)
            lab = cls(config)
            t0 = time.perf_counter()
            lab._sup.launch(keep=_LABS)
            lab.started_in = time.perf_counter() - t0
            _LABS[config.name] = lab
            lab._huey = tasks.make_huey(config.name, lab.redis_url)
            tasks.point_at(lab._huey)
        lab._announce(quiet, note=f"{note} in {lab.started_in:.2f} s")
        return lab

    def restart(self, quiet: bool = False) -> "Lab":
        """Start this lab again with its settings (after :meth:`stop`, or to recover); returns it.

        Like re-running the start cell: a lab still running is kept, a stopped one comes back
        as a new ``Lab`` (use the returned object).
        """
        return type(self).start(quiet=quiet, **dataclasses.asdict(self.config))

    def _diff(self, config: LabConfig) -> str:
        old = dataclasses.asdict(self.config)
        new = dataclasses.asdict(config)
        return ", ".join(f"{k} {old[k]!r} → {new[k]!r}" for k in new if new[k] != old[k]) or "none"

    def _queued_summary(self) -> str:
        """``": N queued tasks lost"`` when a server restart would drop them, else ''."""
        if self.config.external or not self.broker.running:
            return ""
        try:
            n = self.queue_length()
        except Exception:  # noqa: BLE001 - a dead server has nothing to count
            return ""
        if self.config.durable:
            return f"; {n} queued task(s) kept on disk" if n else ""
        return f"; {n} queued task(s) lost" if n else "; the queue was empty"

    def _adopt(self, config: LabConfig, quiet: bool) -> list[str] | None:
        """Bring this running lab to ``config`` in place; the changes made, or None when
        only a full restart can (another server or run root, or the server died)."""
        with self._lock:
            old = self.config
            if (config.redis_url, config.run_root) != (old.redis_url, old.run_root) \
                    or not self.broker.running or not self._sup.lock.held:
                return None
            # Task modules loaded with load_tasks() stay loaded: the cell only adds to them.
            modules = tuple(dict.fromkeys((*old.task_modules, *config.task_modules)))
            config = dataclasses.replace(config, task_modules=modules)
            changes: list[str] = []
            if config.durable != old.durable:
                if config.external:
                    return None
                n = self.queue_length()
                self.set_durable(config.durable)
                mode = "durable (AOF, fsync always)" if config.durable else "in memory only"
                changes.append(f"server restarted {mode}: its data is gone ({n} queued task(s) lost)")
            web_dead = self.web is None or self.web.poll() is not None
            if web_dead or config.web_threads != old.web_threads or config.web_port != old.web_port:
                why = ("it had stopped" if web_dead else f"port {config.web_port or 'any free'}"
                       if config.web_port != old.web_port else f"{config.web_threads} threads")
                self.config = dataclasses.replace(self.config, web_port=config.web_port)
                if web_dead or config.web_port != old.web_port:
                    self._sup.port = None  # listen on the port the cell asks for
                self.restart_web(config.web_threads)
                changes.append(f"web app restarted ({why}; nothing lost)")
            consumer_dead = old.workers > 0 and not self._sup.consumer_alive()
            if consumer_dead or (config.workers, config.worker_type, config.task_modules) != \
                    (old.workers, old.worker_type, old.task_modules):
                self.config = dataclasses.replace(self.config, workers=config.workers,
                                                  worker_type=config.worker_type,
                                                  task_modules=config.task_modules)
                self._restart_workers(quiet)
                why = ("a worker process had died" if consumer_dead else
                       f"{old.workers} → {config.workers} {config.worker_type} workers")
                changes.append(f"workers restarted ({why}; queued tasks kept)")
            self.config = config
            return changes

    def stop(self, quiet: bool = False) -> None:
        """Stop workers, web app and server at once (running tasks are cut short). Safe to repeat.

        Prints one line saying what it stopped (unless ``quiet``).
        """
        with self._lock:
            was_running = self._sup.lock.held
            parts = []
            if self._sup.consumer_alive():
                parts.append(f"{self.config.workers} {self.config.worker_type} worker(s)")
            if self.web is not None and self.web.poll() is None:
                parts.append("the web app")
            lost = self._queued_summary() if was_running else ""
            if self.broker.pid is not None:
                parts.append("the server")
            try:
                if self.config.external and self.broker.running and was_running:
                    self._forget_keys()
            finally:
                self._sup.stop()
                if self._client is not None:
                    self._client.close()
                    self._client = None
                self._sup.close_client()
        with _LOCK:
            if _LABS.get(self.config.name) is self:
                del _LABS[self.config.name]
            self._close_huey()
        if not quiet and was_running:
            what = ", ".join(parts) or "nothing was running"
            print(f"{self.name}: stopped {what}{lost}")

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop(quiet=True)

    # ------------------------------------------------------------------ workers
    def scale(self, workers: int, worker_type: str | None = None) -> "Lab":
        """Run ``workers`` workers from now on (graceful: running tasks finish, queued ones stay)."""
        with self._lock:
            config = dataclasses.replace(self.config, workers=workers,
                                         worker_type=worker_type or self.config.worker_type)
            if config == self.config and (workers == 0 or self._sup.consumer_alive()):
                return self
            self.config = config
            return self.restart_workers()

    def restart_workers(self) -> "Lab":
        """Gracefully stop the workers and start new ones.

        Running tasks finish first (the wait covers the longest task the lab allows, with a
        progress line while it lasts); queued tasks stay in the queue.
        """
        with self._lock:
            self._restart_workers(quiet=False)
            return self

    def _restart_workers(self, quiet: bool) -> None:
        self._require_running()

        def report(line: str, last: bool) -> None:
            if not quiet:
                print("\r" + line, end="\n" if last else "", flush=True)
        self._sup.restart_consumer(report)

    def _require_running(self) -> None:
        if not self._sup.lock.held:
            raise LabError(f"lab {self.name} is stopped: start it again with lab.restart()")

    # ------------------------------------------------------------------ broker (durability lesson)
    def set_durable(self, durable: bool) -> "Lab":
        """Restart the private server with AOF ``appendfsync always`` (True) or in memory only (False).

        Switching restarts the server: in-memory data is lost. Clients reconnect by themselves.
        """
        with self._lock:
            durable = bool(durable)
            if durable == self.broker.durable and self.broker.running:
                return self
            if self.config.external:
                raise BrokerError(f"cannot switch the persistence of an external server "
                                  f"({self.redis_url}): unset REDIS_URL to let the lab start its own")
            self._require_running()
            self.broker.stop()
            self.broker.durable = durable
            self.broker.start()
            self.config = dataclasses.replace(self.config, durable=durable)
            self._sup.save_state()
            return self

    def crash_broker(self) -> float:
        """SIGKILL the private server as a power cut would, start it again; returns seconds it was down."""
        with self._lock:
            self._require_running()
            t0 = time.perf_counter()
            self.broker.restart()
            self._sup.save_state()  # the server has a new pid: keep the stale-lab cleanup accurate
            return time.perf_counter() - t0

    def restart_web(self, web_threads: int | None = None) -> "Lab":
        """Restart the Flask process, optionally with a different request-thread pool size."""
        with self._lock:
            self._require_running()
            self._sup.restart_web(web_threads or self.config.web_threads)
            return self

    def kill_worker(self, index: int = 0, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to worker ``index`` as a crash would; returns the pid signalled.

        Thread workers share one consumer process, so this signals that process (all of
        them). A process worker dies alone, and Huey's consumer starts a replacement
        within about a second. Only processes this lab started are ever signalled: a worker
        started elsewhere (``labapp worker``) is refused.
        """
        with self._lock:
            workers = self._sup.workers()
            if not workers:
                raise LabError("no worker is running: start some with lab.scale(2)")
            if not 0 <= index < len(workers):
                raise ValueError(f"worker index {index} is out of range: use 0 to {len(workers) - 1}")
            worker = workers[index]
            if not worker["ours"]:
                raise LabError(f"{worker['name']} (pid {worker['pid']}) was not started by this "
                               "lab (e.g. `labapp worker` in a terminal): stop it where it runs")
            consumer = self.consumer
            assert consumer is not None
            if self.config.worker_type == "thread" or worker["pid"] == consumer.pid:
                procs.signal_group(consumer.pid, sig)
                return consumer.pid
            os.kill(worker["pid"], sig)
            return int(worker["pid"])

    def child_env(self, role: str = "web") -> dict[str, str]:
        """The environment the lab gives its ``role`` process ("web" or "worker"): its name,
        its server's URL and the learner's task modules (for programs that join the lab)."""
        return self._sup.env(role)

    def worker_command(self, workers: int = 1) -> str:
        """The shell command that starts extra workers for this lab from another terminal."""
        return (f"{sys.executable} -m labapp worker --name {self.name} "
                f"--redis-url '{self.redis_url}' -w {workers}")

    def _consumer_alive(self) -> bool:
        return self._sup.consumer_alive()

    def _worker_pids(self) -> dict[str, int]:
        return {w["name"]: w["pid"] for w in self._sup.workers()}

    # ------------------------------------------------------------------ tasks
    def enqueue(self, task: str, **params: Any) -> Result:
        """Enqueue demo task ``task`` with validated ``params``; returns Huey's result handle (``.id``)."""
        return self.huey.enqueue(tasks.signature(task, params))

    def enqueue_many(self, task: str, count: int, **params: Any) -> list[Result]:
        """Enqueue ``count`` copies of ``task`` (1 to 10 000); returns their result handles."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            raise ValueError(f"count={count!r} must be a whole number from 1 to 10000")
        return [self.enqueue(task, **params) for _ in range(count)]

    def load_tasks(self, module: str) -> types.ModuleType:
        """Import learner module ``module`` here and in the workers (restarting them); returns it.

        Its tasks, called directly (``mod.shout("hi")``), go to this lab from now on (see
        :mod:`labapp.tasks`). The module is found next to the notebook (the working
        directory). Workers look there *after* the installed libraries, so a module named
        like one (``redis``, ``flask``) is refused instead of silently replacing it.
        """
        if module.endswith(".py"):
            module = module[:-3]
        if not module.isidentifier():
            raise ConfigError(f"task module {module!r} is not an importable module name: "
                              "use a file name without .py, e.g. 'mytasks'")
        here = os.getcwd()
        with self._lock:
            self._require_running()
            if module in sys.modules:
                spec = getattr(sys.modules[module], "__spec__", None)
            else:
                spec = importlib.util.find_spec(module)
            origin = getattr(spec, "origin", None) or ""
            if spec is not None and not origin.startswith(here + os.sep):
                raise ConfigError(f"{module!r} is already the name of an installed module "
                                  f"({origin or 'built in'}): rename {module}.py, e.g. to "
                                  f"my_{module}.py")
            if here not in sys.path:
                sys.path.insert(0, here)
            try:
                if module in sys.modules:
                    registry = tasks.huey._registry  # the catalogue every lab's Huey shares
                    for name, wrapper in list(registry._registry.items()):
                        if name.startswith(module + "."):
                            registry.unregister(wrapper)
                    loaded = importlib.reload(sys.modules[module])
                else:
                    loaded = importlib.import_module(module)
            except ModuleNotFoundError:
                raise ConfigError(f"no module {module!r} next to the notebook ({here}): "
                                  f"write it first, e.g. with %%writefile {module}.py") from None
            except SyntaxError as exc:
                raise ConfigError(f"{module}.py line {exc.lineno}: {exc.msg}: fix it and run "
                                  "load_tasks again") from None
            modules = tuple(dict.fromkeys((*self.config.task_modules, module)))
            self.config = dataclasses.replace(self.config, task_modules=modules)
            self.restart_workers()
            tasks.point_at(self.huey)  # its tasks, called directly, reach the workers that have them
            return loaded

    def wait(self, handles: Any, timeout: float = 30.0) -> bool:
        """Wait until every task in ``handles`` (results, ids or lists of them) has finished.

        Finished means complete, or failed with no retries left. Returns False on timeout,
        or as soon as a pending task can never finish: it was ``interrupted`` (its worker
        stopped under it) or is lost (its worker process died while running it; Huey does
        not run such a task again).
        """
        pending = set(_task_ids(handles))
        conn, name = self.redis, self.config.name
        cursor = events.last_id(conn, name)
        states = events.states(conn, name, pending)
        if any(s in _NEVER_FINISHED for s in states.values()):
            return False
        pending -= {i for i, s in states.items() if s in _FINAL_STATES}
        if not pending:
            return True
        if self.lost_tasks() & pending:
            return False
        for event in events.follow(conn, name, cursor, timeout):
            if event is None:  # quiet for a moment: has a worker died under a pending task?
                if self.lost_tasks() & pending:
                    return False
            elif event.task_id in pending and event.kind in _NEVER_FINISHED:
                return False
            elif event.terminal:
                pending.discard(event.task_id)
                if not pending:
                    return True
        return False

    def lost_tasks(self) -> set[str]:
        """Ids of tasks whose worker process died while running them (never to finish)."""
        return {b.task_id for b in events.busy(self.redis, self.config.name) if b.lost}

    def result(self, handle: Any, timeout: float | None = None) -> Any:
        """The return value of a task (waits up to ``timeout`` seconds when given)."""
        task_id = next(iter(_task_ids(handle)))
        return self.huey.result(task_id, blocking=timeout is not None, timeout=timeout,
                                 preserve=True)

    def events(self, since: str | None = None) -> list[events.Event]:
        """Task events recorded after stream id ``since`` (all when None), oldest first."""
        return events.read_all(self.redis, self.config.name, since)

    def cursor(self) -> str:
        """An events cursor for "from now on": pass it to ``events(since=...)``."""
        return events.last_id(self.redis, self.config.name)

    def queue_length(self) -> int:
        """Tasks waiting in the queue (not counting scheduled retries)."""
        return self.huey.pending_count()

    def reset(self) -> None:
        """Empty the queue, schedule, results and events of this lab (workers keep running)."""
        self.huey.flush()
        keep = {self.key("workers").encode()}
        doomed = [k for k in self.redis.scan_iter(match=self.key("*"), count=1000)
                  if k not in keep]
        if doomed:
            self.redis.delete(*doomed)

    # ------------------------------------------------------------------ inspection
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def url(self) -> str:
        """Base URL of the Flask app, ending in ``/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def public_url(self) -> str:
        """The Flask app's URL as the learner's browser reaches it (via jupyter-server-proxy on a hub)."""
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        if prefix:
            return f"{prefix.rstrip('/')}/proxy/{self.port}/"
        return self.url

    @property
    def redis_url(self) -> str:
        return self.broker.url

    @property
    def redis(self) -> redis.Redis:
        """A redis-py client for this lab's server (to look inside the broker)."""
        if self._client is None:
            self._client = redis.Redis.from_url(self.redis_url)
        return self._client

    @property
    def huey(self) -> tasks.LabHuey:
        """This lab's own Huey instance (every task defined in this process, this lab's server)."""
        if self._huey is None:
            self._huey = tasks.make_huey(self.config.name, self.redis_url)
        return self._huey

    def _close_huey(self) -> None:
        """Drop this lab's Huey connection; the module's ``huey`` moves to the newest running
        lab (the caller holds ``_LOCK`` and has removed this lab from ``_LABS``)."""
        if self._huey is None:
            return
        if tasks.points_at(self._huey):
            others = list(_LABS.values())
            tasks.point_at(others[-1].huey if others else None)
        self._huey.storage.pool.disconnect()
        self._huey = None

    def healthy(self) -> bool:
        """True when the server, the web app and (if any) the consumer are all alive."""
        return (self._sup.lock.held and self.broker.running and self.web is not None
                and self.web.poll() is None
                and (self.config.workers == 0 or self._consumer_alive()))

    def status(self) -> dict[str, Any]:
        """PIDs and addresses of every part: ``broker``, ``web``, ``consumer``, ``workers``."""
        workers = self._worker_pids() if self.healthy() or self._consumer_alive() else {}
        return {
            "name": self.config.name,
            "running": self.healthy(),
            "broker": self.broker.pid if not self.config.external else "external",
            "web": self.web.pid if self.web is not None and self.web.poll() is None else None,
            "consumer": self.consumer.pid if self._consumer_alive() else None,
            "workers": list(workers.values()),
            "worker_names": list(workers),
            "worker_type": self.config.worker_type,
            "web_threads": self.config.web_threads,
            "url": self.url,
            "redis_url": self.redis_url,
            "run_dir": str(self.config.run_dir),
        }

    def logs(self, part: str | None = None, lines: int = 20) -> LogText:
        """Last ``lines`` of the ``web``, ``worker`` or ``redis`` log (web and worker when None).

        The result is a ``str`` that a notebook displays as lines (not one quoted string).
        """
        parts = [part] if part else ["web", "worker"]
        out = []
        for p in parts:
            if p not in ("web", "worker", "redis"):
                raise ValueError(f"part={p!r}: use 'web', 'worker' or 'redis'")
            out.append(f"--- {p}.log\n{procs.tail(self.config.run_dir / f'{p}.log', lines)}")
        return LogText("\n".join(out))

    def summary(self) -> str:
        """One line: broker, web URL, worker PIDs, run dir."""
        st = self.status()
        broker = "external " + self.redis_url if self.config.external else \
            f"{self.redis_url} (pid {st['broker']})"
        workers = ", ".join(map(str, st["workers"])) or "none"
        return (f"{self.name}: broker {broker} · web {self.public_url} (pid {st['web']}, "
                f"{self.config.web_threads} threads) · {len(st['workers'])} "
                f"{self.config.worker_type} workers (pids {workers}) · run dir {self.config.run_dir}")

    def _announce(self, quiet: bool, note: str) -> None:
        if not quiet:
            print(f"{self.summary()} · {note}")

    def __repr__(self) -> str:
        state = "running" if self.healthy() else "stopped"
        return (f"<Lab {self.name} {state}: {self.config.workers} {self.config.worker_type} "
                f"workers, web {self.url if self.port else '-'}>")

    def _repr_html_(self) -> str:
        link = f'<a href="{self.public_url}monitor" target="_blank">monitor</a>'
        return f"<code>{self.__repr__()[1:-1]}</code> · {link}"

    # ------------------------------------------------------------------ internals
    def key(self, *parts: str) -> str:
        """A Redis key in this lab's namespace: ``lab.<name>.<parts…>``."""
        return events.key(self.config.name, *parts)

    def _forget_keys(self) -> None:
        """On an external server, delete exactly the keys this lab created."""
        try:
            self.reset()
            self.redis.delete(self.key("workers"))
            notify = list(self.redis.scan_iter(match=f"huey.notify.{self.config.name}.*"))
            if notify:
                self.redis.delete(*notify)
        except redis.RedisError as exc:
            logger.warning("could not clean keys of %s: %s", self.config.name, exc)


#: States after which a task will not run again and counts as finished.
_FINAL_STATES = {"complete", "error", "revoked", "expired", "canceled", "locked"}
#: States after which a task will not run again although it never finished.
_NEVER_FINISHED = {"interrupted"}


def _task_ids(handles: Any) -> Iterable[str]:
    if isinstance(handles, str):
        return [handles]
    if hasattr(handles, "id") and isinstance(handles.id, str):
        return [handles.id]
    out: list[str] = []
    for h in handles:  # a list, or Huey's ResultGroup (iterating it yields its results)
        out.extend(_task_ids(h))
    return out


def running_labs() -> list[Lab]:
    """Labs started by this process and not stopped yet."""
    return list(_LABS.values())


@atexit.register
def _stop_all() -> None:
    for lab in list(_LABS.values()):
        try:
            lab.stop(quiet=True)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            logger.exception("stopping %s at exit failed", lab.name)
