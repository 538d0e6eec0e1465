"""Shared pieces of the experiments: argument checks, progress lines, percentiles."""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Iterable, Sequence


def check_range(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> Any:
    """Return ``value`` when ``low <= value <= high`` (and whole if ``integer``), else ValueError."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "a whole number" if integer else "a number"
        raise ValueError(f"{name}={value!r} must be {what} from {low} to {high}")
    return value


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


class Progress:
    """A one-line, throttled progress report (``\\r`` redraws it in place in Jupyter and terminals).

    Silent when ``total`` is work that finishes quickly; always prints the final line.
    """

    def __init__(self, label: str, total: int, *, stream: Any = None, every: float = 0.5) -> None:
        self.label, self.total, self.every = label, total, every
        self.stream = stream or sys.stdout
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every and now - self.start >= 1.0:
            self._last = now
            self._write(note)

    def _write(self, note: str, end: str = "") -> None:
        took = time.monotonic() - self.start
        line = f"{self.label}: {self.done}/{self.total} · {took:.1f} s {note}".rstrip()
        # pad over a longer previous line, so "\r" never leaves its tail behind
        self.stream.write("\r" + line.ljust(getattr(self, "_width", 0)) + end)
        self._width = len(line)
        self.stream.flush()

    def close(self, note: str = "") -> None:
        if time.monotonic() - self.start >= 1.0:
            self._write(note, end="\n")

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def inversions(order: Iterable[int]) -> int:
    """Number of pairs that appear out of order (0 for a sorted sequence)."""
    seq = list(order)
    return sum(1 for i in range(len(seq)) for j in range(i + 1, len(seq)) if seq[i] > seq[j])


def started_and_completed(evs: Iterable[Any], ids: Iterable[str]
                          ) -> tuple[dict[str, float], dict[str, float]]:
    """When each task in ``ids`` first started (``executing``) and when it completed."""
    mine = set(ids)
    started: dict[str, float] = {}
    completed: dict[str, float] = {}
    for e in evs:
        if e.task_id in mine:
            if e.kind == "executing":
                started.setdefault(e.task_id, e.time)
            elif e.kind == "complete":
                completed[e.task_id] = e.time
    return started, completed
