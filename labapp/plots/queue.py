"""Queue-length plot (01): tasks waiting in the broker over time, and tasks finished."""
from __future__ import annotations

from typing import Any, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labapp.plots._style import figure
from labapp.plots._style import role


def plot_queue_length(samples: Any, done: Sequence[float] = (),
                      workers_ready: float | None = None) -> Figure:
    """Tasks waiting in the queue over time, as sampled (a step line), plus tasks finished.

    :param samples: a :class:`~labapp.experiments.drain.DrainResult` (then ``done`` and
        ``workers_ready`` come from it), or ``(seconds since the start, tasks waiting)``
        pairs, oldest first, e.g. ``lab.redis.llen(queue_key)`` read every 50 ms.
    :param done: seconds (same clock) at which each task completed, e.g. from the
        ``complete`` events; drawn as a rising count.
    :param workers_ready: seconds at which the workers were running, marked with a line.
    """
    workers = None
    if hasattr(samples, "samples"):  # a DrainResult
        result = samples
        samples, done, workers_ready = result.samples, result.done, result.workers_ready
        workers = result.workers
    if not samples:
        raise ValueError("plot_queue_length needs at least one (seconds, length) sample")
    fig, (ax,) = figure(height=4.4)
    ts = [t for t, _ in samples]
    ns = [n for _, n in samples]
    ax.step(ts, ns, where="post", color=role("queued"), linewidth=2,
            label="waiting in the queue (sampled)")
    ax.plot(ts, ns, linestyle="none", marker="o", markersize=3, color=role("queued"))
    right = ts[-1]
    if done:
        finished = sorted(done)
        xs = [0.0, *finished]
        ys = list(range(len(finished) + 1))
        ax.step(xs, ys, where="post", color=role("done"), linewidth=2, linestyle="--",
                label="finished (complete events)")
        right = max(right, finished[-1])
    if workers_ready is not None:
        ax.axvline(workers_ready, color=role("ideal"), linestyle=":", linewidth=1.5,
                   label="workers running")
    top = max(max(ns), len(done))
    ax.set_xlim(0, right * 1.05 + 0.05)
    ax.set_ylim(0, top * 1.05 + 0.5)
    ax.set_xlabel("seconds since the workers were asked to start")
    ax.set_ylabel("tasks")
    by = f"{workers} workers" if workers is not None else "the workers"
    ax.set_title(f"{max(ns)} tasks waiting, drained by {by}")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # Below the axes: inside, it would cover the start of the curves.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=9,
              frameon=False)
    return fig
