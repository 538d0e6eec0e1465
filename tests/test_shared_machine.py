"""Safe on a shared machine: run dirs, clean-up, one owner per lab, restarts, identities.

Two-user tests run the other user's actions with ``setpriv --reuid=1001`` (plain shell tools,
which every user can execute) and the learner's lab with this interpreter; they need root
to switch users and are skipped with the reason otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from labapp import ConfigError, Lab, LabError
from labapp import events
from labapp import procs
from labapp import rundir
from labapp import runstate
from labapp.config import LabConfig, available_cpus, default_run_root
from labapp.config import _cgroup_cpu_limit

OTHER = 1001
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="two-user tests switch to uid 1001 with setpriv, which needs root")


def as_other(*cmd: str) -> None:
    """Run ``cmd`` as another local user (uid/gid 1001, no groups)."""
    subprocess.run(["setpriv", f"--reuid={OTHER}", f"--regid={OTHER}", "--clear-groups", *cmd],
                   check=True, timeout=30)


@pytest.fixture
def shared_tmp():
    """A world-writable sticky folder like /tmp (inside /tmp), used as the learner's TMPDIR."""
    shared = Path(tempfile.mkdtemp(prefix="ql-shared-", dir="/tmp"))
    shared.chmod(0o1777)
    yield shared
    shutil.rmtree(shared, ignore_errors=True)


def learner_start(shared: Path, run_root: str | None = None) -> subprocess.CompletedProcess[str]:
    """Start (and stop) a default lab in a fresh process whose temp dir is ``shared``."""
    code = textwrap.dedent(f"""
        import sys
        from labapp import Lab
        try:
            lab = Lab.start(workers=0, quiet=True, run_root={run_root!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
            sys.exit(3)
        print("started", lab.config.run_dir)
        lab.stop(quiet=True)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "LAB_RUN_DIR")}
    env["TMPDIR"] = str(shared)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)


def old_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("mine")
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    return path


# ---------------------------------------------------------------------------- run dirs
@needs_root
def test_run_root_planted_as_a_symlink_is_refused(shared_tmp, tmp_path):
    home = tmp_path / "home"
    work = old_folder(home / "work")
    as_other("ln", "-s", str(home), str(shared_tmp / f"queue-lab-{os.getuid()}"))
    out = learner_start(shared_tmp)
    assert out.returncode == 3, out.stdout + out.stderr
    assert out.stdout.startswith("ConfigError") and "is a symlink" in out.stdout
    assert "LAB_RUN_DIR" in out.stdout and out.stdout.count("\n") == 1
    assert (work / "notes.txt").read_text() == "mine"


@needs_root
def test_world_writable_run_root_with_a_fake_stale_lab_is_refused(shared_tmp):
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        root = shared_tmp / f"queue-lab-{os.getuid()}"
        fake = {"name": "evil", "owner": {"pid": 1, "create_time": 1.0},
                "children": {"web": runstate.identity(victim.pid)}}
        as_other("mkdir", "-m", "777", str(root))
        as_other("mkdir", "-m", "777", str(root / "evil"))
        as_other("touch", str(root / "evil" / rundir.MARKER))
        as_other("sh", "-c", f"echo '{json.dumps(fake)}' > {root / 'evil' / 'lab.json'}")
        out = learner_start(shared_tmp)
        assert out.returncode == 3 and "belongs to" in out.stdout, out.stdout + out.stderr
        assert victim.poll() is None  # the learner's own process was not killed
    finally:
        victim.kill()
        victim.wait()


@needs_root
def test_run_root_of_another_user_is_refused_even_when_private(shared_tmp):
    as_other("mkdir", "-m", "700", str(shared_tmp / f"queue-lab-{os.getuid()}"))
    out = learner_start(shared_tmp)
    assert out.returncode == 3 and "belongs to" in out.stdout, out.stdout + out.stderr


@needs_root
def test_default_run_root_is_made_private_and_others_cannot_enter(shared_tmp):
    out = learner_start(shared_tmp)
    assert out.returncode == 0, out.stdout + out.stderr
    root = shared_tmp / f"queue-lab-{os.getuid()}"
    assert (root.stat().st_mode & 0o777) == 0o700 and not root.is_symlink()
    with pytest.raises(subprocess.CalledProcessError):
        as_other("mv", str(root), str(shared_tmp / "stolen"))  # sticky folder: not theirs to move


ATTACK_SOCKET = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(type(exc).__name__)
else:
    s.sendall(b"PING\\r\\n")
    print("connected", s.recv(64))
"""


@needs_root
def test_another_user_cannot_reach_a_running_labs_server_or_folder(make_lab, shared_tmp):
    lab = make_lab(workers=0, run_root=shared_tmp / f"queue-lab-{os.getuid()}")
    sock = str(lab.broker.socket_path)
    out = subprocess.run(["setpriv", f"--reuid={OTHER}", f"--regid={OTHER}", "--clear-groups",
                          "/usr/bin/python3", "-I", "-c", ATTACK_SOCKET, sock],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "PermissionError", out.stdout + out.stderr
    for attempt in (["ls", str(lab.config.run_dir)],
                    ["ln", "-s", "/", str(lab.config.run_root / "evil")],
                    ["mv", str(lab.config.run_root), str(shared_tmp / "stolen")]):
        with pytest.raises(subprocess.CalledProcessError):
            as_other(*attempt)
    assert lab.healthy()


def test_xdg_runtime_dir_is_preferred_when_private(tmp_path):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    assert default_run_root({"XDG_RUNTIME_DIR": str(xdg)}) == xdg / "queue-lab"
    xdg.chmod(0o777)  # not private: fall back to the per-user temp folder
    fallback = default_run_root({"XDG_RUNTIME_DIR": str(xdg), "TMPDIR": "/tmp"})
    assert fallback == Path(f"/tmp/queue-lab-{os.getuid()}")


def test_run_root_inside_a_folder_others_can_write_is_refused(tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)  # writable by all and not sticky: anyone could swap our folder
    with pytest.raises(ConfigError, match="others can change"):
        rundir.ensure_root(open_dir / "root")


# ---------------------------------------------------------------------------- clean-up
def test_clean_up_keeps_folders_the_lab_did_not_make(make_lab, tmp_path):
    root = tmp_path / "r"
    root.mkdir(mode=0o700)
    homework = old_folder(root / "homework")
    lab = make_lab(workers=0, run_root=root)
    assert (homework / "notes.txt").read_text() == "mine"
    lab.stop(quiet=True)
    make_lab(workers=0, run_root=root, name="second")  # the next start sweeps only lab dirs
    assert (homework / "notes.txt").read_text() == "mine"
    assert not (root / lab.name / "lab.json").exists()


def test_a_folder_named_like_the_lab_but_not_made_by_it_is_refused(make_lab, tmp_path):
    root = tmp_path / "r"
    root.mkdir(mode=0o700)
    old_folder(root / "mine")
    with pytest.raises(ConfigError, match="not made by queue-lab"):
        make_lab(workers=0, run_root=root, name="mine")
    assert (root / "mine" / "notes.txt").read_text() == "mine"


def test_stale_state_naming_a_reused_pid_kills_nothing(run_root):
    """A stale lab.json whose child pid now belongs to another program (other command line)."""
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        folder = rundir.make_lab_dir(run_root / "reused")
        record = dict(runstate.identity(victim.pid), cmdline=["valkey-server"])
        (folder / "lab.json").write_text(json.dumps({"name": "reused", "children": {"broker": record}}))
        assert "reused" in runstate.cleanup_stale(run_root)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


# ---------------------------------------------------------------------------- one owner
RACER = textwrap.dedent("""
    import os, sys, time
    from labapp import Lab
    go = sys.argv[2]
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        lab = Lab.start(workers=0, name="cli", run_root=sys.argv[1], quiet=True)
    except Exception as exc:
        print("refused", type(exc).__name__, exc, flush=True)
        sys.exit(0)
    print("up", lab.redis_url, flush=True)
    sys.stdin.read()
""")


def test_two_starts_of_one_name_give_one_lab(tmp_path):
    root = tmp_path / "r"
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(root), str(go)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
              for _ in range(3)]
    try:
        time.sleep(0.5)  # let every racer import labapp and wait at the line
        go.touch()
        lines = [r.stdout.readline().strip() for r in racers]
    finally:
        for r in racers:
            r.stdin.close()
            r.wait(20)
    assert sum(line.startswith("up") for line in lines) == 1, lines
    refused = [line for line in lines if line.startswith("refused")]
    assert len(refused) == 2 and all("already running" in line for line in refused), lines


OWNER = textwrap.dedent("""
    import sys
    from labapp import Lab
    lab = Lab.start(workers=0, name="cli", run_root=sys.argv[1], quiet=True)
    print(lab.redis_url, flush=True)
    sys.stdin.read()
""")


def test_the_lock_not_the_state_file_decides_who_owns_a_name(tmp_path):
    """The moment between "nobody runs it" and writing lab.json is where starts raced."""
    root = tmp_path / "r"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(root)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        url = owner.stdout.readline().strip()
        (root / "cli" / "lab.json").unlink()  # as if the owner had not written it yet
        with pytest.raises(ConfigError, match="already running"):
            Lab.start(workers=0, name="cli", run_root=root, quiet=True)
        assert Path(url.removeprefix("unix://").split("?")[0]).exists()  # its socket is intact
    finally:
        owner.stdin.close()
        owner.wait(20)


def test_a_failure_in_the_last_step_of_start_stops_everything(make_lab, monkeypatch):
    """Once the final state save raised and left children nobody could stop."""
    real, calls = runstate.write, []

    def disk_full_on_second_save(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)
    monkeypatch.setattr(runstate, "write", disk_full_on_second_save)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(OSError, match="No space left"):
        make_lab(workers=1, name="disk_full")
    assert len(calls) == 2
    assert procs.wait_until(lambda: not ({p.pid for p in psutil.Process().children(recursive=True)}
                                         - before), 5)
    monkeypatch.setattr(runstate, "write", real)
    assert make_lab(workers=0, name="disk_full").healthy()


def test_a_failed_start_leaves_nothing_running_and_the_name_free(make_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken_at_import.py").write_text("raise RuntimeError('boom')\n")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(LabError, match="workers did not start"):
        make_lab(workers=1, name="fails", task_modules=("broken_at_import",))
    assert procs.wait_until(lambda: not ({p.pid for p in psutil.Process().children(recursive=True)}
                                         - before), 5)
    lab = make_lab(workers=0, name="fails")  # the lock was released
    assert lab.healthy()


# ---------------------------------------------------------------------------- restarts
def test_scale_waits_for_a_task_longer_than_the_old_timeout(make_lab, capsys):
    lab = make_lab(workers=1)
    cursor = lab.cursor()
    long = lab.enqueue("sleep", seconds=7)
    assert procs.wait_until(lambda: any(e.kind == "executing" and e.task_id == long.id
                                        for e in lab.events(since=cursor)), 10)
    lab.scale(2)
    assert lab.wait(long, 20)
    kinds = [e.kind for e in lab.events(since=cursor) if e.task_id == long.id]
    assert kinds == ["enqueued", "executing", "complete"], kinds
    assert "waiting for 1 running task(s) (sleep)" in capsys.readouterr().out
    assert len(lab.status()["workers"]) == 2


def test_wait_does_not_count_an_interrupted_task_as_finished(clean_lab):
    conn = clean_lab.redis
    fields = {"k": "interrupted", "i": "cut-short", "n": "sleep", "w": "worker-1", "p": "1",
              "t": repr(time.time()), "r": "0", "d": ""}
    events.write(conn, clean_lab.name, [dict(fields, k="executing"), fields])
    t0 = time.monotonic()
    assert clean_lab.wait("cut-short", 5) is False
    assert time.monotonic() - t0 < 2


def consumers_of(lab: Lab) -> list[int]:
    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if "huey_consumer" in " ".join(proc.info["cmdline"] or []) \
                    and proc.environ().get("LAB_NAME") == lab.name \
                    and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except psutil.Error:
            continue
    return out


def test_scale_from_two_threads_leaves_one_consumer(make_lab):
    lab = make_lab(workers=1)
    barrier = threading.Barrier(2)
    errors = []

    def scale(n):
        barrier.wait()
        try:
            lab.scale(n)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=scale, args=(n,)) for n in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(consumers_of(lab)) == 1
    assert len(lab.status()["workers"]) == lab.config.workers
    lab.stop(quiet=True)
    assert procs.wait_until(lambda: not consumers_of(lab), 5)


# ---------------------------------------------------------------------------- identities
def test_kill_worker_refuses_a_pid_it_did_not_start(make_lab):
    lab = make_lab(workers=1)
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        lab.redis.hset(f"lab.{lab.name}.workers", "worker-9", str(victim.pid))  # a bare pid
        assert lab.status()["worker_names"] == ["worker-1", "worker-9"]
        with pytest.raises(LabError, match="was not started by this lab"):
            lab.kill_worker(1)
        started = psutil.Process(victim.pid).create_time()  # a full identity, not a lab child
        lab.redis.hset(f"lab.{lab.name}.workers", "worker-9",
                       f"{victim.pid}|{started!r}|{socket.gethostname()}")
        with pytest.raises(LabError, match="was not started by this lab"):
            lab.kill_worker(1)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_lost_task_detection_checks_start_time_and_host():
    me = psutil.Process()
    alive = events.Busy("worker-1", "a", "sleep", 0.0, me.pid, me.create_time(), socket.gethostname())
    reused = events.Busy("worker-1", "b", "sleep", 0.0, me.pid, me.create_time() - 100,
                         socket.gethostname())
    elsewhere = events.Busy("box-1/worker-1", "c", "sleep", 0.0, 2**22 + 7, 1.0, "another-host")
    assert not alive.lost and reused.lost and not elsewhere.lost
    raw = {b"worker-1@5": f"x|sleep|1.0|{me.pid}|{me.create_time() - 100!r}|{socket.gethostname()}".encode()}
    assert events.parse_busy(raw)[0].lost


# ---------------------------------------------------------------------------- smaller ones
def test_durable_data_survives_a_restart_of_the_same_name(make_lab):
    lab = make_lab(workers=0, durable=True, name="durable_q")
    lab.enqueue_many("noop", 5)
    lab.stop()
    make_lab(workers=0, name="sweeper")  # another start sweeps stopped labs: data stays
    again = make_lab(workers=0, durable=True, name="durable_q")
    assert again.queue_length() == 5


def test_relative_run_root_is_resolved(make_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert LabConfig.from_env({"LAB_RUN_DIR": "rel"}).run_root == tmp_path / "rel"
    lab = make_lab(workers=1, run_root=Path("rr"))
    assert lab.config.run_dir.is_absolute() and lab.wait(lab.enqueue("noop"), 10)


def test_cli_run_root_is_honoured(tmp_path):
    root = tmp_path / "cliroot"
    proc = subprocess.Popen([sys.executable, "-m", "labapp", "--run-root", str(root), "start",
                             "-w", "0", "--name", "rooted"], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "rooted" in first and str(root) in first, first
        assert (root / "rooted" / "lab.json").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


SHADOW = "raise SystemExit('a file next to the notebook replaced the real library')\n"


def test_files_next_to_the_notebook_do_not_shadow_libraries(make_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("flask", "redis", "huey", "waitress", "labapp"):
        (tmp_path / f"{name}.py").write_text(SHADOW)
    (tmp_path / "mytasks_shadow.py").write_text(textwrap.dedent("""
        from labapp.tasks import huey

        @huey.task()
        def double(x):
            return 2 * x
    """))
    lab = make_lab(workers=1)
    assert lab.healthy()
    mod = lab.load_tasks("mytasks_shadow")
    assert mod.double(21).get(blocking=True, timeout=10) == 42
    with pytest.raises(ConfigError, match="already the name of an installed module"):
        lab.load_tasks("redis")


def test_tasks_does_not_import_worker():
    code = ("import sys, labapp.tasks as t; t.huey.create_consumer(workers=1); "
            "print('labapp.worker' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------------------- start cell
def test_rerunning_the_start_cell_after_changes_keeps_the_queue(make_lab, tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "cell_tasks.py").write_text("from labapp.tasks import huey\n")
    lab = make_lab(workers=0, name="cell")
    lab.enqueue_many("noop", 4)
    lab.load_tasks("cell_tasks")
    again = make_lab(workers=0, name="cell", quiet=False)
    line = capsys.readouterr().out
    assert again is lab and lab.queue_length() == 4
    assert lab.config.task_modules == ("cell_tasks",)
    assert line.count("\n") == 1 and "already running" in line
    lab.set_durable(True)  # a server restart: the queue starts empty
    lab.enqueue_many("noop", 4)
    make_lab(workers=0, name="cell", quiet=False)  # the cell says durable=False
    line = capsys.readouterr().out
    assert "server restarted in memory only" in line and "4 queued task(s) lost" in line


def test_stop_says_what_it_stopped(make_lab, capsys):
    lab = make_lab(workers=2)
    lab.enqueue("sleep", seconds=0)
    capsys.readouterr()
    lab.stop()
    line = capsys.readouterr().out
    assert line.startswith(f"{lab.name}: stopped 2 thread worker(s), the web app, the server")
    lab.stop()
    assert capsys.readouterr().out == ""


def test_logs_display_as_lines(clean_lab):
    logs = clean_lab.logs()
    assert isinstance(logs, str) and "--- worker.log\n" in logs
    assert repr(logs) == str(logs) and "\\n" not in repr(logs)


def test_available_cpus_follows_affinity_and_quota(tmp_path):
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c",
                          "from labapp.config import available_cpus; print(available_cpus())"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "1", out.stderr
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
    (tmp_path / "lab").mkdir()
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "lab" / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "cgroup").write_text("0::/lab\n")
    assert _cgroup_cpu_limit(tmp_path, tmp_path / "cgroup") == 1.5
    (tmp_path / "lab" / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpu_limit(tmp_path, tmp_path / "cgroup") is None
