"""Experiments: each runs a scenario on a live ``Lab`` and returns a result holding the raw samples.

Every public experiment validates its arguments (``ValueError`` with the allowed range),
resets only its own state, prints progress when it runs longer than a second or two, and
leaves the lab usable when interrupted.
"""
from labapp.experiments.latency import LatencyResult
from labapp.experiments.latency import OverheadResult
from labapp.experiments.latency import latency
from labapp.experiments.latency import overhead
from labapp.experiments.ordering import OrderingResult
from labapp.experiments.ordering import ordering
from labapp.experiments.retries import RetriesResult
from labapp.experiments.retries import retries
from labapp.experiments.scaling import ScalingResult
from labapp.experiments.scaling import scaling
from labapp.experiments.durability import DurabilityResult
from labapp.experiments.durability import durability
from labapp.experiments.race import RaceResult
from labapp.experiments.race import race
from labapp.experiments.after_response import AfterResponseResult
from labapp.experiments.after_response import after_response
from labapp.experiments.after_response import thread_vs_queue
from labapp.experiments.tools import ToolsResult
from labapp.experiments.tools import tools
from labapp.experiments.drain import DrainResult
from labapp.experiments.drain import drain
from labapp.experiments.survival import extra_worker
from labapp.experiments.survival import flask_stopped
from labapp.experiments.survival import where_tasks_run
from labapp.experiments.survival import worker_killed
from labapp.experiments.worker_loss import WorkerLossResult
from labapp.experiments.worker_loss import worker_loss
