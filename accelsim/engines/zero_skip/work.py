"""From a layer's bitmaps to what the zero-skip kernels consume, and exact MAC accounting.

Every op is seen as a (grouped) convolution, `ConvView`: a linear [M, K] x [K, N] is M images
of 1 x 1 pixels with K channels; a batched product of `b` matrices is a grouped 1 x 1
convolution with b groups. For planar (SCNN-like) dataflows the M rows instead form an M x 1
plane, so that they can be tiled over the PEs. Padding zeros are implicit: never stored,
never counted as activations; whether a dataflow spends MACs on them is stated per dataflow.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from accelsim.workload.layer import ConvShape, Layer


@dataclass(frozen=True)
class ConvView:
    """A layer as a grouped 2-D convolution over boolean non-zero maps.

    act: [N, C, H, W] non-zero input activations; weight: [K, C/groups, R, S] non-zero weights.
    """

    act: np.ndarray
    weight: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int

    @property
    def N(self) -> int:
        return self.act.shape[0]

    @property
    def C(self) -> int:
        return self.act.shape[1]

    @property
    def H(self) -> int:
        return self.act.shape[2]

    @property
    def W(self) -> int:
        return self.act.shape[3]

    @property
    def K(self) -> int:
        return self.weight.shape[0]

    @property
    def R(self) -> int:
        return self.weight.shape[2]

    @property
    def S(self) -> int:
        return self.weight.shape[3]

    @property
    def Cg(self) -> int:
        """Input channels per group."""
        return self.C // self.groups

    @property
    def Kg(self) -> int:
        """Filters per group."""
        return self.K // self.groups

    @property
    def E(self) -> int:
        """Output height."""
        span = self.dilation[0] * (self.R - 1) + 1
        return (self.H + self.padding[0] + self.padding[1] - span) // self.stride[0] + 1

    @property
    def F(self) -> int:
        """Output width."""
        span = self.dilation[1] * (self.S - 1) + 1
        return (self.W + self.padding[2] + self.padding[3] - span) // self.stride[1] + 1

    @property
    def macs(self) -> int:
        """Dense MACs, padding positions included."""
        return self.N * self.K * self.E * self.F * self.Cg * self.R * self.S


def iid_mask(shape: tuple[int, ...], density: float, key: str) -> np.ndarray:
    """A non-zero map with exactly round(density * size) non-zeros at uniformly random places.

    The seed is a CRC32 of `key` (layer name and role), so results are deterministic; fixing
    the count makes the only difference from a real trace the placement of its non-zeros.
    """
    size = int(np.prod(shape))
    count = int(round(min(max(density, 0.0), 1.0) * size))
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    flat = np.zeros(size, bool)
    flat[rng.choice(size, count, replace=False) if count < size else slice(None)] = True
    return flat.reshape(shape)


def operand_masks(layer: Layer, uniform: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(activation, weight) non-zero maps in natural layout.

    A traced operand gives its own map, unless `uniform`, which replaces it by an i.i.d. map at
    its measured density; an untraced activation uses its declared density, an untraced weight
    its declared density or, when none is declared, is dense.
    """
    s = layer.shape
    if layer.has_trace and not uniform:
        act = layer.nonzero()
    else:
        act = iid_mask(s.act_shape, layer.act_density, f"{layer.name}/act")
    known = layer.weight_nonzero()
    if known is not None and not uniform:
        weight = known
    elif known is not None or layer.declared_weight_density is not None:
        weight = iid_mask(s.weight_shape, layer.weight_density, f"{layer.name}/weight")
    else:
        weight = np.ones(s.weight_shape, bool)
    return act, weight


def conv_view(layer: Layer, act: np.ndarray, weight: np.ndarray, planar: bool = False) -> ConvView:
    """The layer as a grouped convolution (see the module docstring)."""
    s = layer.shape
    if isinstance(s, ConvShape):
        return ConvView(act, weight, s.stride, s.padding, s.dilation, s.groups)
    b = s.batch
    a = act.reshape(b, s.M, s.K)
    w = weight.reshape(b, s.K, s.N)
    conv_w = w.transpose(0, 2, 1).reshape(b * s.N, s.K, 1, 1)
    if planar:
        conv_a = a.transpose(0, 2, 1).reshape(1, b * s.K, s.M, 1)
    else:
        conv_a = a.transpose(1, 0, 2).reshape(s.M, b * s.K, 1, 1)
    return ConvView(conv_a, conv_w, (1, 1), (0, 0, 0, 0), (1, 1), b)


def _tap_rows(out: int, stride: int, pad: int, dil: int, k: int) -> np.ndarray:
    """Input coordinate read by output positions 0..out-1 at filter tap k (may be outside)."""
    return np.arange(out) * stride - pad + k * dil


@dataclass(frozen=True)
class TapCounts:
    """How many (image, output pixel) pairs read each (channel, r, s) tap.

    nonzero[c, r, s]: taps landing on a non-zero activation; inside[r, s]: taps landing inside
    the input (per channel); total: taps per (c, r, s) including padding, N * E * F.
    weight_nonzero[c, r, s]: non-zero weights over the filters of channel c's group.
    """

    nonzero: np.ndarray
    inside: np.ndarray
    total: int
    weight_nonzero: np.ndarray
    filters_per_group: int


def tap_counts(v: ConvView) -> TapCounts:
    """Tap statistics by strided slicing of the bitmap, one (r, s) at a time (no im2col)."""
    nz = np.zeros((v.C, v.R, v.S), np.int64)
    inside = np.zeros((v.R, v.S), np.int64)
    for r in range(v.R):
        rows = _tap_rows(v.E, v.stride[0], v.padding[0], v.dilation[0], r)
        rows = rows[(rows >= 0) & (rows < v.H)]
        for s in range(v.S):
            cols = _tap_rows(v.F, v.stride[1], v.padding[2], v.dilation[1], s)
            cols = cols[(cols >= 0) & (cols < v.W)]
            inside[r, s] = v.N * rows.size * cols.size
            if rows.size and cols.size:
                window = v.act[:, :, rows][:, :, :, cols]
                nz[:, r, s] = window.sum(axis=(0, 2, 3))
    wsum = v.weight.reshape(v.groups, v.Kg, v.Cg, v.R, v.S).sum(axis=1, dtype=np.int64)
    return TapCounts(nz, inside, v.N * v.E * v.F, wsum.reshape(v.C, v.R, v.S), v.Kg)


def pair_count(t: TapCounts, act_nonzero: bool, weight_nonzero: bool, padding: bool) -> int:
    """(tap, filter) pairs with a non-zero activation (if `act_nonzero`) and a non-zero weight
    (if `weight_nonzero`), over taps inside the input, or all taps when `padding`."""
    if act_nonzero:
        taps = t.nonzero
    elif padding:
        taps = np.full(t.nonzero.shape, t.total, np.int64)
    else:
        taps = np.broadcast_to(t.inside, t.nonzero.shape)
    per_tap = t.weight_nonzero if weight_nonzero else t.filters_per_group
    return int(np.sum(taps * per_tap))


@dataclass(frozen=True)
class MacCounts:
    """Dense MACs split into done (full or gated) and skipped."""

    dense: int
    done: int
    gated: int

    @property
    def skipped(self) -> int:
        return self.dense - self.done


def mac_counts(v: ConvView, t: TapCounts, skip: tuple[str, ...], gate: tuple[str, ...],
               padding_processed: bool) -> MacCounts:
    """Which MACs are done, gated or skipped: a MAC is skipped when an operand in `skip` is
    zero (or it falls in padding that the dataflow does not visit), gated when an operand in
    `gate` is zero; padding taps count as zero activations."""
    done = pair_count(t, "act" in skip, "weight" in skip, padding_processed)
    full = pair_count(t, "act" in skip or "act" in gate, "weight" in skip or "weight" in gate,
                      padding_processed)
    return MacCounts(dense=v.macs, done=done, gated=done - full)


# --- channel lanes (Cnvlutin-like) -----------------------------------------------------------


def brick_work(v: ConvView, brick: int, skip_act: bool) -> tuple[np.ndarray, np.ndarray]:
    """(cycles per brick [groups, N, bricks, H, W], cycles per padding brick [bricks]).

    A brick is `brick` consecutive channels of a group at one pixel; a lane spends one cycle per
    non-zero when skipping, one per channel otherwise (padding then included)."""
    n_cb = -(-v.Cg // brick)
    lengths = np.minimum(brick, v.Cg - np.arange(n_cb) * brick).astype(np.int32)
    if not skip_act:
        dense = np.broadcast_to(lengths[None, None, :, None, None],
                                (v.groups, v.N, n_cb, v.H, v.W))
        return np.ascontiguousarray(dense), lengths
    a = v.act.reshape(v.N, v.groups, v.Cg, v.H, v.W)
    counts = np.add.reduceat(a, np.arange(n_cb) * brick, axis=2, dtype=np.int32)
    return np.ascontiguousarray(counts.transpose(1, 0, 2, 3, 4)), np.zeros(n_cb, np.int32)


# --- planar Cartesian product (SCNN-like) ----------------------------------------------------


def split_bounds(extent: int, parts: int) -> np.ndarray:
    """Boundaries of `parts` near-equal contiguous tiles of `extent` (some empty if too few)."""
    return (np.arange(parts + 1) * extent) // parts


def pe_grid(v: ConvView, pe_rows: int, pe_cols: int) -> tuple[int, int]:
    """PE grid used for the plane: a one-column plane spreads over all PEs as one column."""
    return (pe_rows * pe_cols, 1) if v.W == 1 else (pe_rows, pe_cols)


def phase_count(v: ConvView) -> int:
    return v.stride[0] * v.stride[1]


def planar_act_count(v: ConvView, pe_rows: int, pe_cols: int, skip_act: bool) -> np.ndarray:
    """Activations per (group, image, channel, PE tile, stride phase): int32
    [groups, N, C/groups, PEs, phases]. The phase of pixel (h, w) is ((h + pad_top) mod
    stride_h, (w + pad_left) mod stride_w): it pairs only with weights of the same phase."""
    rows, cols = pe_grid(v, pe_rows, pe_cols)
    th = np.searchsorted(split_bounds(v.H, rows), np.arange(v.H), side="right") - 1
    tw = np.searchsorted(split_bounds(v.W, cols), np.arange(v.W), side="right") - 1
    ph = (np.arange(v.H) + v.padding[0]) % v.stride[0]
    pw = (np.arange(v.W) + v.padding[2]) % v.stride[1]
    phases = phase_count(v)
    key = ((th[:, None] * cols + tw[None, :]) * phases
           + ph[:, None] * v.stride[1] + pw[None, :]).reshape(-1)
    onehot = np.zeros((v.H * v.W, rows * cols * phases), np.float32)
    onehot[np.arange(key.size), key] = 1.0
    if skip_act:
        counts = v.act.reshape(v.N * v.C, v.H * v.W).astype(np.float32) @ onehot
    else:
        counts = np.broadcast_to(onehot.sum(axis=0), (v.N * v.C, onehot.shape[1]))
    out = np.rint(counts).astype(np.int32).reshape(v.N, v.groups, v.Cg, rows * cols, phases)
    return np.ascontiguousarray(out.transpose(1, 0, 2, 3, 4))


def output_reach(v: ConvView, pe_rows: int, pe_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(outputs each PE's input tile contributes to, of those the ones it does not own), per PE.

    Outputs are owned by the PE at the same place in a near-equal split of the output plane;
    the difference is the halo, partial sums sent to neighbours."""
    rows, cols = pe_grid(v, pe_rows, pe_cols)

    def per_axis(extent, out, parts, stride, pad, dil, k):
        ib, ob = split_bounds(extent, parts), split_bounds(out, parts)
        reach, owned_in_reach = [], []
        for i in range(parts):
            a, b = ib[i], ib[i + 1]
            if b <= a:
                reach.append(0)
                owned_in_reach.append(0)
                continue
            lo = max(0, -(-(a + pad - (k - 1) * dil) // stride))
            hi = min(out - 1, (b - 1 + pad) // stride)
            reach.append(max(0, hi - lo + 1))
            owned_in_reach.append(max(0, min(hi, ob[i + 1] - 1) - max(lo, ob[i]) + 1))
        return np.array(reach), np.array(owned_in_reach)

    rr, ro = per_axis(v.H, v.E, rows, v.stride[0], v.padding[0], v.dilation[0], v.R)
    cr, co = per_axis(v.W, v.F, cols, v.stride[1], v.padding[2], v.dilation[1], v.S)
    reach = (rr[:, None] * cr[None, :]).reshape(-1)
    halo = reach - (ro[:, None] * co[None, :]).reshape(-1)
    return reach, halo


def output_channel_group(v: ConvView, pe_rows: int, pe_cols: int, accumulator_entries: int) -> int:
    """Kc: the most filters whose partial sums for a PE's reach fit its accumulator buffer."""
    reach, _ = output_reach(v, pe_rows, pe_cols)
    most = int(reach.max()) if reach.size else 0
    if most == 0:
        return v.Kg
    return max(1, min(v.Kg, accumulator_entries // most))


def planar_weight_count(v: ConvView, kc: int, skip_weight: bool) -> np.ndarray:
    """Weights per (group, output-channel group of kc filters, channel, stride phase): int32
    [groups, ceil(K/groups / kc), C/groups, phases]; the phase of tap (r, s) is
    (r * dil_h mod stride_h, s * dil_w mod stride_w)."""
    n_kc = -(-v.Kg // kc)
    w = v.weight if skip_weight else np.ones_like(v.weight)
    padded = np.zeros((v.groups, n_kc * kc, v.Cg, v.R * v.S), np.float32)
    padded[:, :v.Kg] = w.reshape(v.groups, v.Kg, v.Cg, v.R * v.S)
    per_group = padded.reshape(v.groups, n_kc, kc, v.Cg, v.R * v.S).sum(axis=2)
    r_ph = (np.arange(v.R) * v.dilation[0]) % v.stride[0]
    s_ph = (np.arange(v.S) * v.dilation[1]) % v.stride[1]
    key = (r_ph[:, None] * v.stride[1] + s_ph[None, :]).reshape(-1)
    onehot = np.zeros((v.R * v.S, phase_count(v)), np.float32)
    onehot[np.arange(key.size), key] = 1.0
    return np.ascontiguousarray(np.rint(per_group @ onehot).astype(np.int32))


# --- row broadcast (EIE-like) ----------------------------------------------------------------


def lane_weight_work(v: ConvView, lanes: int, skip_weight: bool) -> np.ndarray:
    """Cycles PE l spends on one broadcast activation at (c, r, s): the (non-zero, when
    skipping) weights of the filters it owns, filter k of a group going to PE k mod lanes.
    int32 [groups, C/groups, R, S, lanes]."""
    per_lane = -(-v.Kg // lanes)
    w = v.weight if skip_weight else np.ones_like(v.weight)
    padded = np.zeros((v.groups, per_lane * lanes, v.Cg, v.R, v.S), np.int32)
    padded[:, :v.Kg] = w.reshape(v.groups, v.Kg, v.Cg, v.R, v.S)
    owned = padded.reshape(v.groups, per_lane, lanes, v.Cg, v.R, v.S).sum(axis=1, dtype=np.int32)
    return np.ascontiguousarray(owned.transpose(0, 2, 3, 4, 1))
