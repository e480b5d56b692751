"""Numba kernels of the zero-skipping engine: lane timing with barriers and FIFOs, and the three
ways a layer's work is dealt to lanes, read directly from bitmaps (no im2col).

Timing model (shared by every dataflow). Work arrives as a sequence of *items*; item s asks
lane l for `w[s, l]` cycles (0 = nothing for that lane). A dispatcher issues items in order,
one every `issue_cycles` cycles at most, into a per-lane FIFO of `fifo_depth` entries, the
item a lane is working on included (an entry leaves when its work is done, as in EIE):

* `fifo_depth >= 1`: item s may be issued only once every lane has finished item
  s - fifo_depth; depth 1 is lockstep (every lane finishes item s - 1 before item s);
* `fifo_depth < 0`: unbounded queues, lanes are decoupled until the next barrier.

A lane starts an item at max(issue time, its own finish of the previous item). A *barrier*
(at the end of a pass) waits for every lane and for the issue slot of the last item. With
integer cycles this recursion is exactly what a cycle-by-cycle simulation of the queues gives
(`tests/reference.py` holds that simulation and the tests compare the two).

State arrays, so that a dataflow kernel can interleave passes and barriers:
`lane_free[l]` cycle at which lane l finishes its last item; `ring[d]` cycle at which the
slowest lane finished each of the last `d` items (the FIFO test needs only that maximum);
`state = [next issue cycle, items since barrier]`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from accelsim.engines.zero_skip.bitmaps import whole_word_bricks, word_brick_count

BARRIER_NONE = 0
"""Lanes never wait for each other except at the end of the layer."""
BARRIER_PASS = 1
"""Lanes wait for the slowest at the end of every pass (window, output-channel group, row)."""


@njit(cache=True)
def new_timing_state(lanes: int, fifo_depth: int):
    """Fresh (lane_free, ring, state) for `lanes` lanes at cycle 0."""
    lane_free = np.zeros(lanes, np.int64)
    ring = np.zeros(max(fifo_depth, 1), np.int64)
    state = np.zeros(2, np.int64)
    return lane_free, ring, state


@njit(cache=True)
def issue_item(work, lane_free, ring, state, fifo_depth: int, issue_cycles: int) -> None:
    """Issue one item whose per-lane work (cycles) is `work[l]`; updates the state in place."""
    lanes = lane_free.shape[0]
    t = state[0]
    n = state[1]
    if fifo_depth > 0 and n >= fifo_depth and ring[n % fifo_depth] > t:
        t = ring[n % fifo_depth]
    latest = 0
    for lane in range(lanes):
        start = t if t > lane_free[lane] else lane_free[lane]
        lane_free[lane] = start + work[lane]
        if lane_free[lane] > latest:
            latest = lane_free[lane]
    if fifo_depth > 0:
        ring[n % fifo_depth] = latest
    state[0] = t + issue_cycles
    state[1] = n + 1


@njit(cache=True)
def barrier(lane_free, state) -> int:
    """Every lane waits for the slowest; returns the cycle at which they all resume."""
    t = state[0]
    for lane in range(lane_free.shape[0]):
        if lane_free[lane] > t:
            t = lane_free[lane]
    lane_free[:] = t
    state[0] = t
    state[1] = 0
    return t


@njit(cache=True)
def lane_cycles(work, pass_ends, fifo_depth: int, issue_cycles: int):
    """Cycles to run `work[s, l]` with a barrier after every item index in `pass_ends`
    (sorted, the last one = the final item). Returns (cycles, busy lane-cycles)."""
    lane_free, ring, state = new_timing_state(work.shape[1], fifo_depth)
    busy = 0
    p = 0
    for s in range(work.shape[0]):
        issue_item(work[s], lane_free, ring, state, fifo_depth, issue_cycles)
        for lane in range(work.shape[1]):
            busy += work[s, lane]
        while p < pass_ends.shape[0] and pass_ends[p] == s:
            barrier(lane_free, state)
            p += 1
    return barrier(lane_free, state), busy


@njit(cache=True)
def _slowest(row, floor: int) -> int:
    """The largest of `row`'s entries and `floor`: a lockstep item's cycles (its slowest lane,
    or the issue interval)."""
    most = floor
    for x in row:
        if x > most:
            most = x
    return most


@njit(cache=True)
def channel_lanes_cycles(brick_work, pad_work, E: int, F: int, R: int, S: int,
                         stride_h: int, stride_w: int, pad_top: int, pad_left: int,
                         dil_h: int, dil_w: int, lanes: int, filter_passes: int,
                         barrier_mode: int, fifo_depth: int, issue_cycles: int,
                         same_windows: bool):
    """Cnvlutin-like lanes: one pass per output window (and filter pass); the window's bricks
    (r, s, channel brick), channel brick fastest, are dealt round-robin over the lanes; a lane
    spends `brick_work[g, n, cb, h, w]` cycles on its brick (its non-zero count when skipping),
    or `pad_work[cb]` on a brick that lies in the padding.

    With a barrier per pass every window starts on idle lanes, so each window is timed once
    and counted for every filter pass, and when `same_windows` (every brick, padding included,
    asks the same work at every pixel) one window is timed for all; depth-1 FIFOs (lockstep)
    make an item last max(issue_cycles, its slowest lane).

    brick_work: int32 [groups, N, bricks per window position, H, W].
    Returns (cycles, busy lane-cycles, items issued).
    """
    groups, n_img, n_cb, H, W = brick_work.shape
    lane_free, ring, state = new_timing_state(lanes, fifo_depth)
    row = np.zeros(lanes, np.int64)
    per_pass = barrier_mode == BARRIER_PASS
    lockstep = per_pass and fifo_depth == 1
    runs = 1 if per_pass else filter_passes
    windows = groups * n_img * E * F
    busy = 0
    items = 0
    timed = 0
    for g in range(groups):
        for _ in range(runs):
            for n in range(n_img):
                for e in range(E):
                    for f in range(F):
                        if same_windows and per_pass and timed == 1:
                            break
                        start = state[0]
                        took = 0
                        lane = 0
                        for r in range(R):
                            h = e * stride_h - pad_top + r * dil_h
                            for s_ in range(S):
                                w = f * stride_w - pad_left + s_ * dil_w
                                inside = 0 <= h < H and 0 <= w < W
                                for cb in range(n_cb):
                                    x = brick_work[g, n, cb, h, w] if inside else pad_work[cb]
                                    row[lane] = x
                                    busy += x
                                    lane += 1
                                    if lane == lanes:
                                        if lockstep:
                                            took += _slowest(row, issue_cycles)
                                        else:
                                            issue_item(row, lane_free, ring, state, fifo_depth,
                                                       issue_cycles)
                                        items += 1
                                        lane = 0
                        if lane > 0:
                            for i in range(lane, lanes):
                                row[i] = 0
                            if lockstep:
                                took += _slowest(row, issue_cycles)
                            else:
                                issue_item(row, lane_free, ring, state, fifo_depth, issue_cycles)
                            items += 1
                        if lockstep:
                            state[0] = start + took
                            lane_free[:] = state[0]
                        elif per_pass:
                            barrier(lane_free, state)
                        timed += 1
    if not per_pass:
        return barrier(lane_free, state), busy, items
    scale = filter_passes * (windows if same_windows and timed == 1 else 1)
    return state[0] * scale, busy * scale, items * scale


@njit(cache=True)
def item_maxima(brick_work, pad_work, lanes: int, issue_cycles: int):
    """Lockstep channel lanes whose items never straddle two window positions (a 1 x 1 window,
    or bricks per position a multiple of `lanes`): item k of a position takes bricks
    k * lanes .. (k + 1) * lanes - 1 there, and lasts max(issue_cycles, its slowest brick).
    Returns (that time per item at every pixel, int64 [groups, N, items per position, H, W];
    the same for a position in the padding, int64 [items per position])."""
    groups, n_img, n_cb, H, W = brick_work.shape
    per_pos = (n_cb + lanes - 1) // lanes
    out = np.empty((groups, n_img, per_pos, H, W), np.int64)
    for g in range(groups):
        for n in range(n_img):
            for k in range(per_pos):
                for h in range(H):
                    for w in range(W):
                        most = issue_cycles
                        for cb in range(k * lanes, min(n_cb, (k + 1) * lanes)):
                            if brick_work[g, n, cb, h, w] > most:
                                most = brick_work[g, n, cb, h, w]
                        out[g, n, k, h, w] = most
    pad = np.empty(per_pos, np.int64)
    for k in range(per_pos):
        most = issue_cycles
        for cb in range(k * lanes, min(n_cb, (k + 1) * lanes)):
            if pad_work[cb] > most:
                most = pad_work[cb]
        pad[k] = most
    return out, pad


@njit(cache=True)
def lockstep_pixel_cycles(act, groups: int, brick: int, lanes: int, issue_cycles: int) -> int:
    """Cycles of one filter pass of lockstep channel lanes over a 1 x 1 window that visits every
    pixel once (stride 1, no padding): item k of a pixel takes bricks k * lanes ..
    (k + 1) * lanes - 1 of a group there and lasts max(issue_cycles, its fullest brick); the sum
    over groups, images, items and pixels. act: C-contiguous uint8 [N, C, H, W] (0/1), a brick
    `brick` consecutive channels of a group at one pixel."""
    n_img, n_ch, H, W = act.shape
    hw = H * W
    cg = n_ch // groups
    n_cb = (cg + brick - 1) // brick
    per_pos = (n_cb + lanes - 1) // lanes
    total = 0
    if whole_word_bricks(hw, cg, brick):
        words = act.reshape(-1).view(np.uint64)
        for n in range(n_img):
            for g in range(groups):
                for k in range(per_pos):
                    most = issue_cycles
                    for cb in range(k * lanes, min(n_cb, (k + 1) * lanes)):
                        first = n * n_ch + g * cg + cb * brick
                        end = n * n_ch + g * cg + min(cg, (cb + 1) * brick)
                        most = max(most, word_brick_count(words, first, end))
                    total += most
        return total
    flat = act.reshape(n_img, n_ch, hw)
    count = np.empty(hw, np.int64)
    most = np.empty(hw, np.int64)
    for n in range(n_img):
        for g in range(groups):
            for k in range(per_pos):
                most[:] = issue_cycles
                for cb in range(k * lanes, min(n_cb, (k + 1) * lanes)):
                    count[:] = 0
                    for c in range(g * cg + cb * brick, g * cg + min(cg, (cb + 1) * brick)):
                        for i in range(hw):
                            count[i] += flat[n, c, i]
                    for i in range(hw):
                        if count[i] > most[i]:
                            most[i] = count[i]
                total += most.sum()
    return total


@njit(cache=True)
def planar_cartesian_cycles(act_count, weight_count, mult_f: int, mult_i: int,
                            barrier_mode: int, fifo_depth: int, issue_cycles: int):
    """SCNN-like PEs (PT-IS-CP): one pass per (group, image, output-channel group); items are
    input channels; PE p spends sum over phases of ceil(nW/F) * ceil(nA/I) cycles on channel c,
    nW the weights of the output-channel group at that stride phase, nA its own tile's
    activations at that phase (non-zero counts when skipping, all otherwise).

    act_count: int32 [groups, N, C/groups, PEs, phases];
    weight_count: int32 [groups, output-channel groups, C/groups, phases].
    Activations stay in the multiplier inputs while the group's weight vectors stream past them
    from the weight FIFO, so each activation is read once per (group, channel) and each weight
    once per activation vector.
    Returns (cycles, busy PE-cycles, products computed, activation reads, weight reads).
    """
    groups, n_img, n_ch, pes, phases = act_count.shape
    n_kc = weight_count.shape[1]
    lane_free, ring, state = new_timing_state(pes, fifo_depth)
    row = np.zeros(pes, np.int64)
    busy = 0
    products = 0
    act_reads = 0
    weight_reads = 0
    for g in range(groups):
        for n in range(n_img):
            for kc in range(n_kc):
                for c in range(n_ch):
                    for p in range(pes):
                        cyc = 0
                        for ph in range(phases):
                            nw = weight_count[g, kc, c, ph]
                            na = act_count[g, n, c, p, ph]
                            if nw == 0 or na == 0:
                                continue
                            a_vectors = (na + mult_i - 1) // mult_i
                            cyc += ((nw + mult_f - 1) // mult_f) * a_vectors
                            products += nw * na
                            act_reads += na
                            weight_reads += nw * a_vectors
                        row[p] = cyc
                        busy += cyc
                    issue_item(row, lane_free, ring, state, fifo_depth, issue_cycles)
                if barrier_mode == BARRIER_PASS:
                    barrier(lane_free, state)
    return barrier(lane_free, state), busy, products, act_reads, weight_reads


@njit(cache=True)
def _pow2_shift(n: int) -> int:
    """log2(n) where n is a power of two, else -1."""
    for b in range(62):
        if n == 1 << b:
            return b
    return -1


@njit(cache=True)
def _vectors(count, width: int, shift: int):
    """ceil(count / width) for count >= 0: vectors of `width` lanes holding `count` values;
    `shift` is `_pow2_shift(width)`."""
    if shift >= 0:
        return (count + width - 1) >> shift
    return math.ceil(count / width)   # exact below 2**52


@njit(cache=True)
def pe_vector_sums(act_count, mult_i: int, pe_major: bool, out) -> int:
    """Activation vectors per PE, out[p] = sum over channels and phases of ceil(nA / I), and
    the activations summed over all; act_count int32 [channels, PEs, phases], read in memory
    order (PE-major when `pe_major`)."""
    n_ch, pes, phases = act_count.shape
    shift = _pow2_shift(mult_i)
    out[:] = 0
    total = 0
    if pe_major:
        for p in range(pes):
            vectors = 0
            for ph in range(phases):
                for c in range(n_ch):
                    a = np.int64(act_count[c, p, ph])
                    total += a
                    vectors += _vectors(a, mult_i, shift)
            out[p] = vectors
        return total
    width = pes * phases
    rows = np.ascontiguousarray(act_count).reshape(n_ch, width)   # each row read as one vector
    per_column = np.zeros(width, np.int64)
    for c in range(n_ch):
        row = rows[c]
        for j in range(width):
            a = np.int64(row[j])
            total += a
            per_column[j] += _vectors(a, mult_i, shift)
    for j in range(width):
        out[j // phases] += per_column[j]
    return total


def contiguous_plane(act_count: np.ndarray) -> np.ndarray | None:
    """act_count[0, 0] of a one-group, one-image [groups, N, C, PEs, phases] array when that
    slice is C- or F-contiguous, else None (`planar_decoupled_cycles`'s `plane`)."""
    if act_count.shape[0] * act_count.shape[1] != 1:
        return None
    plane = act_count[0, 0]
    return plane if plane.flags.c_contiguous or plane.flags.f_contiguous else None


@njit(cache=True)
def planar_decoupled_cycles(act_count, weight_count, mult_f: int, mult_i: int,
                            plane=None) -> tuple[int, int, int, int, int]:
    """`planar_cartesian_cycles` with a barrier per pass, unbounded FIFOs and no issue limit:
    within a pass no PE ever waits, so a pass lasts as long as its busiest PE's channels
    back to back, sum over channels and phases of ceil(nW/F) * ceil(nA/I); the totals of
    products and reads are sums of per-(group, channel, phase) products. Same arrays and
    returns as `planar_cartesian_cycles`; `plane`: act_count[0, 0] passed on its own where
    there is one group and one image and that slice is contiguous (`contiguous_plane`), so
    that it is read with its layout known (a slice made here is not)."""
    groups, n_img, n_ch, pes, phases = act_count.shape
    n_kc = weight_count.shape[1]
    rows = n_ch * phases
    w_vec = np.empty((n_kc, rows), np.int64)
    w_sum = np.empty(rows, np.int64)
    w_nonzero = np.empty(rows, np.int64)
    a_sum = np.empty(rows, np.int64)
    a_vec_sum = np.empty(rows, np.int64)
    pe_vec_sum = np.empty(pes, np.int64)
    pe_cycles = np.empty(pes, np.int64)
    a_vec = np.empty((0, pes), np.int64)   # vectors per (row, PE) where rows differ
    row_used = np.empty(rows, np.bool_)
    cycles = busy = products = act_reads = weight_reads = 0
    shift = _pow2_shift(mult_i)
    shift_f = _pow2_shift(mult_f)
    pe_major = act_count.strides[3] > act_count.strides[2]   # read in memory order
    # weights broadcast over channels and phases (dense weights) meet every row alike: only
    # the first row is read; broadcast over groups, they are read for the first group only
    same_rows = ((weight_count.strides[2] == 0 or n_ch == 1)
                 and (weight_count.strides[3] == 0 or phases == 1))
    flat_rows = totals_only = True
    for g in range(groups):
        if g == 0 or weight_count.strides[0] != 0:
            for c in range(min(1, n_ch) if same_rows else n_ch):
                for ph in range(min(1, phases) if same_rows else phases):
                    j = c * phases + ph
                    w_all = w_any = 0
                    for kc in range(n_kc):
                        w = np.int64(weight_count[g, kc, c, ph])
                        w_vec[kc, j] = _vectors(w, mult_f, shift_f)
                        w_all += w
                        w_any += w > 0
                    w_sum[j] = w_all
                    w_nonzero[j] = w_any
            # where each output-channel group's weight vectors are the same for every channel
            # and phase (dense weights), a PE's cycles are that count times its activation
            # vectors; and where every channel and phase also meets as many weights (non-zero
            # or not), the totals need only the activations summed over all rows
            flat_rows = totals_only = True
            for kc in range(n_kc if not same_rows else 0):
                for j in range(rows):
                    if w_vec[kc, j] != w_vec[kc, 0]:
                        flat_rows = False
            if not flat_rows and a_vec.shape[0] != rows:
                a_vec = np.empty((rows, pes), np.int64)
            totals_only = flat_rows
            for j in range(rows if not same_rows else 0):
                if w_sum[j] != w_sum[0] or w_nonzero[j] != w_nonzero[0]:
                    totals_only = False
        a_sum[:] = 0
        a_vec_sum[:] = 0
        a_all = vec_all = 0
        for n in range(n_img):
            if totals_only and plane is not None:
                a_all += pe_vector_sums(plane, mult_i, pe_major, pe_vec_sum)
                vec_all += pe_vec_sum.sum()
            elif totals_only:
                a_all += pe_vector_sums(act_count[g, n], mult_i, pe_major, pe_vec_sum)
                vec_all += pe_vec_sum.sum()
            elif pe_major:
                row_used[:] = False
                for p in range(pes):
                    pe_total = 0
                    for ph in range(phases):
                        for c in range(n_ch):
                            a = np.int64(act_count[g, n, c, p, ph])
                            vec = _vectors(a, mult_i, shift)
                            pe_total += vec
                            j = c * phases + ph
                            a_sum[j] += a
                            a_vec_sum[j] += vec
                            if not flat_rows:
                                a_vec[j, p] = vec
                                row_used[j] |= vec > 0
                    pe_vec_sum[p] = pe_total
            else:
                pe_vec_sum[:] = 0
                row_used[:] = False
                for c in range(n_ch):
                    for ph in range(phases):
                        j = c * phases + ph
                        row_total = row_vectors = 0
                        for p in range(pes):
                            a = np.int64(act_count[g, n, c, p, ph])
                            vec = _vectors(a, mult_i, shift)
                            row_total += a
                            row_vectors += vec
                            pe_vec_sum[p] += vec
                            if not flat_rows:
                                a_vec[j, p] = vec
                        row_used[j] = row_vectors > 0
                        a_sum[j] += row_total
                        a_vec_sum[j] += row_vectors
            last_busy = last_most = 0
            for kc in range(n_kc):
                if kc > 0 and np.array_equal(w_vec[kc], w_vec[kc - 1]):
                    busy += last_busy
                    cycles += last_most
                    continue
                last_busy = last_most = 0
                if flat_rows:
                    for p in range(pes):
                        cycles_p = w_vec[kc, 0] * pe_vec_sum[p] if rows else 0
                        last_busy += cycles_p
                        last_most = max(last_most, cycles_p)
                else:   # rows with no weight or no activation vector add nothing
                    pe_cycles[:] = 0
                    for j in range(rows):
                        w = w_vec[kc, j]
                        if w == 0 or not row_used[j]:
                            continue
                        for p in range(pes):
                            pe_cycles[p] += w * a_vec[j, p]
                    for p in range(pes):
                        last_busy += pe_cycles[p]
                        last_most = max(last_most, pe_cycles[p])
                busy += last_busy
                cycles += last_most
        if totals_only and rows:
            products += w_sum[0] * a_all
            act_reads += w_nonzero[0] * a_all
            weight_reads += w_sum[0] * vec_all
        for j in range(rows if not totals_only else 0):
            products += w_sum[j] * a_sum[j]
            act_reads += w_nonzero[j] * a_sum[j]
            weight_reads += w_sum[j] * a_vec_sum[j]
    return cycles, busy, products, act_reads, weight_reads


@njit(cache=True)
def row_broadcast_cycles(act_nz, lane_work, E: int, F: int, stride_h: int, stride_w: int,
                         pad_top: int, pad_left: int, dil_h: int, dil_w: int,
                         skip_act: bool, barrier_mode: int, fifo_depth: int, issue_cycles: int):
    """EIE-like PEs: one pass per output pixel; each tap (c, r, s) of its window holding a
    non-zero activation (every tap, padding included, when not skipping) is broadcast to all
    PEs, and PE l spends `lane_work[g, c, r, s, l]` cycles on it (its non-zero weights for that
    input among the filters it owns).

    act_nz: uint8 [N, C, H, W] non-zero map; lane_work: int32 [groups, C/groups, R, S, PEs].
    Returns (cycles, busy PE-cycles, items broadcast).
    """
    n_img, _, H, W = act_nz.shape
    groups, n_ch, R, S, lanes = lane_work.shape
    lane_free, ring, state = new_timing_state(lanes, fifo_depth)
    tap_busy = np.zeros((groups, n_ch, R, S), np.int64)
    for g in range(groups):
        for c in range(n_ch):
            for r in range(R):
                for s in range(S):
                    for lane in range(lanes):
                        tap_busy[g, c, r, s] += lane_work[g, c, r, s, lane]
    busy = 0
    items = 0
    for g in range(groups):
        for n in range(n_img):
            for e in range(E):
                for f in range(F):
                    for c in range(n_ch):
                        for r in range(R):
                            h = e * stride_h - pad_top + r * dil_h
                            for s in range(S):
                                w = f * stride_w - pad_left + s * dil_w
                                inside = 0 <= h < H and 0 <= w < W
                                if skip_act and not (inside and act_nz[n, g * n_ch + c, h, w]):
                                    continue
                                busy += tap_busy[g, c, r, s]
                                issue_item(lane_work[g, c, r, s], lane_free, ring, state,
                                           fifo_depth, issue_cycles)
                                items += 1
                    if barrier_mode == BARRIER_PASS:
                        barrier(lane_free, state)
    return barrier(lane_free, state), busy, items
