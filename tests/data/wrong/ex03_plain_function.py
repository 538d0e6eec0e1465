# exercise: ex03_task_module
# mistake: bypass: a plain function, so calling it runs it right here in the notebook
# expect: not a task
import os


def shout(text):
    return {"text": text.upper(), "pid": os.getpid()}
