"""Nothing the lab starts may outlive the process that started it, even after SIGKILL."""
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from labapp import procs

CHILD = Path(__file__).parent / "child_scripts" / "start_lab.py"


def _alive(pids):
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.parametrize("worker_type,workers", [("thread", 2), ("process", 2)])
def test_sigkill_of_the_owner_leaves_no_process(run_root, worker_type, workers):
    owner = subprocess.Popen([sys.executable, str(CHILD), str(workers), worker_type, str(run_root)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(owner.stdout.readline())
        pids = info["pids"]
        # broker + web + consumer, plus forked workers and scheduler for -k process
        assert len(pids) >= (3 if worker_type == "thread" else 3 + workers)
        assert _alive([owner.pid])
        owner.send_signal(signal.SIGKILL)
        owner.wait(5)
        assert procs.wait_until(lambda: not _alive(pids), timeout=5), \
            f"survivors after SIGKILL of the owner: {_alive(pids)}"
    finally:
        owner.kill()
        owner.wait()
    # The dead owner's run dir is cleaned up by the next lab start.
    from labapp.stack import cleanup_stale
    assert Path(info["run_dir"]).name in cleanup_stale(run_root)


def test_kernel_killed_by_jupyter_leaves_no_process(run_root):
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = textwrap.dedent(f"""
            import json
            from labapp import Lab, procs
            lab = Lab.start(workers=2, worker_type="process", run_root={str(run_root)!r}, quiet=True)
            st = lab.status()
            print(json.dumps(sorted({{st["broker"], st["web"], *procs.group_pids(st["consumer"])}})))
        """)
        out = []
        reply = kc.execute_interactive(code, timeout=60,
                                       output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        pids = json.loads("".join(out).strip().splitlines()[-1])
        assert len(pids) >= 5
        kernel_tree = {p.pid for p in psutil.Process(km.provisioner.pid).children(recursive=True)}
        assert set(pids) <= kernel_tree  # the lab belongs to the kernel, not to this test
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert procs.wait_until(lambda: not _alive(pids), timeout=5), \
        f"survivors after the kernel was killed: {_alive(pids)}"


def test_stale_lab_processes_are_killed_at_next_start(run_root):
    """A lab whose owner vanished without PDEATHSIG (e.g. another OS) is swept at the next start."""
    from labapp.rundir import make_lab_dir
    from labapp.runstate import cleanup_stale, identity
    stray = subprocess.Popen(["sleep", "60"], start_new_session=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = make_lab_dir(run_root / "stale_one")
    (folder / "lab.json").write_text(json.dumps({
        "name": "stale_one",
        "owner": {"pid": dead.pid, "create_time": 1.0},
        "children": {"web": identity(stray.pid)}}))
    assert "stale_one" in cleanup_stale(run_root)
    assert stray.wait(5) == -signal.SIGKILL
    assert not folder.exists()
