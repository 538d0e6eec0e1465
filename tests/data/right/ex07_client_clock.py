# exercise: ex07_end_to_end
# answer: times the trip with the notebook's clock instead of the events
import time


def end_to_end_seconds(lab, seconds):
    start = time.time()
    handle = lab.enqueue("sleep", seconds=seconds)
    lab.wait(handle, timeout=10)
    return time.time() - start
