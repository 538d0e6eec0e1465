"""Survival timeline (03, 07): the Flask app's answers and each worker's tasks, around kills and stops."""
from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from labapp.plots._style import colour
from labapp.plots._style import figure
from labapp.plots._style import role

logger = logging.getLogger(__name__)


def plot_survival(probes: Sequence[tuple[float, float | None, Any]], events: Sequence[Any],
                  marks: Mapping[str, float] | None = None) -> Figure:
    """Top row: each ``/api/hello`` probe (answered or not); below: one row per worker process.

    :param probes: ``(time.time() sent, milliseconds or None when nobody answered, pid or
        error name)`` per request to the Flask app.
    :param events: task events (``lab.events(...)``); each ``executing`` → ``complete`` becomes
        a bar on its worker's row, an ``executing`` that never completed an ✕ (lost).
    :param marks: ``{label: time.time()}`` moments to mark, e.g. ``{"worker-1 killed": t}``.
    """
    marks = dict(marks or {})
    times = [p[0] for p in probes] + [e.time for e in events] + list(marks.values())
    if not times:
        raise ValueError("plot_survival needs probes, events or marks to draw")
    origin = min(times)
    started: dict[str, Any] = {}
    spans: list[tuple[tuple[str, int], float, float]] = []
    for e in sorted(events, key=lambda e: e.time):
        if e.kind == "executing":
            started[e.task_id] = e
        elif e.kind in ("complete", "error") and e.task_id in started:
            s = started.pop(e.task_id)
            spans.append(((s.worker, s.pid), s.time - origin, e.time - s.time))
    lost = [((s.worker, s.pid), s.time - origin) for s in started.values()]
    rows = sorted({w for w, _, _ in spans} | {w for w, _ in lost},
                  key=lambda wp: (min([t for w, t, _ in spans if w == wp]
                                      + [t for w, t in lost if w == wp]), wp))
    fig, (ax,) = figure(height=max(2.8, 1.6 + 0.45 * (len(rows) + 1)))
    y_of = {wp: i + 1 for i, wp in enumerate(rows)}
    for i, wp in enumerate(rows):
        mine = [(t, d) for w, t, d in spans if w == wp]
        if mine:
            ax.broken_barh(mine, (y_of[wp] - 0.3, 0.6), facecolor=colour(i % 6),
                           edgecolor="white", linewidth=0.8)
    mark_times = sorted(t - origin for t in marks.values())
    for wp, t in lost:
        # It ran until something happened to its worker: the first mark after it started.
        end = next((m for m in mark_times if m > t), t)
        if end > t:
            ax.broken_barh([(t, end - t)], (y_of[wp] - 0.3, 0.6), facecolor="white",
                           edgecolor=role("lost"), hatch="///", linewidth=0.8)
        ax.plot(end, y_of[wp], linestyle="none", marker="X", markersize=11,
                color=role("lost"), zorder=3)
    ok = [(p[0] - origin, p[1]) for p in probes if p[1] is not None]
    failed = [p[0] - origin for p in probes if p[1] is None]
    ax.plot([t for t, _ in ok], [0] * len(ok), linestyle="none", marker="o", markersize=5,
            color=role("done"))
    ax.plot(failed, [0] * len(failed), linestyle="none", marker="x", markersize=7,
            markeredgewidth=2, color=role("error"))
    right = max(times) - origin
    for label, t in marks.items():
        ax.axvline(t - origin, color=role("ideal"), linestyle=":", linewidth=1.5)
        ax.text(t - origin, -0.75, f" {label}", ha="left", va="center", fontsize=8.5,
                color="#444444")
    web_pids = list(dict.fromkeys(p[2] for p in probes if p[1] is not None))
    web_label = "Flask /api/hello" + (f"\n(pid {' → '.join(map(str, web_pids))})"
                                      if web_pids else "")
    ax.set_yticks([0, *y_of.values()],
                  [web_label, *(f"{w} (pid {pid})" for w, pid in rows)], fontsize=8.5)
    ax.set_ylim(len(rows) + 0.6, -1.0)
    ax.set_xlim(-0.05, right * 1.03 + 0.1)
    ax.set_xlabel("seconds")
    ax.set_title("who kept working: the Flask app's answers and each worker's tasks")
    handles = [Line2D([], [], marker="o", color=role("done"), linestyle="none",
                      label="Flask answered"),
               Line2D([], [], marker="x", color=role("error"), markeredgewidth=2,
                      linestyle="none", label="no answer"),
               Patch(facecolor="#999999", label="task ran (one colour per worker)")]
    if lost:
        handles.append(Line2D([], [], marker="X", color=role("lost"), linestyle="none",
                              label="task lost with its worker"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4,
              fontsize=8.5, frameon=False)
    ax.grid(False, axis="y")
    return fig
