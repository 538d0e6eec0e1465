"""Tools plot (04): Huey, RQ and Celery side by side — startup, throughput, enqueue latency, setup."""
from __future__ import annotations

import logging
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from labapp.plots._style import colour
from labapp.plots._style import figure

logger = logging.getLogger(__name__)


def plot_tools(result: Any) -> Figure:
    """Four panels of bars, one bar (or pair) per tool; throughput on a log scale."""
    fig, axes = figure(4, width_ratios=[1, 1.6, 1, 1])
    names = list(result.runs)
    runs = [result.runs[t] for t in names]
    colours = [colour(i) for i in range(len(names))]
    x = list(range(len(names)))

    def bars(ax: Any, values: list[float], fmt: str, title: str, ylabel: str) -> None:
        drawn = ax.bar(x, values, color=colours)
        for bar, v in zip(drawn, values):
            ax.annotate(fmt.format(v), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
        ax.set_xticks(x, names)
        ax.set_ylim(0, max(values) * 1.2 if values and max(values) > 0 else 1)
        ax.set_title(title)
        ax.set_ylabel(ylabel)

    bars(axes[0], [r.startup_s for r in runs], "{:.2f}", "worker startup", "seconds")
    ax = axes[1]
    width = 0.4 if result.sleep_tasks else 0.7
    noop = ax.bar([i - (width / 2 if result.sleep_tasks else 0) for i in x],
                  [r.noop_throughput_per_s for r in runs], width, color=colours)
    for bar, r in zip(noop, runs):
        ax.annotate(f"{r.noop_throughput_per_s:,.0f}", (bar.get_x() + width / 2,
                    bar.get_height()), xytext=(0, 2), textcoords="offset points",
                    ha="center", fontsize=8)
    handles = [Patch(facecolor="#888888", label="no-op")]
    if result.sleep_tasks:
        ideal = 1 / result.sleep_seconds if result.sleep_seconds else None
        ax.bar([i + width / 2 for i in x], [r.sleep_throughput_per_s for r in runs], width,
               color=colours, hatch="//", edgecolor="white")
        handles.append(Patch(facecolor="#888888", hatch="//", edgecolor="white",
                             label=f"sleep({result.sleep_seconds:g} s)"))
        if ideal:
            ax.axhline(ideal, color="#7f7f7f", linestyle="--", linewidth=1)
            handles.append(Line2D([], [], color="#7f7f7f", linestyle="--",
                                  label=f"ideal sleep ({ideal:g}/s)"))
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set_title("throughput (1 worker)")
    ax.set_ylabel("tasks/s (log scale)")
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    bars(axes[2], [r.enqueue_p50_ms for r in runs], "{:.2f}", "enqueue p50", "milliseconds")
    bars(axes[3], [r.setup_lines for r in runs], "{:.0f}", "setup", "lines of code")
    fig.suptitle(f"same server, same run: {result.n} no-ops"
                 + (f", {result.sleep_tasks} sleeps" if result.sleep_tasks else "")
                 + f" (RQ worker: {result.rq_worker})", fontsize=11)
    return fig
