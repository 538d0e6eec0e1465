"""Celery: a no-op and a sleep task. Worker: celery -A celery_tasks worker -c 1 -l WARNING
--without-gossip --without-mingle --without-heartbeat (no cluster chatter: one worker)"""
import os
import time

from celery import Celery

url = os.environ["REDIS_URL"]
app = Celery("compare", broker=url, backend=url)


@app.task
def noop():
    return time.time()  # when it finished, on the worker's clock


@app.task
def sleep(seconds):
    time.sleep(seconds)  # stand-in for I/O
    return time.time()
