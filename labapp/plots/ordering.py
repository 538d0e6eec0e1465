"""Ordering plots: enqueue order vs completion order (07), and who ran what when (06)."""
from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from labapp.plots._style import figure
from labapp.plots._style import role


def plot_order(result: Any) -> Figure:
    """Scatter of enqueue index vs completion position.

    Diamonds are the tasks that changed place (:attr:`moved_tasks`: the fewest whose removal
    leaves the rest in queue order); circles kept their order relative to each other, even when
    a moved task shifted them off the diagonal.
    """
    fig, (ax,) = figure()
    order = result.completion_order
    position = {seq: pos for pos, seq in enumerate(order)}
    moved_set = set(result.moved_tasks)
    in_place = [s for s in order if s not in moved_set]
    moved = [s for s in order if s in moved_set]
    ax.plot([0, result.n - 1], [0, result.n - 1], color=role("ideal"), linestyle="--",
            linewidth=1, label="completed in enqueue order")
    ax.scatter(in_place, [position[s] for s in in_place], color=role("queued"), s=36,
               marker="o", label="kept their order", zorder=3)
    ax.scatter(moved, [position[s] for s in moved], color=role("inline"), s=44,
               marker="D", label=f"moved ({len(moved)})", zorder=3)
    if result.retried is not None and result.retried in position:
        ax.annotate("retried", (result.retried, position[result.retried]),
                    xytext=(8, -12), textcoords="offset points", fontsize=9)
    ax.set_xlabel("enqueue index (0 = enqueued first)")
    ax.set_ylabel("completion position (0 = completed first)")
    ax.set_title(f"{result.n} tasks on {result.workers} worker{'s' * (result.workers != 1)}: "
                 f"{result.inversions} inversions of {result.pairs} pairs")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(-0.6, result.n - 0.4)
    ax.set_ylim(-0.6, result.n - 0.4)
    ax.legend(loc="upper left", fontsize=9)
    return fig


def _bars(result: Any) -> tuple[list[tuple[str, float, float, str, str]], float, str]:
    """(worker, start, end, outcome, label) per attempt, the time origin and a title."""
    if hasattr(result, "attempts"):  # an OrderingResult
        origin = min([t for t in result.enqueued if t == t] or [a.start for a in result.attempts])
        bars = [(a.worker, a.start, a.end, a.outcome, str(a.seq)) for a in result.attempts]
        title = (f"who ran what: {result.n} tasks on {result.workers} "
                 f"worker{'s' * (result.workers != 1)}")
    else:  # a ScalingRun
        origin = min(s.enqueued for s in result.spans)
        bars = [(s.worker, s.start, s.end, "complete", "") for s in result.spans]
        title = f"who ran what: {len(result.spans)} tasks on {result.workers} workers"
    return bars, origin, title


def plot_gantt(result: Any) -> Figure:
    """One row per worker, one bar per task attempt from ``executing`` to its end (seconds).

    Takes an ordering result (bars labelled with enqueue index, failed attempts hatched)
    or one run of a scaling result (``result.runs[i]``).
    """
    bars, origin, title = _bars(result)
    workers = sorted({b[0] for b in bars}, key=lambda w: (len(w), w))
    fig, (ax,) = figure(height=max(2.5, min(6.0, 1.2 + 0.45 * len(workers))))
    row = {w: i for i, w in enumerate(workers)}
    span = max((e for _, _, e, _, _ in bars if e == e), default=origin + 1) - origin
    thin = span * 0.012  # a 1 ms attempt would be invisible: draw it at least this wide
    for worker, start, end, outcome, label in bars:
        if end != end:  # never ended (worker lost): draw to the right edge
            end = origin + span
        face = role("queued") if outcome == "complete" else role(outcome)
        width = max(end - start, thin)
        ax.broken_barh([(start - origin, width)], (row[worker] - 0.38, 0.76),
                       facecolors=face, edgecolors="white", linewidth=1,
                       hatch="xx" if outcome == "error" else None)
        if not label:
            continue
        if end - start > span * 0.025:
            ax.text(start - origin + width / 2, row[worker], label, ha="center", va="center",
                    fontsize=8, color="white" if outcome == "complete" else "black")
        else:  # too narrow to hold its label: put it just above the bar
            ax.text(start - origin + width / 2, row[worker] - 0.4, label, ha="center",
                    va="bottom", fontsize=8)
    ax.set_yticks(range(len(workers)), workers)
    ax.set_ylim(len(workers) - 0.5, -0.75)  # top row first, with room for labels above bars
    ax.set_xlim(0, span * 1.02 if span > 0 else 1)
    ax.set_xlabel("time since the first task was enqueued (s)")
    ax.set_title(title)
    outcomes = sorted({b[3] for b in bars} - {"complete"})
    if outcomes:
        handles = [Patch(facecolor=role(o), hatch="xx" if o == "error" else None,
                         label={"error": "failed attempt", "lost": "never finished"}[o])
                   for o in outcomes]
        # Above the axes, right: inside, it would cover the last bars (where retries end up).
        ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=9,
                  frameon=False, borderaxespad=0.2)
    ax.grid(False, axis="y")
    return fig


def order_summary(result: Any) -> str:
    """Enqueue, start and completion order side by side, as text."""
    width = max(2, int(math.log10(max(result.n, 1))) + 2)
    fmt = lambda seq: " ".join(f"{s:>{width}}" for s in seq)  # noqa: E731 - tiny local helper
    return "\n".join([f"enqueued:  {fmt(range(result.n))}",
                      f"started:   {fmt(result.start_order)}",
                      f"completed: {fmt(result.completion_order)}"])
