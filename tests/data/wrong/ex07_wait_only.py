# exercise: ex07_end_to_end
# mistake: half-solution: the time in the queue only (enqueued to executing)
# expect: its run time is missing
def end_to_end_seconds(lab, seconds):
    handle = lab.enqueue("sleep", seconds=seconds)
    lab.wait(handle, timeout=10)
    times = {e.kind: e.time for e in lab.events() if e.task_id == handle.id}
    return times["executing"] - times["enqueued"]
