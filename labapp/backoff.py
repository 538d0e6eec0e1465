"""Retry delays: exponential backoff, with the jitter that keeps many clients from retrying in step.

Huey has ``retry_delay`` and ``retry_backoff`` but no jitter; :func:`backoff_delay` is the
small, documented helper the retries lesson and the ``flaky_jitter`` demo task use.
"""
from __future__ import annotations

import math
import random
from typing import Any

MAX_RETRY_DELAY = 300.0  # seconds: a self-scheduled retry never waits longer than this


def backoff_delay(attempt: int, base: float, factor: float = 2.0, jitter: float = 0.0,
                  rng: Any = random) -> float:
    """Seconds to wait after failed attempt ``attempt``: exponential backoff with jitter.

    Plain backoff waits ``base * factor**(attempt - 1)`` seconds (1, 2, 4, 8 … for base 1 and
    factor 2). Jitter multiplies that by a random factor drawn uniformly from
    ``[1 - jitter, 1 + jitter]``.

    Why jitter exists: when a service fails, it fails for many clients at once. With the same
    backoff they all retry at the same instant as well (a *thundering herd*) and can knock it
    over again; random delays spread their retries out.

    This is *proportional* jitter, a mean-preserving variant of the two well-known recipes:
    ``jitter=1`` draws from ``[0, 2d]`` (like "full jitter", which draws from ``[0, d]``),
    ``jitter=0.5`` from ``[d/2, 3d/2]`` (like "equal jitter", ``[d/2, d]``). Keeping the mean
    at ``d`` means that only the spread changes when you compare it with plain backoff.

    :param attempt: the attempt that just failed, 1 for the first.
    :param base: seconds after the first failure, before jitter (0 or more).
    :param factor: growth per attempt (1 or more; 1 is a fixed delay).
    :param jitter: relative spread, 0 (none, plain backoff) to 1.
    :param rng: anything with ``uniform(a, b)``: the ``random`` module or a seeded
        ``random.Random`` for delays that repeat.
    :return: the delay in seconds (0 or more).
    :raises ValueError: for an attempt below 1 or a value outside the ranges above.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt={attempt!r} must be a whole number from 1")
    for name, value, low, high in (("base", base, 0.0, math.inf), ("factor", factor, 1.0, math.inf),
                                   ("jitter", jitter, 0.0, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not low <= value <= high or math.isinf(value):
            raise ValueError(f"{name}={value!r} must be a number from {low:g} to {high:g}")
    delay = base * factor ** (attempt - 1)
    if jitter:
        delay *= rng.uniform(1.0 - jitter, 1.0 + jitter)
    return delay


def flaky_jitter_delay(key: str, attempt: int, base: float, factor: float, jitter: float,
                       seed: int) -> float:
    """The wait ``flaky_jitter`` asks for after failed ``attempt`` of ``key`` (seeded: repeats).

    Each (seed, key, attempt) has its own random stream, so different keys (clients) draw
    different delays, every run draws the same ones, and an experiment can recompute them.
    """
    rng = random.Random(f"{seed}:{key}:{attempt}")
    return min(backoff_delay(attempt, base, factor, jitter, rng), MAX_RETRY_DELAY)
