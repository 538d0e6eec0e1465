# exercise: ex01_pending_jobs
# mistake: a constant, the count seen once while exploring
# expect: which is not what the list held
def pending_jobs(client, queue):
    return 3


def next_task(client, queue):
    raw = client.lindex(queue, -1)
    return None if raw is None else lab.huey.serializer.deserialize(raw).name
