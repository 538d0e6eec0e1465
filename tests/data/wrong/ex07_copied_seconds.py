# exercise: ex07_end_to_end
# mistake: a copied value: always a 0.3 s job, whatever it is asked for
# expect: did not sleep the
def end_to_end_seconds(lab, seconds):
    handle = lab.enqueue("sleep", seconds=0.3)
    lab.wait(handle, timeout=10)
    times = {e.kind: e.time for e in lab.events() if e.task_id == handle.id}
    return times["complete"] - times["enqueued"]
