"""REDIS_URL: the lab runs against a server it did not start and leaves no key behind."""
import pytest
import redis

from labapp import Lab

pytestmark = pytest.mark.external


def test_external_server_path_leaves_no_keys(external_redis, run_root, monkeypatch):
    client = redis.Redis.from_url(external_redis)
    before = set(client.keys("*"))
    monkeypatch.setenv("REDIS_URL", external_redis)
    lab = Lab.start(workers=1, name="ext_test", run_root=run_root, quiet=True)
    try:
        st = lab.status()
        assert st["broker"] == "external" and lab.redis_url == external_redis
        handles = [lab.enqueue("sleep", seconds=0.01) for _ in range(5)]
        handles.append(lab.enqueue("flaky", key="ext", fail_times=1))
        assert lab.wait(handles, 15)
        assert any(k.startswith(b"lab.ext_test.") for k in client.keys("*"))
    finally:
        lab.stop()
    assert set(client.keys("*")) - before == set()
    assert client.ping()  # the external server is still running
