# exercise: ex07_end_to_end
# mistake: a constant: the value a previous run's hint printed, after waiting for the job
# expect: from enqueue to complete
def end_to_end_seconds(lab, seconds):
    handle = lab.enqueue("sleep", seconds=seconds)
    lab.wait(handle, timeout=10)
    return 1.23
