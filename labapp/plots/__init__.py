"""Plots: pure functions from an experiment result to a matplotlib ``Figure`` (no I/O, no show)."""
from labapp.plots.latency import latency_key
from labapp.plots.latency import latency_table
from labapp.plots.latency import plot_latency
from labapp.plots.latency import plot_overhead
from labapp.plots.ordering import order_summary
from labapp.plots.ordering import plot_gantt
from labapp.plots.ordering import plot_order
from labapp.plots.retries import plot_retries
from labapp.plots.scaling import plot_scaling
from labapp.plots.durability import plot_durability
from labapp.plots.race import plot_race
from labapp.plots.tools import plot_after_response
from labapp.plots.tools import plot_tools
from labapp.plots.worker_loss import plot_worker_loss
from labapp.plots.queue import plot_queue_length
from labapp.plots.survival import plot_survival
from labapp.plots.survival import survival_key
from labapp.plots._display import enable_notebook_display

enable_notebook_display()  # figures returned by these functions display in Jupyter
