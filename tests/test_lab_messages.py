"""What a lab tells the learner: its children's own log lines, and LabError saying what to do."""
import pytest

from labapp import LabError, procs


def test_logs_show_the_children_s_own_lines(make_lab):
    lab = make_lab(workers=1, web_threads=3)
    consumer = lab.status()["consumer"]
    started = f"Huey consumer started with 1 thread, PID {consumer} at "
    assert procs.wait_until(lambda: started in lab.logs("worker"), timeout=10), lab.logs()
    both = lab.logs()
    assert f"web INFO serving on http://127.0.0.1:{lab.port} with 3 threads" in both
    assert started in both and "+ labapp.tasks.flaky_jitter" in both
    assert both.index("--- web.log\n") < both.index("--- worker.log\n")
    last = lab.logs("worker", lines=2).splitlines()
    assert last[0] == "--- worker.log" and len(last) == 3
    assert "Ready to accept connections" in lab.logs("redis")


def test_lab_error_says_what_to_do(make_lab):
    lab = make_lab(workers=0)
    with pytest.raises(LabError, match=r"^no worker is running: start some with lab\.scale\(2\)$"):
        lab.kill_worker(0)
    lab.stop()
    message = f"lab {lab.name} is stopped: start it again with lab.restart()"
    with pytest.raises(LabError) as info:
        lab.restart_web(2)
    assert str(info.value) == message
    with pytest.raises(LabError) as info:
        lab.scale(1)
    assert str(info.value) == message
