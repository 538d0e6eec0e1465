"""Huey: a no-op and a sleep task. Worker: huey_consumer huey_tasks.huey -w 1 -q"""
import os
import time

from huey import RedisHuey

huey = RedisHuey("compare", url=os.environ["REDIS_URL"])  # e.g. redis://localhost:6379/1


@huey.task()
def noop():
    return time.time()  # when it finished, on the worker's clock


@huey.task()
def sleep(seconds):
    time.sleep(seconds)  # stand-in for I/O
    return time.time()
