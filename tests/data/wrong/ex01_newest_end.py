# exercise: ex01_pending_jobs
# mistake: half-solution: reads the wrong end of the list (the job added last)
# expect: named the job added last
def pending_jobs(client, queue):
    return client.llen(queue)


def next_task(client, queue):
    raw = client.lindex(queue, 0)
    return None if raw is None else lab.huey.serializer.deserialize(raw).name
