"""The exercise checks: each one measures the learner's code on the live lab.

A check never reads the learner's source. It calls their function, serves their Flask app
or runs their task module on the workers, then judges what it measured (response times,
task outcomes, event streams: which process ran what, when and in what order, counts).
Where the answer is a number or a decision, the learner writes a function or policy and
the check applies it to scenarios drawn at random for that run (:func:`~labapp.checks.
_common.draw`), so an answer remembered from an earlier run does not pass; the drawn
scenario is part of the result's ``details``. A failure raises :class:`NotYet` with a hint
that names the measurement and what to look at, never the expected value. :func:`labapp.grading.check` runs these and turns
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
