"""From a layer's bitmaps to what the zero-skip kernels consume, and exact MAC accounting.

Every op is seen as a (grouped) convolution, `ConvView`: a linear [M, K] x [K, N] is M images
of 1 x 1 pixels with K channels; a batched product of `b` matrices is a grouped 1 x 1
convolution with b groups. For planar (SCNN-like) dataflows the M rows instead form an M x 1
plane, so that they can be tiled over the PEs. Padding zeros are implicit: never stored,
never counted as activations; whether a dataflow spends MACs on them is stated per dataflow.

Work is bounded by the layer, never by a parameter: weights that are not known are dense and
kept as a read-only broadcast view (no memory), with closed forms wherever the counts use them;
planar PE tiles that hold no pixel are left out (they never change the timing); and a
shapes-only layer whose i.i.d. bitmap would exceed `MASK_BUDGET` elements, or whose counting
would exceed `WORK_BUDGET` lane-steps, is counted on a `Sample`: the same layer cut along axes
whose parts are alike (images, rows, then channels or filters), its work scaled by the dense
MACs of the whole over the part, while MACs and stored sizes of the whole are taken from the
densities in closed form (`expected_mac_counts`).
"""

from __future__ import annotations

import math
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from accelsim.engines.zero_skip import bitmaps
from accelsim.engines.zero_skip.formats import all_nonzero
from accelsim.workload.layer import ConvShape, GemmShape, Layer

MASK_BUDGET = 2**24
"""Most elements of an i.i.d. bitmap made for one operand of a shapes-only layer; a larger layer
is counted on a `Sample`."""
WORK_BUDGET = 2**30
"""Most lane-steps (window taps x lanes per item, an estimate of the kernels' inner loop) counted
for one shapes-only layer; a larger layer is counted on a `Sample`."""


class _kept_value:
    """A method's value made on first read and kept in the instance (`functools.cached_property`
    without its per-property lock, which Python 3.11 takes on every first read; the count step
    reads a few of these per layer and pass)."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        self._make = make
        self._name = make.__name__
        self.__doc__ = make.__doc__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self._name] = self._make(obj)
        return value


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
    derived: dict[tuple, Any] = field(default_factory=dict, compare=False, repr=False)
    """Statistics of these maps an arch asked for, by what it asked (`kept`)."""

    def kept(self, key: tuple, make: Callable[[], Any]) -> Any:
        """`make()` (a statistic of these maps named by `key`), made once per view, so every
        arch that asks for it with the same parameters reads the same (unchanged) value."""
        if key not in self.derived:
            self.derived[key] = make()
        return self.derived[key]

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

    @_kept_value
    def E(self) -> int:
        """Output height."""
        span = self.dilation[0] * (self.R - 1) + 1
        return (self.H + self.padding[0] + self.padding[1] - span) // self.stride[0] + 1

    @_kept_value
    def F(self) -> int:
        """Output width."""
        span = self.dilation[1] * (self.S - 1) + 1
        return (self.W + self.padding[2] + self.padding[3] - span) // self.stride[1] + 1

    @_kept_value
    def macs(self) -> int:
        """Dense MACs, padding positions included."""
        return self.N * self.K * self.E * self.F * self.Cg * self.R * self.S

    @_kept_value
    def every_pixel_once(self) -> bool:
        """A 1 x 1 window that visits every pixel once (stride 1, no padding)."""
        return self.R * self.S == 1 and self.E == self.H and self.F == self.W and not any(
            self.padding)


def iid_mask(shape: tuple[int, ...], density: float, key: str) -> np.ndarray:
    """A non-zero map with exactly round(density * size) non-zeros at uniformly random places
    (`bitmaps.iid_count_mask`).

    The seed is a CRC32 of `key` (layer name and role), so results are deterministic; fixing
    the count makes the only difference from a real trace the placement of its non-zeros.
    """
    size = math.prod(shape)
    count = int(round(min(max(density, 0.0), 1.0) * size))
    if count == 0 or count >= size:
        return np.full(shape, count > 0, bool)
    flat = np.empty(size, bool)
    threshold = np.uint64(round(count * 65536 / size))
    bitmaps.iid_count_mask(np.uint64(zlib.crc32(key.encode())), count, threshold, flat)
    return flat.reshape(shape)


@dataclass
class Bitmaps:
    """A layer's non-zero maps (natural layout, None where not traced) and densities, and the
    i.i.d. maps drawn for it (`iid`, by operand), made once per layer."""

    act: np.ndarray | None
    act_density: float
    weight: np.ndarray | None
    weight_density: float
    iid: dict[str, np.ndarray] = field(default_factory=dict)
    views: dict[tuple, ConvView] = field(default_factory=dict)
    """Views over these maps (traced or i.i.d.), by the arch's choices they depend on
    (`accelsim.engines.zero_skip.count`)."""
    counted: dict[tuple, Any] = field(default_factory=dict)
    """What the count step derives from the views without reading the arch (tap and MAC
    counts), by the arch's choices it depends on."""
    last_traffic: tuple[Any, Any] | None = None
    """(what it was counted from, memory traffic) of the layer's last count that searched a
    tiling (`accelsim.engines.zero_skip.count`)."""

    def iid_map(self, layer: Layer, operand: str) -> np.ndarray:
        """The operand's i.i.d. map at its density (`iid_mask`, drawn once)."""
        if operand not in self.iid:
            shape, density = ((layer.shape.act_shape, self.act_density) if operand == "act"
                              else (layer.shape.weight_shape, self.weight_density))
            self.iid[operand] = iid_mask(shape, density, f"{layer.name}/{operand}")
        return self.iid[operand]


def _nonzero(values: np.ndarray) -> np.ndarray:
    """The non-zero map of stored operand values (read by bits for float16)."""
    if values.dtype != np.float16:
        return values != 0
    out = np.empty(values.shape, bool)
    bitmaps.nonzero_f16(np.ascontiguousarray(values).view(np.uint16).reshape(-1),
                        out.reshape(-1))
    return out


def layer_bitmaps(layer: Layer) -> Bitmaps:
    """The layer's `Bitmaps`, kept while the layer lives and holds the same arrays (arrays are
    not changed in place once a layer is simulated), so every pass and every arch a layer is
    counted on reads the same maps; densities as `Layer` gives them."""
    arrays = (id(layer.act), id(layer.act_mask), id(layer.weight), id(layer.weight_mask))
    key = id(layer)
    hit = _BITMAPS.get(key)
    if hit is not None and hit[0]() is layer and hit[1] == arrays:
        return hit[2]
    act, act_density = _shared_map(layer.act, layer.act_mask) or (None, layer.act_density)
    weight, weight_density = (_shared_map(layer.weight, layer.weight_mask)
                              or (None, layer.weight_density))
    maps = Bitmaps(act, act_density, weight, weight_density)
    _BITMAPS[key] = (weakref.ref(layer, lambda _, key=key: _BITMAPS.pop(key, None)), arrays,
                     maps)
    return maps


_BITMAPS: dict[int, tuple[weakref.ref, tuple[int, int, int, int], Bitmaps]] = {}
"""Per live layer: its `Bitmaps` (O(trace) in all: one byte per traced element, and as much
again for the i.i.d. maps), dropped when the layer is."""


def _shared_map(values: np.ndarray | None, mask: np.ndarray | None
                ) -> tuple[np.ndarray, float] | None:
    """(non-zero map, measured density) of a stored operand, made from its values once per
    array: the layers that read one tensor (Q/K/V, `Layer.alias_of`) hold the same array and
    share its map; None where nothing is stored."""
    if mask is not None:
        return mask, float(np.count_nonzero(mask)) / mask.size
    if values is None:
        return None
    hit = _MAPS.get(id(values))
    if hit is not None and hit[0]() is values:
        return hit[1]
    nonzero = _nonzero(values)
    made = nonzero, float(np.count_nonzero(nonzero)) / nonzero.size
    key = id(values)
    _MAPS[key] = (weakref.ref(values, lambda _, key=key: _MAPS.pop(key, None)), made)
    return made


_MAPS: dict[int, tuple[weakref.ref, tuple[np.ndarray, float]]] = {}
"""Per live array of operand values: its non-zero map and density, dropped when the array
is."""


def weights_known(layer: Layer) -> bool:
    """Whether the layer's weights (values or mask) are in the trace."""
    return layer.weight is not None or layer.weight_mask is not None


def operand_masks(layer: Layer, uniform: bool = False,
                  weights_read: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(activation, weight) non-zero maps in natural layout.

    A traced operand gives its own map, unless `uniform`, which replaces it by an i.i.d. map at
    its measured density (traced weights only when `weights_read`: an arch that neither skips,
    gates nor compresses them never reads their map); an untraced activation uses its declared
    density, an untraced weight its declared density or, when none is declared, is dense.
    """
    s = layer.shape
    maps = layer_bitmaps(layer)
    act = maps.act if maps.act is not None and not uniform else maps.iid_map(layer, "act")
    known = maps.weight
    if known is not None and (not uniform or not weights_read):
        weight = known
    elif known is not None or layer.declared_weight_density is not None:
        weight = maps.iid_map(layer, "weight")
    else:
        weight = dense_view(s.weight_shape)
    return act, weight


@lru_cache(maxsize=256)
def dense_view(shape: tuple[int, ...]) -> np.ndarray:
    """An all-non-zero map of `shape` that takes no memory (a read-only broadcast view, shared
    by the layers of that shape)."""
    return np.broadcast_to(np.True_, shape)


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


class TapCounts:
    """How many (image, output pixel) pairs read each (channel, r, s) tap of a view, each
    statistic made when first read.

    nonzero[c, r, s]: taps landing on a non-zero activation (None when not asked for);
    inside[r, s]: taps landing inside the input (per channel); total: taps per (c, r, s)
    including padding, N * E * F. weight_nonzero[c, r, s]: non-zero weights over the filters of
    channel c's group (None when not asked for); weights_dense: every weight is non-zero (the
    all-non-zero view of dense weights), so each tap meets filters_per_group of them.
    """

    def __init__(self, v: ConvView, act_nonzero: bool = True, weight_nonzero: bool = True) -> None:
        self._view = v
        self._act_nonzero = act_nonzero
        self._weight_nonzero = weight_nonzero
        self.total = v.N * v.E * v.F
        self.filters_per_group = v.Kg
        self.channels = v.C
        self.weights_dense = all_nonzero(v.weight)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, R, S) of the per-tap counts."""
        return (self.channels, *self.inside.shape)

    @_kept_value
    def nonzero(self) -> np.ndarray | None:
        """Taps on a non-zero activation per (channel, r, s) in one pass over the bitmap
        (`bitmaps.tap_nonzero`, no im2col), int64 [C, R, S]."""
        if not self._act_nonzero:
            return None
        v = self._view
        if self._view.every_pixel_once:   # counts per channel, read in memory order
            return channel_nonzero(v.act).reshape(v.C, 1, 1)
        s, p, d = v.stride, v.padding, v.dilation
        return bitmaps.tap_nonzero(as_bytes(v.act), v.E, v.F, v.R, v.S, s[0], s[1], p[0], p[2],
                                   d[0], d[1])

    @_kept_value
    def inside(self) -> np.ndarray:
        return tap_inside(self._view)

    @_kept_value
    def weight_nonzero(self) -> np.ndarray | None:
        return weight_tap_counts(self._view) if self._weight_nonzero else None

    @_kept_value
    def nonzero_taps(self) -> int:
        """Taps landing on a non-zero activation, over all (channel, r, s)."""
        if self._view.every_pixel_once:
            return int(np.count_nonzero(self._view.act))
        return int(self.nonzero.sum())


def tap_counts(v: ConvView, act_nonzero: bool = True, weight_nonzero: bool = True) -> TapCounts:
    """Tap statistics of view `v`: taps on a non-zero activation (only when `act_nonzero`),
    taps inside the input in closed form, non-zero weights per tap (only when
    `weight_nonzero`)."""
    return TapCounts(v, act_nonzero, weight_nonzero)


def channel_nonzero(act: np.ndarray) -> np.ndarray:
    """Non-zeros per channel of a boolean [N, C, H, W] map, int64 [C]; a map that lies as
    C-contiguous [pixels, channels] rows is read as those rows."""
    pixels_outer = act.transpose(0, 2, 3, 1)
    if pixels_outer.flags.c_contiguous:
        return bitmaps.column_counts(pixels_outer.reshape(-1, act.shape[1]).view(np.uint8))
    return bitmaps.channel_counts(act.view(np.uint8), channels_inner(act))


def tap_inside(v: ConvView) -> np.ndarray:
    """(image, output pixel) pairs whose tap (r, s) lands inside the input: int64 [R, S]
    (read-only, shared by layers of the same geometry)."""
    return _tap_inside(v.N, v.E, v.F, v.H, v.W, v.R, v.S, v.stride, v.padding, v.dilation)


@lru_cache(maxsize=1024)
def _tap_inside(n: int, e: int, f: int, h: int, w: int, r: int, s: int,
                stride: tuple[int, int], padding: tuple[int, int, int, int],
                dilation: tuple[int, int]) -> np.ndarray:
    out = n * np.outer(_inside(e, stride[0], padding[0], dilation[0], r, h),
                       _inside(f, stride[1], padding[2], dilation[1], s, w))
    out.flags.writeable = False
    return out


def channels_inner(act: np.ndarray) -> bool:
    """Whether an activation map [N, C, H, W] lies channel-fastest in memory (a linear layer's
    [rows, channels] map, as 1 x 1 images or as a planar view)."""
    return abs(act.strides[1]) <= abs(act.strides[2])


def as_bytes(nonzero: np.ndarray) -> np.ndarray:
    """A boolean map as C-contiguous 0/1 bytes (a view where it already is contiguous)."""
    return np.ascontiguousarray(nonzero).view(np.uint8)


def filters_outer(weight: np.ndarray) -> bool:
    """Whether a weight map [K, C/groups, R, S] is read filter by filter (C order) rather
    than channel by channel (a transposed view of a linear layer's [K, N] weights)."""
    return abs(weight.strides[0]) >= abs(weight.strides[1])


def weight_tap_counts(v: ConvView) -> np.ndarray:
    """Non-zero weights over the filters of each (channel, r, s) tap's group: int64 [C, R, S]."""
    if all_nonzero(v.weight):
        return np.full((v.C, v.R, v.S), v.Kg, np.int64)
    return bitmaps.weight_counts(v.weight, v.groups, filters_outer(v.weight))


def pair_count(t: TapCounts, act_nonzero: bool, weight_nonzero: bool, padding: bool) -> int:
    """(tap, filter) pairs with a non-zero activation (if `act_nonzero`) and a non-zero weight
    (if `weight_nonzero`), over taps inside the input, or all taps when `padding`."""
    if not weight_nonzero:
        if act_nonzero:
            return t.nonzero_taps * t.filters_per_group
        taps = t.total * t.inside.size if padding else int(t.inside.sum())
        return taps * t.channels * t.filters_per_group
    if act_nonzero:
        if t.weights_dense:
            return t.nonzero_taps * t.filters_per_group
        return int(np.vdot(t.nonzero, t.weight_nonzero))
    if padding:
        return t.total * int(t.weight_nonzero.sum())
    return int(np.vdot(t.inside, t.weight_nonzero.sum(axis=0)))


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
    """(cycles per brick [groups, N, bricks, H, W], a read-only broadcast when not skipping;
    cycles per padding brick [bricks]).

    A brick is `brick` consecutive channels of a group at one pixel; a lane spends one cycle per
    non-zero when skipping, one per channel otherwise (padding then included)."""
    return v.kept(("bricks", brick, skip_act), lambda: _brick_work(v, brick, skip_act))


def _brick_work(v: ConvView, brick: int, skip_act: bool) -> tuple[np.ndarray, np.ndarray]:
    lengths = _brick_lengths(v.Cg, brick)
    n_cb = lengths.size
    if not skip_act:
        dense = np.broadcast_to(lengths[None, None, :, None, None],
                                (v.groups, v.N, n_cb, v.H, v.W))
        return dense, lengths
    counts = bitmaps.brick_counts(as_bytes(v.act), v.groups, brick)
    counts.flags.writeable = False
    return counts, np.zeros(n_cb, np.int32)


@lru_cache(maxsize=256)
def _brick_lengths(channels: int, brick: int) -> np.ndarray:
    """Channels in each brick of a group of `channels`: int32 [bricks] (read-only)."""
    n_cb = -(-channels // brick)
    lengths = np.minimum(brick, channels - np.arange(n_cb) * brick).astype(np.int32)
    lengths.flags.writeable = False
    return lengths


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
    """Activations per (group, image, channel, PE tile, stride phase): uint8 where no PE tile
    holds more than 255 pixels of one phase, else int32, [groups, N, C/groups, PEs, phases],
    over the PEs whose tile holds pixels (the others have no work and never change the
    timing). The phase of pixel (h, w) is ((h + pad_top) mod stride_h, (w + pad_left) mod
    stride_w): it pairs only with weights of the same phase. A transposed view, the PE axis
    innermost in memory (read-only where every pixel counts); where every pixel is a PE tile
    of its own at one phase (a linear layer's rows on a planar array), the 0/1 map itself."""
    rows, cols = pe_grid(v, pe_rows, pe_cols)
    key, n_tiles, own_tiles, most = _pixel_keys(v.H, v.W, rows, cols, v.padding[0],
                                                v.padding[2], v.stride)
    phases = phase_count(v)
    width = n_tiles * phases
    if skip_act and own_tiles:
        counts = v.act.view(np.uint8).reshape(v.N * v.C, width)
    elif skip_act:
        counts = bitmaps.planar_counts(v.act.view(np.uint8), key, width, channels_inner(v.act),
                                       np.uint8 if most <= 255 else np.int32)
    else:
        per_key = np.bincount(key, minlength=width).astype(np.int32)
        counts = np.broadcast_to(per_key, (v.N * v.C, width))
    return counts.reshape(v.N, v.groups, v.Cg, phases, n_tiles).transpose(1, 0, 2, 4, 3)


@lru_cache(maxsize=256)
def _pixel_keys(h: int, w: int, rows: int, cols: int, pad_top: int, pad_left: int,
                stride: tuple[int, int]) -> tuple[np.ndarray, int, bool, int]:
    """(column of each pixel: stride phase x PE tile among those holding pixels, phase-major so
    that a channel's counts at one phase lie PE after PE, int64 [h * w] read-only; how many
    PEs hold pixels; whether each pixel is its own column, in pixel order; the most pixels in
    one column), for an h x w plane on a rows x cols PE grid."""
    th = np.searchsorted(split_bounds(h, rows), np.arange(h), side="right") - 1
    tw = np.searchsorted(split_bounds(w, cols), np.arange(w), side="right") - 1
    ph = (np.arange(h) + pad_top) % stride[0]
    pw = (np.arange(w) + pad_left) % stride[1]
    tile = (th[:, None] * cols + tw[None, :]).reshape(-1)
    tiles, tile_index = np.unique(tile, return_inverse=True)   # PEs that hold pixels
    phases = stride[0] * stride[1]
    key = ((ph[:, None] * stride[1] + pw[None, :]).reshape(-1) * tiles.size
           + tile_index.reshape(-1)).astype(np.int64)
    key.flags.writeable = False
    own = tiles.size * phases == h * w and bool(np.array_equal(key, np.arange(h * w)))
    return key, int(tiles.size), own, int(np.bincount(key).max())


@lru_cache(maxsize=1024)
def _output_reach(h: int, w: int, e: int, f: int, r: int, s: int, rows: int, cols: int,
                  stride: tuple[int, int], padding: tuple[int, int, int, int],
                  dilation: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(outputs each PE's input tile contributes to, of those the ones it does not own), per PE
    of a rows x cols grid (read-only arrays, shared by layers of that geometry).

    Outputs are owned by the PE at the same place in a near-equal split of the output plane;
    the difference is the halo, partial sums sent to neighbours."""
    rr, ro = map(np.array, _reach_per_axis(h, e, rows, stride[0], padding[0], dilation[0], r))
    cr, co = map(np.array, _reach_per_axis(w, f, cols, stride[1], padding[2], dilation[1], s))
    reach = (rr[:, None] * cr[None, :]).reshape(-1)
    halo = reach - (ro[:, None] * co[None, :]).reshape(-1)
    reach.flags.writeable = False
    halo.flags.writeable = False
    return reach, halo


@lru_cache(maxsize=256)
def _reach_per_axis(extent: int, out: int, parts: int, stride: int, pad: int, dil: int,
                    k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Along one axis, per tile of a near-equal split of `extent` into `parts`: (outputs its
    inputs reach, of those the ones in the tile's own share of the `out` outputs)."""
    ib, ob = split_bounds(extent, parts), split_bounds(out, parts)
    reach, owned_in_reach = [], []
    for i in range(parts):
        a, b = int(ib[i]), int(ib[i + 1])
        if b <= a:
            reach.append(0)
            owned_in_reach.append(0)
            continue
        lo = max(0, -(-(a + pad - (k - 1) * dil) // stride))
        hi = min(out - 1, (b - 1 + pad) // stride)
        reach.append(max(0, hi - lo + 1))
        owned_in_reach.append(max(0, min(hi, int(ob[i + 1]) - 1) - max(lo, int(ob[i])) + 1))
    return tuple(reach), tuple(owned_in_reach)


def output_channel_group(v: ConvView, pe_rows: int, pe_cols: int,
                         accumulator_entries: int) -> tuple[int, int]:
    """(Kc: the most filters whose partial sums for a PE's reach fit its accumulator buffer;
    halo outputs per image and filter, the partial sums sent to neighbours)."""
    rows, cols = pe_grid(v, pe_rows, pe_cols)
    return _output_channel_group(v.H, v.W, v.E, v.F, v.R, v.S, v.Kg, rows, cols,
                                 accumulator_entries, v.stride, v.padding, v.dilation)


@lru_cache(maxsize=1024)
def _output_channel_group(h: int, w: int, e: int, f: int, r: int, s: int, kg: int, rows: int,
                          cols: int, accumulator_entries: int, stride: tuple[int, int],
                          padding: tuple[int, int, int, int], dilation: tuple[int, int]
                          ) -> tuple[int, int]:
    """`output_channel_group` of one geometry."""
    reach, halo = _output_reach(h, w, e, f, r, s, rows, cols, stride, padding, dilation)
    most = int(reach.max()) if reach.size else 0
    kc = kg if most == 0 else max(1, min(kg, accumulator_entries // most))
    return kc, int(halo.sum())


def planar_weight_count(v: ConvView, kc: int, skip_weight: bool) -> np.ndarray:
    """Weights per (group, output-channel group of kc filters, channel, stride phase): int32
    [groups, ceil(K/groups / kc), C/groups, phases]; the phase of tap (r, s) is
    (r * dil_h mod stride_h, s * dil_w mod stride_w). Read-only broadcast when every weight
    counts."""
    if not skip_weight or all_nonzero(v.weight):
        return _planar_dense_weight_count(v.groups, v.Kg, v.Cg, v.R, v.S, v.stride, v.dilation,
                                          kc)
    return bitmaps.planar_weight_counts(v.weight, v.groups, kc,
                                        _tap_phases(v.R, v.S, v.stride, v.dilation),
                                        phase_count(v), filters_outer(v.weight))


@lru_cache(maxsize=256)
def _tap_phases(r: int, s: int, stride: tuple[int, int], dilation: tuple[int, int]
                ) -> np.ndarray:
    """Stride phase of each tap (r, s), C order: int64 [R * S] (read-only)."""
    r_ph = (np.arange(r) * dilation[0]) % stride[0]
    s_ph = (np.arange(s) * dilation[1]) % stride[1]
    key = (r_ph[:, None] * stride[1] + s_ph[None, :]).reshape(-1).astype(np.int64)
    key.flags.writeable = False
    return key


@lru_cache(maxsize=256)
def _planar_dense_weight_count(groups: int, kg: int, cg: int, r: int, s: int,
                               stride: tuple[int, int], dilation: tuple[int, int],
                               kc: int) -> np.ndarray:
    """`planar_weight_count` of dense weights: the group's filters x its taps at each phase."""
    n_kc = -(-kg // kc)
    filters = np.minimum(kc, kg - np.arange(n_kc) * kc)
    taps = np.bincount(_tap_phases(r, s, stride, dilation), minlength=stride[0] * stride[1])
    per_phase = (filters[:, None] * taps[None, :]).astype(np.int32)
    return np.broadcast_to(per_phase[None, :, None, :], (groups, n_kc, cg, taps.size))


# --- row broadcast (EIE-like) ----------------------------------------------------------------


def lane_weight_work(v: ConvView, lanes: int, skip_weight: bool) -> np.ndarray:
    """Cycles PE l spends on one broadcast activation at (c, r, s): the (non-zero, when
    skipping) weights of the filters it owns, filter k of a group going to PE k mod lanes.
    int32 [groups, C/groups, R, S, lanes], a read-only broadcast when every weight counts."""
    if not skip_weight or all_nonzero(v.weight):
        lane = np.arange(lanes)
        filters = np.maximum(0, -(-(v.Kg - lane) // lanes)).astype(np.int32)
        return np.broadcast_to(filters, (v.groups, v.Cg, v.R, v.S, lanes))
    return bitmaps.lane_weight_counts(v.weight, v.groups, lanes, filters_outer(v.weight))


# --- shapes-only layers too large to count whole ---------------------------------------------


@dataclass(frozen=True)
class Sample:
    """The part of a shapes-only layer that is counted in its place: `layer` is the same layer
    with some axes cut (`cuts`, e.g. 'N 8 -> 1, H 4096 -> 256'), and `half` that part cut in
    half once more along the last axis (None where it cannot be). `x_*` are a figure
    proportional to the compute cycles (the dataflow's items x cycles per item) of the whole,
    the part and the half: the whole's work is extrapolated from the part's and the half's
    along that figure (`extrapolate`), which keeps what every pass costs once (filling and
    draining the lanes) from being scaled with the items."""

    layer: Layer
    half: Layer | None
    x_whole: float
    x_part: float
    x_half: float
    cuts: str
    act_cut: bool
    weight_cut: bool

    @property
    def factor(self) -> float:
        """The whole's cycles figure over the part's."""
        return self.x_whole / self.x_part if self.x_part else 1.0

    def extrapolate(self, part: float, half: float | None) -> float:
        """A count of the whole from the part's (`part`) and the half's (`half`): linear in
        the cycles figure through both, or proportional to it when there is no half or the
        two do not grow together."""
        proportional = part * self.factor
        if half is None or self.x_part <= self.x_half or not 0 <= half <= part:
            return proportional
        slope = (part - half) / (self.x_part - self.x_half)
        value = part + slope * (self.x_whole - self.x_part)
        return value if value >= part else proportional

    def note(self) -> str:
        """The row warning that says the layer was counted on a sample."""
        return (f"statistical layer counted on a sample ({self.cuts}) and extrapolated "
                f"{self.factor:.4g}x: an i.i.d. bitmap of the whole layer is over "
                f"{MASK_BUDGET} elements or {WORK_BUDGET} lane-steps")


def _dims(layer: Layer) -> dict[str, int]:
    s = layer.shape
    if isinstance(s, ConvShape):
        return {"N": s.N, "groups": s.groups, "Cg": s.C // s.groups, "H": s.H, "W": s.W,
                "Kg": s.K // s.groups}
    return {"batch": s.batch, "M": s.M, "K": s.K, "N": s.N}


def _shape(layer: Layer, d: dict[str, int]) -> ConvShape | GemmShape:
    """The layer's shape with the sizes `d`; a conv cut along H or W is a band from the inside
    of the plane, so that axis loses its padding."""
    s = layer.shape
    if isinstance(s, ConvShape):
        top, bottom, left, right = s.padding
        if d["H"] != s.H:
            top, bottom = 0, 0
        if d["W"] != s.W:
            left, right = 0, 0
        return ConvShape(N=d["N"], C=d["groups"] * d["Cg"], H=d["H"], W=d["W"],
                         K=d["groups"] * d["Kg"], R=s.R, S=s.S, stride=s.stride,
                         padding=(top, bottom, left, right), dilation=s.dilation,
                         groups=d["groups"])
    return GemmShape(M=d["M"], K=d["K"], N=d["N"], batch=d["batch"])


def _least(layer: Layer, axis: str) -> int:
    """The smallest size `axis` may be cut to: for a conv's H or W, a band the dilated kernel
    fits without padding (a layer whose kernel needs its padding is not cut there)."""
    s = layer.shape
    if isinstance(s, ConvShape) and axis in ("H", "W"):
        k, dil, extent = (s.R, s.dilation[0], s.H) if axis == "H" else (s.S, s.dilation[1], s.W)
        return min(extent, dil * (k - 1) + 1)
    return 1


GEMM_AXES = {False: {"N": "M", "groups": "batch", "Cg": "K", "Kg": "N"},
             True: {"H": "M", "groups": "batch", "Cg": "K", "Kg": "N"}}
"""Which size of a linear/matmul layer each conv axis of its `ConvView` is (planar or not)."""
AXIS_NAMES = {"Cg": "C/groups", "Kg": "K/groups"}


def _holds(axis: str, conv: bool) -> tuple[bool, bool]:
    """(whether cutting `axis` cuts the activation, whether it cuts the weights)."""
    if conv:
        return axis != "Kg", axis in ("groups", "Cg", "Kg")
    return axis in ("batch", "M", "K"), axis in ("batch", "K", "N")


def statistical_sample(layer: Layer, planar: bool, order: tuple[str, ...],
                       steps: Callable[[ConvView], int],
                       cycles: Callable[[ConvView], float]) -> Sample | None:
    """The part of `layer` to count when its i.i.d. bitmaps would exceed `MASK_BUDGET` elements
    or its counting `WORK_BUDGET` (`steps`: the dataflow's estimate for a layer's
    `shape_view`), else None. Axes are cut by halves in `order` (conv axes N, H, W, groups, Cg,
    Kg of the layer's `ConvView`), each only as far as it helps; a traced operand is never cut
    (a traced activation bounds the work by the trace itself). `cycles` gives the figure the
    whole's work is extrapolated along (see `Sample`)."""
    iid_act = not layer.has_trace
    iid_weight = not weights_known(layer) and layer.declared_weight_density is not None
    if not (iid_act or iid_weight):
        return None
    conv = isinstance(layer.shape, ConvShape)
    axes = [a if conv else GEMM_AXES[planar].get(a) for a in order]

    def over(shape: ConvShape | GemmShape) -> tuple[float, float, float]:
        act, weight = math.prod(shape.act_shape), math.prod(shape.weight_shape)
        work = steps(shape_view(Layer(layer.name, layer.op, shape), planar)) if iid_act else 0
        return (act / MASK_BUDGET if iid_act else 0.0,
                weight / MASK_BUDGET if iid_weight else 0.0,
                work / WORK_BUDGET)

    def halved(d: dict[str, int], axis: str) -> dict[str, int]:
        return {**d, axis: max(_least(layer, axis), d[axis] // 2)}

    dims = _dims(layer)
    if max(over(layer.shape)) <= 1.0:
        return None
    cuts: list[str] = []
    last = None
    for axis in (a for a in axes if a is not None):
        cuts_act, cuts_weight = _holds(axis, conv)
        if (cuts_act and not iid_act) or (cuts_weight and weights_known(layer)):
            continue
        start = dims[axis]
        while max(over(_shape(layer, dims))) > 1.0 and dims[axis] > _least(layer, axis):
            before, after = over(_shape(layer, dims)), over(_shape(layer, halved(dims, axis)))
            if not any(a < b for a, b in zip(after, before) if b > 1.0):
                break
            dims = halved(dims, axis)
        if dims[axis] != start:
            cuts.append(f"{AXIS_NAMES.get(axis, axis)} {start} -> {dims[axis]}")
            last = axis
        if max(over(_shape(layer, dims))) <= 1.0:
            break
    if last is None:
        return None

    def part_layer(d: dict[str, int]) -> Layer:
        return Layer(name=layer.name, op=layer.op, shape=_shape(layer, d), act_bits=layer.act_bits,
                     weight_bits=layer.weight_bits, act=layer.act, act_mask=layer.act_mask,
                     weight=layer.weight, weight_mask=layer.weight_mask,
                     declared_act_density=layer.declared_act_density,
                     declared_weight_density=layer.declared_weight_density)

    part = part_layer(dims)
    half = part_layer(halved(dims, last)) if dims[last] > _least(layer, last) else None
    changed = {axis for axis in dims if dims[axis] != _dims(layer)[axis]}
    return Sample(part, half, cycles(shape_view(layer, planar)), cycles(shape_view(part, planar)),
                  cycles(shape_view(half, planar)) if half is not None else 0.0,
                  ", ".join(cuts), act_cut=any(_holds(a, conv)[0] for a in changed),
                  weight_cut=any(_holds(a, conv)[1] for a in changed))


def shape_view(layer: Layer, planar: bool = False) -> ConvView:
    """The whole layer as a `ConvView` whose maps take no memory: for its geometry only."""
    act = np.broadcast_to(np.False_, layer.shape.act_shape)
    return conv_view(layer, act, dense_view(layer.shape.weight_shape), planar=planar)


def _inside(out: int, stride: int, pad: int, dil: int, taps: int, extent: int) -> np.ndarray:
    """Per tap k: output positions 0..out-1 whose input coordinate at tap k lies inside
    [0, extent) (the closed form of `_tap_rows` counted)."""
    k = np.arange(taps, dtype=np.int64)
    offset = pad - k * dil
    first = np.maximum(0, -((-offset) // stride))
    last = np.minimum(out - 1, (extent - 1 + offset) // stride)
    return np.maximum(0, last - first + 1)


def expected_mac_counts(layer: Layer, v: ConvView, sample: Sample, part: TapCounts,
                        skip: tuple[str, ...], gate: tuple[str, ...],
                        padding_processed: bool) -> MacCounts:
    """`mac_counts` of the whole `layer` (`v`: its `shape_view`), counted on `sample` (`part`: the
    sample's tap counts): an operand the sample did not cut keeps its exact per-tap counts; a cut
    i.i.d. activation puts act_density of each inside tap on a non-zero, cut i.i.d. weights
    put weight_density of each filter on a non-zero, dense weights count every filter."""
    rows = _inside(v.E, v.stride[0], v.padding[0], v.dilation[0], v.R, v.H)
    cols = _inside(v.F, v.stride[1], v.padding[2], v.dilation[1], v.S, v.W)
    inside = v.N * rows[:, None].astype(np.float64) * cols[None, :]
    if not sample.weight_cut:
        per_tap = (None if part.weight_nonzero is None
                   else part.weight_nonzero.astype(np.float64))
    elif not weights_known(layer) and layer.declared_weight_density is not None:
        per_tap = np.full((v.C, v.R, v.S), layer.weight_density * v.Kg)
    else:
        per_tap = np.full((v.C, v.R, v.S), float(v.Kg))

    def pairs(act_nonzero: bool, weight_nonzero: bool) -> int:
        if act_nonzero and not sample.act_cut:
            taps = part.nonzero.astype(np.float64)
        elif act_nonzero:
            taps = np.broadcast_to(layer.act_density * inside, (v.C, v.R, v.S))
        elif padding_processed:
            taps = np.full((v.C, v.R, v.S), float(v.N * v.E * v.F))
        else:
            taps = np.broadcast_to(inside, (v.C, v.R, v.S))
        weights = per_tap if weight_nonzero else float(v.Kg)
        return min(v.macs, max(0, round(float(np.sum(taps * weights)))))

    done = pairs("act" in skip, "weight" in skip)
    full = pairs("act" in skip or "act" in gate, "weight" in skip or "weight" in gate)
    return MacCounts(dense=v.macs, done=done, gated=done - full)
