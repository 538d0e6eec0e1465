"""backoff_delay: its defaults and its exact messages (values from hand arithmetic)."""
import random

import pytest

from labapp import backoff


def test_default_factor_doubles_and_default_jitter_is_none():
    assert backoff.backoff_delay(4, 0.25) == 2.0  # 0.25 * 2**3


def test_jitter_scales_by_the_drawn_factor():
    class Fixed:
        def uniform(self, a, b):
            assert (a, b) == (0.75, 1.25)
            return 1.2
    assert backoff.backoff_delay(3, 1.0, 3.0, 0.25, Fixed()) == pytest.approx(10.8)  # 9 * 1.2


def test_flaky_jitter_delay_matches_its_seeded_stream():
    rng = random.Random("5:k:2")  # the stream flaky_jitter_delay documents: seed:key:attempt
    expected = 2.0 * 3.0 * rng.uniform(0.5, 1.5)
    assert backoff.flaky_jitter_delay("k", 2, 2.0, 3.0, 0.5, seed=5) == expected


@pytest.mark.parametrize("args, message", [
    ((0, 1.0), "attempt=0 must be a whole number from 1"),
    ((1, -1.0), "base=-1.0 must be a number from 0 to inf"),
    ((1, 1.0, 0.5), "factor=0.5 must be a number from 1 to inf"),
    ((1, 1.0, 2.0, 2), "jitter=2 must be a number from 0 to 1"),
])
def test_messages_are_exact(args, message):
    with pytest.raises(ValueError) as info:
        backoff.backoff_delay(*args)
    assert str(info.value) == message
