"""Worker-loss timeline (08): each task's wait and run, around a SIGKILL and a graceful restart."""
from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from labapp.plots._style import FONT_SIZE
from labapp.plots._style import HEIGHT
from labapp.plots._style import OKABE_ITO
from labapp.plots._style import WIDTH
from labapp.plots._style import role
from labapp.plots._style import tidy

WAIT_COLOUR = "#aaaaaa"
LABEL_BOX = {"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"}


def plot_worker_loss(result: Any) -> Figure:
    """Two timelines (SIGKILL above, graceful restart below): one row per task, in enqueue order."""
    fig = Figure(figsize=(WIDTH, HEIGHT * 1.25), layout="constrained")
    axes = fig.subplots(2, 1)
    kill_what = (f"SIGKILL {result.kill.killed_worker}" if result.worker_type == "process"
                 else "SIGKILL consumer (all threads)")
    for ax, phase, action, colour in (
            (axes[0], result.kill, kill_what, role("error")),
            (axes[1], result.graceful, "graceful restart (SIGINT)", OKABE_ITO["orange"])):
        tidy(ax)
        _timeline(ax, phase, action, colour, result.seconds)
    axes[0].set_title(f"worker killed mid-task: {len(result.kill.lost)} of "
                      f"{len(result.kill.task_ids)} tasks lost")
    axes[1].set_title(f"graceful restart with tasks running and queued: "
                      f"{len(result.graceful.lost)} lost")
    axes[1].set_xlabel("seconds since the first enqueue")
    handles = [Line2D([], [], color=WAIT_COLOUR, linewidth=2, label="waiting in the queue"),
               Patch(color=role("queued"), label="running → complete"),
               Patch(facecolor="white", edgecolor=role("lost"), hatch="xx",
                     label="running when killed: never completes")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig


def _timeline(ax: Any, phase: Any, action: str, colour: str, seconds: float) -> None:
    t0 = phase.start
    lost = set(phase.lost)
    for row, task_id in enumerate(phase.task_ids):
        evs = [e for e in phase.events if e.task_id == task_id]
        times = {}
        for e in evs:
            times.setdefault(e.kind, e.time - t0)
        queued = times.get("enqueued", 0.0)
        started = times.get("executing")
        if started is None:  # never ran: it waited until the end
            ax.plot([queued, phase.end - t0], [row, row], color=WAIT_COLOUR, linewidth=2)
            continue
        ax.plot([queued, started], [row, row], color=WAIT_COLOUR, linewidth=2)
        if task_id in lost:
            ax.barh(row, phase.end - t0 - started, left=started, height=0.6, color="white",
                    edgecolor="#666666", hatch="xx")
            ax.annotate("never completes", (phase.end - t0, row), xytext=(-4, 0),
                        textcoords="offset points", ha="right", va="center",
                        fontsize=FONT_SIZE - 2, color=role("lost"), bbox=LABEL_BOX)
        else:
            # A stored result without a "complete" event: it ran its full length.
            ended = times.get("complete", started + seconds)
            ax.barh(row, ended - started, left=started, height=0.6, color=role("queued"))
            if "complete" not in times:
                ax.annotate("complete (event not recorded)", (ended, row), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=FONT_SIZE - 3)
        worker = next((e.worker for e in evs if e.kind == "executing"), "")
        ax.annotate(worker, (started, row), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=FONT_SIZE - 3,
                    color="white" if task_id not in lost else role("lost"),
                    bbox=LABEL_BOX if task_id in lost else None)
    at = phase.action_time - t0
    ax.axvline(at, color=colour, linestyle="--", linewidth=2)
    # the label sits in a spare strip under the last task, clear of the bars
    ax.annotate(action, (at, len(phase.task_ids) + 0.2), xytext=(4, 0),
                textcoords="offset points", color=colour, fontsize=FONT_SIZE - 1,
                va="center")
    ax.set_yticks(range(len(phase.task_ids)), [f"task {i + 1}" for i in
                                                range(len(phase.task_ids))])
    ax.set_ylim(len(phase.task_ids) + 0.5, -0.6)
    ax.set_xlim(left=min(0.0, at) - 0.02, right=phase.end - t0 + 0.05)
