# exercise: ex03_task_module
# mistake: half-solution: the parent's pid (the process that started the workers)
# expect: which is not a worker
import os

from labapp.tasks import huey


@huey.task()
def shout(text):
    return {"text": text.upper(), "pid": os.getppid()}
