"""``Lab``: start, watch and stop the broker, the Flask app and the Huey workers.

``Lab.start()`` returns the lab already running in this process when the settings match
(re-running a notebook cell is safe), restarts it when they changed, and cleans up labs
left behind by dead kernels. Children live in their own sessions and die with this process.
"""
from __future__ import annotations

import atexit
import dataclasses
import importlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import psutil
import redis

from labapp import events
from labapp import procs
from labapp import runstate
from labapp import tasks
from labapp.broker import Broker
from labapp.broker import BrokerError
from labapp.config import ConfigError, LabConfig

logger = logging.getLogger(__name__)

START_TIMEOUT = 20.0
GRACEFUL_TIMEOUT = 5.0   # huey_consumer -t: how long a graceful stop waits for running tasks
_LABS: dict[str, "Lab"] = {}
_LOCK = threading.RLock()


class LabError(RuntimeError):
    """A lab process failed; the message says what happened and includes its last log lines."""


class _Either:
    """Descriptor: ``Lab.start(...)`` builds or reuses a lab; ``lab.start()`` restarts that lab."""

    def __init__(self, cls_fn: Any, inst_fn: Any) -> None:
        self.cls_fn, self.inst_fn = cls_fn, inst_fn
        self.__doc__ = cls_fn.__doc__

    def __get__(self, obj: Any, cls: type) -> Any:
        if obj is None:
            return self.cls_fn.__get__(cls, cls)
        return self.inst_fn.__get__(obj, cls)


def consumer_command(workers: int, worker_type: str, *, shutdown_timeout: float = GRACEFUL_TIMEOUT,
                     health_check: float | None = None) -> list[str]:
    """Huey's own consumer run on ``labapp.worker.huey`` (demo tasks plus learner modules).

    :param shutdown_timeout: seconds a graceful stop (SIGINT) waits for running tasks;
        without ``-t`` Huey would wait forever.
    :param health_check: seconds between Huey's checks that replace dead process workers.
    """
    cmd = [sys.executable, "-m", "huey.bin.huey_consumer", "labapp.worker.huey",
           "-w", str(workers), "-k", worker_type, "-t", str(shutdown_timeout)]
    if health_check is not None:
        cmd += ["-c", str(health_check)]
    return cmd + ["-n", "-S"]  # no periodic tasks; simple log lines


def cleanup_stale(run_root: Path) -> list[str]:
    """Kill and remove labs whose owning process died; keeps run dirs of this process's labs."""
    return runstate.cleanup_stale(run_root, keep=_LABS)


class Lab:
    """A running queue lab: a Redis-compatible server, the Flask app and Huey workers.

    Start one with :meth:`Lab.start`, stop it with :meth:`stop` (or ``with Lab.start() as lab``).
    """

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.broker = Broker(config.run_dir, url=config.redis_url, durable=config.durable)
        self.web: subprocess.Popen[bytes] | None = None
        self.consumer: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.started_in: float | None = None
        self._client: redis.Redis | None = None

    # ------------------------------------------------------------------ start / stop
    @classmethod
    def _start_new(cls, workers: int | None = None, worker_type: str | None = None,
                   web_threads: int | None = None, name: str | None = None,
                   **settings: Any) -> "Lab":
        """Start a lab (or return the one this process already runs with these settings).

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
            if running is not None:
                if running.config == config and running.healthy():
                    running._announce(quiet, reused=True)
                    return running
                if not quiet:
                    print(f"{config.name}: settings changed or a process died, restarting the lab")
                running.stop()
            lab = cls(config)
            lab._launch()
            _LABS[config.name] = lab
        lab._announce(quiet)
        return lab

    def _restart(self, quiet: bool = False) -> "Lab":
        """Start this lab again with its settings (after :meth:`stop`, or to recover)."""
        return type(self)._start_new(quiet=quiet, **dataclasses.asdict(self.config))

    start = _Either(_start_new, _restart)

    def _launch(self) -> None:
        t0 = time.perf_counter()
        cfg = self.config
        cleanup_stale(Path(cfg.run_root))
        Path(cfg.run_root).mkdir(mode=0o700, parents=True, exist_ok=True)
        state_path = cfg.run_dir / runstate.STATE_FILE
        if state_path.exists():
            state = json.loads(state_path.read_text())
            if runstate.is_alive(state.get("owner")):
                raise ConfigError(f"a lab named {cfg.name!r} is already running in process "
                                  f"{state['owner']['pid']}: pick another name= or stop it there")
        if not cfg.external:
            shutil.rmtree(cfg.run_dir, ignore_errors=True)
        cfg.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(cfg.run_dir, 0o700)
        self._save_state()
        try:
            self.broker.start()
            self.redis.delete(self._key("workers"))
            tasks.bind(cfg.name, self.redis_url)
            self._spawn_web()
            self._spawn_consumer()
            self._wait_web()
            self._wait_workers()
        except BaseException:
            self.stop()
            raise
        self._save_state()
        self.started_in = time.perf_counter() - t0

    def _child_env(self, role: str) -> dict[str, str]:
        env = dict(os.environ)
        cwd = os.getcwd()
        env.update(LAB_NAME=self.config.name, LAB_REDIS_URL=self.redis_url, LAB_ROLE=role,
                   LAB_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1",
                   LAB_TASK_MODULES=",".join(self.config.task_modules),
                   PYTHONPATH=os.pathsep.join(filter(None, [cwd, env.get("PYTHONPATH")])))
        return env

    def _spawn_web(self) -> None:
        port_file = self.config.run_dir / "web.port"
        port_file.unlink(missing_ok=True)
        self.web = procs.spawn(
            [sys.executable, "-m", "labapp.web", "--port", str(self.config.web_port),
             "--threads", str(self.config.web_threads), "--port-file", str(port_file)],
            log_path=self.config.run_dir / "web.log", env=self._child_env("web"))

    def _wait_web(self) -> None:
        port_file = self.config.run_dir / "web.port"
        ok = procs.wait_until(lambda: self.web.poll() is not None or port_file.exists(),
                              START_TIMEOUT)
        if not ok or self.web.poll() is not None:
            raise LabError(f"the Flask app did not start; last lines of web.log:\n"
                           f"{procs.tail(self.config.run_dir / 'web.log')}")
        self.port = int(port_file.read_text())

    def _spawn_consumer(self) -> None:
        if self.config.workers == 0:
            self.consumer = None
            return
        self.consumer = procs.spawn(
            consumer_command(self.config.workers, self.config.worker_type,
                             shutdown_timeout=GRACEFUL_TIMEOUT, health_check=1),
            log_path=self.config.run_dir / "worker.log", env=self._child_env("worker"))

    def _wait_workers(self) -> None:
        if self.consumer is None:
            return
        want = self.config.workers
        ok = procs.wait_until(lambda: self.consumer.poll() is not None
                              or len(self._worker_pids()) >= want, START_TIMEOUT)
        if not ok or self.consumer.poll() is not None:
            raise LabError(f"the Huey workers did not start; last lines of worker.log:\n"
                           f"{procs.tail(self.config.run_dir / 'worker.log')}")

    def stop(self) -> None:
        """Stop workers, web app and server (at once, no waiting for running tasks). Safe to repeat."""
        with _LOCK:
            procs.stop_group(self.consumer, signal.SIGTERM, grace=1.0)
            procs.stop_group(self.web, signal.SIGTERM, grace=1.0)
            if self.config.external and self.broker.running:
                self._forget_keys()
            self.broker.stop()
            if self._client is not None:
                self._client.close()
                self._client = None
            tasks.unbind(self.config.name)
            (self.config.run_dir / runstate.STATE_FILE).unlink(missing_ok=True)
            if _LABS.get(self.config.name) is self:
                del _LABS[self.config.name]

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ workers
    def scale(self, workers: int, worker_type: str | None = None) -> "Lab":
        """Run ``workers`` workers from now on (graceful: running tasks finish, queued ones stay)."""
        config = dataclasses.replace(self.config, workers=workers,
                                     worker_type=worker_type or self.config.worker_type)
        if config == self.config and self._consumer_alive():
            return self
        self.config = config
        return self.restart_workers()

    def restart_workers(self) -> "Lab":
        """Gracefully stop the workers (running tasks finish, queued tasks stay) and start new ones."""
        procs.stop_group(self.consumer, signal.SIGINT, grace=GRACEFUL_TIMEOUT + 2)
        self.redis.delete(self._key("workers"))
        self._spawn_consumer()
        self._wait_workers()
        self._save_state()
        return self

    # ------------------------------------------------------------------ broker (durability lesson)
    def set_durable(self, durable: bool) -> "Lab":
        """Restart the private server with AOF ``appendfsync always`` (True) or in memory only (False).

        Switching restarts the server: in-memory data is lost. Clients reconnect by themselves.
        """
        durable = bool(durable)
        if durable == self.broker.durable and self.broker.running:
            return self
        if self.config.external:
            raise BrokerError(f"cannot switch the persistence of an external server "
                              f"({self.redis_url}): unset REDIS_URL to let the lab start its own")
        self.broker.stop()
        self.broker.durable = durable
        self.broker.start()
        self.config = dataclasses.replace(self.config, durable=durable)
        self._save_state()
        return self

    def crash_broker(self) -> float:
        """SIGKILL the private server as a power cut would, start it again; returns seconds it was down."""
        t0 = time.perf_counter()
        self.broker.restart()
        self._save_state()  # the server has a new pid: keep the stale-lab cleanup accurate
        return time.perf_counter() - t0

    def restart_web(self, web_threads: int | None = None) -> "Lab":
        """Restart the Flask process, optionally with a different request-thread pool size."""
        config = dataclasses.replace(self.config, web_threads=web_threads or self.config.web_threads)
        procs.stop_group(self.web, signal.SIGTERM, grace=1.0)
        self.config = dataclasses.replace(config, web_port=self.port or config.web_port)
        self._spawn_web()
        self._wait_web()
        self.config = config
        self._save_state()
        return self

    def kill_worker(self, index: int = 0, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to worker ``index`` as a crash would; returns the pid signalled.

        Thread workers share one consumer process, so this signals that process (all of
        them). A process worker dies alone, and Huey's consumer starts a replacement
        within about a second.
        """
        pids = self.status()["workers"]
        if not pids:
            raise LabError("no worker is running: start some with lab.scale(2)")
        if not 0 <= index < len(pids):
            raise ValueError(f"worker index {index} is out of range: use 0 to {len(pids) - 1}")
        pid = pids[index]
        if self.config.worker_type == "thread":
            procs.signal_group(pid, sig)
        else:
            os.kill(pid, sig)
        return pid

    def worker_command(self, workers: int = 1) -> str:
        """The shell command that starts extra workers for this lab from another terminal."""
        return (f"{sys.executable} -m labapp worker --name {self.name} "
                f"--redis-url '{self.redis_url}' -w {workers}")

    def _consumer_alive(self) -> bool:
        return self.consumer is not None and self.consumer.poll() is None

    def _worker_pids(self) -> dict[str, int]:
        raw = self.redis.hgetall(self._key("workers"))
        live = {}
        for label, pid in raw.items():
            if psutil.pid_exists(int(pid)):
                live[label.decode()] = int(pid)
        return dict(sorted(live.items(), key=lambda kv: int(kv[0].rsplit("-", 1)[-1])))

    # ------------------------------------------------------------------ tasks
    def enqueue(self, task: str, **params: Any) -> Any:
        """Enqueue demo task ``task`` with validated ``params``; returns Huey's result handle (``.id``)."""
        tasks.bind(self.config.name, self.redis_url)
        return tasks.huey.enqueue(tasks.signature(task, params))

    def enqueue_many(self, task: str, count: int, **params: Any) -> list[Any]:
        """Enqueue ``count`` copies of ``task`` (1 to 10 000); returns their result handles."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            raise ValueError(f"count={count!r} must be a whole number from 1 to 10000")
        return [self.enqueue(task, **params) for _ in range(count)]

    def load_tasks(self, module: str) -> Any:
        """Import learner module ``module`` here and in the workers (restarting them); returns it."""
        if module.endswith(".py"):
            module = module[:-3]
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        tasks.bind(self.config.name, self.redis_url)
        try:
            if module in sys.modules:
                for name, wrapper in list(tasks.huey._registry._registry.items()):
                    if name.startswith(module + "."):
                        tasks.huey._registry.unregister(wrapper)
                loaded = importlib.reload(sys.modules[module])
            else:
                loaded = importlib.import_module(module)
        except ModuleNotFoundError:
            raise ConfigError(f"no module {module!r} next to the notebook ({os.getcwd()}): "
                              f"write it first, e.g. with %%writefile {module}.py") from None
        except SyntaxError as exc:
            raise ConfigError(f"{module}.py line {exc.lineno}: {exc.msg}: fix it and run "
                              "load_tasks again") from None
        modules = tuple(dict.fromkeys((*self.config.task_modules, module)))
        self.config = dataclasses.replace(self.config, task_modules=modules)
        self.restart_workers()
        return loaded

    def wait(self, handles: Any, timeout: float = 30.0) -> bool:
        """Wait until every task in ``handles`` (results, ids or lists of them) has finished.

        Finished means complete, or failed with no retries left. Returns False on timeout,
        or as soon as a pending task is lost: its worker process died while running it
        (Huey does not run such a task again).
        """
        pending = set(_task_ids(handles))
        conn, name = self.redis, self.config.name
        cursor = events.last_id(conn, name)
        done = {i for i, s in events.states(conn, name, pending).items() if s in _FINAL_STATES}
        pending -= done
        if not pending:
            return True
        for event in events.follow(conn, name, cursor, timeout):
            if event is None:  # quiet for a moment: has a worker died under a pending task?
                if self.lost_tasks() & pending:
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
        tasks.bind(self.config.name, self.redis_url)
        return tasks.huey.result(task_id, blocking=timeout is not None, timeout=timeout,
                                 preserve=True)

    def events(self, since: str | None = None) -> list[events.Event]:
        """Task events recorded after stream id ``since`` (all when None), oldest first."""
        return events.read_all(self.redis, self.config.name, since)

    def cursor(self) -> str:
        """An events cursor for "from now on": pass it to ``events(since=...)``."""
        return events.last_id(self.redis, self.config.name)

    def queue_length(self) -> int:
        """Tasks waiting in the queue (not counting scheduled retries)."""
        tasks.bind(self.config.name, self.redis_url)
        return tasks.huey.pending_count()

    def reset(self) -> None:
        """Empty the queue, schedule, results and events of this lab (workers keep running)."""
        tasks.bind(self.config.name, self.redis_url)
        tasks.huey.flush()
        keep = {self._key("workers").encode()}
        doomed = [k for k in self.redis.scan_iter(match=f"lab.{self.config.name}.*", count=1000)
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
    def huey(self) -> Any:
        """The Huey instance, pointed at this lab."""
        tasks.bind(self.config.name, self.redis_url)
        return tasks.huey

    def healthy(self) -> bool:
        """True when the server, the web app and (if any) the consumer are all alive."""
        return (self.broker.running and self.web is not None and self.web.poll() is None
                and (self.config.workers == 0 or self._consumer_alive()))

    def status(self) -> dict[str, Any]:
        """PIDs and addresses of every part: ``broker``, ``web``, ``consumer``, ``workers``."""
        workers = self._worker_pids() if self._consumer_alive() else {}
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

    def logs(self, part: str | None = None, lines: int = 20) -> str:
        """Last ``lines`` of the ``web`` or ``worker`` log (both when ``part`` is None)."""
        parts = [part] if part else ["web", "worker"]
        out = []
        for p in parts:
            if p not in ("web", "worker", "redis"):
                raise ValueError(f"part={p!r}: use 'web', 'worker' or 'redis'")
            out.append(f"--- {p}.log\n{procs.tail(self.config.run_dir / f'{p}.log', lines)}")
        return "\n".join(out)

    def summary(self) -> str:
        """One line: broker, web URL, worker PIDs, run dir."""
        st = self.status()
        broker = "external " + self.redis_url if self.config.external else \
            f"{self.redis_url} (pid {st['broker']})"
        workers = ", ".join(map(str, st["workers"])) or "none"
        return (f"{self.name}: broker {broker} · web {self.public_url} (pid {st['web']}, "
                f"{self.config.web_threads} threads) · {len(st['workers'])} "
                f"{self.config.worker_type} workers (pids {workers}) · run dir {self.config.run_dir}")

    def _announce(self, quiet: bool, reused: bool = False) -> None:
        if quiet:
            return
        took = "already running" if reused else f"started in {self.started_in:.2f} s"
        print(f"{self.summary()} · {took}")

    def __repr__(self) -> str:
        state = "running" if self.healthy() else "stopped"
        return (f"<Lab {self.name} {state}: {self.config.workers} {self.config.worker_type} "
                f"workers, web {self.url if self.port else '-'}>")

    def _repr_html_(self) -> str:
        link = f'<a href="{self.public_url}monitor" target="_blank">monitor</a>'
        return f"<code>{self.__repr__()[1:-1]}</code> · {link}"

    # ------------------------------------------------------------------ internals
    def _key(self, *parts: str) -> str:
        return ".".join(("lab", self.config.name, *parts))

    def _save_state(self) -> None:
        runstate.write(self.config.run_dir, self.config.name, {
            "broker": self.broker.pid, "web": self.web and self.web.pid,
            "consumer": self.consumer and self.consumer.pid})

    def _forget_keys(self) -> None:
        """On an external server, delete exactly the keys this lab created."""
        try:
            self.reset()
            self.redis.delete(self._key("workers"))
            notify = list(self.redis.scan_iter(match=f"huey.notify.{self.config.name}.*"))
            if notify:
                self.redis.delete(*notify)
        except redis.RedisError as exc:
            logger.warning("could not clean keys of %s: %s", self.config.name, exc)


_FINAL_STATES = {"complete", "error", "revoked", "expired", "canceled", "interrupted", "locked"}


def _task_ids(handles: Any) -> Iterable[str]:
    if isinstance(handles, str):
        return [handles]
    if hasattr(handles, "id") and isinstance(handles.id, str):
        return [handles.id]
    if hasattr(handles, "_results"):  # huey ResultGroup
        handles = handles._results
    out: list[str] = []
    for h in handles:
        out.extend(_task_ids(h))
    return out


def running_labs() -> list[Lab]:
    """Labs started by this process and not stopped yet."""
    return list(_LABS.values())


@atexit.register
def _stop_all() -> None:
    for lab in list(_LABS.values()):
        try:
            lab.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            logger.exception("stopping %s at exit failed", lab.name)
