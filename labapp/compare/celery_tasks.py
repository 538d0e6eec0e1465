"""Celery: a no-op and a sleep task (run with ``celery -A labapp.compare.celery_tasks worker``)."""
import time

from celery import Celery

from labapp.compare import DB
from labapp.compare import socket_path

url = f"redis+socket://{socket_path()}?virtual_host={DB}"
app = Celery("compare", broker=url, backend=url)


@app.task
def noop() -> float:
    """Do nothing; return when it finished (the worker's clock)."""
    return time.time()


@app.task
def sleep(seconds: float) -> float:
    """Wait ``seconds`` (stand-in for I/O); return when it finished."""
    time.sleep(seconds)
    return time.time()


# --- measurement only: a task that holds the worker until the producer says go
@app.task
def gate(key: str) -> float:
    """Block until the producer pushes to ``key``; return when released."""
    from redis import Redis
    Redis(unix_socket_path=socket_path(), db=DB).blpop(key, timeout=60)
    return time.time()
