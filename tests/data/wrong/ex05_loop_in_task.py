# exercise: ex05_retries
# mistake: bypass: the task retries inside itself in a loop, so Huey never sees a failure
# expect: the task caught the failures itself
from labapp.tasks import TransientError
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task()
def charge(order):
    while True:
        try:
            return flaky.call_local(key=order, fail_times=3)
        except TransientError:
            pass
