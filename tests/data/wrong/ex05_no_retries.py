# exercise: ex05_retries
# mistake: no retries: Huey's default, the job is dropped after the first failure
# expect: did you give the task retries
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task()
def charge(order):
    return flaky.call_local(key=order, fail_times=3)
