"""Scaling and the dashboard (pure): each result's sentences and lesson flip with the numbers."""
from __future__ import annotations

import pytest

from labapp import config
from labapp.experiments.dashboard import StatsSample
from labapp.experiments.dashboard import WatchResult
from labapp.experiments.scaling import CpuComparison
from labapp.experiments.scaling import ScalingResult
from labapp.experiments.scaling import ScalingRun
from labapp.experiments.scaling import TaskSpan

T0 = 1_700_000_000.0


def result(rates: dict[int, float], kind: str = "io", worker_type: str = "thread",
           cpus: int = 2, d: float = 0.05) -> ScalingResult:
    """A scaling result whose run with W workers drained at ``rates[W]`` tasks/s."""
    runs = []
    for w, rate in rates.items():
        n = 10 * w
        gap = 1 / rate
        spans = tuple(TaskSpan(f"worker-{i % w + 1}", T0, T0 + i * gap, T0 + i * gap + d)
                      for i in range(n))
        # makespan = (n - 1) * gap + d: pick d so throughput is close to ``rate``
        runs.append(ScalingRun(w, spans))
    return ScalingResult(kind, worker_type, d, cpus, tuple(runs))


def test_io_near_ideal_says_close_to_the_line_and_teaches():
    r = result({1: 19.0, 2: 38.0, 4: 76.0, 8: 150.0})
    text = " ".join(r.conclusions(rate=60))
    assert "fell short of 60" in text and "close to the straight ideal line" in text
    assert "4 workers" in text  # the smallest count that keeps up
    assert r.teaches_lesson


def test_io_far_below_ideal_says_so_and_does_not_teach():
    r = result({1: 19.0, 2: 25.0, 4: 30.0, 8: 32.0})
    text = " ".join(r.conclusions(rate=60))
    assert "only" in text and "below the ideal line" in text
    assert "None of the counts measured kept up" in text
    assert not r.teaches_lesson
    slow = result({1: 19.0, 2: 30.0, 4: 45.0, 8: 70.0})  # keeps up, far from the line
    assert "below the ideal line" in " ".join(slow.conclusions()) and slow.teaches_lesson


def test_one_fast_worker_keeps_up():
    r = result({1: 80.0, 2: 160.0})
    text = " ".join(r.conclusions(rate=60))
    assert "kept up with 60" in text and "fell short" not in text
    assert not r.teaches_lesson  # 06 teaches that one worker is not enough


def test_keeps_up_and_efficiency_use_the_limit():
    r = result({1: 19.0, 2: 38.0, 4: 76.0}, kind="cpu", worker_type="process", cpus=2)
    assert r.keeps_up(30) == 2 and r.keeps_up(1000) is None
    # W=4 on 2 CPUs: the limit is 2/d, not 4/d
    assert r.limit(4) == pytest.approx(2 / r.task_seconds)


def test_gantt_conclusions_follow_the_gaps():
    busy = ScalingRun(2, tuple(TaskSpan(f"worker-{i % 2 + 1}", T0, T0 + (i // 2) * 0.1,
                                        T0 + (i // 2) * 0.1 + 0.095) for i in range(8)))
    assert "short" in " ".join(busy.conclusions())
    starved = ScalingRun(2, (TaskSpan("worker-1", T0, T0, T0 + 1.0),
                             TaskSpan("worker-2", T0, T0, T0 + 0.1)))
    text = " ".join(starved.conclusions())
    assert "long gaps" in text and "10%" in text


def test_idle_worker_is_reported():
    run = ScalingRun(4, (TaskSpan("worker-1", T0, T0, T0 + 0.1),))
    assert "got no task" in " ".join(run.conclusions())


def cpu(threads: dict[int, float], procs: dict[int, float], cpus: int) -> CpuComparison:
    return CpuComparison(result(threads, "cpu", "thread", cpus),
                         result(procs, "cpu", "process", cpus))


def test_cpu_on_two_cpus_processes_scale_threads_do_not():
    c = cpu({1: 19, 2: 19.5, 4: 19}, {1: 19, 2: 37, 4: 37.5}, cpus=2)
    text = " ".join(c.conclusions())
    assert "Threads stayed near 1x" in text and "ran in parallel on the 2 CPUs" in text
    assert "take turns again" in text
    assert c.teaches_lesson


def test_cpu_on_two_cpus_noise_is_not_called_parallel():
    c = cpu({1: 19, 2: 19.5, 4: 19}, {1: 19, 2: 20, 4: 20}, cpus=2)
    assert "did not beat threads" in " ".join(c.conclusions())
    assert not c.teaches_lesson


def test_cpu_on_one_cpu_processes_cannot_help():
    c = cpu({1: 19, 2: 19.5, 4: 19}, {1: 19, 2: 19.8, 4: 19.6}, cpus=1)
    text = " ".join(c.conclusions())
    assert "With one CPU" in text and "no clear gain" in text
    assert c.at == 2 and c.teaches_lesson
    slower = cpu({1: 19, 2: 11, 4: 12}, {1: 19, 2: 19, 4: 19}, cpus=1)
    assert "did not speed up at all" in " ".join(slower.conclusions()) and slower.teaches_lesson
    c2 = cpu({1: 19, 2: 19.5, 4: 19}, {1: 19, 2: 37, 4: 37}, cpus=1)
    assert "noise" in " ".join(c2.conclusions()) and not c2.teaches_lesson


def test_superlinear_process_run_is_explained_not_celebrated():
    c = cpu({1: 19, 2: 19, 4: 19}, {1: 15, 2: 30, 4: 45}, cpus=2)  # 3x on 2 CPUs
    assert "above what 2 CPUs allow" in " ".join(c.conclusions())


def test_available_cpus_respects_affinity_and_quota(monkeypatch, tmp_path):
    (tmp_path / "proc").write_text("0::/lab\n")
    (tmp_path / "lab").mkdir()
    limit = config._cgroup_cpu_limit
    monkeypatch.setattr(config, "_cgroup_cpu_limit",
                        lambda: limit(root=tmp_path, proc_cgroup=tmp_path / "proc"))
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    (tmp_path / "lab" / "cpu.max").write_text("150000 100000\n")
    assert config.available_cpus() == 2          # 1.5 CPUs of quota, rounded up
    (tmp_path / "lab" / "cpu.max").write_text("max 100000\n")
    assert config.available_cpus() == 4          # no quota: the affinity mask
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _pid: {0})
    assert config.available_cpus() == 1


def watch(queued: list[int], errors: list[int], alerts=()) -> WatchResult:
    samples = tuple(StatsSample(0.5 * i, q, 0, 1 if q else 0, 10 * i, e, 0)
                    for i, (q, e) in enumerate(zip(queued, errors)))
    return WatchResult(0.5, samples, tuple(alerts))


def test_dashboard_drained_with_alerted_failures_teaches():
    w = watch([40, 30, 10, 0], [0, 3, 3, 3], [(0.5, "3 task(s) failed for good")])
    text = " ".join(w.conclusions())
    assert "from 40 (highest 40) to 0" in text and "3 new failures" in text and "1 alert" in text
    assert w.drained and w.teaches_lesson


def test_dashboard_that_never_drained_or_missed_a_failure_does_not_teach():
    assert not watch([40, 45, 50], [0, 0, 0]).teaches_lesson
    missed = watch([40, 0], [0, 2])
    assert "No alert fired" in " ".join(missed.conclusions()) and not missed.teaches_lesson


def test_busy_machine_sentence_names_the_cpu_time_the_processes_got():
    c = cpu({1: 19, 2: 19.5, 4: 19}, {1: 19, 2: 20, 4: 20}, cpus=2)
    runs = tuple(ScalingRun(r.workers, r.spans, 0.4 * r.makespan, r.makespan)
                 for r in c.processes.runs)
    import dataclasses
    busy = CpuComparison(c.threads, dataclasses.replace(c.processes, runs=runs))
    assert "got only 0.4 CPUs' worth of time" in " ".join(busy.conclusions())
