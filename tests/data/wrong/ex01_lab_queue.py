# exercise: ex01_pending_jobs
# mistake: bypass: counts the lab's own queue with lab.queue_length() instead of the list given
# expect: counted the lab's own queue
def pending_jobs(client, queue):
    return lab.queue_length()


def next_task(client, queue):
    raw = client.lindex(queue, -1)
    return None if raw is None else lab.huey.serializer.deserialize(raw).name
