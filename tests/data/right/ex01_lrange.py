# exercise: ex01_pending_jobs
# answer: reads the whole list with LRANGE instead of LLEN and LINDEX
def pending_jobs(client, queue):
    return len(client.lrange(queue, 0, -1))


def next_task(client, queue):
    jobs = client.lrange(queue, 0, -1)
    return lab.huey.serializer.deserialize(jobs[-1]).name.split(".")[-1] if jobs else None
