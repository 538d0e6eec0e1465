"""The exercise checks: each one measures the learner's code on the live lab.

A check never reads the learner's source. It calls their function, serves their Flask app
or runs their task module on the workers, then judges what it measured (response times,
task outcomes, event streams, counts). A failure raises :class:`NotYet` with a hint that
names the measurement and the likely fix. :func:`labapp.grading.check` runs these and turns
every outcome, including a crash of the learner's code, into a "not yet" with a hint.

Checks empty the lab's queue and events first (``lab.reset()``) and put back the worker
count they change, so a check can be re-run at any time.

Importing the modules below registers their checks; the import order is the order of
:data:`EXERCISES` (01 first), which the grader's reports follow.
"""
from labapp.checks._common import EXERCISES
from labapp.checks._common import Exercise
from labapp.checks._common import NotYet
from labapp.checks import basics
from labapp.checks import results
from labapp.checks import scaling
from labapp.checks import advanced
from labapp.checks.advanced import ENDPOINTS
from labapp.checks.advanced import measure_endpoint
