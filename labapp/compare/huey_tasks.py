"""Huey: a no-op and a sleep task (run with ``huey_consumer labapp.compare.huey_tasks.huey``)."""
import time

from huey import RedisHuey

from labapp.compare import DB
from labapp.compare import socket_path

huey = RedisHuey("compare", url=f"unix://{socket_path()}?db={DB}")


@huey.task()
def noop() -> float:
    """Do nothing; return when it finished (the worker's clock)."""
    return time.time()


@huey.task()
def sleep(seconds: float) -> float:
    """Wait ``seconds`` (stand-in for I/O); return when it finished."""
    time.sleep(seconds)
    return time.time()


# --- measurement only: a task that holds the worker until the producer says go
@huey.task()
def gate(key: str) -> float:
    """Block until the producer pushes to ``key``; return when released."""
    huey.storage.conn.blpop(key, timeout=60)
    return time.time()
