# exercise: ex05_retries
# mistake: backoff that starts too high: the customers give up before the last retry
# expect: customers gave up
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task(retries=3, retry_delay=2, retry_backoff=2)
def charge(order):
    return flaky.call_local(key=order, fail_times=3)
