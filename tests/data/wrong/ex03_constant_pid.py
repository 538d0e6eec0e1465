# exercise: ex03_task_module
# mistake: a constant pid (the notebook's, copied from the cell that printed it)
# expect: which is not a worker
import os

from labapp.tasks import huey


@huey.task()
def shout(text):
    return {"text": text.upper(), "pid": 4242}
