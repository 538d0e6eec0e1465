"""Durability plot (08): tasks surviving a broker crash, and enqueue throughput, per broker mode."""
from __future__ import annotations

import logging
import textwrap
from typing import Any

from matplotlib.figure import Figure

from labapp.plots._style import OKABE_ITO
from labapp.plots._style import figure
from labapp.plots._style import role

logger = logging.getLogger(__name__)

LABELS = {
    "memory": "valkey\nin memory",
    "aof_always": "valkey\nAOF always",
    "rabbitmq_durable": "RabbitMQ\ndurable*",
    "rabbitmq_transient": "RabbitMQ\ntransient*",
}


def _survivor_colour(survivors: int, queued: int) -> str:
    if queued and survivors >= queued:
        return role("done")
    return role("error") if survivors == 0 else OKABE_ITO["orange"]


def plot_durability(result: Any) -> Figure:
    """Left: tasks still queued after the crash (of those queued); right: enqueue tasks/s."""
    fig, (left, right) = figure(2)
    runs = result.runs
    x = list(range(len(runs)))
    labels = [LABELS.get(r.key, r.label) for r in runs]
    hatches = ["//" if r.key.startswith("rabbitmq") else "" for r in runs]
    bars = left.bar(x, [r.survivors for r in runs], hatch=hatches, edgecolor="white",
                    color=[_survivor_colour(r.survivors, r.queued_before) for r in runs])
    for bar, r in zip(bars, runs):
        left.annotate(f"{r.survivors}/{r.queued_before}", (bar.get_x() + bar.get_width() / 2,
                      bar.get_height()), xytext=(0, 3), textcoords="offset points",
                      ha="center", fontsize=9)
    left.set_ylim(0, max(r.queued_before for r in runs) * 1.15 or 1)
    left.set_xticks(x, labels)
    left.set_ylabel("tasks still queued after the crash")
    left.set_title(f"survivors of {result.n} queued tasks")
    bars = right.bar(x, [r.throughput_per_s for r in runs], color=role("queued"),
                     hatch=hatches, edgecolor="white")
    for bar, r in zip(bars, runs):
        right.annotate(f"{r.throughput_per_s:,.0f}", (bar.get_x() + bar.get_width() / 2,
                       bar.get_height()), xytext=(0, 3), textcoords="offset points",
                       ha="center", fontsize=9)
    right.set_ylim(0, max(r.throughput_per_s for r in runs) * 1.15)
    right.set_xticks(x, labels)
    right.set_ylabel("enqueue throughput (tasks/s)")
    right.set_title("what keeping them costs")
    if any(r.key.startswith("rabbitmq") for r in runs):
        note = ("* RabbitMQ is shared, so it was not killed: only the producer's connection "
                "was cut. On a server crash only durable queues with persistent messages keep them.")
    else:
        note = f"RabbitMQ: {result.rabbitmq_note}"
    fig.supxlabel("\n".join(textwrap.wrap(note, 115)), fontsize=8, color="#444444")
    return fig
