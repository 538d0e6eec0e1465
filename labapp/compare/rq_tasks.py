"""RQ: a no-op and a sleep task (run with ``rq worker --url unix://…?db=1 compare``)."""
import time

from redis import Redis
from rq import Queue

from labapp.compare import DB
from labapp.compare import socket_path

queue = Queue("compare", connection=Redis(unix_socket_path=socket_path(), db=DB))


def noop() -> float:
    """Do nothing; return when it finished (the worker's clock)."""
    return time.time()


def sleep(seconds: float) -> float:
    """Wait ``seconds`` (stand-in for I/O); return when it finished."""
    time.sleep(seconds)
    return time.time()


# --- measurement only: a task that holds the worker until the producer says go
def gate(key: str) -> float:
    """Block until the producer pushes to ``key``; return when released."""
    Redis(unix_socket_path=socket_path(), db=DB).blpop(key, timeout=60)
    return time.time()
