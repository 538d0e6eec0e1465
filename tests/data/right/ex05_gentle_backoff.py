# exercise: ex05_retries
# answer: more retries than needed, a shorter first wait and a smaller factor
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task(retries=5, retry_delay=0.5, retry_backoff=2)
def charge(order):
    return flaky.call_local(key=order, fail_times=3)
