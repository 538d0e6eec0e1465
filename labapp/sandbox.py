"""One bubblewrap sandbox per graded submission (Linux), or a plain process where none is possible.

The sandbox (Debian's ``bubblewrap``, ``/usr/bin/bwrap``) gives the notebook:

- its own PID namespace: every process it starts dies when the run ends (``--die-with-parent``);
- its own mount view: the system and the lab's Python read-only, a size-capped private
  ``/tmp`` (and ``/dev/shm``) the only writable places; the submissions folder, the other
  students' work and the grader's outputs are not in it;
- its own network namespace with loopback only (the lab uses a unix socket and 127.0.0.1);
- when the grader runs as root, an unprivileged uid of its own (one per parallel job) with no
  capabilities; otherwise the teacher's uid inside a user namespace;
- limits on address space, processes and file size (set by :mod:`labapp.gradeexec`).

``LAB_GRADE_SANDBOX=off`` (or a machine without bwrap or user namespaces) runs submissions as
plain processes: :func:`availability` then says why, and the grader prints :data:`REDUCED`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import labapp

ENV_VAR = "LAB_GRADE_SANDBOX"
INSIDE = "/tmp/qlg"          #: the private work folder inside the sandbox
KEY = "/qlg-key/key"         #: the per-run key inside the sandbox (its folder lets the kernel delete it)
TMP_SIZE = 512 * 2**20       #: bytes of the sandbox's writable /tmp (memory-backed)
FIRST_UID = 61000            #: root grader: job slot k runs as uid FIRST_UID + k
LIMITS = {"as": 4 * 2**30, "nproc": 512, "fsize": 256 * 2**20, "core": 0}
REDUCED = ("isolation is reduced ({why}): each notebook runs as you, with your files and "
           "network; a hostile notebook can read or change them. Grade only trusted notebooks, "
           "or install bubblewrap (apt-get install bubblewrap) on Linux.")
PASSED_ENV = ("LD_LIBRARY_PATH",)  #: kept from the grader's environment (the interpreter needs it)
_probed: dict[bool, tuple[bool, str]] = {}


def bwrap() -> str | None:
    """Path of the bubblewrap binary, or None."""
    return shutil.which("bwrap")


def availability(force_probe: bool = False) -> tuple[bool, str]:
    """(True, "") when submissions can be sandboxed here; else (False, why not)."""
    if os.environ.get(ENV_VAR, "").strip().lower() in ("off", "0", "no", "false"):
        return False, f"{ENV_VAR}=off"
    if not sys.platform.startswith("linux"):
        return False, f"no Linux namespaces on {sys.platform}"
    if bwrap() is None:
        return False, "bubblewrap (bwrap) is not installed"
    root = os.geteuid() == 0
    if root not in _probed or force_probe:
        cmd = command([sys.executable, "-c", "pass"], slot=0)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            _probed[root] = (done.returncode == 0, "" if done.returncode == 0 else
                             f"bwrap cannot start a sandbox here: {why}")
        except (OSError, subprocess.SubprocessError) as exc:
            _probed[root] = (False, f"bwrap cannot start a sandbox here: {exc}")
    return _probed[root]


def _readable_roots() -> list[str]:
    """Folders the sandbox needs read-only: the interpreter, the venv, the labapp package."""
    package = Path(labapp.__file__).resolve().parent
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix,
             str(Path(os.path.realpath(sys.executable)).parent.parent), str(package)}
    roots = {r for r in roots if not r.startswith(("/usr/", "/bin", "/lib", "/etc"))
             and r != "/usr"}
    # Drop folders inside others (binding /a and /a/b would hide nothing, but is noise).
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def command(argv: list[str], slot: int, files: dict[str, int] | None = None,
            binds: dict[str, str] | None = None) -> list[str]:
    """``argv`` wrapped in bwrap.

    :param slot: the job slot (a distinct uid per slot when the grader is root).
    :param files: inside path -> file descriptor whose content bwrap copies there.
    :param binds: inside path -> host file bound read-only there.
    """
    root = os.geteuid() == 0
    cmd = [bwrap() or "bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc",
           "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
           "--hostname", "grader", "--clearenv",
           "--setenv", "PATH", f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
           "--setenv", "LANG", "C.UTF-8"]
    for name in PASSED_ENV:  # e.g. a Python built with its libpython outside the system paths
        if os.environ.get(name):
            cmd += ["--setenv", name, os.environ[name]]
    if not root:
        cmd += ["--unshare-user"]
    for path in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        cmd += ["--ro-bind-try", path, path]
    made: set[str] = set()
    for path in _readable_roots():
        # Parents traversable (bwrap copies their modes: /root would stay 0700).
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                cmd += ["--perms", "0755", "--dir", str(parent)]
        cmd += ["--ro-bind", path, path]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            # Sticky like a real /tmp: the lab refuses run dirs inside folders others could
            # rename (labapp.rundir), and the sandbox's uid does not own what bwrap creates.
            "--perms", "1777", "--size", str(TMP_SIZE), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(64 * 2**20), "--tmpfs", "/dev/shm",
            "--perms", "1777", "--dir", INSIDE]
    for inside, fd in (files or {}).items():
        # Its own non-sticky folder, so the sandboxed uid may delete a file bwrap created.
        cmd += ["--perms", "0777", "--dir", str(Path(inside).parent),
                "--perms", "0444", "--file", str(fd), inside]
    for inside, host in (binds or {}).items():
        cmd += ["--ro-bind", host, inside]
    cmd += ["--chdir", INSIDE]
    if root:  # drop to an unprivileged uid of this job's own, with no capabilities left
        uid = str(FIRST_UID + slot)
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}",
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    else:
        cmd += ["--"]
    return cmd + argv
