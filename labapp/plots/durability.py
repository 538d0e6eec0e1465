"""Durability plot (08): tasks surviving a broker crash, and enqueue throughput, per broker mode.

One row per broker mode. A mode that lost its queue is drawn hollow and hatched in *both*
panels, so a fast bar that kept nothing never looks like the winner.
"""
from __future__ import annotations

import textwrap
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from labapp.plots._style import FONT_SIZE
from labapp.plots._style import HEIGHT
from labapp.plots._style import OKABE_ITO
from labapp.plots._style import figure
from labapp.plots._style import role

LABELS = {
    "memory": "valkey in memory",
    "aof_everysec": "valkey AOF everysec",
    "aof_always": "valkey AOF always",
    "rabbitmq_durable": "RabbitMQ durable queue,\npersistent messages",
    "rabbitmq_durable_queue": "RabbitMQ durable queue,\ntransient messages",
    "rabbitmq_transient": "RabbitMQ transient queue",
}
KEPT, PARTLY, LOST = role("done"), OKABE_ITO["orange"], role("error")


def _colour(run: Any) -> str:
    if run.kept_all:
        return KEPT
    return LOST if run.survivors == 0 else PARTLY


def _bars(ax: Any, y: list[int], values: list[float], runs: list[Any]) -> Any:
    kept = [r.kept_all for r in runs]
    return ax.barh(y, values, height=0.6,
                   color=[_colour(r) if k else "white" for r, k in zip(runs, kept)],
                   edgecolor=[_colour(r) for r in runs], linewidth=1.5,
                   hatch=["" if k else "///" for k in kept])


def plot_durability(result: Any) -> Figure:
    """Left: tasks still queued after the crash (of those queued); right: enqueue tasks/s."""
    runs = list(result.runs)
    fig, (left, right) = figure(2, height=max(HEIGHT, 0.55 * len(runs) + 1.6))
    y = list(range(len(runs)))
    _bars(left, y, [r.survivors for r in runs], runs)
    top = max([r.queued_before for r in runs] + [1])
    for row, r in zip(y, runs):
        left.annotate(f"{r.survivors}/{r.queued_before}", (r.survivors, row), xytext=(4, 0),
                      textcoords="offset points", va="center", fontsize=FONT_SIZE - 1)
    left.set_xlim(0, top * 1.3)
    left.set_yticks(y, [LABELS.get(r.key, r.label) for r in runs], fontsize=FONT_SIZE - 1)
    left.set_xlabel("tasks still queued after SIGKILL + restart")
    left.set_title(f"survivors of {result.n} queued tasks")
    rates = [r.throughput_per_s for r in runs]
    _bars(right, y, rates, runs)
    for row, r in zip(y, runs):
        right.annotate(f"{r.throughput_per_s:,.0f}/s", (r.throughput_per_s, row), xytext=(4, 0),
                       textcoords="offset points", va="center", fontsize=FONT_SIZE - 1)
    right.set_xlim(0, max(rates + [1]) * 1.35)
    right.set_yticks(y, [""] * len(y))
    right.set_xlabel("enqueue throughput (tasks/s)")
    right.set_title("what keeping them costs")
    for ax in (left, right):
        ax.set_ylim(len(runs) - 0.5, -0.5)
        brokers = [r.broker for r in runs]
        for row in range(1, len(runs)):
            if brokers[row] != brokers[row - 1]:
                ax.axhline(row - 0.5, color="#999999", linewidth=0.8)
    handles = [Patch(color=KEPT, label="kept every task"),
               Patch(facecolor="white", edgecolor=LOST, hatch="///", label="lost them")]
    if any(not r.kept_all and r.survivors for r in runs):
        handles.insert(1, Patch(facecolor="white", edgecolor=PARTLY, hatch="///",
                                label="lost some"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=8,
               frameon=False)
    note = ("valkey is reached over a unix socket, RabbitMQ over TCP with publisher confirms: "
            "compare speeds within one broker, not across brokers.")
    if not result.has_rabbitmq:
        note = f"RabbitMQ: {result.rabbitmq_note}"
    fig.supxlabel("\n".join(textwrap.wrap(note, 115)), fontsize=8, color="#444444")
    return fig
