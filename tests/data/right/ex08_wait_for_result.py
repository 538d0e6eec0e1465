# exercise: ex08_race
# answer: notebook 08's second fix: B is enqueued at once and waits for A's result
from labapp.tasks import step_a
from labapp.tasks import step_b_after


def run_pair(lab, key):
    a = lab.huey.enqueue(step_a.s(key=key, seconds=0.01))
    return lab.huey.enqueue(step_b_after.s(key=key, after=a.id))
