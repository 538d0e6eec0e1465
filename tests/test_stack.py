"""Lab: start/stop/status, idempotent start, isolation, scaling, graceful and ungraceful loss."""
import json
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import psutil
import pytest

from labapp import ConfigError, Lab, LabError
from labapp import procs
from labapp import tasks


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_start_status_stop(make_lab):
    lab = make_lab(workers=2)
    st = lab.status()
    assert st["running"] and len(st["workers"]) == 2 and st["worker_names"] == ["worker-1", "worker-2"]
    assert {st["broker"], st["web"], st["consumer"]} <= {p.pid for p in psutil.Process().children()}
    assert _get(lab.url + "healthz") == {"ok": True, "lab": lab.name, "pid": st["web"]}
    assert lab.url.startswith("http://127.0.0.1:")
    pids = [st["broker"], st["web"], st["consumer"]]
    lab.stop()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in pids)
    assert not lab.healthy() and "stopped" in repr(lab)
    lab.stop()  # a second stop is harmless


def test_start_again_returns_the_running_lab(make_lab, capsys):
    lab = make_lab(workers=1, quiet=False)
    again = Lab.start(workers=1, name=lab.name, run_root=lab.config.run_root)
    assert again is lab
    assert "already running" in capsys.readouterr().out


def test_changed_settings_restart_only_what_changed(make_lab, capsys):
    lab = make_lab(workers=1)
    old = lab.status()
    queued = lab.enqueue("noop")  # no worker may run it before the restart: 1 worker, paused
    bigger = make_lab(workers=3, name=lab.name, quiet=False)
    line = capsys.readouterr().out
    assert bigger is lab and len(bigger.status()["workers"]) == 3
    assert bigger.status()["web"] == old["web"] and bigger.status()["broker"] == old["broker"]
    assert "workers restarted (1 → 3 thread workers; queued tasks kept)" in line
    assert lab.wait(queued, 10)


def test_changed_run_root_restarts_the_whole_lab_and_says_so(make_lab, tmp_path, capsys):
    lab = make_lab(workers=0)
    lab.enqueue_many("noop", 3)
    other = tmp_path / "r"
    again = make_lab(workers=0, name=lab.name, run_root=other, quiet=False)
    line = capsys.readouterr().out
    assert again is not lab and not lab.healthy() and again.healthy()
    assert "restarted the whole lab" in line and "3 queued task(s) lost" in line


def test_instance_start_restarts_a_stopped_lab(make_lab):
    lab = make_lab(workers=1)
    lab.stop()
    again = lab.restart(quiet=True)
    try:
        assert again.healthy() and again.config == lab.config
    finally:
        again.stop()


def test_two_labs_are_isolated(make_lab):
    a, b = make_lab(workers=1), make_lab(workers=1)
    assert a.redis_url != b.redis_url and a.port != b.port
    ha = a.enqueue("noop")
    hb = b.enqueue("noop")
    assert a.wait(ha, 10) and b.wait(hb, 10)
    assert {e.task_id for e in a.events()} == {ha.id}
    assert {e.task_id for e in b.events()} == {hb.id}


def test_scale_up_and_down_keeps_queued_tasks(make_lab):
    lab = make_lab(workers=0)
    assert lab.status()["workers"] == [] and lab.status()["consumer"] is None
    handles = lab.enqueue_many("noop", 20)
    assert lab.queue_length() == 20
    lab.scale(3)
    assert len(lab.status()["workers"]) == 3
    assert lab.wait(handles, 20)
    lab.scale(1, worker_type="process")
    st = lab.status()
    assert len(st["workers"]) == 1 and st["workers"][0] != st["consumer"]


def test_graceful_restart_loses_nothing(make_lab):
    lab = make_lab(workers=2)
    handles = lab.enqueue_many("sleep", 100, seconds=0.01)
    lab.restart_workers()
    assert lab.wait(handles, 60)
    done = [e for e in lab.events() if e.kind == "complete"]
    assert len({e.task_id for e in done}) == 100


def test_sigkill_of_a_worker_loses_exactly_its_task(make_lab):
    lab = make_lab(workers=1)
    cursor = lab.cursor()
    victim = lab.enqueue("sleep", seconds=30)
    queued = lab.enqueue_many("noop", 5)
    assert procs.wait_until(lambda: any(e.kind == "executing" and e.task_id == victim.id
                                        for e in lab.events(since=cursor)), 10)
    lab.kill_worker(0, signal.SIGKILL)
    assert procs.wait_until(lambda: not lab.healthy(), 5)
    lab.restart_workers()
    assert lab.wait(queued, 20)
    assert victim.id in lab.lost_tasks()
    t0 = time.monotonic()
    assert not lab.wait(victim, 30)  # returns at once: the task can never finish
    assert time.monotonic() - t0 < 5
    kinds = [e.kind for e in lab.events(since=cursor) if e.task_id == victim.id]
    assert kinds == ["enqueued", "executing"]  # started, never finished, never redelivered


def test_process_worker_is_replaced_after_a_crash(make_lab):
    lab = make_lab(workers=2, worker_type="process")
    before = lab.status()["workers"]
    killed = lab.kill_worker(1)
    assert procs.wait_until(lambda: len(lab.status()["workers"]) == 2
                            and killed not in lab.status()["workers"], 10)
    assert lab.status()["workers"][0] == before[0]
    assert lab.wait(lab.enqueue_many("noop", 10), 10)


def test_kill_worker_bad_index(make_lab):
    lab = make_lab(workers=1)
    with pytest.raises(ValueError, match="out of range"):
        lab.kill_worker(5)


def test_restart_web_changes_the_pool(make_lab):
    lab = make_lab(workers=1, web_threads=4)
    lab.restart_web(web_threads=1)
    assert lab.config.web_threads == 1 and _get(lab.url + "api/hello")["message"] == "hello"


def test_busy_port_is_a_clear_error(make_lab):
    first = make_lab(workers=0)
    with pytest.raises(LabError, match="cannot listen on 127.0.0.1:%d" % first.port):
        make_lab(workers=0, web_port=first.port)


def test_name_in_use_by_another_process(make_lab, run_root):
    script = textwrap.dedent(f"""
        import sys
        from labapp import Lab
        Lab.start(workers=0, name="taken", run_root={str(run_root)!r}, quiet=True)
        print("up", flush=True)
        sys.stdin.read()
    """)
    other = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "up"
        with pytest.raises(ConfigError, match="already running in process"):
            make_lab(workers=0, name="taken")
    finally:
        other.stdin.close()
        other.wait(10)


def test_unknown_task_and_bad_params(clean_lab):
    with pytest.raises(LookupError, match="unknown task"):
        clean_lab.enqueue("rm_rf")
    with pytest.raises(ValueError, match=r"out of range \(0.0 to 30.0\)"):
        clean_lab.enqueue("sleep", seconds=99)
    with pytest.raises(ValueError, match="count"):
        clean_lab.enqueue_many("noop", 0)


def test_task_defined_in_main_is_refused_with_an_explanation(clean_lab):
    def shout(text):
        return text.upper()
    shout.__module__ = "__main__"
    wrapper = clean_lab.huey.task(name="shout_main")(shout)
    try:
        with pytest.raises(tasks.TaskNotImportable, match="load_tasks"):
            wrapper("hi")
    finally:
        wrapper.unregister()


def test_learner_task_module_runs_on_the_workers(make_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mytasks_lab.py").write_text(textwrap.dedent("""
        import os
        from labapp.tasks import huey

        @huey.task()
        def shout(text):
            return f"{text.upper()} from {os.getpid()}"
    """))
    lab = make_lab(workers=1)
    mod = lab.load_tasks("mytasks_lab")
    result = mod.shout("hi")
    value = result.get(blocking=True, timeout=10)
    assert value == f"HI from {lab.status()['consumer']}"
    assert lab.config.task_modules == ("mytasks_lab",)


def test_load_tasks_errors_say_what_to_do(make_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lab = make_lab(workers=0)
    with pytest.raises(ConfigError, match="%%writefile nothere.py"):
        lab.load_tasks("nothere")
    (tmp_path / "broken_tasks.py").write_text("def f(:\n")
    with pytest.raises(ConfigError, match="broken_tasks.py line 1"):
        lab.load_tasks("broken_tasks")


def test_enqueue_before_any_lab_explains():
    code = "from labapp.tasks import sleep\ntry:\n    sleep(1)\nexcept Exception as e:\n    print(type(e).__name__, e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.startswith("LabNotRunning no lab is running") and "Lab.start()" in out.stdout


def test_worker_started_elsewhere_shares_the_queue(make_lab):
    lab = make_lab(workers=1)
    extra = procs.spawn([sys.executable, "-m", "labapp", "worker", "--name", lab.name,
                         "--redis-url", lab.redis_url, "-w", "2"],
                        log_path=lab.config.run_dir / "extra.log")
    try:
        assert procs.wait_until(lambda: len(lab.status()["workers"]) == 3, 15), lab.status()
        handles = lab.enqueue_many("sleep", 12, seconds=0.1)
        assert lab.wait(handles, 20)
        runners = {e.pid for e in lab.events() if e.kind == "complete"}
        assert extra.pid in runners and lab.status()["consumer"] in runners
    finally:
        procs.stop_group(extra, signal.SIGINT, grace=3)


def test_logs_and_repr(clean_lab):
    text = clean_lab.logs("worker")
    assert "worker.log" in text
    with pytest.raises(ValueError):
        clean_lab.logs("nope")
    assert clean_lab.name in repr(clean_lab) and "running" in repr(clean_lab)
    assert "monitor" in clean_lab._repr_html_()


def test_two_kernels_at_once_do_not_collide(run_root):
    """Two processes (two notebooks) start default labs at the same moment."""
    script = textwrap.dedent(f"""
        import json, sys
        from labapp import Lab
        lab = Lab.start(run_root={str(run_root)!r}, quiet=True)
        h = lab.enqueue("sleep", seconds=0.05)
        st = lab.status()
        print(json.dumps({{"name": lab.name, "redis": st["redis_url"], "url": st["url"],
                          "done": lab.wait(h, 20), "pids": [st["broker"], st["web"], st["consumer"]]}}),
              flush=True)
        sys.stdin.read()
    """)
    kernels = [subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        infos = [json.loads(k.stdout.readline()) for k in kernels]
    finally:
        for k in kernels:
            k.stdin.close()
            k.wait(20)
    a, b = infos
    assert a["done"] and b["done"]
    assert a["name"] != b["name"] and a["redis"] != b["redis"] and a["url"] != b["url"]
    pids = a["pids"] + b["pids"]
    assert procs.wait_until(lambda: not any(psutil.pid_exists(p) for p in pids), 5)


def test_two_labs_in_one_process_each_use_their_own_huey(lab, make_lab):
    other = make_lab(workers=0)
    assert other.huey is not lab.huey and other.huey.name == other.name
    assert tasks.huey.name == other.name              # the newest lab started
    lab_before = lab.queue_length()
    other.enqueue("noop")
    other.enqueue("noop")
    assert other.queue_length() == 2 and lab.queue_length() == lab_before
    handle = lab.enqueue("sleep", seconds=0.0)        # no rebinding: still the shared lab
    assert lab.result(handle, timeout=10) == 0.0 and other.queue_length() == 2
    assert tasks.huey.name == other.name
    other.stop()
    assert tasks.huey.name == lab.name                # back to the newest lab still running
    assert tasks.sleep(0.0).get(blocking=True, timeout=10) == 0.0


def test_load_tasks_points_direct_calls_at_that_lab(make_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mytasks_two.py").write_text(
        "from labapp.tasks import huey\n\n@huey.task()\ndef double(x):\n    return 2 * x\n")
    first = make_lab(workers=1)
    newest = make_lab(workers=0)                      # no workers: a task sent here would wait
    assert tasks.huey.name == newest.name
    mod = first.load_tasks("mytasks_two")
    try:
        assert tasks.huey.name == first.name
        assert mod.double(21).get(blocking=True, timeout=10) == 42
        assert newest.queue_length() == 0
    finally:
        tasks.huey._registry.unregister(mod.double.task_class)
