# exercise: ex08_race
# mistake: half-solution: a pipeline, but step_b also gets key= while Huey appends step_a's result
# expect: step_b failed in a worker
from labapp.tasks import step_a
from labapp.tasks import step_b


def run_pair(lab, key):
    return lab.huey.enqueue(step_a.s(key=key, seconds=0.01).then(step_b, key=key))
