"""numba kernels for the what-if transforms (twins in tests/reference.py)."""

from __future__ import annotations

import numpy as np
from numba import njit

SMALL_SEGMENT = 32
"""Segments up to this length are ranked pairwise (no allocation); longer ones are sorted."""


@njit(cache=True)
def keep_largest_mask(values: np.ndarray, seg_len: int, keep: np.ndarray) -> np.ndarray:
    """Boolean mask keeping the `keep[r]` largest values of every segment of each row.

    `values` is a 2-D float array (magnitudes); each row is cut into segments of `seg_len`
    consecutive elements from column 0 (the last one may be shorter). In every segment of
    row r the `keep[r]` largest values are kept; among equal values the lower column wins,
    so exactly min(keep[r], segment length) elements are kept per segment (none if <= 0).
    """
    rows, cols = values.shape
    out = np.zeros((rows, cols), dtype=np.bool_)
    for r in range(rows):
        k = keep[r]
        if k <= 0:
            continue
        for start in range(0, cols, seg_len):
            stop = min(start + seg_len, cols)
            length = stop - start
            if k >= length:
                for j in range(start, stop):
                    out[r, j] = True
            elif length <= SMALL_SEGMENT:
                for j in range(start, stop):
                    v = values[r, j]
                    beaten_by = 0
                    for i in range(start, stop):
                        w = values[r, i]
                        if w > v or (w == v and i < j):
                            beaten_by += 1
                    out[r, j] = beaten_by < k
            else:
                pivot = np.sort(values[r, start:stop])[length - k]
                ties = k
                for j in range(start, stop):
                    if values[r, j] > pivot:
                        ties -= 1
                for j in range(start, stop):
                    v = values[r, j]
                    if v > pivot:
                        out[r, j] = True
                    elif v == pivot and ties > 0:
                        out[r, j] = True
                        ties -= 1
    return out
