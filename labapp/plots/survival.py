"""Survival timeline (03, 07): the Flask app's answers and each worker's tasks, around kills and stops."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from labapp.plots._style import OKABE_ITO
from labapp.plots._style import colour_word
from labapp.plots._style import figure
from labapp.plots._style import role


#: marker, role, words for the legend and for prose (see survival_key)
MARKERS = {"answered": ("o", "done", "dot", "Flask answered"),
           "unanswered": ("x", "error", "cross", "no answer"),
           "lost": ("X", "lost", "X", "task lost with its worker")}


#: worker rows: none of the colours the markers use (green, red-orange, black)
WORKER_COLOURS = [OKABE_ITO[c] for c in ("blue", "orange", "sky", "purple", "yellow")]


def survival_key() -> list[str]:
    """The markers of :func:`plot_survival` in words, e.g. ``"green dot: Flask answered"``."""
    return [f"{colour_word(r)} {shape}: {label}" for _, r, shape, label in MARKERS.values()]


def plot_survival(probes: Any, events: Sequence[Any] = (),
                  marks: Mapping[str, float] | None = None) -> Figure:
    """Top row: each ``/api/hello`` probe (answered or not); below: one row per worker process.

    Pass an experiment result of :mod:`labapp.experiments.survival` (``worker_killed``,
    ``flask_stopped``): its probes, events and marks span only that experiment. Or:

    :param probes: ``(time.time() sent, milliseconds or None when nobody answered, pid or
        error name)`` per request to the Flask app.
    :param events: task events (``lab.events(...)``); each ``executing`` → ``complete`` becomes
        a bar on its worker's row, an ``executing`` that never completed a black X (lost).
    :param marks: ``{label: time.time()}`` moments to mark, e.g. ``{"worker-1 killed": t}``.
    """
    if hasattr(probes, "probes"):  # a survival result
        result = probes
        probes, events, marks = result.probes, result.events, result.marks
    marks = dict(marks or {})
    times = [p[0] for p in probes] + [e.time for e in events] + list(marks.values())
    if not times:
        raise ValueError("plot_survival needs probes, events or marks to draw")
    origin = min(times)
    spans, lost = _task_spans(events, origin)
    rows = sorted({w for w, _, _ in spans} | {w for w, _ in lost},
                  key=lambda wp: (min([t for w, t, _ in spans if w == wp]
                                      + [t for w, t in lost if w == wp]), wp))
    fig, (ax,) = figure(height=max(3.0, 1.9 + 0.45 * (len(rows) + 1)))
    y_of = {wp: i + 1 for i, wp in enumerate(rows)}
    _draw_workers(ax, y_of, spans, lost, sorted(t - origin for t in marks.values()))
    _draw_probes(ax, probes, origin)
    right = max(times) - origin
    _draw_marks(ax, marks, origin, right)
    web_pids = list(dict.fromkeys(p[2] for p in probes if p[1] is not None))
    web_label = "Flask /api/hello" + (f"\n(pid {' → '.join(map(str, web_pids))})"
                                      if web_pids else "")
    ax.set_yticks([0, *y_of.values()],
                  [web_label, *(f"{w} (pid {pid})" for w, pid in rows)], fontsize=8.5)
    ax.set_ylim(len(rows) + 0.6, -1.5 if len(marks) > 1 else -1.0)
    ax.set_xlim(-0.05, right * 1.03 + 0.1)
    ax.set_xlabel("seconds")
    ax.set_title("who kept working: the Flask app's answers and each worker's tasks")
    _legend(ax, bool(lost))
    ax.grid(False, axis="y")
    return fig


_Worker = tuple[str, int]  # (worker name, pid): one row of the plot


def _task_spans(events: Sequence[Any], origin: float
                ) -> tuple[list[tuple[_Worker, float, float]], list[tuple[_Worker, float]]]:
    """``(worker, start, duration)`` per finished task, ``(worker, start)`` per lost one."""
    started: dict[str, Any] = {}
    spans: list[tuple[_Worker, float, float]] = []
    for e in sorted(events, key=lambda e: e.time):
        if e.kind == "executing":
            started[e.task_id] = e
        elif e.kind in ("complete", "error") and e.task_id in started:
            s = started.pop(e.task_id)
            spans.append(((s.worker, s.pid), s.time - origin, e.time - s.time))
    return spans, [((s.worker, s.pid), s.time - origin) for s in started.values()]


def _draw_workers(ax: Any, y_of: dict[_Worker, int], spans: list[tuple[_Worker, float, float]],
                  lost: list[tuple[_Worker, float]], mark_times: list[float]) -> None:
    """A coloured bar per finished task on its worker's row; a hatched bar and an X per lost one."""
    for i, wp in enumerate(y_of):
        mine = [(t, d) for w, t, d in spans if w == wp]
        if mine:
            ax.broken_barh(mine, (y_of[wp] - 0.3, 0.6),
                           facecolor=WORKER_COLOURS[i % len(WORKER_COLOURS)],
                           edgecolor="white", linewidth=0.8)
    for wp, t in lost:
        # It ran until something happened to its worker: the first mark after it started.
        end = next((m for m in mark_times if m > t), t)
        if end > t:
            ax.broken_barh([(t, end - t)], (y_of[wp] - 0.3, 0.6), facecolor="white",
                           edgecolor=role("lost"), hatch="///", linewidth=0.8)
        ax.plot(end, y_of[wp], linestyle="none", marker=MARKERS["lost"][0], markersize=11,
                color=role("lost"), zorder=3)


def _draw_probes(ax: Any, probes: Sequence[Any], origin: float) -> None:
    """The top row: a dot per answered ``/api/hello``, a cross per unanswered one."""
    ok = [(p[0] - origin, p[1]) for p in probes if p[1] is not None]
    failed = [p[0] - origin for p in probes if p[1] is None]
    ax.plot([t for t, _ in ok], [0] * len(ok), linestyle="none",
            marker=MARKERS["answered"][0], markersize=5, color=role("done"))
    ax.plot(failed, [0] * len(failed), linestyle="none", marker=MARKERS["unanswered"][0],
            markersize=7, markeredgewidth=2, color=role("error"))


def _draw_marks(ax: Any, marks: Mapping[str, float], origin: float, right: float) -> None:
    """A dotted line and a label per mark; labels of marks close together on two levels."""
    level, last = 0, None
    for label, t in sorted(marks.items(), key=lambda kv: kv[1]):
        x = t - origin
        level = 1 - level if last is not None and x - last < 0.3 * (right + 0.1) else 0
        last = x
        ax.axvline(x, color=role("ideal"), linestyle=":", linewidth=1.5)
        ax.text(x, -0.75 - 0.5 * level, f" {label}", ha="left", va="center", fontsize=8.5,
                color="#444444")


def _legend(ax: Any, lost: bool) -> None:
    handles = [Line2D([], [], marker=MARKERS[k][0], color=role(MARKERS[k][1]), linestyle="none",
                      markeredgewidth=2 if k == "unanswered" else 1, label=MARKERS[k][3])
               for k in ("answered", "unanswered")]
    handles.append(Patch(facecolor="#999999", label="task ran (one colour per worker)"))
    if lost:
        handles.append(Line2D([], [], marker=MARKERS["lost"][0], color=role("lost"),
                              linestyle="none", label=MARKERS["lost"][3]))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              fontsize=8.5, frameon=False)
