# exercise: ex08_race
# mistake: bypass: both steps run right here in the notebook (call_local), no queue involved
# expect: no worker ran step_a
from labapp.tasks import step_a
from labapp.tasks import step_b


def run_pair(lab, key):
    step_a.call_local(key=key, seconds=0.01)
    return step_b.call_local(key)
