"""One-dimensional minimiser the calibration scripts fit their parameters with."""

from __future__ import annotations

import math
from collections.abc import Callable


def golden(f: Callable[[float], float], lo: float, hi: float, iterations: int = 100) -> float:
    """Minimiser of a unimodal f on [lo, hi] by golden-section search (`iterations` steps)."""
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    for _ in range(iterations):
        c, d = b - g * (b - a), a + g * (b - a)
        if f(c) < f(d):
            b = d
        else:
            a = c
    return 0.5 * (a + b)
