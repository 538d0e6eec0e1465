# exercise: ex05_retries
# mistake: half-solution: backoff, but one retry too few for three failures
# expect: count the attempts it needs
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task(retries=2, retry_delay=1, retry_backoff=2)
def charge(order):
    return flaky.call_local(key=order, fail_times=3)
