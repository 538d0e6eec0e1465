"""Ordering and 07's beliefs (pure): each result's sentences and lesson flip with the numbers."""
from __future__ import annotations

from labapp.experiments.latency import LatencyResult
from labapp.experiments.latency import RequestSample
from labapp.experiments.myths import FasterResult
from labapp.experiments.myths import FlaskAloneResult
from labapp.experiments.ordering import Attempt
from labapp.experiments.ordering import OrderingResult
from labapp.experiments.ordering import in_order_members
from labapp.experiments.ordering import longest_in_order

T0 = 1_700_000_000.0


def ordering(starts: list[int], ends: list[int], workers: int = 4,
             retried: int | None = None) -> OrderingResult:
    """Task ``seq`` starts at rank ``starts.index(seq)`` and completes at ``ends.index(seq)``."""
    n = len(starts)
    attempts = tuple(Attempt(seq, f"t{seq}", "worker-1", T0 + starts.index(seq) * 0.01,
                             T0 + 1 + ends.index(seq) * 0.01, "complete") for seq in range(n))
    return OrderingResult(n, workers, 0, (0.1,) * n, retried, (T0,) * n, attempts)


def test_longest_in_order():
    assert longest_in_order([0, 1, 3, 4, 5, 6, 7, 2]) == 7
    assert longest_in_order([3, 2, 1, 0]) == 1 and longest_in_order([]) == 0
    assert in_order_members([0, 1, 3, 4, 5, 6, 7, 2]) == [0, 1, 3, 4, 5, 6, 7]


def test_one_retried_task_counts_as_one_moved():
    r = ordering(list(range(8)), [0, 1, 3, 4, 5, 6, 7, 2], workers=1, retried=2)
    assert r.moved == 1 and r.moved_tasks == [2] and r.out_of_place == 6
    text = " ".join(r.conclusions())
    assert "1 of 8 tasks changed place" in text
    assert "Task 2 failed once; its retry completed in position 7" in text
    assert "after 5 tasks queued behind it" in text
    assert r.teaches_lesson


def test_in_order_run_says_so_and_does_not_teach():
    r = ordering(list(range(6)), list(range(6)))
    text = " ".join(r.conclusions())
    assert "completed in the order they were queued (0 of 15 pairs swapped)" in text
    assert "try another seed" in text
    assert not r.teaches_lesson
    one = ordering(list(range(6)), list(range(6)), workers=1, retried=2)
    assert not one.teaches_lesson


def test_start_order_sentence_follows_the_measured_start_order():
    clean = ordering(list(range(6)), [0, 2, 1, 3, 4, 5])
    assert "They started in queue order" in " ".join(clean.conclusions())
    swapped = ordering([0, 1, 2, 3, 5, 4], [0, 2, 1, 3, 4, 5], workers=8)
    text = " ".join(swapped.conclusions())
    assert "Even the start order had 1 swapped pair" in text
    assert "They started in queue order" not in text


def latency(inline: list[float], queued_lat: list[float], workers: int = 2) -> LatencyResult:
    reqs = [RequestSample("inline", i, 0, T0, lat, 200, None) for i, lat in enumerate(inline)]
    reqs += [RequestSample("queued", i, 0, T0 + 10, lat, 202, f"id{i}")
             for i, lat in enumerate(queued_lat)]
    return LatencyResult(0.3, len(inline), 1, 4, workers, tuple(reqs), ())


def test_faster_no_when_the_queued_work_finished_later():
    r = FasterResult(latency([0.31] * 4, [0.01] * 4), (0.3,) * 4, (0.31, 0.32, 0.61, 0.62))
    text = " ".join(r.conclusions())
    assert r.answer == "no" and "finished later" in text and "the same time" in text
    assert "30x sooner" in text or "31x sooner" in text
    assert r.teaches_lesson


def test_faster_yes_when_the_queued_work_finished_sooner():
    r = FasterResult(latency([0.9] * 4, [0.01] * 4, workers=8), (0.3,) * 4, (0.31,) * 4)
    text = " ".join(r.conclusions())
    assert r.answer == "yes" and "finished sooner" in text and "hardly any waited" in text
    assert not r.teaches_lesson


def test_faster_without_data_settles_nothing():
    r = FasterResult(latency([], []), (), ())
    assert r.answer is None and "settles nothing" in r.conclusions()[0]


def test_flask_alone_flips_when_a_task_ran_without_workers():
    waited = FlaskAloneResult(4, 4, 5.0, 2.0, 0, 4, 0.4, 4)
    text = " ".join(waited.conclusions())
    assert waited.answer == "no" and "none of them started" in text and "4 waited" in text
    assert waited.teaches_lesson
    ran = FlaskAloneResult(4, 4, 5.0, 2.0, 3, 1, 0.1, 4)
    assert ran.answer == "yes" and "3 of them started" in " ".join(ran.conclusions())
    assert not ran.teaches_lesson
