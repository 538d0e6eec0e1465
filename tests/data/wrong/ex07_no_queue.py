# exercise: ex07_end_to_end
# mistake: bypass: does the work here instead of through the queue and times that
# expect: enqueued no sleep job
import time


def end_to_end_seconds(lab, seconds):
    start = time.time()
    time.sleep(seconds)
    return time.time() - start
