# exercise: ex01_pending_jobs
# mistake: takes the next job off the list to read its name (RPOP), as a worker would
# expect: read it without taking anything
def pending_jobs(client, queue):
    return client.llen(queue)


def next_task(client, queue):
    raw = client.rpop(queue)
    return None if raw is None else lab.huey.serializer.deserialize(raw).name
