# exercise: ex05_retries
# mistake: a copied hint value: the old hint's backoff from 0.1 s, below Huey's 1 s scheduler tick
# expect: did not grow
from labapp.tasks import flaky
from labapp.tasks import huey


@huey.task(retries=3, retry_delay=0.1, retry_backoff=2)
def charge(order):
    return flaky.call_local(key=order, fail_times=3)
