"""Run dirs another user cannot hijack, and one OS lock per lab name.

Layout (``run_root`` is ``$XDG_RUNTIME_DIR/queue-lab`` or ``/tmp/queue-lab-<uid>``)::

    run_root/                 ours, a real directory, not writable by anyone else
      .<name>.lock            flock held by the process that owns lab <name>, for its lifetime
      <name>/                 0700, made by us with os.mkdir (atomic), holds MARKER
        .queue-lab            marker: "this folder was made by queue-lab" (clean-up needs it)
        lab.json redis.sock web.port *.log

Every check uses ``lstat`` and never follows a symlink at the checked path. Ancestors of the
run root may be symlinks (``/tmp`` on macOS) but, like OpenSSH's ``safe_path``, each real
ancestor must belong to root or to us and be writable by nobody else unless sticky (``/tmp``).
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from labapp.config import ConfigError

MARKER = ".queue-lab"


def _who(uid: int) -> str:
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"uid {uid}"


def _check_ancestors(path: Path) -> None:
    """Refuse a run root whose real parent folders another user could rename or replace."""
    me = os.getuid()
    real = Path(os.path.realpath(path.parent))
    for folder in (real, *real.parents):
        st = os.stat(folder)
        writable_by_others = st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX
        if st.st_uid not in (0, me) or writable_by_others:
            raise ConfigError(f"run dir {path} is inside {folder}, which {_who(st.st_uid)} "
                              "or others can change: set LAB_RUN_DIR to a folder only you control")


def check_private_dir(path: Path, *, mode_0700: bool) -> None:
    """Raise :class:`ConfigError` unless ``path`` is our own real directory, closed to others."""
    st = os.lstat(path)
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "is a symlink"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory"
    elif st.st_uid != os.getuid():
        problem = f"belongs to {_who(st.st_uid)}"
    elif mode_0700 and st.st_mode & 0o077:
        problem = f"has mode {stat.S_IMODE(st.st_mode):04o} (others can get in)"
    elif st.st_mode & 0o022:
        problem = f"has mode {stat.S_IMODE(st.st_mode):04o} (others can write)"
    if problem:
        raise ConfigError(f"run dir {path} {problem}, so another user could take over the lab: "
                          f"remove it (`rm -rf {path}`) or set LAB_RUN_DIR to a folder of yours")


def ensure_root(path: Path, *, strict: bool = True) -> Path:
    """Create (atomically, mode 0700) or verify the run root; returns it.

    :param strict: demand mode 0700 (our own default roots); a folder the user chose
        (``LAB_RUN_DIR``, ``run_root=``) only needs to be theirs and closed to writes.
    """
    path = Path(path)
    try:
        if not os.path.lexists(path.parent):
            os.makedirs(path.parent, mode=0o700)
        _check_ancestors(path)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create run dir {path} ({exc.strerror}): set LAB_RUN_DIR "
                          "to a short folder you can write, e.g. ~/.ql") from None
    check_private_dir(path, mode_0700=strict)
    return path


def is_ours(folder: Path) -> bool:
    """True when ``folder`` is a real directory of ours carrying the queue-lab marker."""
    try:
        st = os.lstat(folder)
        mark = os.lstat(folder / MARKER)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
            and stat.S_ISREG(mark.st_mode) and mark.st_uid == os.getuid())


def make_lab_dir(folder: Path) -> Path:
    """Create a lab's run dir (0700) with the marker, or verify the one we made before."""
    try:
        os.mkdir(folder, 0o700)
        fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
    except FileExistsError:
        if not is_ours(folder):
            raise ConfigError(f"{folder} exists but was not made by queue-lab: move it away or "
                              "pick another name=") from None
        check_private_dir(folder, mode_0700=True)
    return folder


class LabLock:
    """An exclusive ``flock`` on ``run_root/.<name>.lock``: one owner per lab name.

    The lock file is never deleted (deleting a lock file others may hold open is a race);
    the kernel drops the lock when its owner exits, however it dies.
    """

    def __init__(self, run_root: Path, name: str) -> None:
        self.path = Path(run_root) / f".{name}.lock"
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process (or Lab) holds it."""
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        """Drop the lock (safe to repeat)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def __repr__(self) -> str:
        return f"<LabLock {self.path} {'held' if self.held else 'free'}>"


def lock_is_free(run_root: Path, name: str) -> bool:
    """True when nobody holds lab ``name``'s lock (takes and drops it at once)."""
    lock = LabLock(run_root, name)
    try:
        got = lock.acquire()
    except OSError:
        return False
    lock.release()
    return got
