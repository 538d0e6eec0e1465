"""Small helpers the test modules share (fixtures live in conftest.py and browser_fixtures.py)."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

import pytest

T = TypeVar("T")


def poll(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
         what: str = "") -> T:
    """Return ``predicate()``'s first truthy value; fail the test when ``timeout`` passes first.

    For a condition that only a test waits on (the lab's own waits use
    :func:`labapp.procs.wait_until`, which returns False instead of failing).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what or predicate.__doc__ or predicate} not met within {timeout} s")
        time.sleep(interval)
