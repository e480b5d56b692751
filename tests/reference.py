"""Slow, obviously-correct twins of the numba kernels and closed forms, for comparison tests.

Each section belongs to one engine or module; keep them plain Python/numpy loops.
"""

from __future__ import annotations

import math

# --- systolic ----------------------------------------------------------------------------


def systolic_cycles_reference(
    sr: int, sc: int, t: int, rows: int, cols: int, dataflow: str
) -> int:
    """Walk the folds one by one: each fold fills, streams T, and drains the array."""
    total = 0
    for _ in range(math.ceil(sr / rows)):
        for _ in range(math.ceil(sc / cols)):
            fill = rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2
            total += t + fill
    return total - 1
