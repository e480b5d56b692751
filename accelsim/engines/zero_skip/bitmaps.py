"""Numba passes over non-zero bitmaps: what the zero-skip dataflows count, read in one pass each
with no temporaries larger than their result (no im2col, no int64 index arrays).

* `nonzero_f16`: the non-zero map of float16 values (the bits without the sign are not zero);
* `iid_count_mask`: a uniformly random map with an exact number of non-zeros, from a
  counter-based hash (a coin per entry, then hashed probes that fix the count), in one
  sequential pass with no index array;
* `tap_nonzero`: per (channel, r, s) tap, the (image, output pixel) pairs reading a non-zero,
  from per-channel strided prefix sums (one pass over the map, then O(1) per tap and column);
* `column_counts`, `channel_counts`: non-zeros per column of a [rows, channels] map, per
  channel of any map;
* `brick_counts`, `planar_counts`: non-zeros per channel brick, per (image, channel, PE tile,
  stride phase);
* `weight_counts`, `lane_weight_counts`, `planar_weight_counts`: non-zero weights per tap, per
  (tap, lane) and per (output-channel group, channel, stride phase);
* `rle_pairs`: (run, value) pairs of a map read in C order of its (possibly strided) view;
* `transposed_bytes`: a transposed map copied to C order.

Each has a slow twin in `tests/reference.py`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_LOW32 = np.uint64(0xFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
"""2**64 / golden ratio, splitmix64's stream increment."""
_MIX_A = np.uint64(0xBF58476D1CE4E5B9)
_MIX_B = np.uint64(0x94D049BB133111EB)
_PROBE_SALT = np.uint64(0xD1B54A32D192ED03)
"""Separates the correction probes' stream from the coins' (any odd constant)."""


@njit(cache=True)
def nonzero_f16(bits, out) -> None:
    """out[i] = the float16 whose bit pattern is bits[i] is not zero (NaN counts as non-zero,
    as `x != 0` does); `bits` and `out` 1-D of the same size."""
    mask = np.uint16(0x7FFF)
    for i in range(bits.shape[0]):
        out[i] = (bits[i] & mask) != 0


@njit(cache=True)
def _mulhi(a, b):
    """High 64 bits of the 128-bit product of two uint64."""
    s32 = np.uint64(32)
    a_lo, a_hi = a & _LOW32, a >> s32
    b_lo, b_hi = b & _LOW32, b >> s32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    mid = (p0 >> s32) + (p1 & _LOW32) + (p2 & _LOW32)
    return a_hi * b_hi + (p1 >> s32) + (p2 >> s32) + (mid >> s32)


@njit(cache=True)
def _mix64(z):
    """splitmix64's finaliser (Steele, Lea, Flood, OOPSLA 2014): a bijective 64-bit hash whose
    outputs at successive multiples of the golden-ratio constant pass BigCrush."""
    z = (z ^ (z >> np.uint64(30))) * _MIX_A
    z = (z ^ (z >> np.uint64(27))) * _MIX_B
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def iid_count_mask(seed, count: int, threshold, out) -> None:
    """Set exactly `count` entries of `out` (1-D bool, every entry written) at a uniformly random
    subset, the others cleared.

    A coin per entry: entry i is set when its 16-bit lane of the hash `_mix64(base + (i // 4 +
    1) * golden)` is below `threshold` (of 65536; base = `_mix64(seed)`); then entries drawn by
    the hashed probes `_mulhi(_mix64(probe + k * golden), size)` are cleared (too many set) or
    set (too few) until exactly `count` are. No step tells one position from another, so the
    map's law is exchangeable, hence uniform over the maps with `count` non-zeros whatever the
    threshold (a threshold near count / size only keeps the corrections few)."""
    size = out.shape[0]
    base = _mix64(seed)
    lanes = np.uint64(0xFFFF)
    n = 0
    whole = size // 4
    for b in range(whole):
        h = _mix64(base + np.uint64(b + 1) * _GOLDEN)
        for j in range(4):
            coin = ((h >> np.uint64(16 * j)) & lanes) < threshold
            out[4 * b + j] = coin
            n += coin
    h = _mix64(base + np.uint64(whole + 1) * _GOLDEN)
    for j in range(size - 4 * whole):
        coin = ((h >> np.uint64(16 * j)) & lanes) < threshold
        out[4 * whole + j] = coin
        n += coin
    probe = _mix64(base ^ _PROBE_SALT)
    k = np.uint64(1)
    while n != count:
        i = _mulhi(_mix64(probe + k * _GOLDEN), np.uint64(size))
        k += np.uint64(1)
        if n > count and out[i]:
            out[i] = False
            n -= 1
        elif n < count and not out[i]:
            out[i] = True
            n += 1


@njit(cache=True)
def _first_last(out: int, stride: int, offset: int, extent: int):
    """(first, last) output positions o in [0, out) with o * stride + offset in [0, extent);
    last < first when there is none."""
    first = 0
    if offset < 0:
        first = (-offset + stride - 1) // stride
    last = out - 1
    top = extent - 1 - offset
    if top < 0:
        return 0, -1
    if top // stride < last:
        last = top // stride
    return first, last


@njit(cache=True)
def tap_nonzero(act, E: int, F: int, R: int, S: int, stride_h: int, stride_w: int,
                pad_top: int, pad_left: int, dil_h: int, dil_w: int):
    """nz[c, r, s]: (image, output pixel) pairs whose tap (r, s) lands on a non-zero of channel
    c, int64 [C, R, S]; act: C-contiguous uint8 [N, C, H, W] (0/1), or any integer map, whose
    values are then summed over the taps landing on them. The map is summed over images once;
    per channel, prefix sums along each stride's residue classes give every tap's rows (then
    columns) at once."""
    n_img, n_ch, H, W = act.shape
    plane = n_ch * H * W
    flat = act.reshape(n_img, plane)
    total = np.zeros(plane, np.int64)
    for n in range(n_img):
        for i in range(plane):
            total[i] += flat[n, i]
    per_ch = total.reshape(n_ch, H, W)
    nz = np.zeros((n_ch, R, S), np.int64)
    if H == 1 and W == 1 and E == 1 and F == 1 and R == 1 and S == 1:
        if pad_top == 0 and pad_left == 0:
            for c in range(n_ch):
                nz[c, 0, 0] = total[c]
        return nz
    col_hi = np.zeros(S, np.int64)
    col_lo = np.zeros(S, np.int64)
    col_ok = np.zeros(S, np.bool_)
    for s in range(S):
        f0, f1 = _first_last(F, stride_w, s * dil_w - pad_left, W)
        col_ok[s] = f1 >= f0
        col_hi[s] = f1 * stride_w + s * dil_w - pad_left
        col_lo[s] = f0 * stride_w + s * dil_w - pad_left - stride_w
    prefix = np.zeros((H, W), np.int64)
    rows = np.zeros((R, W), np.int64)
    for c in range(n_ch):
        for h in range(H):
            for w in range(W):
                prefix[h, w] = per_ch[c, h, w] + (prefix[h - stride_h, w] if h >= stride_h else 0)
        for r in range(R):
            e0, e1 = _first_last(E, stride_h, r * dil_h - pad_top, H)
            for w in range(W):
                rows[r, w] = 0
            if e1 < e0:
                continue
            hi = e1 * stride_h + r * dil_h - pad_top
            lo = e0 * stride_h + r * dil_h - pad_top - stride_h
            for w in range(W):
                rows[r, w] = prefix[hi, w] - (prefix[lo, w] if lo >= 0 else 0)
        for r in range(R):
            for w in range(stride_w, W):
                rows[r, w] += rows[r, w - stride_w]
            for s in range(S):
                if col_ok[s]:
                    lo = col_lo[s]
                    nz[c, r, s] = rows[r, col_hi[s]] - (rows[r, lo] if lo >= 0 else 0)
    return nz


@njit(cache=True)
def whole_word_bricks(pixels: int, channels: int, brick: int) -> bool:
    """Whether the bricks of a 1 x 1 map (`pixels` 1) with `channels` per group are whole
    8-byte words of at most 31 words, so `word_brick_count` can add them a word at a time."""
    return pixels == 1 and channels % 8 == 0 and brick % 8 == 0 and brick <= 248


@njit(cache=True)
def word_brick_count(words, first: int, end: int) -> int:
    """Non-zeros among bytes first .. end - 1 of a 0/1 byte map read as 8-byte `words` (first
    and end multiples of 8, at most 248 apart): the words added (no byte exceeds 31), then
    their bytes."""
    acc = np.uint64(0)
    for i in range(first // 8, end // 8):
        acc += words[i]
    return int((acc * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def brick_counts(act, groups: int, brick: int):
    """Non-zeros per brick: int32 [groups, N, bricks per group, H, W]; act C-contiguous uint8
    [N, C, H, W] (0/1), a brick `brick` consecutive channels of a group at one pixel."""
    n_img, n_ch, H, W = act.shape
    hw = H * W
    cg = n_ch // groups
    n_cb = (cg + brick - 1) // brick
    flat = act.reshape(n_img, n_ch, hw)
    by_channel = act.reshape(n_img, n_ch * hw)
    out = np.zeros((groups, n_img, n_cb, hw), np.int32)
    if whole_word_bricks(hw, cg, brick):
        words = act.reshape(-1).view(np.uint64)
        for n in range(n_img):
            for g in range(groups):
                for cb in range(n_cb):
                    first = n * n_ch + g * cg + cb * brick
                    end = n * n_ch + g * cg + min(cg, (cb + 1) * brick)
                    out[g, n, cb, 0] = word_brick_count(words, first, end)
        return out.reshape(groups, n_img, n_cb, H, W)
    for n in range(n_img):
        for g in range(groups):
            for cb in range(n_cb):
                first, end = g * cg + cb * brick, g * cg + min(cg, (cb + 1) * brick)
                if hw == 1:
                    acc = np.int32(0)
                    for c in range(first, end):
                        acc += np.int32(by_channel[n, c])
                    out[g, n, cb, 0] = acc
                    continue
                for c in range(first, end):
                    for i in range(hw):
                        out[g, n, cb, i] += flat[n, c, i]
    return out.reshape(groups, n_img, n_cb, H, W)


def planar_counts(act: np.ndarray, key: np.ndarray, width: int, channels_inner: bool,
                  dtype: type = np.int32) -> np.ndarray:
    """Non-zeros per (image, channel, key): `dtype` (int32 unless every count is known to fit
    a narrower type) [N, C, width]; act uint8 [N, C, H, W] (0/1, any strides), key int64
    [H * W] the column (stride phase x PE tile) of each pixel. With `channels_inner` (a
    transposed view of a [rows, channels] map) the channel axis is read innermost and the
    counts are gathered as [N, width, C] first; a C-contiguous map is read as rows of H * W
    pixels."""
    n_img, n_ch, H, W = act.shape
    if not channels_inner and act.flags.c_contiguous:
        rows = np.zeros((n_img * n_ch, width), dtype)
        _planar_row_counts(act.reshape(n_img * n_ch, H * W), key, rows)
        return rows.reshape(n_img, n_ch, width)
    if channels_inner:
        by_key = np.zeros((n_img, width, n_ch), dtype)
        _planar_counts_channels_inner(act, key, by_key)
        return by_key.transpose(0, 2, 1)
    out = np.zeros((n_img, n_ch, width), dtype)
    _planar_counts_strided(act, key, out)
    return out


@njit(cache=True)
def _planar_row_counts(flat, key, out) -> None:
    """Add the non-zeros per (row, key) of a C-contiguous uint8 [rows, H * W] map to `out`
    [rows, width]."""
    n_rows, hw = flat.shape
    for r in range(n_rows):
        counts = out[r]
        row = flat[r]
        for i in range(hw):
            counts[key[i]] += row[i]


@njit(cache=True)
def _planar_counts_channels_inner(act, key, by_key) -> None:
    """Add the non-zeros per (image, key, channel) of a map with any strides to `by_key`
    [N, width, C], the channel axis read innermost."""
    n_img, n_ch, H, W = act.shape
    for n in range(n_img):
        for h in range(H):
            for w in range(W):
                k = key[h * W + w]
                for c in range(n_ch):
                    by_key[n, k, c] += act[n, c, h, w]


@njit(cache=True)
def _planar_counts_strided(act, key, out) -> None:
    """Add the non-zeros per (image, channel, key) of a map with any strides to `out`
    [N, C, width]."""
    n_img, n_ch, H, W = act.shape
    for n in range(n_img):
        for c in range(n_ch):
            for h in range(H):
                for w in range(W):
                    out[n, c, key[h * W + w]] += act[n, c, h, w]


@njit(cache=True)
def column_counts(rows):
    """Non-zeros per column, int64 [C]; rows C-contiguous uint8 [n, C] (0/1)."""
    n_rows, n_cols = rows.shape
    out = np.zeros(n_cols, np.int64)
    for i in range(n_rows):
        for c in range(n_cols):
            out[c] += rows[i, c]
    return out


@njit(cache=True)
def channel_counts(act, channels_inner: bool):
    """Non-zeros per channel, int64 [C]; act uint8 [N, C, H, W] (0/1, any strides), read with
    the channel axis innermost when `channels_inner` (a transposed view of a [rows, channels]
    map) and outermost but one otherwise."""
    n_img, n_ch, H, W = act.shape
    out = np.zeros(n_ch, np.int64)
    if channels_inner:
        for n in range(n_img):
            for h in range(H):
                for w in range(W):
                    for c in range(n_ch):
                        out[c] += act[n, c, h, w]
    else:
        for n in range(n_img):
            for c in range(n_ch):
                for h in range(H):
                    for w in range(W):
                        out[c] += act[n, c, h, w]
    return out


def _filter_rows(weight: np.ndarray) -> np.ndarray:
    """A weight map [K, C/groups, R, S] as C-contiguous rows of one filter's taps [K, T]."""
    return np.ascontiguousarray(weight).reshape(weight.shape[0], -1)


def weight_counts(weight: np.ndarray, groups: int, filters_outer: bool) -> np.ndarray:
    """Non-zero weights over the filters of each (channel, r, s) tap's group: int64 [C, R, S];
    weight bool [K, C/groups, R, S]. `filters_outer` picks the loop order (the filter axis
    outermost for C-ordered weights, innermost for a transposed view)."""
    K, cg, R, S = weight.shape
    if filters_outer:
        starts = np.arange(0, K + 1, K // groups)
        sums = block_row_sums(_filter_rows(weight), starts)
        return sums.reshape(groups * cg, R, S).astype(np.int64)
    return _weight_counts_walk(weight, groups)


@njit(cache=True)
def block_row_sums(rows, starts):
    """Column sums of consecutive row blocks of a 0/1 map: int32 [blocks, T], block b the rows
    starts[b] to starts[b + 1] - 1 of `rows` bool or uint8 [n, T] (C-contiguous)."""
    n_blocks = starts.size - 1
    out = np.zeros((n_blocks, rows.shape[1]), np.int32)
    for b in range(n_blocks):
        acc = out[b]
        for k in range(starts[b], starts[b + 1]):
            row = rows[k]
            for j in range(row.size):
                acc[j] += row[j]
    return out


@njit(cache=True)
def _weight_counts_walk(weight, groups: int):
    """`weight_counts` of a map with any strides, the filter axis innermost."""
    K, cg, R, S = weight.shape
    kg = K // groups
    out = np.zeros((groups * cg, R, S), np.int64)
    for g in range(groups):
        for c in range(cg):
            for r in range(R):
                for s in range(S):
                    n = 0
                    for k in range(g * kg, (g + 1) * kg):
                        n += weight[k, c, r, s]
                    out[g * cg + c, r, s] = n
    return out


def lane_weight_counts(weight: np.ndarray, groups: int, lanes: int,
                       filters_outer: bool) -> np.ndarray:
    """Non-zero weights PE l holds for each tap, filter k of a group going to PE k mod lanes:
    int32 [groups, C/groups, R, S, lanes]; weight bool [K, C/groups, R, S]."""
    K, cg, R, S = weight.shape
    if filters_outer:
        sums = _lane_row_sums(_filter_rows(weight), groups, lanes)
        return np.ascontiguousarray(sums.reshape(groups, lanes, cg, R, S).transpose(0, 2, 3, 4, 1))
    return _lane_weight_counts_walk(weight, groups, lanes)


@njit(cache=True)
def _lane_row_sums(rows, groups: int, lanes: int):
    """Column sums of each group's rows k with k mod lanes = l (k counted within the group):
    int32 [groups, lanes, T]; rows bool or uint8 [groups * K/groups, T] (C-contiguous)."""
    kg = rows.shape[0] // groups
    out = np.zeros((groups, lanes, rows.shape[1]), np.int32)
    for g in range(groups):
        lane = 0
        for k in range(g * kg, (g + 1) * kg):
            acc = out[g, lane]
            row = rows[k]
            for j in range(row.size):
                acc[j] += row[j]
            lane = lane + 1 if lane + 1 < lanes else 0
    return out


@njit(cache=True)
def _lane_weight_counts_walk(weight, groups: int, lanes: int):
    """`lane_weight_counts` of a map with any strides, the filter axis innermost."""
    K, cg, R, S = weight.shape
    kg = K // groups
    out = np.zeros((groups, cg, R, S, lanes), np.int32)
    for g in range(groups):
        for c in range(cg):
            for r in range(R):
                for s in range(S):
                    acc = out[g, c, r, s]
                    for first in range(g * kg, (g + 1) * kg, lanes):
                        for lane in range(min(lanes, (g + 1) * kg - first)):
                            acc[lane] += weight[first + lane, c, r, s]
    return out


def planar_weight_counts(weight: np.ndarray, groups: int, kc: int, phase: np.ndarray,
                         n_phases: int, filters_outer: bool) -> np.ndarray:
    """Non-zero weights per (group, output-channel group of kc filters, channel, stride
    phase): int32 [groups, ceil(K/groups / kc), C/groups, phases]; weight bool
    [K, C/groups, R, S], phase int64 [R * S] the stride phase of each tap."""
    if not filters_outer:
        return _planar_weight_counts_walk(weight, groups, kc, phase, n_phases)
    return _planar_weight_rows(_filter_rows(weight), groups, kc, weight.shape[1], phase,
                               n_phases)


@njit(cache=True)
def _planar_weight_rows(rows, groups: int, kc: int, cg: int, phase, n_phases: int):
    """`planar_weight_counts` of a weight map given as C-contiguous rows of one filter's taps
    [K, C/groups * R * S] (bool or uint8): each output-channel group's rows summed, then its
    taps folded by stride phase."""
    kg = rows.shape[0] // groups
    n_kc = (kg + kc - 1) // kc
    taps = phase.size
    out = np.zeros((groups, n_kc, cg, n_phases), np.int32)
    per_tap = np.empty(rows.shape[1], np.int32)
    for g in range(groups):
        for q in range(n_kc):
            per_tap[:] = 0
            for k in range(g * kg + q * kc, min(g * kg + (q + 1) * kc, (g + 1) * kg)):
                row = rows[k]
                for j in range(row.size):
                    per_tap[j] += row[j]
            for c in range(cg):
                for t in range(taps):
                    out[g, q, c, phase[t]] += per_tap[c * taps + t]
    return out


@njit(cache=True)
def _planar_weight_counts_walk(weight, groups: int, kc: int, phase, n_phases: int):
    """`planar_weight_counts` of a map with any strides, the filter axis innermost."""
    K, cg, R, S = weight.shape
    kg = K // groups
    n_kc = (kg + kc - 1) // kc
    out = np.zeros((groups, n_kc, cg, n_phases), np.int32)
    for g in range(groups):
        for q in range(n_kc):
            first = g * kg + q * kc
            end = min(first + kc, (g + 1) * kg)
            for c in range(cg):
                for r in range(R):
                    for s in range(S):
                        n = 0
                        for k in range(first, end):
                            n += weight[k, c, r, s]
                        out[g, q, c, phase[r * S + s]] += n
    return out


@njit(cache=True)
def rle_pairs(flat, run_bits: int, segment: int) -> int:
    """(run, value) pairs encoding the 0/1 uint8 sequence `flat`, cut into segments of
    `segment` elements (-1: one segment): one pair per non-zero plus one filler per
    2**run_bits zeros before it within its segment. Without segments, runs of 8 non-zeros or
    8 zeros are taken a word at a time."""
    n = flat.shape[0]
    pairs = 0
    run = 0
    if segment < 0:
        words = n // 8
        packed = flat[:words * 8].view(np.uint64)
        ones = np.uint64(0x0101010101010101)
        zero = np.uint64(0)
        for k in range(words):
            word = packed[k]
            if word == ones:
                pairs += 8 + (run >> run_bits)
                run = 0
            elif word == zero:
                run += 8
            else:
                for i in range(k * 8, k * 8 + 8):
                    if flat[i]:
                        pairs += 1 + (run >> run_bits)
                        run = 0
                    else:
                        run += 1
        for i in range(words * 8, n):
            if flat[i]:
                pairs += 1 + (run >> run_bits)
                run = 0
            else:
                run += 1
        return pairs
    pos = 0
    for i in range(n):
        if flat[i]:
            pairs += 1 + (run >> run_bits)
            run = 0
        else:
            run += 1
        pos += 1
        if pos == segment:
            pos = 0
            run = 0
    return pairs


_BLOCK_MASKS = (np.uint64(0x00000000FFFFFFFF), np.uint64(0x0000FFFF0000FFFF),
                np.uint64(0x00FF00FF00FF00FF))


@njit(cache=True)
def _transpose_8x8(w) -> None:
    """Transpose in place the 8 x 8 bytes held by 8 uint64 words (byte c of word r, least
    significant first, becomes byte r of word c): blocks of 4, 2 then 1 bytes swapped across
    the diagonal."""
    for level in range(3):
        step = 4 >> level
        shift = np.uint64(8 * step)
        mask = _BLOCK_MASKS[level]
        for r in range(8):
            if r & step:
                continue
            t = ((w[r] >> shift) ^ w[r + step]) & mask
            w[r] ^= t << shift
            w[r + step] ^= t


@njit(cache=True)
def transposed_bytes(rows, out) -> None:
    """out[j, i] = rows[i, j] for a C-contiguous uint8 [m, k] map `rows` and a C-contiguous
    [k, m] `out`: 8 x 8 blocks of bytes read and written as words where m and k are multiples
    of 8 (a plain transposed copy also thrashes the cache when k is a multiple of a large power
    of two), byte by byte otherwise."""
    m, k = rows.shape
    if m % 8 or k % 8:
        for i in range(m):
            for j in range(k):
                out[j, i] = rows[i, j]
        return
    src = rows.reshape(-1).view(np.uint64)
    dst = out.reshape(-1).view(np.uint64)
    w = np.empty(8, np.uint64)
    src_row, dst_row = k // 8, m // 8
    for i0 in range(0, m, 8):
        for j0 in range(0, k, 8):
            for r in range(8):
                w[r] = src[(i0 + r) * src_row + j0 // 8]
            _transpose_8x8(w)
            for c in range(8):
                dst[(j0 + c) * dst_row + i0 // 8] = w[c]
