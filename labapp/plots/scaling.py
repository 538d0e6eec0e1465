"""Scaling plot (06): tasks per second vs number of workers, against the ideal W/d line."""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from labapp.plots._style import colour
from labapp.plots._style import figure
from labapp.plots._style import role

MARKERS = ["o", "s", "^", "D"]
SAME_D = 0.15  # ideal lines whose d differ by less than this share are drawn once


def plot_scaling(*results: Any) -> Figure:
    """Measured throughput per worker count for one or more scaling results, with ideal lines.

    The x-axis is linear, so the ideal W/d (dashed grey) is a straight line through 0. Dotted,
    in each result's colour: what the hardware allows when it is lower (one GIL for CPU-bound
    threads, the available CPUs for CPU-bound processes). Labels: measured / that limit.
    Pass several results (e.g. CPU-bound on threads and on processes) to compare them.
    """
    if not results:
        raise ValueError("plot_scaling needs at least one scaling result")
    fig, (ax,) = figure()
    counts = sorted({w for r in results for w in r.workers})
    xs = [0] + counts
    # d is what each result's ideal uses: the set duration for I/O, the measured single-task
    # time for CPU-bound tasks. Results measured with (nearly) the same d share one line.
    ds: list[tuple[float, str]] = []
    for r in results:
        d = 1 / r.ideal(1)
        if not any(abs(d - other) <= SAME_D * other for other, _ in ds):
            ds.append((d, "" if r.kind == "io" else ", one task alone"))
    for d, how in ds:
        ax.plot(xs, [w / d for w in xs], color=role("ideal"), linestyle="--", linewidth=1.5,
                label=f"ideal W/d (d = {d * 1e3:.0f} ms{how})")
    for i, r in enumerate(results):
        c = colour(i)
        limits = [r.limit(w) for w in counts]
        if any(abs(lim - r.ideal(w)) > 1e-9 for lim, w in zip(limits, counts)):
            why = "one GIL" if r.worker_type == "thread" else \
                f"{r.cores} CPU{'s' * (r.cores != 1)}"
            ax.plot(counts, limits, color=c, linestyle=":", linewidth=1.8,
                    label=f"limit, {r.kind}-bound on {r.worker_type} workers ({why})")
        ws = r.workers
        ax.plot(ws, [r.throughput[w] for w in ws], color=c, marker=MARKERS[i % len(MARKERS)],
                markersize=7, linewidth=2,
                label=f"measured: {r.kind}-bound, {r.worker_type} workers")
    # Percent labels: at each W the higher point is labelled above, the lower one below,
    # so two results measured at the same W never write over each other.
    for w in counts:
        here = sorted((r.throughput[w], i, r) for i, r in enumerate(results) if w in r.throughput)
        for rank, (tp, i, r) in enumerate(here):
            up = rank == len(here) - 1
            ax.annotate(f"{r.efficiency[w]:.0%}", (w, tp), xytext=(0, 8 if up else -14),
                        textcoords="offset points", ha="center", fontsize=8.5,
                        color=colour(i), fontweight="bold")
    ax.set_xticks(counts, [str(w) for w in counts])
    ax.set_xlim(0, max(counts) * 1.05 + 0.3)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("workers (W)")
    ax.set_ylabel("throughput (tasks/s)")
    what = "ideal" if all(r.kind == "io" for r in results) else "the limit (dotted, or ideal)"
    ax.set_title(f"drain rate vs workers · labels: measured as % of {what}")
    # Below the axes: inside, the legend would cover points.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8.5,
              frameon=False)
    return fig
