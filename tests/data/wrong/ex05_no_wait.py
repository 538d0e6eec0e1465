# exercise: ex05_retries
# mistake: retries straight away (no delay), so backoff has nothing to multiply
# expect: make the task wait
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task(retries=3, retry_backoff=2)
def charge(order):
    return flaky.call_local(key=order, fail_times=3)
