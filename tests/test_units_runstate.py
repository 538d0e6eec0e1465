"""lab.json and the sweep of labs whose owner died: who counts as "still ours"."""
import json
import os
import signal
import stat
import subprocess
import sys

import psutil
import pytest

from labapp import rundir, runstate


@pytest.fixture
def child():
    """A real process in its own session (what a lab's server or worker looks like)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


def test_identity_of_this_process_and_of_none():
    me = runstate.identity(os.getpid())
    assert me["pid"] == os.getpid() and me["uid"] == os.getuid()
    proc = psutil.Process()
    assert (me["create_time"], me["cmdline"]) == (proc.create_time(), proc.cmdline())
    assert runstate.identity(2**22 + 12345) is None  # above any pid_max: no such process


def test_is_alive_needs_pid_start_time_uid_and_command(child):
    record = runstate.identity(child.pid)
    assert runstate.is_alive(record)
    assert runstate.is_alive({k: v for k, v in record.items() if k != "cmdline"})
    assert runstate.is_alive(dict(record, create_time=record["create_time"] + 0.005))
    assert not runstate.is_alive(dict(record, create_time=record["create_time"] + 0.5))  # reused
    assert not runstate.is_alive(dict(record, uid=os.getuid() + 1))
    assert not runstate.is_alive(dict(record, cmdline=["valkey-server"]))
    for broken in (None, {}, {"pid": "x", "create_time": 0}, {"pid": child.pid}):
        assert not runstate.is_alive(broken)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(5)
    assert not runstate.is_alive(record)


def test_write_then_read(tmp_path, child):
    runstate.write(tmp_path, "lab_a", {"web": child.pid, "worker": None})
    path = tmp_path / runstate.STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [runstate.STATE_FILE]  # no temp file left
    state = runstate.read(tmp_path)
    assert state["name"] == "lab_a" and state["owner"]["pid"] == os.getpid()
    assert state["children"]["worker"] is None
    assert state["children"]["web"]["pid"] == child.pid
    assert state == json.loads(path.read_text())


def test_unreadable_state_reads_as_none(tmp_path):
    assert runstate.read(tmp_path) is None
    (tmp_path / runstate.STATE_FILE).write_text("{not json")
    assert runstate.read(tmp_path) is None


def _lab_dir(root, name, state=None):
    folder = rundir.make_lab_dir(root / name)
    if state is not None:
        (folder / runstate.STATE_FILE).write_text(json.dumps(state))
    return folder


def test_read_all_only_reads_folders_queue_lab_made(tmp_path):
    _lab_dir(tmp_path, "b", {"name": "b"})
    _lab_dir(tmp_path, "a", {"name": "a"})
    _lab_dir(tmp_path, "c")  # no state file
    (tmp_path / "stranger").mkdir()
    (tmp_path / "stranger" / runstate.STATE_FILE).write_text('{"name": "stranger"}')
    assert runstate.read_all(tmp_path) == [(tmp_path / "a" / runstate.STATE_FILE, {"name": "a"}),
                                           (tmp_path / "b" / runstate.STATE_FILE, {"name": "b"})]
    assert runstate.read_all(tmp_path / "missing") == []


def test_cleanup_stale_kills_and_removes_only_unowned_labs(tmp_path, child):
    _lab_dir(tmp_path, "dead", {"name": "dead", "children": {"web": runstate.identity(child.pid),
                                                            "worker": None}})
    durable = _lab_dir(tmp_path, "durable", {"name": "durable", "children": {}})
    (durable / runstate.DATA_DIR).mkdir()
    (durable / runstate.DATA_DIR / "a.aof").write_text("x")
    (durable / "redis.sock").write_text("")
    (durable / "logs").mkdir()
    _lab_dir(tmp_path, "kept")
    _lab_dir(tmp_path, "owned")
    (tmp_path / "stranger").mkdir()
    lock = rundir.LabLock(tmp_path, "owned")
    assert lock.acquire()
    try:
        removed = runstate.cleanup_stale(tmp_path, keep=["kept"])
        assert not runstate.owner_alive(tmp_path, "dead") and runstate.owner_alive(tmp_path, "owned")
    finally:
        lock.release()
    assert sorted(removed) == ["dead", "durable"]
    assert child.wait(5) == -signal.SIGKILL
    assert not (tmp_path / "dead").exists()
    assert sorted(p.name for p in durable.iterdir()) == [rundir.MARKER, runstate.DATA_DIR]
    assert (durable / runstate.DATA_DIR / "a.aof").read_text() == "x"
    assert (tmp_path / "kept").is_dir() and (tmp_path / "owned").is_dir()
    assert (tmp_path / "stranger").is_dir()
    assert runstate.cleanup_stale(tmp_path / "missing") == []


def test_kill_children_spares_a_process_that_is_not_ours_any_more(child):
    record = dict(runstate.identity(child.pid), create_time=1.0)  # pid reused since
    runstate.kill_children({"children": {"web": record, "worker": None}})
    runstate.kill_children({"children": None})
    assert child.poll() is None
