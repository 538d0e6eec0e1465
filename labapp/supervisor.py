"""Process supervision for one lab: its run dir, its lock, and the three kinds of children.

:class:`Supervisor` owns everything a lab runs — the server (:class:`~labapp.broker.Broker`),
the Flask process and the Huey consumer — and the rules that keep them safe on a shared
machine:

* the run root and the lab's run dir are checked with ``lstat`` before use and refused when
  another user could have planted or changed them (:mod:`labapp.rundir`);
* one lab name has one owner: an ``flock`` taken before anything starts and held until
  :meth:`Supervisor.stop`; a failed start stops whatever it had started and drops the lock;
* children are recorded by pid, start time, uid and command line (:mod:`labapp.runstate`),
  and only processes that still match are ever signalled;
* children run with ``python -P`` in the run dir, so files next to the notebook never shadow
  a library; learner task modules are found through ``LAB_TASK_PATH`` instead.

The learner-facing API is :class:`labapp.stack.Lab`, which drives one supervisor.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import redis

from labapp import events
from labapp import procs
from labapp import rundir
from labapp import runstate
from labapp import tasks
from labapp.broker import Broker
from labapp.config import ConfigError, LabConfig, default_run_root

START_TIMEOUT = 20.0
#: How long a graceful stop of the workers waits for running tasks (huey_consumer ``-t``):
#: the longest task the lab accepts, plus a margin, so a restart never cuts one short.
GRACEFUL_TIMEOUT = tasks.MAX_TASK_SECONDS + 5.0


class LabError(RuntimeError):
    """A lab process failed; the message says what happened and includes its last log lines."""


def python_command(*args: str) -> list[str]:
    """``python -P …``: this interpreter, without the working directory on ``sys.path``."""
    return [sys.executable, "-P", *args]


def consumer_command(workers: int, worker_type: str, *, shutdown_timeout: float = GRACEFUL_TIMEOUT,
                     health_check: float | None = None) -> list[str]:
    """Huey's own consumer run on ``labapp.worker.huey`` (demo tasks plus learner modules).

    :param shutdown_timeout: seconds a graceful stop (SIGINT) waits for running tasks;
        without ``-t`` Huey would wait forever.
    :param health_check: seconds between Huey's checks that replace dead process workers.
    """
    cmd = python_command("-m", "huey.bin.huey_consumer", "labapp.worker.huey",
                         "-w", str(workers), "-k", worker_type, "-t", str(shutdown_timeout))
    if health_check is not None:
        cmd += ["-c", str(health_check)]
    return cmd + ["-n", "-S"]  # no periodic tasks; simple log lines


def child_env(name: str, redis_url: str, role: str, task_modules: Iterable[str] = (),
              task_path: str | None = None) -> dict[str, str]:
    """Environment of a lab child: which lab, which server, where learner task modules live."""
    env = dict(os.environ)
    env.update(LAB_NAME=name, LAB_REDIS_URL=redis_url, LAB_ROLE=role,
               LAB_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1", PYTHONSAFEPATH="1",
               LAB_TASK_MODULES=",".join(task_modules),
               LAB_TASK_PATH=task_path if task_path is not None else os.getcwd())
    return env


class Supervisor:
    """The processes of one lab and the files that describe them. Not thread-safe by itself:
    :class:`labapp.stack.Lab` calls it under the lab's lock."""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.broker = Broker(config.run_dir, url=config.redis_url, durable=config.durable)
        self.web: subprocess.Popen[bytes] | None = None
        self.consumer: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.lock = rundir.LabLock(config.run_root, config.name)
        self._client: redis.Redis | None = None

    def __repr__(self) -> str:
        return (f"<Supervisor {self.config.name} broker={self.broker.pid} web={self.pid(self.web)} "
                f"consumer={self.pid(self.consumer)} lock={'held' if self.lock.held else 'free'}>")

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    @staticmethod
    def pid(proc: subprocess.Popen[bytes] | None) -> int | None:
        """pid of a child that is still running, else None."""
        return proc.pid if proc is not None and proc.poll() is None else None

    # ------------------------------------------------------------------ start / stop
    def launch(self, keep: Iterable[str] = ()) -> None:
        """Take the lab's lock, prepare its run dir and start every part; all or nothing.

        :param keep: names of labs of this process whose run dirs the stale sweep must skip.
        """
        cfg = self.config
        root = Path(cfg.run_root)
        rundir.ensure_root(root, strict=root == default_run_root())
        if not self.lock.acquire():
            state = runstate.read(cfg.run_dir) or {}
            owner = (state.get("owner") or {}).get("pid", "another")
            raise ConfigError(f"a lab named {cfg.name!r} is already running in process {owner}: "
                              "pick another name= or stop it there")
        try:
            runstate.cleanup_stale(root, keep={cfg.name, *keep})
            self._prepare_run_dir()
            self.save_state()
            self.broker.start()
            self.client_cached().delete(self.key("workers"))
            self.spawn_web()
            self.spawn_consumer()
            self.wait_web()
            self.wait_workers()
            self.save_state()
        except BaseException:
            self.stop()
            raise

    def _prepare_run_dir(self) -> None:
        """A fresh run dir; a durable lab keeps its server's data from the last run."""
        folder = self.run_dir
        if rundir.is_ours(folder):
            keep = {rundir.MARKER} | ({runstate.DATA_DIR} if self.config.durable else set())
            for item in folder.iterdir():
                if item.name not in keep:
                    runstate._remove(item)
        rundir.make_lab_dir(folder)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop workers, web app and server at once; drop the lock. Safe to repeat."""
        procs.stop_group(self.consumer, sig, grace=1.0)
        procs.stop_group(self.web, sig, grace=1.0)
        self.broker.stop()
        if self.lock.held:
            (self.run_dir / runstate.STATE_FILE).unlink(missing_ok=True)
        self.lock.release()

    # ------------------------------------------------------------------ children
    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.broker.url)

    def key(self, *parts: str) -> str:
        return events.key(self.config.name, *parts)

    def env(self, role: str) -> dict[str, str]:
        return child_env(self.config.name, self.broker.url, role, self.config.task_modules)

    def spawn_web(self) -> None:
        port_file = self.run_dir / "web.port"
        port_file.unlink(missing_ok=True)
        self.web = procs.spawn(
            python_command("-m", "labapp.web", "--port", str(self.config.web_port),
                           "--threads", str(self.config.web_threads),
                           "--port-file", str(port_file)),
            log_path=self.run_dir / "web.log", env=self.env("web"), cwd=self.run_dir)

    def wait_web(self) -> None:
        port_file = self.run_dir / "web.port"
        web = self.web
        assert web is not None
        ok = procs.wait_until(lambda: web.poll() is not None or port_file.exists(), START_TIMEOUT)
        if not ok or web.poll() is not None:
            raise LabError(f"the Flask app did not start; last lines of web.log:\n"
                           f"{procs.tail(self.run_dir / 'web.log')}")
        self.port = int(port_file.read_text())

    def spawn_consumer(self) -> None:
        if self.config.workers == 0:
            self.consumer = None
            return
        self.consumer = procs.spawn(
            consumer_command(self.config.workers, self.config.worker_type,
                             shutdown_timeout=GRACEFUL_TIMEOUT, health_check=1),
            log_path=self.run_dir / "worker.log", env=self.env("worker"), cwd=self.run_dir)

    def wait_workers(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        want = self.config.workers
        ok = procs.wait_until(lambda: consumer.poll() is not None
                              or len(self.own_workers()) >= want, START_TIMEOUT)
        if not ok or consumer.poll() is not None:
            raise LabError(f"the Huey workers did not start; last lines of worker.log:\n"
                           f"{procs.tail(self.run_dir / 'worker.log')}")

    def consumer_alive(self) -> bool:
        return self.pid(self.consumer) is not None

    def consumer_family(self) -> set[int]:
        """pids of our consumer and the worker processes it forked."""
        pid = self.pid(self.consumer)
        return {pid, *procs.group_pids(pid)} if pid else set()

    def workers(self) -> list[dict[str, Any]]:
        """Every worker announced in the broker that is not known to be dead, by name.

        Each: ``name``, ``pid``, ``started``, ``host`` and ``ours`` (a process of this lab's
        consumer, checked by pid *and* start time; False for workers started elsewhere).
        """
        try:
            raw = self.client_cached().hgetall(self.key("workers"))
        except redis.RedisError:
            return []
        family = self.consumer_family()
        out = []
        for label, value in raw.items():
            try:
                pid_s, *tag = value.decode().split("|")
                pid = int(pid_s)
                started, host = (float(tag[0]), tag[1]) if len(tag) == 2 else (None, None)
            except ValueError:
                continue
            alive = events.process_alive(pid, started, host)
            if alive is False:
                continue
            out.append({"name": label.decode(), "pid": pid, "started": started, "host": host,
                        "ours": alive is True and started is not None and pid in family})
        return sorted(out, key=lambda w: (_worker_number(w["name"]), w["name"]))

    def own_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.workers() if w["ours"]]

    def client_cached(self) -> redis.Redis:
        if self._client is None:
            self._client = self.client()
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def running_tasks(self) -> list[events.Busy]:
        """Tasks our own consumer is running now (not those of workers elsewhere)."""
        family = self.consumer_family()
        try:
            busy = events.busy(self.client_cached(), self.config.name)
        except redis.RedisError:
            return []
        return [b for b in busy if b.pid in family and not b.lost]

    def stop_consumer_gracefully(self, report: Callable[[str, bool], None] | None = None) -> None:
        """SIGINT the consumer and wait for its running tasks (up to :data:`GRACEFUL_TIMEOUT`).

        :param report: called with a progress line (and whether it is the last one) about
            once a second while running tasks hold the restart.
        """
        consumer = self.consumer
        if consumer is None or consumer.poll() is not None:
            procs.stop_group(consumer, signal.SIGKILL, grace=0)
            return
        running = self.running_tasks()
        procs.signal_group(consumer.pid, signal.SIGINT)
        deadline = time.monotonic() + GRACEFUL_TIMEOUT + 2
        shown = False
        while consumer.poll() is None and time.monotonic() < deadline:
            if running and report is not None:
                left = deadline - time.monotonic()
                names = ", ".join(sorted({b.task for b in running}))
                report(f"waiting for {len(running)} running task(s) ({names}) to finish before "
                       f"the workers restart: at most {left:.0f} s more", False)
                shown = True
            try:
                consumer.wait(1.0)
            except subprocess.TimeoutExpired:
                running = self.running_tasks()
        procs.stop_group(consumer, signal.SIGKILL, grace=0)
        if shown and report is not None:
            report("running tasks finished; restarting the workers", True)

    def restart_consumer(self, report: Callable[[str, bool], None] | None = None) -> None:
        """Gracefully replace the consumer (running tasks finish, queued ones stay)."""
        self.stop_consumer_gracefully(report)
        self.client_cached().delete(self.key("workers"))
        self.spawn_consumer()
        self.wait_workers()
        self.save_state()

    def restart_web(self, web_threads: int) -> None:
        procs.stop_group(self.web, signal.SIGTERM, grace=1.0)
        requested = self.config
        self.config = dataclasses.replace(requested, web_threads=web_threads,
                                          web_port=self.port or requested.web_port)
        try:
            self.spawn_web()
            self.wait_web()
        finally:
            self.config = dataclasses.replace(requested, web_threads=web_threads)
        self.save_state()

    def save_state(self) -> None:
        runstate.write(self.run_dir, self.config.name, {
            "broker": self.broker.pid, "web": self.pid(self.web),
            "consumer": self.pid(self.consumer)})


def _worker_number(label: str) -> int:
    try:
        return int(label.rsplit("-", 1)[-1])
    except ValueError:
        return 1 << 30


def cleanup_stale(run_root: Path, keep: Iterable[str] = ()) -> list[str]:
    """Kill and remove labs nobody owns any more (see :func:`labapp.runstate.cleanup_stale`)."""
    return runstate.cleanup_stale(Path(run_root), keep=keep)


__all__ = ["Supervisor", "LabError", "consumer_command", "child_env", "cleanup_stale",
           "GRACEFUL_TIMEOUT", "START_TIMEOUT"]
