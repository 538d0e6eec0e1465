# exercise: ex05_retries
# mistake: half-solution: retries with a fixed delay, no backoff
# expect: did not grow
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task(retries=3, retry_delay=1)
def charge(order):
    return flaky.call_local(key=order, fail_times=3)
