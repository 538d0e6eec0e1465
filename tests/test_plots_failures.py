"""Plots of the failure experiments: pure functions of hand-made results, checked artist by artist."""
from __future__ import annotations

import matplotlib
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from labapp.events import Event
from labapp.experiments.durability import DurabilityResult
from labapp.experiments.durability import DurabilityRun
from labapp.experiments.race import RaceResult
from labapp.experiments.race import RaceRun
from labapp.experiments.after_response import AfterResponseResult
from labapp.experiments.after_response import Hook
from labapp.experiments.tools import ToolRun
from labapp.experiments.tools import ToolsResult
from labapp.experiments.worker_loss import LossPhase
from labapp.experiments.worker_loss import WorkerLossResult
from labapp.plots import plot_durability
from labapp.plots import plot_race
from labapp.plots import plot_after_response
from labapp.plots import plot_tools
from labapp.plots import plot_worker_loss

matplotlib.use("Agg")


def bar_heights(ax) -> list[float]:
    return [p.get_height() for p in ax.patches if isinstance(p, Rectangle)]


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def durability_result(rabbit: bool = True) -> DurabilityResult:
    def run(key: str, survivors: int, per_task: float, crashed: str) -> DurabilityRun:
        return DurabilityRun(key=key, label=key, n=50, enqueue_s=[per_task] * 50,
                             elapsed_s=per_task * 50, queued_before=50, survivors=survivors,
                             crashed=crashed)

    runs = [run("memory", 0, 0.0002, "broker SIGKILLed"), run("aof_always", 50, 0.001, "x")]
    if rabbit:
        runs += [run("rabbitmq_durable", 50, 0.0008, "SIGKILLed"),
                 run("rabbitmq_transient", 0, 0.0001, "SIGKILLed")]
    note = "a private node was SIGKILLed" if rabbit else "skipped: rabbitmq-server is not installed"
    return DurabilityResult(n=50, runs=runs, rabbitmq_note=note)


@pytest.mark.parametrize("rabbit", [True, False])
def test_durability_plot_has_survivor_and_throughput_bars(rabbit):
    result = durability_result(rabbit)
    fig = plot_durability(result)
    assert isinstance(fig, Figure)
    left, right = fig.axes
    widths = [p.get_width() for p in left.patches if isinstance(p, Rectangle)]
    assert widths == [r.survivors for r in result.runs]
    rates = [p.get_width() for p in right.patches if isinstance(p, Rectangle)]
    assert rates == pytest.approx([r.throughput_per_s for r in result.runs])
    assert "0/50" in texts(left) and "50/50" in texts(left)
    assert "tasks/s" in right.get_xlabel() and "tasks" in left.get_xlabel()
    assert len(left.get_yticklabels()) == len(result.runs)
    # a mode that lost its queue is hollow and hatched in the throughput panel too
    bars = [p for p in right.patches if isinstance(p, Rectangle)]
    for bar, r in zip(bars, result.runs):
        assert bool(bar.get_hatch()) == (not r.kept_all)
    footnote = fig.get_supxlabel()
    assert ("across brokers" in footnote) if rabbit else ("skipped" in footnote)


def test_race_plot_has_one_bar_per_strategy():
    runs = [RaceRun(strategy=s, rep=i, key=f"{s}-{i}", order="A,B",
                    outcome="missing" if s == "independent" and i < 3 else "ok",
                    a_start=0.0, a_end=0.05, b_start=0.001)
            for s in ("independent", "pipeline") for i in range(5)]
    result = RaceResult(workers=2, a_seconds=0.05, seed=0,
                        strategies=("independent", "pipeline"), runs=runs)
    fig = plot_race(result)
    (ax,) = fig.axes
    assert bar_heights(ax) == [3, 0]
    assert [t.get_text() for t in ax.get_xticklabels()][1].startswith("pipeline")
    assert any(t.startswith("3/5") for t in texts(ax)) and any(t.startswith("0/5") for t in texts(ax))
    assert "of 5 runs" in ax.get_ylabel()


def event(kind: str, task_id: str, t: float, worker: str = "worker-1", pid: int = 10) -> Event:
    return Event(id=f"{int(t * 1000)}-0", kind=kind, task_id=task_id, task="sleep",
                 worker=worker, pid=pid, time=t, retries=0)


def loss_phase(how: str, lose_first: bool) -> LossPhase:
    """Task a is killed (lose_first) or finished with its ``complete`` event unrecorded."""
    evs = [event("enqueued", "a", 100.0, "notebook", 1), event("enqueued", "b", 100.0, "notebook", 1),
           event("executing", "a", 100.01), event("executing", "b", 100.01, "worker-2", 11),
           event("complete", "b", 100.5, "worker-2", 11)]
    return LossPhase(how=how, task_ids=["a", "b"], events=evs, start=100.0, action_time=100.02,
                     end=101.0, killed_pid=10 if lose_first else None,
                     killed_worker="worker-1" if lose_first else "",
                     results=["b"] if lose_first else ["a", "b"])


def test_worker_loss_plot_shows_the_lost_task_and_the_kill():
    result = WorkerLossResult(worker_type="process", workers=2, seconds=0.5,
                              kill=loss_phase("sigkill", True),
                              graceful=loss_phase("graceful", False))
    assert result.lost_on_kill == 1 and result.lost_on_restart == 0
    assert result.graceful.unrecorded == ["a"] and "no 'complete' event" in repr(result)
    fig = plot_worker_loss(result)
    top, bottom = fig.axes
    hatched = [p for p in top.patches if p.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_x() == pytest.approx(0.01)
    assert not [p for p in bottom.patches if p.get_hatch()]
    assert "never completes" in texts(top)
    assert any("SIGKILL worker-1" in t for t in texts(top))
    assert any("graceful" in t for t in texts(bottom))
    assert "complete (event not recorded)" in texts(bottom)
    assert sorted(p.get_width() for p in bottom.patches) == pytest.approx([0.49, 0.5])
    vlines = [ln for ln in top.lines if list(ln.get_xdata()) == pytest.approx([0.02, 0.02])]
    assert vlines, "a vertical line marks the kill"
    assert "seconds" in bottom.get_xlabel()
    assert fig.legends


def test_tools_plot_has_four_panels_and_a_log_throughput_axis():
    runs = {t: ToolRun(tool=t, command=["x"], setup_lines=lines, startup_s=start, queued=6,
                       enqueue_s=[lat] * 5, noop_done=[0.01 * i * k for i in range(6)],
                       sleep_seconds=0.05, sleep_done=[0.06, 0.12], bare={"rate": 90.0 / k})
            for t, lines, start, lat, k in (("huey", 11, 0.2, 0.0001, 1), ("rq", 10, 0.3, 0.0002, 10),
                                              ("celery", 12, 0.5, 0.0004, 2))}
    result = ToolsResult(n={t: 6 for t in runs}, window=1.0, sleep_tasks=2, sleep_seconds=0.05,
                         rq_worker="fork", runs=runs, cpus=2)
    assert result.throughput_per_s["huey"] == pytest.approx(100)
    fig = plot_tools(result)
    startup, throughput, latency, setup = fig.axes
    assert bar_heights(startup) == [0.2, 0.3, 0.5]
    assert throughput.get_yscale() == "log"
    assert len(bar_heights(throughput)) == 6  # no-op and sleep bar per tool
    marks = throughput.collections[0].get_offsets()[:, 1]
    assert list(marks) == pytest.approx([90.0, 9.0, 45.0])  # the plain script's figures
    assert "plain script" in " ".join(t.get_text() for t in throughput.get_legend().get_texts())
    assert bar_heights(latency) == pytest.approx([0.1, 0.2, 0.4])
    assert bar_heights(setup) == [11, 10, 12]
    assert [t.get_text() for t in setup.get_xticklabels()] == ["huey", "rq", "celery"]
    assert "tasks/s" in throughput.get_ylabel()
    assert "fork per job" in fig._suptitle.get_text()


def test_after_response_plot_shows_who_waited():
    hooks = {"after_this_request": Hook("after_this_request", 1.0, [1.0, 1.0], 0.01),
             "call_on_close": Hook("call_on_close", 1.0, [0.01, 0.01], 1.0)}
    fig = plot_after_response(AfterResponseResult("3.1", 148, [], hooks))
    (ax,) = fig.axes
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([1.0, 0.01, 0.01, 1.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["after_this_request", "call_on_close"]
    assert ax.get_legend() is not None


def test_plots_do_not_touch_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_durability(durability_result())
    assert plt.get_fignums() == before
