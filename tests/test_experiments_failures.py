"""Failure experiments on real labs: broker crashes, races, killed workers, other tools.

Each test asserts the behaviour the lesson teaches, with margins for a noisy 2-core machine.
"""
from __future__ import annotations

import math
import os
import signal
import threading

import psutil
import pytest
import redis

from labapp import compare
from labapp import procs
from labapp import rabbit
from labapp.broker import BrokerError
from labapp.experiments import after_response
from labapp.experiments import durability
from labapp.experiments import race
from labapp.experiments import tools
from labapp.experiments import worker_loss
from labapp.plots import plot_race
from labapp.plots import plot_worker_loss


def assert_usable(lab, workers: int, worker_type: str = "thread", durable: bool = False) -> None:
    """The lab is back in its old shape and still runs a task."""
    assert lab.config.workers == workers
    assert lab.config.worker_type == worker_type
    assert lab.broker.durable is durable and lab.config.durable is durable
    assert lab.healthy()
    assert lab.wait(lab.enqueue("noop"), timeout=15)


@pytest.mark.slow
def test_durability_memory_loses_all_aof_keeps_all(make_lab):
    lab = make_lab(workers=1)
    result = durability(lab, n=100, rabbitmq=False)
    assert result.survivors == {"memory": 0, "aof_everysec": 100, "aof_always": 100}
    assert [r.queued_before for r in result.runs] == [100, 100, 100]
    assert all(len(r.enqueue_s) == 100 for r in result.runs)
    assert result.throughput_per_s["memory"] > 0 and result.throughput_per_s["aof_always"] > 0
    assert "survivors" in repr(result) and "0/100" in repr(result)
    assert result.teaches_lesson
    assert_usable(lab, workers=1)


@pytest.mark.slow
def test_durability_interrupted_leaves_lab_usable(make_lab):
    """The notebook's Interrupt button (SIGINT) in AOF mode: mode and workers come back."""
    lab = make_lab(workers=1)
    queue_key = lab.huey.storage.queue_key
    probe = redis.Redis.from_url(lab.redis_url)

    def enqueueing_in_aof_mode() -> bool:
        try:
            return lab.broker.durable and probe.llen(queue_key) > 200
        except redis.RedisError:  # the broker is restarting
            return False

    def interrupt_when_durable() -> None:
        # Interrupt inside the AOF enqueue loop, not while a server process is being
        # spawned (procs.spawn is not interrupt-safe: see the report).
        if procs.wait_until(enqueueing_in_aof_mode, timeout=30):
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt_when_durable, daemon=True)
    thread.start()
    with pytest.raises(KeyboardInterrupt):
        durability(lab, n=5000, modes=("aof_always",), rabbitmq=False)
    thread.join(5)
    probe.close()
    assert_usable(lab, workers=1)
    assert lab.queue_length() == 0


@pytest.mark.slow
@pytest.mark.skipif(not rabbit.available()[0], reason=rabbit.available()[1])
def test_durability_crashes_a_private_rabbitmq_not_the_shared_one(make_lab):
    lab = make_lab(workers=0)
    result = durability(lab, n=20, modes=())
    assert result.survivors == {"rabbitmq_durable": 20, "rabbitmq_durable_queue": 0,
                                "rabbitmq_transient": 0}
    assert "private node" in result.rabbitmq_note and "not touched" in result.rabbitmq_note
    assert result.teaches_lesson
    assert not any("queue-lab-rabbit-" in " ".join(p.info["cmdline"] or [])
                   for p in psutil.process_iter(["cmdline"]))


def test_durability_without_rabbitmq_skips_in_one_line(make_lab, monkeypatch):
    monkeypatch.setenv("LAB_RABBITMQ_SERVER", "/nonexistent/rabbitmq-server")
    lab = make_lab(workers=0)
    result = durability(lab, n=10, modes=("memory",))
    assert result.survivors == {"memory": 0}
    assert result.rabbitmq_note.startswith("skipped") and "\n" not in result.rabbitmq_note
    assert "LAB_RABBITMQ_SERVER" in repr(result)
    assert any(c.startswith("RabbitMQ: skipped") for c in result.conclusions())


@pytest.mark.external
def test_durability_refuses_an_external_server(make_lab, external_redis):
    lab = make_lab(workers=0, redis_url=external_redis)
    with pytest.raises(BrokerError, match="external"):
        durability(lab, n=10, rabbitmq=False)


@pytest.mark.slow
def test_race_pipeline_never_misses_independent_does(make_lab):
    lab = make_lab(workers=1)
    reps = 8
    result = race(lab, repetitions=reps, workers=2, a_seconds=0.05)
    failures = result.failures
    assert failures["pipeline"] == 0
    assert failures["wait_result"] == 0
    # With two idle workers B starts within milliseconds of A, long before A's 50 ms are up.
    assert failures["independent"] >= reps // 2
    assert failures["a_first"] >= reps // 2
    assert len(result.runs) == 4 * reps
    ok = [r for r in result.runs if not r.failed]
    assert all(r.b_start >= r.a_end - 0.01 for r in ok if r.strategy == "pipeline")
    assert plot_race(result).axes
    assert_usable(lab, workers=1)


@pytest.mark.slow
def test_worker_sigkill_loses_one_task_graceful_restart_none(make_lab):
    lab = make_lab(workers=1)
    result = worker_loss(lab, tasks=4, seconds=0.4, workers=2, worker_type="process")
    kill = result.kill
    assert result.lost_on_kill == 1
    (lost,) = kill.lost
    assert kill.kinds(lost) == ["enqueued", "executing"]  # started, never completed
    assert [e.pid for e in kill.events if e.task_id == lost and e.kind == "executing"] == \
        [kill.killed_pid]
    assert len(kill.completed) == 3
    assert result.lost_on_restart == 0
    assert len(result.graceful.completed) == 4
    assert "1 lost" in repr(result)
    assert plot_worker_loss(result).axes
    assert_usable(lab, workers=1)


@pytest.mark.slow
def test_tools_runs_huey_rq_and_celery_on_the_lab_server(make_lab):
    lab = make_lab(workers=0)
    result = tools(lab, n=60, window=0.5, sleep_tasks=3, sleep_seconds=0.02)
    for tool in ("huey", "rq", "celery"):
        run = result.runs[tool]
        assert math.isfinite(run.noop_throughput_per_s) and run.noop_throughput_per_s > 0
        assert math.isfinite(run.bare_throughput_per_s) and run.bare_throughput_per_s > 0
        assert run.bare["tool"] == tool and 2 <= run.bare["finished"] <= 60
        assert 0 < run.startup_s < 30
        assert len(run.enqueue_s) == 60 and 2 <= len(run.noop_done) <= 60
        assert len(run.sleep_done) == 3
        assert 4 <= run.setup_lines <= 15
        assert "labapp" not in " ".join(run.command)
    assert result.conclusions() and result.ranking and sorted(result.ranking) == sorted(result.runs)
    conn = redis.Redis(unix_socket_path=str(lab.broker.socket_path), db=compare.DB)
    assert conn.dbsize() == 0  # the comparison cleaned up after itself
    conn.close()
    assert lab.healthy()


@pytest.mark.slow
def test_after_response_hooks_hold_the_request_thread():
    result = after_response(seconds=0.5)
    assert result.hooks["after_this_request"].client_waited_s >= 0.4
    assert result.hooks["call_on_close"].client_waited_s < 0.25
    assert result.hooks["call_on_close"].next_s >= 0.3
    assert not result.hooks["thread"].holds_thread
    assert result.flask_has_queue is False


BAD = [
    (durability, {"n": 0}, "n=0"),
    (durability, {"n": 10**6}, "1 to 5000"),
    (durability, {"modes": ("disk",)}, "modes"),
    (race, {"repetitions": 0}, "repetitions"),
    (race, {"workers": 1}, "from 2"),
    (race, {"strategies": ("magic",)}, "strategies"),
    (race, {"a_seconds": -1}, "a_seconds"),
    (race, {"repetitions": 500, "a_seconds": 2.0}, "keep it under"),
    (worker_loss, {"seconds": -0.5}, "seconds"),
    (worker_loss, {"tasks": 2, "workers": 2}, "more than workers"),
    (worker_loss, {"worker_type": "fiber"}, "worker_type"),
    (tools, {"n": -5}, "n=-5"),
    (tools, {"which": ("dramatiq",)}, "which"),
    (tools, {"rq_worker": "gevent"}, "rq_worker"),
    (tools, {"n": 5000, "sleep_tasks": 500, "sleep_seconds": 2.0}, "keep it under"),
    (tools, {"n": {"dramatiq": 5}}, "dramatiq"),
    (tools, {"window": 0}, "window"),
]


@pytest.mark.parametrize("experiment, kwargs, message", BAD,
                         ids=[f"{f.__name__}-{'-'.join(k)}" for f, k, _ in BAD])
def test_bad_arguments_raise_value_error(lab, experiment, kwargs, message):
    before = lab.status()
    with pytest.raises(ValueError, match=message):
        experiment(lab, **kwargs)
    after = lab.status()
    assert (after["workers"], after["broker"]) == (before["workers"], before["broker"])


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["lab", "bare"])
def test_tools_leaves_no_worker_when_the_kernel_dies(tmp_path, stage):
    """SIGKILL the process running tools() while a worker runs: nothing of it survives."""
    import subprocess
    import sys

    import psutil

    code = ("from labapp import Lab; from labapp.experiments import tools; "
            f"lab = Lab.start(workers=0, name='kill{stage}'); "
            "tools(lab, which=('rq',), n=2000, window=20, sleep_tasks=0)")
    env = dict(os.environ, LAB_RUN_DIR=str(tmp_path / "run"))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    wanted = "bare.py" if stage == "bare" else "rq.cli"

    def ours() -> list[psutil.Process]:
        found = []
        for p in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "rq.cli" in " ".join(p.cmdline()) or "bare.py" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.Error:
                pass
        return found

    try:
        assert procs.wait_until(lambda: any(wanted in " ".join(p.cmdline()) for p in ours()), 60)
        assert procs.wait_until(lambda: len(ours()) >= (2 if stage == "bare" else 1), 30)
        children = ours()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        gone = lambda: not [p for p in children if p.is_running()  # noqa: E731
                            and p.status() != psutil.STATUS_ZOMBIE]
        assert procs.wait_until(gone, 10), [p.cmdline() for p in children if p.is_running()]
    finally:
        if proc.poll() is None:
            proc.kill()
        procs.signal_group(proc.pid, signal.SIGKILL)
