# exercise: ex08_race
# mistake: half-solution: the fix people try first: enqueue step_a, then step_b (a race with 2 workers)
# expect: runs read missing data
def run_pair(lab, key):
    lab.enqueue("step_a", key=key, seconds=0.01)
    return lab.enqueue("step_b", key=key)
