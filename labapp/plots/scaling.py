"""Scaling plot (06): tasks per second vs number of workers, against the ideal W/d line."""
from __future__ import annotations

import logging
from typing import Any

from matplotlib.figure import Figure

from labapp.plots._style import colour
from labapp.plots._style import figure
from labapp.plots._style import role

logger = logging.getLogger(__name__)

MARKERS = ["o", "s", "^", "D"]


def plot_scaling(*results: Any) -> Figure:
    """Measured throughput per worker count for one or more scaling results, with ideal lines.

    Pass several results (e.g. CPU-bound on threads and on processes) to compare them on one
    chart. Dashed grey: the ideal W/d. Dotted: what the hardware allows when it is lower
    (one GIL for CPU-bound threads, the core count for CPU-bound processes).
    """
    if not results:
        raise ValueError("plot_scaling needs at least one scaling result")
    fig, (ax,) = figure()
    counts = sorted({w for r in results for w in r.workers})
    # d is what each result's ideal uses: the set duration for I/O, the measured single-task
    # time for CPU-bound tasks; one dashed line per distinct d (to the millisecond).
    ideals: dict[int, tuple[float, str]] = {}
    for r in results:
        d = 1 / r.ideal(1)
        ideals.setdefault(round(d * 1e3), (d, "" if r.kind == "io" else ", one task alone"))
    for ms_, (d, how) in sorted(ideals.items()):
        ax.plot(counts, [w / d for w in counts], color=role("ideal"), linestyle="--",
                linewidth=1.5, label=f"ideal W/d (d = {ms_:g} ms{how})")
    for i, r in enumerate(results):
        c = colour(i)
        limits = [r.limit(w) for w in counts]
        if any(abs(lim - r.ideal(w)) > 1e-9 for lim, w in zip(limits, counts)):
            why = "one GIL" if r.worker_type == "thread" else f"{r.cores} cores"
            ax.plot(counts, limits, color=c, linestyle=":", linewidth=1.5,
                    label=f"limit for {r.kind}-bound on {r.worker_type} workers ({why})")
        ws = r.workers
        ax.plot(ws, [r.throughput[w] for w in ws], color=c, marker=MARKERS[i % len(MARKERS)],
                markersize=7, linewidth=2,
                label=f"measured: {r.kind}-bound, {r.worker_type} workers")
        for w in ws:
            # Alternate label sides so two results measured at the same W do not overlap.
            ax.annotate(f"{r.efficiency[w]:.0%}", (w, r.throughput[w]),
                        xytext=(6, -12 if i % 2 == 0 else 6),
                        textcoords="offset points", fontsize=8, color=c)
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(w) for w in counts])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("workers (W)")
    ax.set_ylabel("throughput (tasks/s)")
    ax.set_title("drain rate vs workers · labels: % of ideal")
    ax.legend(loc="upper left", fontsize=8.5)
    return fig
