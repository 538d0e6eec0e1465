"""The private RabbitMQ node: starts beside the machine's own, survives nothing it should not."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from labapp import procs
from labapp import rabbit

CHILD = Path(__file__).parent / "child_scripts" / "start_rabbit.py"
OK, WHY = rabbit.available()
needs_rabbit = pytest.mark.skipif(not OK, reason=WHY)
pytestmark = [pytest.mark.slow]


def _node_processes(folder: str) -> list[int]:
    """Processes whose HOME is the node's folder: epmd, the VM and every helper it forked."""
    out = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("HOME") == folder and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except psutil.Error:
            continue
    return out


def test_debian_wrapper_is_not_used(tmp_path):
    wrapper = tmp_path / "rabbitmq-server"
    wrapper.write_text('#!/bin/sh\necho "Only root or rabbitmq should run $0"\n')
    wrapper.chmod(0o755)
    assert rabbit._is_debian_wrapper(wrapper)


def test_bad_override_says_what_to_do(monkeypatch):
    monkeypatch.setenv("LAB_RABBITMQ_SERVER", "/nonexistent/rabbitmq-server")
    with pytest.raises(rabbit.RabbitUnavailable, match="LAB_RABBITMQ_SERVER"):
        rabbit.find_server()
    ok, why = rabbit.available()
    assert not ok and "LAB_RABBITMQ_SERVER" in why


@needs_rabbit
def test_crash_keeps_only_durable_persistent_messages(tmp_path):
    import kombu
    node = rabbit.PrivateRabbit(root=tmp_path)
    try:
        node.start()
        assert node.port != 5672 and node.epmd_port != 4369
        with kombu.Connection(node.url, transport_options={"confirm_publish": True}) as conn:
            channel = conn.channel()
            producer = kombu.Producer(channel)
            for name, durable, mode in (("keep", True, 2), ("gone", False, 1)):
                kombu.Queue(name, exchange="", routing_key=name, durable=durable)(channel).declare()
            assert node.sync_definitions()
            for name, durable, mode in (("keep", True, 2), ("gone", False, 1)):
                for _ in range(5):
                    producer.publish(b"x", routing_key=name, delivery_mode=mode, declare=[])
        old = node.proc.pid
        node.restart()
        assert node.proc.pid != old and not psutil.pid_exists(old)
        with kombu.Connection(node.url) as conn:
            assert conn.channel().queue_declare("keep", passive=True).message_count == 5
            with pytest.raises(Exception, match="NOT_FOUND"):
                conn.channel().queue_declare("gone", passive=True)
    finally:
        node.stop()
    assert not node.dir.exists()


@needs_rabbit
def test_sigkill_of_the_owner_leaves_no_process(tmp_path):
    owner = subprocess.Popen([sys.executable, str(CHILD), str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(owner.stdout.readline())
        started = _node_processes(info["dir"])
        assert set(info["pids"]) <= set(started) and len(started) >= 2  # epmd + the VM at least
        owner.send_signal(signal.SIGKILL)
        owner.wait(5)
        assert procs.wait_until(lambda: not _node_processes(info["dir"]), timeout=10), \
            f"survivors after SIGKILL of the owner: {_node_processes(info['dir'])}"
    finally:
        owner.kill()
        owner.wait()
        for pid in _node_processes(info["dir"]) if "info" in dir() else []:
            os.kill(pid, signal.SIGKILL)
