"""Retry timeline (05): each strategy's attempts over time, failures and the waits between them."""
from __future__ import annotations

import logging
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from labapp.plots._style import figure
from labapp.plots._style import role

logger = logging.getLogger(__name__)

def plot_retries(result: Any) -> Figure:
    """One row per strategy: ✕ for a failed attempt, ● for success, waits drawn and labelled (s)."""
    runs = list(result.runs)
    fig, (ax,) = figure(height=max(2.6, 1.4 + 0.8 * len(runs)))
    origin = min(r.enqueued for r in runs if r.enqueued == r.enqueued)
    right = 0.0
    for y, run in enumerate(runs):
        c = role(run.name, y)
        for a, gap in zip(run.attempts, run.gaps):  # a wait follows every failed attempt
            x0, x1 = a.end - origin, a.end + gap - origin
            ax.annotate("", xy=(x1, y), xytext=(x0, y),
                        arrowprops={"arrowstyle": "->", "color": c, "linewidth": 1.5})
            ax.text((x0 + x1) / 2, y - 0.18, f"waits {gap:.1f} s", ha="center", va="bottom",
                    fontsize=8.5, color="black")
        for a in run.attempts:
            failed = a.outcome != "complete"
            ax.plot(a.start - origin, y, marker="X" if failed else "o", markersize=11,
                    color=role("error") if failed else role("complete"),
                    markeredgecolor="black", markeredgewidth=0.6, linestyle="none", zorder=3)
            right = max(right, a.end - origin)
        last = run.attempts[-1].end - origin if run.attempts else 0.0
        ax.text(last, y + 0.22, f"  {run.final_state}", ha="left", va="top", fontsize=9,
                color=role("error") if run.final_state != "complete" else role("complete"))
    ax.set_yticks(range(len(runs)), [_label(r) for r in runs])
    ax.set_ylim(len(runs) - 0.5, -0.6)
    ax.set_xlim(-0.2, max(1.0, right) * 1.08 + 0.3)
    ax.set_xlabel("time since the task was enqueued (s)")
    ax.set_title(f"a task that fails {result.fail_times}x · delays are rounded up to the "
                 f"scheduler's {result.tick:g} s tick")
    legend = [Line2D([], [], marker="X", color=role("error"), markeredgecolor="black",
                     linestyle="none", markersize=9, label="attempt failed"),
              Line2D([], [], marker="o", color=role("complete"), markeredgecolor="black",
                     linestyle="none", markersize=9, label="attempt succeeded")]
    ax.legend(handles=legend, loc="upper right", fontsize=9)
    ax.grid(False, axis="y")
    return fig


def _label(run: Any) -> str:
    if run.name == "none":
        return "no retries"
    if run.name == "fixed":
        return f"fixed\n{run.retry_delay:g} s"
    if run.name == "backoff":
        return f"backoff\n{run.retry_delay:g} s × {run.retry_backoff:g}"
    return run.name
