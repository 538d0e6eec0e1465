"""Shared fixtures, in the flaskr style: real processes everywhere, nothing mocked.

* ``lab``: one session-wide lab (2 thread workers) for tests that only enqueue and read.
* ``make_lab``: a factory for labs a test may break (kill, scale); all are stopped after the test.
* ``broker``: a private server in its own run dir; ``external_redis``: the machine's Redis
  on 127.0.0.1:6379, skipped with a reason when absent.
* Every test ends by checking that no process it started is still alive.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psutil
import pytest
import redis

from labapp import Lab
from labapp.broker import Broker
from labapp.web import create_app

# chromium, browser, workspace, jupyter_lab: for every browser test module.
pytest_plugins = ["tests.browser_fixtures"]

EXTERNAL_URL = os.environ.get("LAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="session")
def run_root():
    """A short run root (unix socket paths are limited to ~100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="ql-", dir="/tmp") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def lab(run_root):
    """A lab shared by the tests of a session; tests must not stop or break it."""
    lab = Lab.start(workers=2, name="shared", run_root=run_root, quiet=True)
    yield lab
    lab.stop()


@pytest.fixture
def clean_lab(lab):
    """The shared lab with an empty queue and no events."""
    lab.reset()
    return lab


@pytest.fixture
def make_lab(run_root, request):
    """Start labs that a test may scale, kill or stop; they are stopped afterwards."""
    labs: list[Lab] = []

    def make(**kwargs):
        kwargs.setdefault("name", f"t{len(labs)}_{abs(hash(request.node.nodeid)) % 10**6}")
        kwargs.setdefault("run_root", run_root)
        kwargs.setdefault("quiet", True)
        lab = Lab.start(**kwargs)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.stop()


@pytest.fixture
def broker(run_root, request):
    """A private server in its own run dir."""
    b = Broker(run_root / f"b{abs(hash(request.node.nodeid)) % 10**6}")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def external_redis():
    """The machine's Redis (db 13), skipped with a reason when it does not answer."""
    client = redis.Redis.from_url(EXTERNAL_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {EXTERNAL_URL} ({exc}); start one to run this test")
    yield EXTERNAL_URL
    client.close()


@pytest.fixture
def app(lab):
    """The Flask app bound to the shared lab, called in-process (no HTTP server)."""
    return create_app({"TESTING": True, "LAB_NAME": lab.name, "LAB_REDIS_URL": lab.redis_url})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def lab_processes() -> set[int]:
    """PIDs of lab processes (server, web, workers) descending from this test process."""
    me = psutil.Process()
    found = set()
    for child in me.children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if not ("valkey-server" in cmd or "huey_consumer" in cmd or "labapp.web" in cmd
                or "labapp.compare" in cmd or "ql-compare" in cmd  # RQ/Celery of tools()
                or "huey_tasks.huey" in cmd or "celery_tasks" in cmd or "rq.cli" in cmd
                or "bare.py" in cmd or "-m waitress" in cmd):  # nb04's setups and demo apps
            continue
        try:  # the session-wide lab is meant to outlive single tests
            if child.environ().get("LAB_NAME") == "shared" or "/shared/redis.sock" in cmd:
                continue
        except psutil.Error:
            pass
        found.add(child.pid)
    return found


@pytest.fixture(autouse=True)
def no_leaked_processes(request):
    """Fail a test that leaves lab processes behind (the session lab excepted)."""
    before = lab_processes()
    yield
    after = lab_processes() - before
    still = [p for p in after if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not still, f"{request.node.nodeid} left lab processes running: {still}"
