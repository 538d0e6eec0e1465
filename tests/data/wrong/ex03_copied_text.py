# exercise: ex03_task_module
# mistake: a copied value: the text of the demo cell instead of the text given
# expect: return the text it was given, in capitals
import os

from labapp.tasks import huey


@huey.task()
def shout(text):
    return {"text": "HELLO", "pid": os.getpid()}
