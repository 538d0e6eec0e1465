"""Notebook widgets: enqueue tasks, change the workers, watch the queue live, predict then measure.

* :class:`EnqueuePanel` - pick a demo task and its parameters, enqueue it, watch each task go
  pending → executing → complete (or error).
* :class:`WorkerControl` - how many workers, threads or processes, and a button that kills one.
* :class:`Monitor` - queue length, what each worker runs, throughput, failures, stuck and lost
  tasks; updated live from a background thread (the lab's answer to Flower).
* :class:`Predict` - commit to an answer, run the experiment, compare the two.
* :class:`StackDiagram` - the lab's processes, drawn from the running system.

Every widget also works without a browser: call ``.click()`` on its buttons or set ``.value``,
which is how the tests and headless runs drive them. Errors appear inside the widget as one
line saying what to do; a button never prints a traceback. Set ``LAB_AUTO_PREDICT=1`` (tests
and grading do) and a :class:`Predict` commits its default answer as soon as it is displayed.

One module per widget (``enqueue``, ``workers``, ``monitor``, ``predict``, ``diagram``);
``base`` holds what they share: CSS, one-line error messages, the base class, and
following a lab across a restart.
"""
from labapp.widgets.base import LabStopped
from labapp.widgets.diagram import StackDiagram
from labapp.widgets.enqueue import FINAL
from labapp.widgets.enqueue import MAX_COUNT
from labapp.widgets.enqueue import PANEL_MIN_INTERVAL
from labapp.widgets.enqueue import SHOW_ROWS
from labapp.widgets.enqueue import EnqueuePanel
from labapp.widgets.monitor import MONITOR_MIN_INTERVAL
from labapp.widgets.monitor import Monitor
from labapp.widgets.predict import AUTO_ENV
from labapp.widgets.predict import Predict
from labapp.widgets.workers import WorkerControl

__all__ = ["EnqueuePanel", "WorkerControl", "Monitor", "Predict", "StackDiagram", "LabStopped"]
