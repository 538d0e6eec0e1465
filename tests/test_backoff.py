"""Retry delays (pure): exponential backoff and jitter."""
import random
import statistics

import pytest

from labapp import backoff


def test_backoff_delay_without_jitter_grows_exponentially():
    assert [backoff.backoff_delay(a, 1.0, 2.0) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [backoff.backoff_delay(a, 1.5, 1.0) for a in (1, 5)] == [1.5, 1.5]  # factor 1: fixed
    assert backoff.backoff_delay(3, 0.0, 4.0, jitter=1.0) == 0.0


@pytest.mark.parametrize("jitter", [0.1, 0.5, 1.0])
def test_backoff_delay_stays_within_the_jitter_bounds(jitter):
    rng = random.Random(7)
    for attempt in (1, 2, 3):
        plain = 2.0 * 2.0 ** (attempt - 1)
        draws = [backoff.backoff_delay(attempt, 2.0, 2.0, jitter, rng) for _ in range(500)]
        assert all(plain * (1 - jitter) <= d <= plain * (1 + jitter) for d in draws)
        # ... and really spread over that range, around the plain delay (mean-preserving)
        assert max(draws) - min(draws) > 1.6 * jitter * plain
        assert abs(statistics.mean(draws) - plain) < 0.15 * jitter * plain


def test_backoff_delay_grows_on_average_even_with_full_jitter():
    rng = random.Random(3)
    means = [statistics.mean(backoff.backoff_delay(a, 1.0, 2.0, 1.0, rng) for _ in range(400))
             for a in (1, 2, 3, 4)]
    assert means == sorted(means) and means[-1] > 4 * means[0]


def test_backoff_delay_is_repeatable_with_a_seed():
    first = [backoff.backoff_delay(a, 1.0, 2.0, 0.5, random.Random(42)) for a in (1, 2, 3)]
    again = [backoff.backoff_delay(a, 1.0, 2.0, 0.5, random.Random(42)) for a in (1, 2, 3)]
    assert first == again
    # flaky_jitter's delays: the same for the same seed and key, different across keys (clients)
    one = [backoff.flaky_jitter_delay("client-1", a, 2.0, 2.0, 0.5, seed=0) for a in (1, 2)]
    assert one == [backoff.flaky_jitter_delay("client-1", a, 2.0, 2.0, 0.5, seed=0) for a in (1, 2)]
    assert one != [backoff.flaky_jitter_delay("client-2", a, 2.0, 2.0, 0.5, seed=0) for a in (1, 2)]
    assert one != [backoff.flaky_jitter_delay("client-1", a, 2.0, 2.0, 0.5, seed=1) for a in (1, 2)]


def test_flaky_jitter_delay_is_capped():
    assert backoff.flaky_jitter_delay("k", 10, 30.0, 4.0, 0.0, seed=0) == backoff.MAX_RETRY_DELAY


@pytest.mark.parametrize("args, fragment", [
    ((0, 1.0, 2.0, 0.5), "attempt"),
    ((1.0, 1.0, 2.0, 0.5), "attempt"),
    ((True, 1.0, 2.0, 0.5), "attempt"),
    ((1, -1.0, 2.0, 0.5), "base"),
    ((1, float("inf"), 2.0, 0.5), "base"),
    ((1, 1.0, 0.5, 0.5), "factor"),
    ((1, 1.0, 2.0, -0.1), "jitter"),
    ((1, 1.0, 2.0, 1.5), "jitter"),
    ((1, 1.0, 2.0, float("nan")), "jitter"),
    ((1, "1", 2.0, 0.5), "base"),
])
def test_backoff_delay_rejects_bad_input(args, fragment):
    with pytest.raises(ValueError, match=fragment):
        backoff.backoff_delay(*args)
