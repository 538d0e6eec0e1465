"""Latency plots: request latency CDFs per mode (02, 07, 09) and the cost of a tiny job per hand-off (09).

Legends sit below the axes, so they never cover the slow curves at the right. The colours
come from :data:`labapp.plots._style.ROLE`; :func:`latency_key` names them in words, so
prose that mentions a colour can print it instead of guessing.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from labapp.plots._style import colour_word
from labapp.plots._style import figure
from labapp.plots._style import role
from labapp.units import duration

LABELS = {"hello": "empty request (/api/hello)", "inline": "inline (work in the request)",
          "queued": "queued (202 + task id)"}
DONE_LABEL = "queued task done (enqueue → complete)"
#: line style per kind of line; the words are used by latency_key
STYLES = {"request": ("-", "solid"), "done": ("--", "dashed"), "probe": (":", "dotted")}
LEGEND_BELOW = dict(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8.5,
                    frameon=False)


def _cdf(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    xs = np.sort(np.asarray(values, dtype=float))
    return xs, np.arange(1, len(xs) + 1) / len(xs)


def _lines(result: Any) -> list[tuple[str, str, str, str, list[float]]]:
    """(role, style kind, label, legend text, values) of every line plot_latency draws."""
    lines = []
    for mode in result.modes:
        values = result.latencies(mode)
        if values:
            lines.append((mode, "request", LABELS.get(mode, mode),
                          f"p50 {duration(result.p50(mode))}, "
                          f"p95 {duration(result.p95(mode))}", values))
    for mode in getattr(result, "probes", []):
        values = result.probe_latencies(mode)
        if values:
            lines.append((mode, "probe", f"empty request while the {mode} requests ran",
                          f"p50 {duration(float(np.median(values)))}", values))
    done = result.completion_times
    if done:
        lines.append(("done", "done", DONE_LABEL, f"p50 {duration(float(np.median(done)))}", done))
    return lines


def latency_key(result: Any) -> list[str]:
    """Each line of :func:`plot_latency` in words: ``"red-orange, solid: inline (…)"``."""
    return [f"{colour_word(r)}, {STYLES[kind][1]}: {label}"
            for r, kind, label, _, _ in _lines(result)]


def plot_latency(result: Any) -> Figure:
    """CDF of client-side request latency per mode, plus when the queued tasks were done.

    The x axis is logarithmic (ms): a queued request answers in milliseconds while the inline
    one waits for the work and for a free request thread. Dotted lines (runs with
    ``probe=True``) are empty requests sent while the other clients' requests ran.
    """
    fig, (ax,) = figure(height=4.6)
    for r, kind, label, numbers, values in _lines(result):
        xs, ys = _cdf(values)
        ax.step(xs * 1e3, ys, where="post", color=role(r), linewidth=2,
                linestyle=STYLES[kind][0], label=f"{label}: {numbers}")
    ax.axhline(0.5, color="#999999", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("latency seen by the client (ms, log scale)")
    ax.set_ylabel("fraction of requests ≤ x")
    ax.set_title(f"task of {result.duration:g} s · {result.clients} concurrent clients · "
                 f"{result.web_threads} web threads · {result.workers} workers")
    ax.legend(**LEGEND_BELOW)
    return fig


def latency_table(result: Any) -> str:
    """The p50/p95/max of each mode as a small text table (for ``print``)."""
    rows = result.table()
    width = max(len(r["what"]) for r in rows)
    lines = [f"{'':{width}}  {'n':>5}  {'p50':>9}  {'p95':>9}  {'max':>9}"]
    for r in rows:
        lines.append(f"{r['what']:{width}}  {r['n']:>5}  {duration(r['p50_ms'] / 1e3):>9}  "
                     f"{duration(r['p95_ms'] / 1e3):>9}  {duration(r['max_ms'] / 1e3):>9}")
    return "\n".join(lines)


def plot_overhead(result: Any) -> Figure:
    """Bars: median time the caller is blocked and until a tiny job is done, per hand-off.

    Whiskers span the 5th to 95th percentile of the runs.
    """
    fig, (ax,) = figure(height=4.4)
    modes = list(result.samples)
    x = np.arange(len(modes))
    width = 0.38
    for offset, getter, hatch in ((-width / 2, result.blocked, "//"), (width / 2, result.done, "")):
        meds, lo, hi = [], [], []
        for m in modes:
            v = np.asarray(getter(m)) * 1e3
            p5, p50, p95 = np.percentile(v, [5, 50, 95])
            meds.append(p50)
            lo.append(p50 - p5)
            hi.append(p95 - p50)
        bars = ax.bar(x + offset, meds, width, yerr=[lo, hi], capsize=4,
                      color=[role(m) for m in modes], hatch=hatch, edgecolor="white",
                      alpha=0.55 if hatch else 1.0)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in meds], padding=2, fontsize=8)
    ax.set_xticks(x, [{"inline": "inline call", "thread": "thread pool",
                       "queue": "task queue"}.get(m, m) for m in modes])
    ax.set_ylabel("time (ms), median; whiskers p5–p95")
    ax.set_title(f"a {result.task_seconds * 1e3:g} ms job, {len(result.done(modes[0]))} runs "
                 "per hand-off")
    # Neutral legend swatches: the bar colours belong to the hand-offs, the hatch to the measure.
    ax.legend(handles=[Patch(facecolor="#bbbbbb", hatch="//", edgecolor="white",
                             label="caller blocked (can do nothing else)"),
                       Patch(facecolor="#555555", label="until the job is done")],
              **{**LEGEND_BELOW, "bbox_to_anchor": (0.5, -0.12)})
    ax.grid(False, axis="x")
    return fig
