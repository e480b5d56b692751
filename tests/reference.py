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



def double_buffered_cycles_reference(folds: int, t: int, rows: int, cols: int,
                                     dataflow: str) -> int:
    """A double-buffered array fold by fold: a fold streams T cycles once its stationary tile is
    in (the first one takes `rows` cycles to shift in, none for OS); the next tile (or, for OS,
    the swap of the output registers) takes `rows` cycles and overlaps the current fold; the
    skew of the last fold drains at the end."""
    tile_ready = 0 if dataflow == "os" else rows
    start = 0
    for _ in range(folds):
        start = max(start, tile_ready)
        tile_ready = start + rows
        last_start, start = start, start + t
    return last_start + t + rows + cols - 3


def packed_folds_reference(groups: int, sr: int, sc: int, rows: int, cols: int) -> int:
    """Folds when groups are placed one after another on the array's diagonal blocks (each
    sr x sc), a new fold starting when the next block would not fit."""
    if sr > rows or sc > cols:
        return groups * math.ceil(sr / rows) * math.ceil(sc / cols)
    folds, used_rows, used_cols = 0, rows, cols
    for _ in range(groups):
        if used_rows + sr > rows or used_cols + sc > cols:
            folds, used_rows, used_cols = folds + 1, 0, 0
        used_rows, used_cols = used_rows + sr, used_cols + sc
    return folds

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


# --- zero_skip ---------------------------------------------------------------------------


def lane_cycles_reference(work, pass_ends, fifo_depth: int, issue_cycles: int) -> tuple[int, int]:
    """Simulate the dispatcher, per-lane FIFOs and lanes one cycle at a time.

    Each cycle: idle lanes take their next queued item (a zero-work item is done at once);
    the dispatcher issues items while allowed (issue interval, room in every FIFO counting the
    item in progress, all lanes empty after a pass end); then every busy lane works one cycle.
    `fifo_depth` < 0 means unbounded FIFOs. Returns (cycles, busy lane-cycles).
    """
    from collections import deque

    n_items = len(work)
    lanes = len(work[0]) if n_items else 0
    queues = [deque() for _ in range(lanes)]
    left = [0] * lanes
    ends = set(int(x) for x in pass_ends)
    busy = sum(int(x) for row in work for x in row)
    next_item, next_issue, after_pass, t = 0, 0, False, 0

    def take() -> None:
        for lane in range(lanes):
            while left[lane] == 0 and queues[lane]:
                left[lane] = queues[lane].popleft()

    def held(lane: int) -> int:
        return len(queues[lane]) + (1 if left[lane] > 0 else 0)

    while True:
        take()
        while next_item < n_items and t >= next_issue:
            empty = all(held(lane) == 0 for lane in range(lanes))
            if after_pass and not empty:
                break
            if fifo_depth > 0 and any(held(lane) >= fifo_depth for lane in range(lanes)):
                break
            for lane in range(lanes):
                queues[lane].append(int(work[next_item][lane]))
            after_pass = next_item in ends
            next_issue = t + issue_cycles
            next_item += 1
            take()
        if next_item == n_items and t >= next_issue and all(held(x) == 0 for x in range(lanes)):
            return t, busy
        for lane in range(lanes):
            if left[lane] > 0:
                left[lane] -= 1
        t += 1


def _out_size(extent: int, k: int, stride: int, pad: int, dil: int) -> int:
    return (extent + pad - dil * (k - 1) - 1) // stride + 1


def conv_geometry(act, weight, stride, padding, dilation):
    """(E, F) of a convolution of act [N, C, H, W] with weight [K, Cg, R, S]."""
    return (_out_size(act.shape[2], weight.shape[2], stride[0], padding[0] + padding[1], dilation[0]),
            _out_size(act.shape[3], weight.shape[3], stride[1], padding[2] + padding[3], dilation[1]))


def mac_pairs_reference(act, weight, groups, stride, padding, dilation):
    """Walk every MAC of the convolution: (dense, act non-zero, weight non-zero, both, padding)."""
    n_, c_, h_, w_ = act.shape
    k_, cg, r_, s_ = weight.shape
    e_, f_ = conv_geometry(act, weight, stride, padding, dilation)
    kg = k_ // groups
    dense = a_nz = w_nz = both = pad = 0
    for n in range(n_):
        for k in range(k_):
            g = k // kg
            for e in range(e_):
                for f in range(f_):
                    for c in range(cg):
                        for r in range(r_):
                            for s in range(s_):
                                h = e * stride[0] - padding[0] + r * dilation[0]
                                w = f * stride[1] - padding[2] + s * dilation[1]
                                inside = 0 <= h < h_ and 0 <= w < w_
                                a = inside and bool(act[n, g * cg + c, h, w])
                                wt = bool(weight[k, c, r, s])
                                dense += 1
                                a_nz += a
                                w_nz += wt and inside
                                both += a and wt
                                pad += not inside
    return dense, a_nz, w_nz, both, pad


def channel_lanes_reference(act, k_filters, r_, s_, groups, stride, padding, dilation, lanes,
                            brick, filters_per_pass, skip_act, barrier_pass, fifo_depth, issue):
    """Cnvlutin lanes: list every window's bricks, deal them to lanes, then time them."""
    n_, c_, h_, w_ = act.shape
    cg = c_ // groups
    kg = k_filters // groups
    e_ = _out_size(h_, r_, stride[0], padding[0] + padding[1], dilation[0])
    f_ = _out_size(w_, s_, stride[1], padding[2] + padding[3], dilation[1])
    n_cb = math.ceil(cg / brick)
    rows, ends = [], []
    for g in range(groups):
        for _ in range(math.ceil(kg / filters_per_pass)):
            for n in range(n_):
                for e in range(e_):
                    for f in range(f_):
                        bricks = []
                        for r in range(r_):
                            for s in range(s_):
                                h = e * stride[0] - padding[0] + r * dilation[0]
                                w = f * stride[1] - padding[2] + s * dilation[1]
                                for cb in range(n_cb):
                                    chans = range(cb * brick, min(cg, (cb + 1) * brick))
                                    if not skip_act:
                                        bricks.append(len(chans))
                                    elif 0 <= h < h_ and 0 <= w < w_:
                                        bricks.append(sum(int(act[n, g * cg + c, h, w])
                                                          for c in chans))
                                    else:
                                        bricks.append(0)
                        for i in range(0, len(bricks), lanes):
                            chunk = bricks[i:i + lanes]
                            rows.append(chunk + [0] * (lanes - len(chunk)))
                        if barrier_pass:
                            ends.append(len(rows) - 1)
    return lane_cycles_reference(rows, ends, fifo_depth, issue)


def _near_equal_tiles(extent: int, parts: int) -> list[int]:
    """Tile index of each coordinate for `parts` near-equal contiguous tiles."""
    return [next(i for i in range(parts) if (i * extent) // parts <= x < ((i + 1) * extent) // parts)
            for x in range(extent)]


def planar_cartesian_reference(act, weight, groups, stride, padding, dilation, pe_rows, pe_cols,
                               mult_f, mult_i, accumulator_entries, skip_act, skip_weight,
                               barrier_pass, fifo_depth, issue):
    """SCNN PEs: size Kc from the bounding box of outputs each PE's tile reaches, then per
    output group and channel pair weights and activations of equal stride phase, F x I at a
    time. Returns (cycles, busy, products)."""
    n_, c_, h_, w_ = act.shape
    k_, cg, r_, s_ = weight.shape
    kg = k_ // groups
    e_, f_ = conv_geometry(act, weight, stride, padding, dilation)
    if w_ == 1:
        pe_rows, pe_cols = pe_rows * pe_cols, 1
    tile_h, tile_w = _near_equal_tiles(h_, pe_rows), _near_equal_tiles(w_, pe_cols)
    pes = pe_rows * pe_cols
    span = []
    for p in range(pes):
        rows = [h for h in range(h_) if tile_h[h] == p // pe_cols]
        cols = [w for w in range(w_) if tile_w[w] == p % pe_cols]
        if not rows or not cols:
            span.append(0)
            continue

        def axis(lo, hi, out, st, pad, dil, k):
            first = max(0, -(-(lo + pad - (k - 1) * dil) // st))
            last = min(out - 1, (hi + pad) // st)
            return max(0, last - first + 1)

        span.append(axis(rows[0], rows[-1], e_, stride[0], padding[0], dilation[0], r_)
                    * axis(cols[0], cols[-1], f_, stride[1], padding[2], dilation[1], s_))
    most = max(span)
    kc = kg if most == 0 else max(1, min(kg, accumulator_entries // most))
    work, ends, products = [], [], 0
    for g in range(groups):
        for n in range(n_):
            for k0 in range(0, kg, kc):
                for c in range(cg):
                    row = [0] * pes
                    for p in range(pes):
                        for ph_r in range(stride[0]):
                            for ph_s in range(stride[1]):
                                nw = sum(1 for k in range(k0, min(kg, k0 + kc))
                                         for r in range(r_) for s in range(s_)
                                         if (r * dilation[0]) % stride[0] == ph_r
                                         and (s * dilation[1]) % stride[1] == ph_s
                                         and (weight[g * kg + k, c, r, s] or not skip_weight))
                                na = sum(1 for h in range(h_) for w in range(w_)
                                         if tile_h[h] * pe_cols + tile_w[w] == p
                                         and (h + padding[0]) % stride[0] == ph_r
                                         and (w + padding[2]) % stride[1] == ph_s
                                         and (act[n, g * cg + c, h, w] or not skip_act))
                                if nw and na:
                                    row[p] += math.ceil(nw / mult_f) * math.ceil(na / mult_i)
                                    products += nw * na
                    work.append(row)
                if barrier_pass:
                    ends.append(len(work) - 1)
    cycles, busy = lane_cycles_reference(work, ends, fifo_depth, issue)
    return cycles, busy, products


def row_broadcast_reference(act, weight, groups, stride, padding, dilation, lanes, skip_act,
                            skip_weight, barrier_pass, fifo_depth, issue):
    """EIE PEs: for every output pixel broadcast its window's (non-zero) activations; PE l
    works once per (non-zero) weight of the filters k = l mod lanes of the group."""
    n_, c_, h_, w_ = act.shape
    k_, cg, r_, s_ = weight.shape
    kg = k_ // groups
    e_, f_ = conv_geometry(act, weight, stride, padding, dilation)
    work, ends = [], []
    for g in range(groups):
        for n in range(n_):
            for e in range(e_):
                for f in range(f_):
                    for c in range(cg):
                        for r in range(r_):
                            for s in range(s_):
                                h = e * stride[0] - padding[0] + r * dilation[0]
                                w = f * stride[1] - padding[2] + s * dilation[1]
                                inside = 0 <= h < h_ and 0 <= w < w_
                                if skip_act and not (inside and act[n, g * cg + c, h, w]):
                                    continue
                                row = [0] * lanes
                                for k in range(kg):
                                    if weight[g * kg + k, c, r, s] or not skip_weight:
                                        row[k % lanes] += 1
                                work.append(row)
                    if barrier_pass and work:
                        ends.append(len(work) - 1)
    return lane_cycles_reference(work, ends, fifo_depth, issue)


def transposed_bytes_reference(rows) -> list[list[int]]:
    """The transpose of a 2-D map as nested lists: out[j][i] = rows[i][j]."""
    m, k = len(rows), len(rows[0]) if len(rows) else 0
    return [[int(rows[i][j]) for i in range(m)] for j in range(k)]


def rle_entries_reference(flat, run_bits: int, segment: int | None) -> int:
    """Encode a 0/1 sequence as (run, value) pairs, segment by segment: before each non-zero,
    filler pairs (a full run of 2**run_bits - 1 zeros then an explicit zero) until the run
    fits; trailing zeros of a segment need no pair. Returns the number of pairs."""
    seg = max(len(flat), 1) if segment is None else segment
    longest = 2 ** run_bits - 1
    pairs = 0
    for start in range(0, len(flat), seg):
        run = 0
        for x in flat[start:start + seg]:
            if not x:
                run += 1
                continue
            while run > longest:
                pairs += 1
                run -= longest + 1
            pairs += 1
            run = 0
    return pairs


_U64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64_reference(z: int) -> int:
    """splitmix64's finaliser on Python ints."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
    return z ^ (z >> 31)


def iid_mask_reference(size: int, count: int, seed: int) -> list[bool]:
    """`bitmaps.iid_count_mask` as its docstring states it: entry i is set when the 16-bit lane
    i % 4 of the hash of (i // 4 + 1) golden steps past base is below the threshold
    round(count * 65536 / size); then probe k (k = 1, 2, ...) at floor(hash * size / 2**64)
    clears a set entry while too many are set, or sets a clear one while too few are."""
    threshold = round(count * 65536 / size)
    base = _mix64_reference(seed)
    out = []
    for i in range(size):
        h = _mix64_reference((base + (i // 4 + 1) * _GOLDEN) & _U64)
        out.append((h >> (16 * (i % 4))) & 0xFFFF < threshold)
    probe = _mix64_reference(base ^ 0xD1B54A32D192ED03)
    k, n = 1, sum(out)
    while n != count:
        i = (_mix64_reference((probe + k * _GOLDEN) & _U64) * size) >> 64
        k += 1
        if n > count and out[i]:
            out[i], n = False, n - 1
        elif n < count and not out[i]:
            out[i], n = True, n + 1
    return out


def tap_nonzero_reference(act, r_: int, s_: int, stride, padding, dilation) -> list:
    """nz[c][r][s]: walk every (image, output pixel, tap) and count those on a non-zero."""
    n_, c_, h_, w_ = act.shape
    e_ = _out_size(h_, r_, stride[0], padding[0] + padding[1], dilation[0])
    f_ = _out_size(w_, s_, stride[1], padding[2] + padding[3], dilation[1])
    nz = [[[0] * s_ for _ in range(r_)] for _ in range(c_)]
    for n in range(n_):
        for c in range(c_):
            for e in range(e_):
                for f in range(f_):
                    for r in range(r_):
                        for s in range(s_):
                            h = e * stride[0] - padding[0] + r * dilation[0]
                            w = f * stride[1] - padding[2] + s * dilation[1]
                            if 0 <= h < h_ and 0 <= w < w_ and act[n, c, h, w]:
                                nz[c][r][s] += 1
    return nz


def channel_counts_reference(act) -> list[int]:
    """Non-zeros per channel of an [N, C, H, W] map, walked element by element."""
    n_, c_, h_, w_ = act.shape
    return [sum(int(act[n, c, h, w]) for n in range(n_) for h in range(h_) for w in range(w_))
            for c in range(c_)]


def brick_counts_reference(act, groups: int, brick: int) -> list:
    """out[g][n][cb][h][w]: non-zeros among the channels of brick cb of group g at (h, w)."""
    n_, c_, h_, w_ = act.shape
    cg = c_ // groups
    n_cb = math.ceil(cg / brick)
    return [[[[[sum(int(act[n, g * cg + c, h, w])
                    for c in range(cb * brick, min(cg, (cb + 1) * brick)))
                for w in range(w_)] for h in range(h_)] for cb in range(n_cb)]
             for n in range(n_)] for g in range(groups)]


def lockstep_pixel_cycles_reference(act, groups: int, brick: int, lanes: int,
                                    issue: int) -> int:
    """Every pixel's bricks dealt to lockstep lanes, `lanes` at a time: each item lasts its
    fullest brick, or `issue` cycles if longer."""
    counts = brick_counts_reference(act, groups, brick)
    n_, _, h_, w_ = act.shape
    total = 0
    for g in range(groups):
        for n in range(n_):
            bricks = counts[g][n]
            for h in range(h_):
                for w in range(w_):
                    at_pixel = [b[h][w] for b in bricks]
                    for i in range(0, len(at_pixel), lanes):
                        total += max([issue, *at_pixel[i:i + lanes]])
    return total


def planar_counts_reference(act, key, width: int) -> list:
    """out[n][c][k]: non-zeros of image n, channel c at the pixels whose key is k."""
    n_, c_, h_, w_ = act.shape
    out = [[[0] * width for _ in range(c_)] for _ in range(n_)]
    for n in range(n_):
        for c in range(c_):
            for h in range(h_):
                for w in range(w_):
                    out[n][c][int(key[h * w_ + w])] += int(act[n, c, h, w])
    return out


def weight_counts_reference(weight, groups: int, lanes: int, kc: int, phase) -> tuple:
    """Walk every weight of a [K, C/groups, R, S] map: (non-zeros per (channel, r, s) over its
    group's filters, per (group, c, r, s, PE k mod lanes), per (group, k // kc, c, phase))."""
    k_, cg, r_, s_ = weight.shape
    kg = k_ // groups
    n_phases = max(int(x) for x in phase) + 1
    taps, lane, planar = {}, {}, {}
    for k in range(k_):
        g, kk = divmod(k, kg)
        for c in range(cg):
            for r in range(r_):
                for s in range(s_):
                    x = int(weight[k, c, r, s])
                    key = (g * cg + c, r, s)
                    taps[key] = taps.get(key, 0) + x
                    key = (g, c, r, s, kk % lanes)
                    lane[key] = lane.get(key, 0) + x
                    key = (g, kk // kc, c, int(phase[r * s_ + s]))
                    planar[key] = planar.get(key, 0) + x
    tap_list = [[[taps[(c, r, s)] for s in range(s_)] for r in range(r_)]
                for c in range(groups * cg)]
    lane_list = [[[[[lane.get((g, c, r, s, x), 0) for x in range(lanes)] for s in range(s_)]
                   for r in range(r_)] for c in range(cg)] for g in range(groups)]
    planar_list = [[[[planar.get((g, q, c, p), 0) for p in range(n_phases)] for c in range(cg)]
                    for q in range(math.ceil(kg / kc))] for g in range(groups)]
    return tap_list, lane_list, planar_list


# --- gpu and sparse tensor core -----------------------------------------------------------


def im2col_mask_reference(nonzero, shape) -> list:
    """A of a layer, element by element: per group a list of M rows, each a list of the K
    entries in (r, s, c) order (channels fastest); padding positions are False.
    Linear/matmul: the [batch, M, K] input itself."""
    from accelsim.workload.layer import ConvShape

    if not isinstance(shape, ConvShape):
        arr = nonzero.reshape(-1, shape.M, shape.K)
        return [[[bool(arr[g, i, k]) for k in range(shape.K)] for i in range(shape.M)]
                for g in range(arr.shape[0])]
    s = shape
    top, _, left, _ = s.padding
    cg = s.C // s.groups
    groups = []
    for g in range(s.groups):
        rows = []
        for n in range(s.N):
            for e in range(s.E):
                for f in range(s.F):
                    row = []
                    for r in range(s.R):
                        for q in range(s.S):
                            h = e * s.stride[0] + r * s.dilation[0] - top
                            w = f * s.stride[1] + q * s.dilation[1] - left
                            for c in range(cg):
                                inside = 0 <= h < s.H and 0 <= w < s.W
                                row.append(bool(nonzero[n, g * cg + c, h, w]) if inside else False)
                    rows.append(row)
        groups.append(rows)
    return groups


def a_stats_reference(groups: list, chunk: int, n: int, m: int, block_rows: int,
                      block_cols: int, tile_rows: int) -> dict:
    """Statistics of A by explicit loops. Each row is cut into chunks of `chunk` columns (one
    (r, s) position of a conv, or the whole K of a linear layer); m-groups and block columns
    start afresh in every chunk (a partial last one padded with zeros)."""
    nnz = total = ok_groups = all_groups = busy_blocks = all_blocks = busy_union = all_union = 0
    for rows in groups:
        cols = len(rows[0]) if rows else 0
        for c0 in range(0, cols, chunk):
            width = min(chunk, cols - c0)
            for row in rows:
                for g0 in range(0, width, m):
                    count = sum(row[c0 + j] for j in range(g0, min(g0 + m, width)))
                    ok_groups += count <= n
                    all_groups += 1
            for r0 in range(0, len(rows), block_rows):
                for b0 in range(0, width, block_cols):
                    busy = any(rows[i][c0 + j]
                               for i in range(r0, min(r0 + block_rows, len(rows)))
                               for j in range(b0, min(b0 + block_cols, width)))
                    busy_blocks += busy
                    all_blocks += 1
            for t0 in range(0, len(rows), tile_rows):
                for j in range(width):
                    busy_union += any(rows[i][c0 + j]
                                      for i in range(t0, min(t0 + tile_rows, len(rows))))
                    all_union += 1
        for row in rows:
            nnz += sum(row)
            total += len(row)
    return {"nonzeros": nnz, "elements": total, "nm_conformance": ok_groups / all_groups,
            "block_density": busy_blocks / all_blocks, "union_density": busy_union / all_union}


def crossing_reference(time_of, target_s: float, points: int = 20001) -> float:
    """Largest grid point x in (0, 1] with time_of(x) <= target_s (NaN if none)."""
    best = math.nan
    for i in range(1, points):
        x = i / (points - 1)
        if time_of(x) <= target_s:
            best = x
    return best


def nm_compressed_bits_reference(rows: list, n: int, m: int, metadata_bits: int,
                                 element_bits: int) -> int:
    """Build the N:M compressed form group by group: n value slots (zero-filled when a group
    has fewer non-zeros) and one metadata index per slot; count its bits."""
    bits = 0
    for row in rows:
        for g0 in range(0, len(row), m):
            kept = [v for v in row[g0:g0 + m] if v][:n]
            slots = kept + [0] * (n - len(kept))
            bits += len(slots) * (element_bits + metadata_bits)
    return bits


def conv_output_reference(x, weight, shape):
    """Direct convolution by loops (or a plain matrix product for linear), in float64."""
    import numpy as np

    from accelsim.workload.layer import ConvShape

    if not isinstance(shape, ConvShape):
        return np.asarray(x, np.float64) @ np.asarray(weight, np.float64)
    s = shape
    top, _, left, _ = s.padding
    cg, kg = s.C // s.groups, s.K // s.groups
    out = np.zeros((s.N, s.K, s.E, s.F))
    for nn in range(s.N):
        for k in range(s.K):
            g = k // kg
            for e in range(s.E):
                for f in range(s.F):
                    acc = 0.0
                    for c in range(cg):
                        for r in range(s.R):
                            for q in range(s.S):
                                h = e * s.stride[0] + r * s.dilation[0] - top
                                w = f * s.stride[1] + q * s.dilation[1] - left
                                if 0 <= h < s.H and 0 <= w < s.W:
                                    acc += float(x[nn, g * cg + c, h, w]) * float(weight[k, c, r, q])
                    out[nn, k, e, f] = acc
    return out


def prune_channels_reference(x, n: int, m: int):
    """Keep the n largest |x| of every m consecutive channels at each pixel (conv [N, C, H, W])
    or of every m consecutive features of each row (linear [..., K]); ties keep the lower index."""
    import numpy as np

    out = np.array(x, copy=True)
    if out.ndim == 4:
        N, C, H, W = out.shape
        for a in range(N):
            for h in range(H):
                for w in range(W):
                    for c0 in range(0, C, m):
                        idx = sorted(range(c0, min(c0 + m, C)),
                                     key=lambda c, a=a, h=h, w=w: (-abs(float(x[a, c, h, w])), c))
                        for c in idx[n:]:
                            out[a, c, h, w] = 0
        return out
    flat = out.reshape(-1, out.shape[-1])
    src = np.asarray(x).reshape(-1, out.shape[-1])
    for i in range(flat.shape[0]):
        for c0 in range(0, flat.shape[1], m):
            idx = sorted(range(c0, min(c0 + m, flat.shape[1])),
                         key=lambda c, i=i: (-abs(float(src[i, c])), c))
            for c in idx[n:]:
                flat[i, c] = 0
    return out


# --- neuromorphic --------------------------------------------------------------------------


def synops_reference(nz, shape, out_rows: tuple[int, int] | None = None) -> int:
    """Walk every event (n, c, h, w) and every kernel tap (r, s) of every filter of its group;
    count the taps whose output pixel lies inside the output plane (and, when given, inside
    output rows [e0, e1))."""
    s = shape
    e0, e1 = out_rows if out_rows is not None else (0, s.E)
    per_group = s.K // s.groups
    count = 0
    n_, c_, h_, w_ = nz.shape
    for n in range(n_):
        for c in range(c_):
            for h in range(h_):
                for w in range(w_):
                    if not nz[n, c, h, w]:
                        continue
                    for r in range(s.R):
                        num_h = h + s.padding[0] - r * s.dilation[0]
                        if num_h < 0 or num_h % s.stride[0]:
                            continue
                        e = num_h // s.stride[0]
                        if not e0 <= e < e1:
                            continue
                        for t in range(s.S):
                            num_w = w + s.padding[2] - t * s.dilation[1]
                            if num_w < 0 or num_w % s.stride[1]:
                                continue
                            if num_w // s.stride[1] < s.F:
                                count += per_group
    return count


def events_reference(values, act_bits: int) -> int:
    """Quantise each value to act_bits with a max-calibrated per-layer scale (sign + magnitude
    when any value is negative) and count the non-zero codes."""
    flat = [float(v) for v in values.ravel()]
    top = max((abs(v) for v in flat), default=0.0)
    if top == 0:
        return 0
    levels = max(1, 2 ** (act_bits - 1) - 1) if any(v < 0 for v in flat) else 2 ** act_bits - 1
    scale = top / levels
    return sum(1 for v in flat if math.floor(abs(v) / scale + 0.5) >= 1)


# --- N:M conformance along the reduction axis (workload.stats, shared_gemm_operand) --------


def nm_reference(nonzero, shape, n: int, m: int) -> tuple[float | None, float | None]:
    """(conformance, excess) of a layer's non-zero map by explicit loops.

    The segments are listed one by one: linear/matmul, each token's K-vector; conv2d, for each
    input pixel that some (output position, tap) pair lands on (each pixel once, padding
    positions never), the C/groups channels of each conv group. m-groups start at each
    segment's first element, the last one holds what is left. Conformance: share of groups
    with at most n non-zeros (1.0 when there is no segment); excess: share of the segments'
    non-zeros beyond n per group (0.0 without non-zeros). (None, None) when a segment is
    shorter than m.
    """
    from accelsim.workload.layer import ConvShape

    length = shape.C // shape.groups if isinstance(shape, ConvShape) else shape.K
    if length < m:
        return None, None
    segments = []
    if isinstance(shape, ConvShape):
        s = shape
        cg = length
        top, _, left, _ = s.padding
        read = set()
        for e in range(s.E):
            for f in range(s.F):
                for r in range(s.R):
                    for q in range(s.S):
                        h = e * s.stride[0] + r * s.dilation[0] - top
                        w = f * s.stride[1] + q * s.dilation[1] - left
                        if 0 <= h < s.H and 0 <= w < s.W:
                            read.add((h, w))
        for b in range(s.N):
            for h, w in sorted(read):
                for g in range(s.groups):
                    segments.append([bool(nonzero[b, g * cg + c, h, w]) for c in range(cg)])
    else:
        segments = [[bool(v) for v in row] for row in nonzero.reshape(-1, shape.K)]
    ok = groups = over = total = 0
    for seg in segments:
        total += sum(seg)
        for start in range(0, length, m):
            count = sum(seg[start:start + m])
            groups += 1
            ok += count <= n
            over += max(0, count - n)
    return (ok / groups if groups else 1.0), (over / total if total else 0.0)


# --- energy: SRAM prices ------------------------------------------------------------------


def sram_curve_reference(points: dict, size_bytes: float) -> float:
    """pJ per 64-bit access of one SRAM array, straight-line between the two sourced sizes
    around `size_bytes` on log-log axes (the size must lie within the points)."""
    pts = sorted((float(k), float(v)) for k, v in points.items())
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        if s0 <= size_bytes <= s1:
            fraction = (math.log(size_bytes) - math.log(s0)) / (math.log(s1) - math.log(s0))
            return math.exp(math.log(e0) + fraction * (math.log(e1) - math.log(e0)))
    if len(pts) == 1 and size_bytes == pts[0][0]:
        return pts[0][1]
    raise ValueError(f"{size_bytes} B is outside the sourced sizes {pts}")


def htree_paths_reference(banks: int) -> tuple[int, int, list[float]]:
    """Lay out `banks` unit-square banks as a macro grown by doubling (width first, then height,
    until it holds them), then walk an H-tree from the macro's centre, halving the region along
    its longer side at each branch. Returns (columns, rows, root-to-bank path length of every
    bank position, in bank sides)."""
    width, height = 1, 1
    while width * height < banks:
        if width == height:
            width *= 2
        else:
            height *= 2
    leaves: dict[tuple[float, float], float] = {}

    def walk(x0: float, y0: float, w: float, h: float, length: float) -> None:
        cx, cy = x0 + w / 2, y0 + h / 2
        if w == 1 and h == 1:
            leaves[(cx, cy)] = length
            return
        if w >= h:
            halves = [(x0, y0, w / 2, h), (x0 + w / 2, y0, w / 2, h)]
        else:
            halves = [(x0, y0, w, h / 2), (x0, y0 + h / 2, w, h / 2)]
        for hx, hy, hw, hh in halves:
            segment = abs(hx + hw / 2 - cx) + abs(hy + hh / 2 - cy)
            walk(hx, hy, hw, hh, length + segment)

    walk(0.0, 0.0, float(width), float(height), 0.0)
    assert len(leaves) == width * height, "every bank position is reached once"
    return width, height, list(leaves.values())


def banked_sram_pj_per_byte_reference(size_bytes: int, points: dict, bank_bytes: int,
                                      bitcell_um2: float, array_efficiency: float,
                                      wire_pj_per_bit_mm: float, energy_factor: float = 1.0,
                                      side_scale: float = 1.0) -> float:
    """pJ per byte of one access to an SRAM built from banks of `bank_bytes`: one bank access
    from the sourced curve plus 8 data bits per byte carried along the H-tree from the macro's
    centre to the bank (every bank must be equally far); the bank's side is its bit cells over
    the array efficiency, `side_scale` scales it to another node, `energy_factor` the energy."""
    banks = -(-size_bytes // bank_bytes)
    _, _, paths = htree_paths_reference(banks)
    assert max(paths) - min(paths) < 1e-9, "an H-tree reaches every bank over the same length"
    side_mm = math.sqrt(bank_bytes * 8 * bitcell_um2 / array_efficiency) / 1000.0 * side_scale
    bank_pj_per_byte = sram_curve_reference(points, bank_bytes) / 8
    wire_pj_per_byte = 8 * wire_pj_per_bit_mm * paths[0] * side_mm
    return (bank_pj_per_byte + wire_pj_per_byte) * energy_factor


def tiled_gemm_reference(M: int, N: int, K: float, groups: int, sms: int, tiles, split_k_max: int,
                         flops_per_s: float, k_half: float) -> dict:
    """Math seconds of every tiled-GEMM candidate (tile_m, tile_n, split) a GPU library may run:
    lay out the grid CTA by CTA, hand each CTA to the least-loaded SM (one at a time), and
    charge every SM its CTAs' whole-tile work; a split above 1 is only a candidate while
    split x tiles of one product fit on the SMs. Returns {(tile_m, tile_n, split): seconds}."""
    out = {}
    for tile_m, tile_n, efficiency in tiles:
        grid = math.ceil(M / tile_m) * math.ceil(N / tile_n)
        for split in range(1, split_k_max + 1):
            if split > 1 and grid * split > sms:
                continue
            k_slice = math.ceil(K / split)
            cta_s = 2 * tile_m * tile_n * (k_slice + k_half) / (flops_per_s / sms * efficiency)
            busy = [0.0] * sms
            for _ in range(groups * grid * split):
                busy[busy.index(min(busy))] += cta_s
            out[(tile_m, tile_n, split)] = max(busy)
    return out


def greedy_allocation_reference(sizes, zeros, macs, cost, target: float, step: float):
    """TEAL's greedy search recomputed from scratch at every step: try one step on every tensor
    that is not all zero, evaluating the cost before and after, and take the smallest rise per
    MAC-weighted zero added (the first tensor on ties); the step reaching the target zeroes
    only the count nearest it and ends the search. Returns (zeros, steps, costs)."""
    z, taken = list(zeros), [0] * len(sizes)
    total = float(sum(macs))

    def weighted() -> float:
        return sum(z[i] * (macs[i] / sizes[i]) for i in range(len(sizes)))

    while weighted() < target * total - 1e-12 * total:
        best = None
        for i in range(len(sizes)):
            if z[i] == sizes[i]:
                continue
            more = min(sizes[i], z[i] + max(1, math.floor(step * sizes[i] + 0.5)))
            after = cost(i, more)
            rise = math.inf if math.isinf(after) else (
                (after - cost(i, z[i])) / ((more - z[i]) * (macs[i] / sizes[i])))
            if best is None or rise < best[0]:
                best = (rise, i, more)
        if best is None:
            break
        _, i, more = best
        need = target * total - weighted()
        if (more - z[i]) * (macs[i] / sizes[i]) >= need - 1e-12 * total:
            more = z[i] + min(more - z[i], math.floor(need / (macs[i] / sizes[i]) + 0.5))
            taken[i] += more > z[i]
            z[i] = more
            break
        taken[i] += 1
        z[i] = more
    return z, taken, [cost(i, z[i]) for i in range(len(sizes))]


# --- neuromorphic quantisation: the trace's own scale and the percentile calibration -------


def events_scale_reference(values, scale: float) -> int:
    """Non-zero codes of `values` quantised with the trace's step `scale`, rounding half to even
    (Python's round), one value at a time."""
    return sum(1 for v in values.ravel() if round(float(v) / scale) != 0)


def events_percentile_reference(values, act_bits: int, percentile: float) -> int:
    """Non-zero codes with a per-layer scale from the `percentile` of the non-zero magnitudes:
    the magnitudes sorted, the percentile interpolated linearly between the two closest ranks
    (rank (n - 1) x percentile / 100), divided by the code's levels (sign + magnitude when a
    value is negative); a value is an event when |v| / scale rounds (half up) to at least 1."""
    flat = [float(v) for v in values.ravel()]
    mags = sorted(abs(v) for v in flat if v != 0)
    if not mags:
        return 0
    rank = (len(mags) - 1) * percentile / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(mags) - 1)
    top = mags[lo] + (mags[hi] - mags[lo]) * (rank - lo)
    levels = max(1, 2 ** (act_bits - 1) - 1) if any(v < 0 for v in flat) else 2 ** act_bits - 1
    scale = top / levels
    return sum(1 for v in flat if math.floor(abs(v) / scale + 0.5) >= 1)
