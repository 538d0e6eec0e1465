"""Plots of latency, overhead, ordering, retries and scaling: each returns a Figure with the
expected artists. Results are built from fixed raw samples (plots are pure functions), so
these tests need no lab and run in well under a second each.
"""
from __future__ import annotations

import io

import matplotlib
import pytest
from matplotlib.collections import PathCollection
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from labapp.experiments.latency import LatencyResult
from labapp.experiments.latency import OverheadResult
from labapp.experiments.latency import RequestSample
from labapp.experiments.ordering import Attempt
from labapp.experiments.ordering import OrderingResult
from labapp.experiments.retries import RetriesResult
from labapp.experiments.retries import RetryAttempt
from labapp.experiments.retries import StrategyRun
from labapp.experiments.scaling import ScalingResult
from labapp.experiments.scaling import ScalingRun
from labapp.experiments.scaling import TaskSpan
from labapp.plots import latency_table
from labapp.plots import order_summary
from labapp.plots import plot_gantt
from labapp.plots import plot_latency
from labapp.plots import plot_order
from labapp.plots import plot_overhead
from labapp.plots import plot_retries
from labapp.plots import plot_scaling
from labapp.plots._style import OKABE_ITO

T0 = 1_700_000_000.0


def latency_result() -> LatencyResult:
    reqs = []
    for c in range(4):
        for s in range(3):
            reqs.append(RequestSample("inline", c, s, T0 + s, 0.4 + 0.2 * c, 200, None))
            reqs.append(RequestSample("queued", c, s, T0 + 5 + s, 0.002 + 0.001 * c, 202,
                                      f"id{c}{s}"))
    completions = tuple((f"id{c}{s}", T0 + 5 + s, T0 + 5.5 + s + 0.2 * c)
                        for c in range(4) for s in range(3))
    return LatencyResult(0.2, 4, 3, 2, 2, tuple(reqs), completions)


def ordering_result(retried: int | None = None) -> OrderingResult:
    # Worker 1 runs 0, 2, 3; worker 2 runs 1 (long): completion order 0, 2, 3, 1.
    attempts = (Attempt(0, "a", "worker-1", T0 + 0.00, T0 + 0.10, "complete"),
                Attempt(1, "b", "worker-2", T0 + 0.00, T0 + 0.50, "complete"),
                Attempt(2, "c", "worker-1", T0 + 0.10, T0 + 0.20, "complete"),
                Attempt(3, "d", "worker-1", T0 + 0.20, T0 + 0.201, "error"),
                Attempt(3, "d", "worker-1", T0 + 0.25, T0 + 0.30, "complete"))
    return OrderingResult(4, 2, 0, (0.1, 0.5, 0.1, 0.0), retried, (T0,) * 4, attempts)


def retries_result() -> RetriesResult:
    def run(name, gaps, ok=True):
        attempts, t = [], T0
        for i, gap in enumerate([*gaps, None]):
            outcome = "complete" if gap is None and ok else "error"
            attempts.append(RetryAttempt(i + 1, t, t + 0.01, outcome, "worker-1"))
            t += 0.01 + (gap or 0)
        return StrategyRun(name, len(gaps), 1.0, 2.0 if name == "backoff" else 0.0, name, T0,
                           tuple(attempts), "complete" if ok else "error")
    return RetriesResult(2, (run("none", [], ok=False), run("fixed", [1.5, 2.0]),
                             run("backoff", [1.5, 3.0])))


def herd_result() -> RetriesResult:
    # 4 clients per strategy: backoff retries all land in the same ticks, jitter's spread out.
    def run(name, client, starts):
        attempts = tuple(RetryAttempt(i + 1, T0 + t, T0 + t + 0.01,
                                      "complete" if i == len(starts) - 1 else "retry", "w")
                         for i, t in enumerate(starts))
        return StrategyRun(name, 2, 2.0, 2.0, f"{name}{client}", T0, attempts, "complete",
                           client=client, jitter=0.5 if name == "jitter" else 0.0)
    backoff = [run("backoff", c, [0.01 * c, 2.9, 6.9]) for c in range(4)]
    jitter = [run("jitter", c, [0.01 * c, 1.9 + c, 5.9 + 1.0 * c]) for c in range(4)]
    return RetriesResult(2, (*backoff, *jitter), clients=4)


def scaling_result(kind: str = "io", worker_type: str = "thread") -> ScalingResult:
    runs = []
    for w in (1, 2, 4):
        rate = w if kind == "io" else 1
        spans = tuple(TaskSpan(f"worker-{i % w + 1}", T0, T0 + (i // rate) * 0.05,
                               T0 + (i // rate + 1) * 0.05) for i in range(4 * w))
        runs.append(ScalingRun(w, spans))
    return ScalingResult(kind, worker_type, 0.05, 2, tuple(runs))


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """Plots build bare Figures: nothing may be left registered with pyplot."""
    import matplotlib.pyplot as plt
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before


def render(fig: Figure) -> bytes:
    """Draw the figure for real (missing glyphs or layout problems warn, and warnings fail)."""
    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    width, height = fig.get_size_inches()
    assert 6 <= width <= 9 and 2 <= height <= 6.5  # notebook width
    return buf.getvalue()


def test_latency_cdf_has_one_line_per_mode_and_the_completion_line():
    fig = plot_latency(latency_result())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 3 and all("p50" in t for t in labels)
    assert any(l.startswith("inline") for l in labels) and any("done" in l for l in labels)
    assert "ms" in ax.get_xlabel() and ax.get_xscale() == "log"
    colours = {matplotlib.colors.to_hex(line.get_color()).upper() for line in ax.get_lines()}
    assert colours & set(OKABE_ITO.values())
    render(fig)


def test_latency_table_lists_modes_with_p50_and_p95():
    text = latency_table(latency_result())
    assert "p50" in text.splitlines()[0] and "p95" in text.splitlines()[0]
    assert [line.split()[0] for line in text.splitlines()[1:]] == ["inline", "queued", "queued"]


def test_overhead_bars_per_mode_with_whiskers():
    samples = {"inline": ((0.001, 0.001),) * 5, "thread": ((0.00002, 0.0011),) * 5,
               "queue": ((0.0003, 0.002),) * 5}
    fig = plot_overhead(OverheadResult(0.001, samples))
    ax = fig.axes[0]
    assert len(ax.patches) == 6  # blocked + done for three hand-offs
    assert "ms" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["inline call", "thread pool",
                                                            "task queue"]
    render(fig)


def test_order_scatter_marks_moved_tasks_and_the_diagonal():
    result = ordering_result()
    fig = plot_order(result)
    ax = fig.axes[0]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in scatters) == 4
    assert len(ax.get_lines()) == 1  # the "in order" diagonal
    assert "enqueue" in ax.get_xlabel() and "completion" in ax.get_ylabel()
    assert str(result.inversions) in ax.get_title()
    render(fig)
    assert order_summary(result).splitlines()[2].split()[1:] == ["0", "2", "3", "1"]


def test_gantt_has_a_bar_per_attempt_on_each_worker_row():
    fig = plot_gantt(ordering_result(retried=3))
    ax = fig.axes[0]
    bars = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bars) == 5
    assert [t.get_text() for t in ax.get_yticklabels()] == ["worker-1", "worker-2"]
    assert "(s)" in ax.get_xlabel()
    assert ax.get_legend() is not None  # the failed attempt is explained
    render(fig)


def test_gantt_also_draws_a_scaling_run():
    fig = plot_gantt(scaling_result().runs[2])
    assert len(fig.axes[0].get_yticklabels()) == 4
    render(fig)


def test_retry_timeline_marks_every_attempt():
    result = retries_result()
    fig = plot_retries(result)
    ax = fig.axes[0]
    markers = [line for line in ax.get_lines() if line.get_marker() in ("X", "o")]
    assert len(markers) == sum(len(r.attempts) for r in result.runs) == 7
    waits = [t.get_text() for t in ax.texts if t.get_text().endswith(" s")]
    assert waits == ["1.5 s", "2.0 s", "1.5 s", "3.0 s"]
    assert "(s)" in ax.get_xlabel() and "tick" in ax.get_title()
    render(fig)


def test_retry_timeline_has_a_jitter_row_in_its_own_colour():
    base = retries_result()
    jitter = StrategyRun("jitter", 2, 1.0, 2.0, "jitter", T0,
                         (RetryAttempt(1, T0, T0 + 0.01, "retry", "worker-1"),
                          RetryAttempt(2, T0 + 2.5, T0 + 2.51, "retry", "worker-2"),
                          RetryAttempt(3, T0 + 5.0, T0 + 5.01, "complete", "worker-1")),
                         "complete", jitter=0.5)
    result = RetriesResult(2, (*base.runs, jitter))
    ax = plot_retries(result).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 4 and "jitter" in labels[-1] and "50%" in labels[-1]
    markers = [line for line in ax.get_lines() if line.get_marker() in ("X", "o")]
    assert len(markers) == 10
    arrows = [t.arrow_patch.get_edgecolor() for t in ax.texts if getattr(t, "arrow_patch", None)]
    assert matplotlib.colors.to_rgba(OKABE_ITO["purple"]) in arrows


def test_herd_timeline_draws_every_client_and_counts_retries_per_tick():
    result = herd_result()
    fig = plot_retries(result)
    ax = fig.axes[0]
    markers = [line for line in ax.get_lines() if line.get_marker() in ("X", "o")]
    assert len(markers) == 8 * 3
    purple = matplotlib.colors.to_rgba(OKABE_ITO["purple"])
    clients = [line for line in ax.get_lines()
               if matplotlib.colors.to_rgba(line.get_color()) == purple]
    assert len(clients) == 4  # one line per jitter client
    counts = {name: [t.get_text() for t in ax.texts if t.get_text().isdigit()
                     and matplotlib.colors.to_rgba(t.get_color())
                     == matplotlib.colors.to_rgba(OKABE_ITO[colour])]
              for name, colour in (("backoff", "blue"), ("jitter", "purple"))}
    assert counts["backoff"] == ["4", "4"]
    assert counts["jitter"] == ["1"] * 8  # every retry in a tick of its own
    assert any("at most 4 retries" in t.get_text() for t in ax.texts)
    assert "clients" in ax.get_title() and "tick" in ax.get_title()
    assert "one line per client" in [t.get_text() for t in ax.get_legend().get_texts()]
    render(fig)


def test_scaling_plot_has_ideal_and_measured_lines():
    fig = plot_scaling(scaling_result())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(l.startswith("ideal") for l in labels) and any("measured" in l for l in labels)
    assert "tasks/s" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    render(fig)


def test_scaling_plot_compares_cpu_threads_and_processes_with_their_limits():
    fig = plot_scaling(scaling_result("cpu", "thread"), scaling_result("cpu", "process"))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sum("measured" in l for l in labels) == 2
    assert any("one GIL" in l for l in labels) and any("2 CPUs" in l for l in labels)
    render(fig)
    with pytest.raises(ValueError):
        plot_scaling()
