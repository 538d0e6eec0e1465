# exercise: ex08_race
# answer: notebook 08's pipeline as printed there, key given to step_b too
from labapp.tasks import step_a
from labapp.tasks import step_b


def run_pair(lab, key):
    return lab.huey.enqueue(step_a.s(key=key, seconds=0.01).then(step_b, key))
