"""Retries (pure): each result's sentences and lesson flip with the numbers."""
from __future__ import annotations

from labapp.experiments.retries import DefaultRetryResult
from labapp.experiments.retries import RetriesResult
from labapp.experiments.retries import RetryAttempt
from labapp.experiments.retries import StrategyRun

T0 = 1_700_000_000.0


def run(name: str, gaps: list[float], ok: bool = True, delay: float = 1.0,
        client: int = 0, starts: list[float] | None = None) -> StrategyRun:
    attempts, t = [], T0
    if starts is not None:
        attempts = [RetryAttempt(i + 1, T0 + s, T0 + s + 0.01,
                                 "complete" if i == len(starts) - 1 else "retry", "w")
                    for i, s in enumerate(starts)]
    else:
        for i, gap in enumerate([*gaps, None]):
            outcome = "complete" if gap is None and ok else "error"
            attempts.append(RetryAttempt(i + 1, t, t + 0.01, outcome, "worker-1"))
            t += 0.01 + (gap or 0)
    return StrategyRun(name, len(gaps), 0.0 if name == "none" else delay,
                       2.0 if name in ("backoff", "jitter") else 0.0, f"{name}{client}", T0,
                       tuple(attempts), "complete" if ok else "error", client=client,
                       jitter=1.0 if name == "jitter" else 0.0, key=f"k{client}")


def strategies(fixed_gaps, backoff_gaps, none_ok=False) -> RetriesResult:
    return RetriesResult(2, (run("none", [], ok=none_ok), run("fixed", fixed_gaps),
                             run("backoff", backoff_gaps)))


def test_strategies_as_usual():
    r = strategies([1.3, 2.0], [1.3, 3.0])
    text = " ".join(r.conclusions())
    assert "No retries: 1 attempt; its error was recorded" in text
    assert "asked for waits of 1.0, 1.0 s, measured 1.3, 2.0 s" in text
    assert "rounded up to the scheduler's next 1 s tick" in text
    assert "each wait was longer than the one before" in text
    assert "backoff finished 1.0 s later" in text
    assert r.teaches_lesson


def test_backoff_waits_that_did_not_grow_are_reported():
    r = strategies([1.3, 2.0], [1.9, 1.9])
    text = " ".join(r.conclusions())
    assert "did not grow" in text and "sooner" not in text.split("backoff finished")[0]
    assert not r.teaches_lesson


def test_waits_outside_the_tick_rounding_are_not_explained_by_it():
    r = strategies([3.5, 4.0], [1.3, 3.0])
    fixed = next(c for c in r.conclusions() if c.startswith("Fixed"))
    assert "rounded up" not in fixed


def test_a_task_that_completed_without_retries_flips_the_lesson():
    r = strategies([1.3, 2.0], [1.3, 3.0], none_ok=True)
    assert "ended complete" in " ".join(r.conclusions())
    assert not r.teaches_lesson


def herd(backoff_starts, jitter_starts) -> RetriesResult:
    runs = [run("backoff", [2, 4], client=c, starts=s) for c, s in enumerate(backoff_starts)]
    runs += [run("jitter", [2, 4], client=c, starts=s) for c, s in enumerate(jitter_starts)]
    return RetriesResult(2, tuple(runs), clients=len(backoff_starts))


def test_herd_jitter_lowers_the_peak():
    r = herd([[0, 3, 7]] * 4, [[0, 1 + c, 5 + 2 * c] for c in range(4)])
    text = " ".join(r.conclusions())
    assert "at most 4 in one scheduler tick" in text and "at most 1 in one" in text
    assert "Jitter cut the largest burst the service had to take from 4 to 1" in text
    assert "spread grows" in text
    assert r.teaches_lesson


def test_herd_where_jitter_did_not_help_says_so():
    same = [[0, 3, 7]] * 4
    r = herd(same, same)
    assert "did not lower the largest burst" in " ".join(r.conclusions())
    assert not r.teaches_lesson


def test_default_retry_dropped_and_retried():
    dropped = DefaultRetryResult("t", ("enqueued", "executing", "error"), 0, 1.5, 0, 0)
    text = " ".join(dropped.conclusions())
    assert "no second attempt started" in text and "only its error is stored" in text
    assert dropped.teaches_lesson and not dropped.retried
    retried = DefaultRetryResult("t", ("enqueued", "executing", "error", "retrying", "executing",
                                       "complete"), 1, 1.5, 0, 0)
    text = " ".join(retried.conclusions())
    assert "it was retried" in text and "only its error" not in text
    assert not retried.teaches_lesson


def test_default_retry_still_scheduled_is_not_called_gone():
    r = DefaultRetryResult("t", ("enqueued", "executing", "error"), 0, 1.5, 0, 1)
    assert "nothing will run it again" not in " ".join(r.conclusions())


def test_jitter_effect_names_the_direction():
    spread = herd([[0, 3, 7]] * 4, [[0, 1 + c, 5 + 2 * c] for c in range(4)])
    assert spread.jitter_effect == "fewer"
    assert herd([[0, 3, 7]] * 4, [[0, 3, 7]] * 4).jitter_effect == "same"
    assert herd([[0, 1 + c, 5 + 2 * c] for c in range(4)], [[0, 3, 7]] * 4).jitter_effect == "more"
    assert strategies([1.3, 2.0], [1.3, 3.0]).jitter_effect is None
