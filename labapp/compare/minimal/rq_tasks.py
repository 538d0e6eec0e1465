"""RQ: a no-op and a sleep task. Worker: rq worker --url $REDIS_URL -q compare"""
import os
import time

from redis import Redis
from rq import Queue

queue = Queue("compare", connection=Redis.from_url(os.environ["REDIS_URL"]))


def noop():
    return time.time()  # when it finished, on the worker's clock


def sleep(seconds):
    time.sleep(seconds)  # stand-in for I/O
    return time.time()
