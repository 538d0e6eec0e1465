"""The minimal Huey, RQ and Celery setups of notebook 04, as a user of each tool writes them.

Nothing here imports ``labapp``: workers run with this folder as their working directory and
import ``huey_tasks``, ``rq_tasks`` or ``celery_tasks`` as top-level modules, and ``bare.py``
measures each tool as a plain script would.
"""
