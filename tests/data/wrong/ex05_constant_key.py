# exercise: ex05_retries
# mistake: a constant key: every order shares one outage, so most never fail
# expect: pass the order as the key
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task(retries=3, retry_delay=1, retry_backoff=2)
def charge(order):
    return flaky.call_local(key="payment", fail_times=3)
