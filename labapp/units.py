"""How the lab writes a duration for people, in plots, checks, conclusions and widgets."""
from __future__ import annotations

import math


def duration(seconds: float, *, fine: bool = True) -> str:
    """Seconds as a short label: ``1.25 s``, ``803 ms``, ``4.1 ms`` (``n/a`` for NaN).

    From about a second up it is seconds with two decimals; below, whole milliseconds, and
    under 0.1 s one decimal more unless ``fine=False`` (a live display that should not jitter).
    """
    if math.isnan(seconds):
        return "n/a"
    if abs(seconds) >= 0.9995:
        return f"{seconds:.2f} s"
    if fine and abs(seconds) < 0.0995:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e3:.0f} ms"
