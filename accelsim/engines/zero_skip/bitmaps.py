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
* `rle_pairs`: (run, value) pairs of a map read in C order of its (possibly strided) view.

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


def planar_counts(act: np.ndarray, key: np.ndarray, width: int,
                  channels_inner: bool) -> np.ndarray:
    """Non-zeros per (image, channel, key): int32 [N, C, width]; act uint8 [N, C, H, W] (0/1,
    any strides), key int64 [H * W] the column (PE tile x stride phase) of each pixel. With
    `channels_inner` (a transposed view of a [rows, channels] map) the channel axis is read
    innermost and the counts are gathered as [N, width, C] first; a C-contiguous map is read
    as rows of H * W pixels."""
    if not channels_inner and act.flags.c_contiguous:
        n_img, n_ch, H, W = act.shape
        rows = _planar_row_counts(act.reshape(n_img * n_ch, H * W), key, width)
        return rows.reshape(n_img, n_ch, width)
    return _planar_counts_strided(act, key, width, channels_inner)


@njit(cache=True)
def _planar_row_counts(flat, key, width: int):
    """Non-zeros per (row, key) of a C-contiguous uint8 [rows, H * W] map: int32 [rows, width]."""
    n_rows, hw = flat.shape
    out = np.zeros((n_rows, width), np.int32)
    for r in range(n_rows):
        counts = out[r]
        row = flat[r]
        for i in range(hw):
            counts[key[i]] += row[i]
    return out


@njit(cache=True)
def _planar_counts_strided(act, key, width: int, channels_inner: bool):
    """`planar_counts` of a map with any strides."""
    n_img, n_ch, H, W = act.shape
    if channels_inner:
        by_key = np.zeros((n_img, width, n_ch), np.int32)
        for n in range(n_img):
            for h in range(H):
                for w in range(W):
                    k = key[h * W + w]
                    for c in range(n_ch):
                        by_key[n, k, c] += act[n, c, h, w]
        return by_key.transpose(0, 2, 1)
    out = np.zeros((n_img, n_ch, width), np.int32)
    for n in range(n_img):
        for c in range(n_ch):
            for h in range(H):
                for w in range(W):
                    out[n, c, key[h * W + w]] += act[n, c, h, w]
    return out


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


@njit(cache=True)
def weight_counts(weight, groups: int, filters_outer: bool):
    """Non-zero weights over the filters of each (channel, r, s) tap's group: int64 [C, R, S];
    weight bool [K, C/groups, R, S]. `filters_outer` picks the loop order (the filter axis
    outermost for C-ordered weights, innermost for a transposed view)."""
    K, cg, R, S = weight.shape
    kg = K // groups
    out = np.zeros((groups * cg, R, S), np.int64)
    if filters_outer:
        for k in range(K):
            base = (k // kg) * cg
            for c in range(cg):
                for r in range(R):
                    for s in range(S):
                        if weight[k, c, r, s]:
                            out[base + c, r, s] += 1
    else:
        for c in range(cg):
            for r in range(R):
                for s in range(S):
                    for k in range(K):
                        if weight[k, c, r, s]:
                            out[(k // kg) * cg + c, r, s] += 1
    return out


@njit(cache=True)
def lane_weight_counts(weight, groups: int, lanes: int, filters_outer: bool):
    """Non-zero weights PE l holds for each tap, filter k of a group going to PE k mod lanes:
    int32 [groups, C/groups, R, S, lanes]; weight bool [K, C/groups, R, S]."""
    K, cg, R, S = weight.shape
    kg = K // groups
    out = np.zeros((groups, cg, R, S, lanes), np.int32)
    if filters_outer:
        for k in range(K):
            g = k // kg
            lane = (k - g * kg) % lanes
            for c in range(cg):
                for r in range(R):
                    for s in range(S):
                        if weight[k, c, r, s]:
                            out[g, c, r, s, lane] += 1
    else:
        for c in range(cg):
            for r in range(R):
                for s in range(S):
                    for k in range(K):
                        if weight[k, c, r, s]:
                            g = k // kg
                            out[g, c, r, s, (k - g * kg) % lanes] += 1
    return out


@njit(cache=True)
def planar_weight_counts(weight, groups: int, kc: int, phase, n_phases: int,
                         filters_outer: bool):
    """Non-zero weights per (group, output-channel group of kc filters, channel, stride
    phase): int32 [groups, ceil(K/groups / kc), C/groups, phases]; weight bool
    [K, C/groups, R, S], phase int64 [R * S] the stride phase of each tap."""
    K, cg, R, S = weight.shape
    kg = K // groups
    n_kc = (kg + kc - 1) // kc
    out = np.zeros((groups, n_kc, cg, n_phases), np.int32)
    if filters_outer:
        for k in range(K):
            g = k // kg
            q = (k - g * kg) // kc
            for c in range(cg):
                for r in range(R):
                    for s in range(S):
                        if weight[k, c, r, s]:
                            out[g, q, c, phase[r * S + s]] += 1
    else:
        for c in range(cg):
            for r in range(R):
                for s in range(S):
                    ph = phase[r * S + s]
                    for k in range(K):
                        if weight[k, c, r, s]:
                            g = k // kg
                            out[g, (k - g * kg) // kc, c, ph] += 1
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
