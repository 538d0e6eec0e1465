"""Child-process helpers: log tails, polling, and process groups that die together."""
import os
import signal
import subprocess
import sys

import psutil

from labapp import procs


def test_tail_returns_the_last_lines(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("".join(f"line {i}\n" for i in range(1, 31)))
    assert procs.tail(log, 3) == "line 28\nline 29\nline 30"
    assert procs.tail(log) == "\n".join(f"line {i}" for i in range(16, 31))  # 15 by default
    assert procs.tail(tmp_path / "missing.log") == ""


def test_tail_reads_only_the_end_of_a_big_log_and_survives_bad_bytes(tmp_path):
    log = tmp_path / "big.log"
    log.write_bytes(b"x" * 100_000 + b"\nbad \xff byte\nlast\n")
    assert procs.tail(log, 2) == "bad \ufffd byte\nlast"
    assert len(procs.tail(log, 1000)) <= 8192


def test_wait_until():
    calls = []
    assert procs.wait_until(lambda: calls.append(1) or len(calls) >= 3, timeout=5)
    assert len(calls) == 3
    assert not procs.wait_until(lambda: False, timeout=0.05)


def test_spawned_child_has_its_own_session_and_stop_group_ends_it(tmp_path):
    log = tmp_path / "child.log"
    code = "import os, time; print('pgid', os.getpgid(0), flush=True); time.sleep(60)"
    proc = procs.spawn([sys.executable, "-c", code], log_path=log)
    try:
        assert procs.wait_until(lambda: "pgid" in procs.tail(log), timeout=10)
        assert procs.tail(log) == f"pgid {proc.pid}"  # it leads its own group
        assert os.getpgid(proc.pid) != os.getpgid(0)
        assert procs.group_pids(proc.pid) == [proc.pid]
    finally:
        procs.stop_group(proc, signal.SIGTERM, grace=5)
    assert proc.returncode == -signal.SIGTERM
    assert not procs.signal_group(proc.pid, signal.SIGTERM)  # gone: False, no exception
    procs.stop_group(None)


def test_stop_group_kills_what_ignores_the_signal(tmp_path):
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
    proc = procs.spawn([sys.executable, "-c", code], log_path=tmp_path / "c.log")
    assert procs.wait_until(lambda: "ready" in procs.tail(tmp_path / "c.log"), timeout=10)
    procs.stop_group(proc, signal.SIGTERM, grace=0.2)
    assert proc.returncode == -signal.SIGKILL


def test_a_fresh_process_dies_with_its_parent(tmp_path):
    # parent (python) starts a grandchild through procs.spawn, then exits with SIGKILL
    code = ("import os, signal, sys; from labapp import procs; "
            f"p = procs.spawn([sys.executable, '-c', 'import time; time.sleep(60)'], log_path={str(tmp_path / 'g.log')!r}); "
            "print(p.pid, flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    grandchild = int(out.stdout.strip())
    assert procs.wait_until(lambda: not _alive(grandchild), timeout=10)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
