"""Failure experiments on real labs: broker crashes, races, killed workers, other tools.

Each test asserts the behaviour the lesson teaches, with margins for a noisy 2-core machine.
"""
from __future__ import annotations

import math
import os
import signal
import threading

import pytest
import redis

from labapp import compare
from labapp import procs
from labapp.broker import BrokerError
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
    assert result.survivors == {"memory": 0, "aof_always": 100}
    assert [r.queued_before for r in result.runs] == [100, 100]
    assert all(len(r.enqueue_s) == 100 for r in result.runs)
    assert result.throughput_per_s["memory"] > 0 and result.throughput_per_s["aof_always"] > 0
    assert "survivors" in repr(result) and "0/100" in repr(result)
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
        durability(lab, n=5000, rabbitmq=False)
    thread.join(5)
    probe.close()
    assert_usable(lab, workers=1)
    assert lab.queue_length() == 0


@pytest.mark.external
def test_durability_rabbitmq_counts_without_killing_the_server(make_lab):
    kombu = pytest.importorskip("kombu")
    amqp_exceptions = pytest.importorskip("amqp.exceptions")
    lab = make_lab(workers=0)
    result = durability(lab, n=20, modes=("memory",))
    if result.rabbitmq_note.startswith("skipped"):
        pytest.skip(result.rabbitmq_note)
    assert result.survivors["rabbitmq_durable"] == 20
    assert result.survivors["rabbitmq_transient"] == 20
    assert "NOT killed" in repr(result)
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    with kombu.Connection(url) as conn:  # the queues we made are gone again
        with pytest.raises(amqp_exceptions.NotFound, match="NOT_FOUND"):
            conn.channel().queue_declare(f"queue_lab.{lab.name}.rabbitmq_durable", passive=True)


def test_durability_without_rabbitmq_skips_and_says_how_to_get_one(make_lab):
    lab = make_lab(workers=0)
    result = durability(lab, n=10, modes=("memory",), amqp_url="amqp://guest:guest@127.0.0.1:1//")
    assert result.survivors == {"memory": 0}
    assert result.rabbitmq_note.startswith("skipped") and "AMQP_URL" in result.rabbitmq_note
    assert "AMQP_URL" in repr(result)


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
    result = tools(lab, n=20, sleep_tasks=3, sleep_seconds=0.02)
    for tool in ("huey", "rq", "celery"):
        assert result.throughput_per_s[tool] > 0 and math.isfinite(result.throughput_per_s[tool])
        run = result.runs[tool]
        assert 0 < run.startup_s < 30
        assert len(run.enqueue_s) == 20 and len(run.noop_done) == 20
        assert all(t >= run.gate_end for t in run.noop_done)  # the gate held the batch
        assert 4 <= run.setup_lines <= 30
    conn = redis.Redis(unix_socket_path=str(lab.broker.socket_path), db=compare.DB)
    assert conn.dbsize() == 0  # the comparison cleaned up after itself
    conn.close()
    assert lab.healthy()


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
]


@pytest.mark.parametrize("experiment, kwargs, message", BAD,
                         ids=[f"{f.__name__}-{'-'.join(k)}" for f, k, _ in BAD])
def test_bad_arguments_raise_value_error(lab, experiment, kwargs, message):
    before = lab.status()
    with pytest.raises(ValueError, match=message):
        experiment(lab, **kwargs)
    after = lab.status()
    assert (after["workers"], after["broker"]) == (before["workers"], before["broker"])
