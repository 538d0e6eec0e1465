"""Latency plots: request latency CDFs per mode (02) and the cost of a tiny job per hand-off (09)."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from labapp.plots._style import figure
from labapp.plots._style import ms
from labapp.plots._style import role

logger = logging.getLogger(__name__)

LABELS = {"hello": "empty request (/api/hello)", "inline": "inline (work in the request)",
          "queued": "queued (202 + task id)"}


def _cdf(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    xs = np.sort(np.asarray(values, dtype=float))
    return xs, np.arange(1, len(xs) + 1) / len(xs)


def plot_latency(result: Any) -> Figure:
    """CDF of client-side request latency per mode, plus when the queued tasks were done.

    The x axis is logarithmic (ms): a queued request answers in milliseconds while the inline
    one waits for the work and for a free request thread.
    """
    fig, (ax,) = figure()
    for mode in result.modes:
        xs, ys = _cdf(result.latencies(mode))
        if len(xs):
            ax.step(xs * 1e3, ys, where="post", color=role(mode), linewidth=2,
                    label=f"{LABELS.get(mode, mode)}: p50 {ms(result.p50(mode))}, "
                          f"p95 {ms(result.p95(mode))}")
    done = result.completion_times
    if done:
        xs, ys = _cdf(done)
        ax.step(xs * 1e3, ys, where="post", color=role("done"), linewidth=2, linestyle="--",
                label=f"queued task done (enqueue → complete): p50 {ms(float(np.median(done)))}")
    ax.axhline(0.5, color="#999999", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("latency seen by the client (ms, log scale)")
    ax.set_ylabel("fraction of requests ≤ x")
    ax.set_title(f"task of {result.duration:g} s · {result.clients} concurrent clients · "
                 f"{result.web_threads} web threads · {result.workers} workers")
    ax.legend(loc="lower right", fontsize=8.5, frameon=True, framealpha=0.9)
    return fig


def latency_table(result: Any) -> str:
    """The p50/p95/max of each mode as a small text table (for ``print``)."""
    rows = result.table()
    width = max(len(r["what"]) for r in rows)
    lines = [f"{'':{width}}  {'n':>5}  {'p50':>9}  {'p95':>9}  {'max':>9}"]
    for r in rows:
        lines.append(f"{r['what']:{width}}  {r['n']:>5}  {ms(r['p50_ms'] / 1e3):>9}  "
                     f"{ms(r['p95_ms'] / 1e3):>9}  {ms(r['max_ms'] / 1e3):>9}")
    return "\n".join(lines)


def plot_overhead(result: Any) -> Figure:
    """Bars: median time the caller is blocked and until a tiny job is done, per hand-off.

    Whiskers span the 5th to 95th percentile of the runs.
    """
    fig, (ax,) = figure()
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
              loc="upper left", fontsize=9)
    ax.grid(False, axis="x")
    return fig
