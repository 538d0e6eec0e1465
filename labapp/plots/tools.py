"""Tools plots (04): Huey, RQ and Celery side by side; Flask's after-response hooks."""
from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from labapp.plots._style import colour
from labapp.plots._style import figure
from labapp.plots._style import role


def _bars(ax: Any, x: list[int], names: list[str], values: list[float], colours: list[str],
          fmt: str, title: str, ylabel: str) -> None:
    drawn = ax.bar(x, values, color=colours)
    for bar, v in zip(drawn, values):
        ax.annotate(fmt.format(v), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    finite = [v for v in values if math.isfinite(v)]
    ax.set_xticks(x, names)
    ax.set_ylim(0, max(finite) * 1.25 if finite and max(finite) > 0 else 1)
    ax.set_title(title)
    ax.set_ylabel(ylabel)


def plot_tools(result: Any) -> Figure:
    """Four panels, one bar (or pair) per tool; throughput on a log scale with the bare figure."""
    fig, axes = figure(4, width_ratios=[1, 1.7, 1, 1])
    names = list(result.runs)
    runs = [result.runs[t] for t in names]
    colours = [colour(i) for i in range(len(names))]
    x = list(range(len(names)))
    _bars(axes[0], x, names, [r.startup_s for r in runs], colours, "{:.2f}", "worker startup",
          "seconds")
    ax = axes[1]
    width = 0.4 if result.sleep_tasks else 0.7
    shift = width / 2 if result.sleep_tasks else 0
    noop = ax.bar([i - shift for i in x], [r.noop_throughput_per_s for r in runs], width,
                  color=colours)
    for bar, r in zip(noop, runs):  # the label goes above the bar and its plain-script mark
        top = max(v for v in (bar.get_height(), r.bare_throughput_per_s) if math.isfinite(v))
        ax.annotate(f"{r.noop_throughput_per_s:,.0f}", (bar.get_x() + width / 2, top),
                    xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    handles: list[Any] = [Patch(facecolor="#888888", label="no-op, in the lab")]
    bare = [(i - shift, r.bare_throughput_per_s) for i, r in zip(x, runs) if r.bare]
    if bare:
        ax.scatter([p for p, _ in bare], [v for _, v in bare], marker="_", s=500, linewidths=2.5,
                   color="black", zorder=3)
        handles.append(Line2D([], [], color="black", marker="_", linestyle="", markersize=14,
                              markeredgewidth=2.5, label="no-op, plain script"))
    if result.sleep_tasks:
        ax.bar([i + shift for i in x], [r.sleep_throughput_per_s for r in runs], width,
               color=colours, hatch="//", edgecolor="white")
        handles.append(Patch(facecolor="#888888", hatch="//", edgecolor="white",
                             label=f"sleep({result.sleep_seconds:g} s)"))
        if result.sleep_seconds:
            ideal = 1 / result.sleep_seconds
            ax.axhline(ideal, color=role("ideal"), linestyle="--", linewidth=1)
            handles.append(Line2D([], [], color=role("ideal"), linestyle="--",
                                  label=f"ideal sleep ({ideal:g}/s)"))
    ax.set_yscale("log")
    top = max([r.noop_throughput_per_s for r in runs] + [v for _, v in bare] + [1.0])
    ax.set_ylim(top=top * 30)  # room above the bars for the legend
    ax.set_xticks(x, names)
    ax.set_title("throughput (1 worker)")
    ax.set_ylabel("tasks/s (log scale)")
    ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.9)
    _bars(axes[2], x, names, [r.enqueue_p50_ms for r in runs], colours, "{:.2f}", "enqueue p50",
          "milliseconds")
    _bars(axes[3], x, names, [r.setup_lines for r in runs], colours, "{:.0f}", "setup",
          "lines of code")
    rq = {"fork": "RQ: fork per job", "simple": "RQ: SimpleWorker"}[result.rq_worker]
    fig.suptitle(f"same server, same run, {result.cpus} CPU(s) · {rq}", fontsize=11)
    return fig


def plot_after_response(result: Any) -> Figure:
    """Per mechanism: how long the client waited, and how long the next request waited."""
    fig, (ax,) = figure(1, height=2.6)
    names = list(result.hooks)
    hooks = [result.hooks[n] for n in names]
    y = list(range(len(names)))
    h = 0.38
    client = ax.barh([i - h / 2 for i in y], [k.client_waited_s for k in hooks], h,
                     color=role("inline"), label="the client waited for its answer")
    nxt = ax.barh([i + h / 2 for i in y], [k.next_s for k in hooks], h,
                  color=role("queued"), label="the next request waited for a thread")
    for bars in (client, nxt):
        for bar in bars:
            ax.annotate(f"{bar.get_width():.2f} s", (bar.get_width(), bar.get_y() + h / 2),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    seconds = max((k.seconds for k in hooks), default=1.0)
    ax.axvline(seconds, color=role("ideal"), linestyle="--", linewidth=1)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, seconds * 1.6)
    ax.set_xlabel(f"seconds (each request left {seconds:g} s of work; dashed line)")
    ax.set_title(f"who waits for the after-response work? waitress, {result.threads} threads")
    ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
    return fig
