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


# --- workload stats and sparsify -----------------------------------------------------------


def keep_largest_mask_reference(values, seg_len: int, keep) -> list[list[bool]]:
    """Sort each segment by (-value, column) and keep the first keep[r] of row r."""
    rows, cols = len(values), len(values[0])
    out = [[False] * cols for _ in range(rows)]
    for r in range(rows):
        for start in range(0, cols, seg_len):
            cols_in_segment = range(start, min(start + seg_len, cols))
            ranked = sorted(cols_in_segment, key=lambda j, r=r: (-float(values[r][j]), j))
            for j in ranked[: max(0, int(keep[r]))]:
                out[r][j] = True
    return out


def reduction_rows_reference(act, op: str) -> list[list[float]]:
    """Rows of the reduction view built element by element: tokens' K-vectors (linear,
    matmul) or input pixels' C-vectors in (n, h, w) order (conv2d)."""
    if op == "conv2d":
        n_, c_, h_, w_ = act.shape
        return [[float(act[n, c, h, w]) for c in range(c_)]
                for n in range(n_) for h in range(h_) for w in range(w_)]
    flat = act.reshape(-1, act.shape[-1])
    return [[float(v) for v in row] for row in flat]


def layer_stats_reference(rows: list[list[float]], thresholds, has_values: bool) -> dict:
    """Every statistic of accelsim.workload.stats from explicit loops over rows and groups."""
    import numpy as np

    n_rows, length = len(rows), len(rows[0])
    elements = [v for row in rows for v in row]
    nonzero = [[v != 0.0 for v in row] for row in rows]
    out: dict = {}
    if has_values:
        max_abs = max(abs(v) for v in elements)
        out["max_abs"] = max_abs
        out["near_zero_tensor"] = {
            f"{t:g}": sum(abs(v) <= t * max_abs for v in elements) / len(elements)
            for t in thresholds
        }
        near_row = {}
        for t in thresholds:
            count = 0
            for row in rows:
                row_max = max(abs(v) for v in row)
                count += sum(abs(v) <= t * row_max for v in row)
            near_row[f"{t:g}"] = count / len(elements)
        out["near_zero_row"] = near_row

        def hoyer(vec):
            l1 = sum(abs(v) for v in vec)
            l2 = math.sqrt(sum(v * v for v in vec))
            if len(vec) < 2 or l2 == 0:
                return None
            return (math.sqrt(len(vec)) - l1 / l2) / (math.sqrt(len(vec)) - 1)

        out["hoyer"] = hoyer(elements)
        per_row = [h for h in (hoyer(row) for row in rows) if h is not None]
        out["hoyer_row_mean"] = sum(per_row) / len(per_row) if per_row else None
    conformance, excess = {}, {}
    total_nz = sum(sum(r) for r in nonzero)
    for n, m in ((1, 4), (2, 4), (2, 8)):
        ok = groups = over = 0
        for row in nonzero:
            for start in range(0, length, m):
                count = sum(row[start:start + m])
                groups += 1
                ok += count <= n
                over += max(0, count - n)
        conformance[f"{n}:{m}"] = ok / groups
        excess[f"{n}:{m}"] = over / total_nz if total_nz else 0.0
    out["nm_conformance"], out["nm_excess"] = conformance, excess
    dead = [c for c in range(length) if not any(row[c] for row in nonzero)]
    out["dead_channels"], out["dead_channel_ids"] = len(dead), dead
    density = [sum(row) / length for row in nonzero]
    out["row_density_percentiles"] = {
        f"p{p}": float(np.percentile(density, p)) for p in (5, 25, 50, 75, 95)
    }
    blocks = {}
    for bh, bw in ((1, 4), (4, 4), (16, 1)):
        filled = total = 0
        for r0 in range(0, n_rows, bh):
            for c0 in range(0, length, bw):
                total += 1
                filled += any(nonzero[r][c] for r in range(r0, min(r0 + bh, n_rows))
                              for c in range(c0, min(c0 + bw, length)))
        blocks[f"{bh}x{bw}"] = filled / total
    out["block_density"] = blocks
    return out


def conv2d_reference(x, w, stride, padding, dilation, groups: int):
    """Direct convolution by nested loops over output, filter and window (no bias).

    `x` [N, C, H, W] unpadded, `w` [K, C/groups, R, S], padding (top, bottom, left, right);
    positions outside the input read zero.
    """
    import numpy as np

    n_, c_, h_, w_ = x.shape
    k_, cg, r_, s_ = w.shape
    top, bottom, left, right = padding
    e_ = (h_ + top + bottom - dilation[0] * (r_ - 1) - 1) // stride[0] + 1
    f_ = (w_ + left + right - dilation[1] * (s_ - 1) - 1) // stride[1] + 1
    kg = k_ // groups
    out = np.zeros((n_, k_, e_, f_))
    for n in range(n_):
        for k in range(k_):
            g = k // kg
            for e in range(e_):
                for f in range(f_):
                    acc = 0.0
                    for c in range(cg):
                        for r in range(r_):
                            for s in range(s_):
                                h = e * stride[0] - top + r * dilation[0]
                                ww = f * stride[1] - left + s * dilation[1]
                                if 0 <= h < h_ and 0 <= ww < w_:
                                    acc += float(x[n, g * cg + c, h, ww]) * float(w[k, c, r, s])
                    out[n, k, e, f] = acc
    return out
