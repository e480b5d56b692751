"""Map a whole workload onto the NPs of a neuromorphic mesh (networkx).

Units: a layer, or a depthwise conv fused with the 1x1 conv it feeds (`separable`, as Akida
1.0 runs them on the same NPs). Each unit needs:

* `input_unit`: the first conv on raw pixels (C <= `input_unit_max_channels`) runs on the
  dense input unit next to the DMA and uses no NP;
* `cnp`: `stripes x col_stripes x groups` NPs. With `max_tile_cols` (both Akida IP versions as
  akida 2.19.3 maps them) the input is cut in the fewest row x column tiles of at most
  `max_stripe_rows` x `max_tile_cols` pixels whose largest, with the kernel halo and its rows
  packed in `input_word_bits`-bit words per column and channel, fits `np_input_memory_bytes`
  (cut axes aligned to the stride of a max pooling the layer ends with); without it, in row
  stripes only, each stripe's input rows (with the halo, rounded up to `stripe_rows_round`) x W
  x C x the stored activation width within the input memory. Groups split the filters so that
  one NP's weights fit `np_weight_memory_bytes`. With the word tables (`conv_weight_words`, as
  akida 2.19.3 lays weights out on both IP versions): per input channel, k filters rounded up
  to `filter_align` take ceil(k / filters) x words words of `weight_word_bits`, rounded up to
  `weight_words_round`; a fused separable unit takes its depthwise kernels' words per channel
  (`separable_dw_words`) plus ceil(k x w / `pointwise_word_bits`) pointwise words; a standalone
  depthwise conv `depthwise_weight_words` per channel. Without them: per input channel
  `ceil(k*R*S*w / efficiency)` bits rounded up to the allocation unit of the width (a share
  that is not a multiple of `filter_align` laid out as the next multiple of twice it). The
  filters are balanced over the fewest groups whose share fits, at most `max_filters_per_np`
  each. A standalone depthwise conv (when supported) is split by channels instead, into the
  fewest channel groups x stripes that fit both memories.
* `fnp`: a fully connected layer takes one FC-capable NP; its K x N weights at the layer's
  stored weight width stay in DRAM when they exceed `fnp_weight_memory_bytes`, and then only an
  NP that streams its weights (`fnp_external_slots`, akida's FNP2) can run it.
* `unmappable`: unsupported op (activation x activation matmul, grouped conv, a kernel/stride
  the NPs lack) or too large (one filter exceeds an NP, more NPs than the chip); the reason,
  short and specific, is kept and reported.

Bit widths per layer come from `Config.layer_bits` (the trace's widths where the NPs support
them, else the configured precision); the first layer reads raw input at `input_act_bits`.

Placement walks the units in topological order, greedily as the akida mapper does, and gives
each the free NPs of its kind nearest (in mesh hops) to its producers' NPs, or to the DMA node
for units fed from outside: a conv takes NPs that run no FC layer first, then on-chip FC NPs,
then streaming ones (and never an FC-only NP, `fc_only_slots`); an FC layer takes an on-chip FC
NP before a streaming one. When the free NPs of its kind run out, a new pass starts: the chip
is reprogrammed and the next units run on the whole mesh again (Akida multi-pass), except that
a unit never takes an NP its producer holds, in the previous pass too. A unit that needs more
NPs than a new pass has besides those starts a new sequence on the whole mesh (akida 2.19.3
does so, or refuses the map when asked for hardware only; probed in
tests/test_neuromorphic_akida.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import networkx as nx

from accelsim.engines.neuromorphic.config import Config, LayerBits
from accelsim.errors import ArchError
from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload

UnitKind = Literal["input_unit", "cnp", "fnp", "unmappable"]
Slot = tuple[tuple[int, int], int]
"""An NP: ((column, row) of its node, NP id within the node)."""


@dataclass
class Unit:
    """One mapping unit and what it needs; `nps` and `pass_index` are set by placement."""

    name: str
    layers: tuple[str, ...]
    kind: UnitKind
    reason: str = ""
    producers: tuple[str, ...] = ()
    stripes: int = 1
    """Row stripes: cuts of the input along its first spatial axis."""
    col_stripes: int = 1
    """Column cuts of each row stripe (Akida 2.0 tiles; 1 where NPs take whole rows)."""
    groups: int = 1
    channel_split: bool = False
    filters_per_np: int = 0
    weight_bytes_per_np: int = 0
    weight_bytes: int = 0
    external_weights: bool = False
    nps: tuple[Slot, ...] = ()
    pass_index: int = 0
    sequence_index: int = 0
    """Akida sequence: a new one starts (on the whole mesh) where a unit does not fit a new
    pass beside its producer's NPs; akida maps a model of several sequences only when not
    asked for hardware only (`hw_only=False`), and its mapper ranks fewer sequences first."""
    bits: tuple[LayerBits, ...] = ()
    """Widths each of `layers` runs at (in the same order)."""

    @property
    def np_count(self) -> int:
        if self.kind == "cnp":
            return self.stripes * self.col_stripes * self.groups
        return 1 if self.kind == "fnp" else 0


@dataclass
class Mesh:
    """Nodes, their hop distances, and the NP slots of the chip."""

    graph: nx.Graph
    hops: dict[tuple[int, int], dict[tuple[int, int], int]]
    slots: list[Slot]
    fnp_slots: set[Slot]
    """NPs that run fully connected layers (with their weights on chip or in DRAM)."""
    dma: tuple[int, int]
    links: int = field(default=0)
    external_slots: set[Slot] | None = None
    """FC NPs that stream their weights from DRAM (None: every FC NP can)."""
    fc_only: set[Slot] = field(default_factory=set)
    """FC NPs that run no convolution."""

    def rank(self, slot: Slot, kind: str) -> int:
        """Order in which a unit of `kind` takes NPs (as the akida mapper does): a conv takes
        NPs that run no FC layer first, then FC NPs with weights on chip, then those that
        stream from DRAM; an FC layer takes on-chip FC NPs before streaming ones."""
        fc = slot in self.fnp_slots
        external = fc and self.external_slots is not None and slot in self.external_slots
        if kind == "cnp":
            return 2 if external else 1 if fc else 0
        return 1 if external else 0


def build_mesh(arch: Config) -> Mesh:
    """The mesh graph (links between nodes one column or row apart) and its NP slots."""
    positions = arch.positions()
    dma = arch.dma_position()
    g = nx.Graph()
    g.add_nodes_from(positions)
    g.add_node(dma)
    present = set(positions) | {dma}
    for c, r in present:
        for nb in ((c + 1, r), (c, r + 1)):
            if nb in present:
                g.add_edge((c, r), nb)
    if not nx.is_connected(g):
        raise ArchError(f"arch '{arch.name}': node_positions and dma_node do not form a "
                        "connected mesh (each needs a neighbour one column or row away).")
    slots: list[Slot] = []
    fnp: set[Slot] = set()
    for pos in positions:
        first = arch.dma_reserved_nps if pos == dma else 0
        for i in range(first, arch.nps_per_node):
            slots.append((pos, i))
            if arch.fnp_slots is None and i < arch.fnp_per_node:
                fnp.add((pos, i))
    present = set(slots)

    def listed(key: str, entries) -> set[Slot]:
        out = {((int(c), int(r)), int(i)) for c, r, i in entries}
        stray = sorted(out - present)
        if stray:
            (c, r), i = stray[0]
            raise ArchError(f"arch '{arch.name}': {key} names NP [{c}, {r}, {i}], which is not "
                            "an NP of the mesh (node_positions, nps_per_node, dma_node and "
                            "dma_reserved_nps make the NPs). List only NPs of the mesh.")
        return out

    if arch.fnp_slots is not None:
        fnp = listed("fnp_slots", arch.fnp_slots)
    external = None
    if arch.fnp_external_slots is not None:
        external = listed("fnp_external_slots", arch.fnp_external_slots)
        fnp |= external
    fc_only = listed("fc_only_slots", arch.fc_only_slots)
    if fc_only - fnp:
        raise ArchError(f"arch '{arch.name}': fc_only_slots lists NPs that run no fully "
                        "connected layer; list them in fnp_slots or fnp_external_slots too.")
    hops = {a: dict(d) for a, d in nx.all_pairs_shortest_path_length(g)}
    return Mesh(graph=g, hops=hops, slots=slots, fnp_slots=fnp, dma=dma,
                links=g.number_of_edges(), external_slots=external, fc_only=fc_only)


def producers_of(workload: Workload) -> dict[str, list[str]]:
    """Producer layers of each layer (the previous layer when the trace has no edges)."""
    names = [layer.name for layer in workload.layers]
    if not workload.edges:
        return {n: ([names[i - 1]] if i else []) for i, n in enumerate(names)}
    preds: dict[str, list[str]] = {n: [] for n in names}
    for a, b in workload.edges:
        if a in preds and b in preds:
            preds[b].append(a)
    return preds


def _channels(s: ConvShape) -> int:
    return s.C


def _is_depthwise(s: ConvShape) -> bool:
    return s.groups == s.C and s.groups > 1 and s.K == s.C


def _is_pointwise(s: ConvShape) -> bool:
    return (s.R, s.S, s.stride, s.groups, s.dilation) == (1, 1, (1, 1), 1, (1, 1)) and \
        s.padding == (0, 0, 0, 0)


def _axis_stripes(n_in: int, n_out: int, kernel: int, stride: int, pad: int, dilation: int,
                  stripes: int) -> list[tuple[int, int, int, int]]:
    """Per stripe along one spatial axis: (first output, end output, first input, end input);
    outputs are split evenly and each stripe reads the inputs its outputs need."""
    bounds = [round(i * n_out / stripes) for i in range(stripes + 1)]
    out = []
    for i, (e0, e1) in enumerate(zip(bounds[:-1], bounds[1:])):
        lo = max(0, e0 * stride - pad)
        hi = min(n_in, (e1 - 1) * stride - pad + (kernel - 1) * dilation + 1)
        if i == 0:
            lo = 0
        if i == stripes - 1:
            hi = n_in
        out.append((e0, e1, lo, max(hi, lo)))
    return out


def stripe_rows(s: ConvShape, stripes: int) -> list[tuple[int, int, int, int]]:
    """Per row stripe: (first output row, end output row, first input row, end input row)."""
    return _axis_stripes(s.H, s.E, s.R, s.stride[0], s.padding[0], s.dilation[0], stripes)


def stripe_cols(s: ConvShape, stripes: int) -> list[tuple[int, int, int, int]]:
    """Per column stripe: (first output column, end, first input column, end)."""
    return _axis_stripes(s.W, s.F, s.S, s.stride[1], s.padding[2], s.dilation[1], stripes)


def _roundup(x: float, unit: int) -> int:
    return int(math.ceil(x / unit - 1e-9)) * unit


def conv_weight_bytes(k: int, s: ConvShape, wbits: int, arch: Config, separable: int | None,
                      pointwise_bits: int | None = None) -> int:
    """Bytes of weight memory one NP needs to hold k filters of `s` (or k channels of a
    standalone depthwise) at `wbits` bits per weight; `separable` (not None) fuses the 1x1 conv
    that follows, whose k filters take `pointwise_bits` per weight (default `wbits`)."""
    word = arch.weight_word_bits
    if separable is not None and arch.separable_dw_words is not None:
        pw_bits = wbits if pointwise_bits is None else pointwise_bits
        dw_words, channel_round = arch.separable_dw_words[wbits]
        words = (_roundup(s.C, channel_round) * dw_words
                 + s.C * math.ceil(k * pw_bits / arch.pointwise_word_bits))
        return math.ceil(words * word / 8)
    if separable is None and _is_depthwise(s) and arch.depthwise_weight_words is not None:
        words = _roundup(k * arch.depthwise_weight_words[s.R][wbits], arch.depthwise_words_round)
        return math.ceil(words * word / 8)
    if separable is None and not _is_depthwise(s) and arch.conv_weight_words is not None:
        words, filters = arch.conv_weight_words[s.R][wbits]
        per_channel = _roundup(math.ceil(_roundup(k, arch.filter_align) / filters) * words,
                               arch.weight_words_round[wbits])
        return math.ceil((s.C // s.groups) * per_channel * word / 8)
    eff = arch.weight_packing_efficiency.get(wbits, 1.0)
    if separable is not None:
        unit = arch.separable_alloc_bits
        pw_bits = wbits if pointwise_bits is None else pointwise_bits
        pw_eff = arch.weight_packing_efficiency.get(pw_bits, 1.0)
        per_channel = (_roundup(s.R * s.S * wbits / eff, unit)
                       + _roundup(k * pw_bits / pw_eff, unit))
        return math.ceil(s.C * per_channel / 8)
    unit = arch.weight_alloc_bits.get(wbits, 8)
    if _is_depthwise(s):
        return math.ceil(k * _roundup(s.R * s.S * wbits / eff, unit) / 8)
    return math.ceil((s.C // s.groups) * _roundup(k * s.R * s.S * wbits / eff, unit) / 8)


def _stored_filters(k: int, arch: Config) -> int:
    """Filters an NP's weight memory is laid out for under the allocation-unit rule: k when
    aligned, else k rounded up to twice the alignment (akida 2.19.3 mapper, 4-bit 3x3: 65..79
    filters take the memory of 80); k itself under the word tables, which round on their own."""
    if k % arch.filter_align == 0 or arch.conv_weight_words is not None:
        return k
    return _roundup(k, 2 * arch.filter_align)


def _filter_groups(total: int, fits, arch: Config, cap: int) -> int:
    """Fewest groups whose balanced share ceil(total / groups) of the filters fits one NP
    (weights laid out for `_stored_filters`), at most `max_filters_per_np` and `cap` each;
    0 when not even one filter fits."""
    limit = min(arch.max_filters_per_np, cap)
    for groups in range(max(1, math.ceil(total / limit)), total + 1):
        k = math.ceil(total / groups)
        if k <= limit and fits(_stored_filters(k, arch)):
            return groups
    return 0


def _stripes_needed(s: ConvShape, act_bits: int, channels: int, arch: Config) -> int:
    """Fewest row stripes whose input rows (rounded up to a multiple of `stripe_rows_round`)
    fit the NP input memory; 0 if none does."""
    n = max(1, math.ceil(s.H / arch.max_stripe_rows))
    while n <= s.E:
        worst = _roundup(max(hi - lo for _, _, lo, hi in stripe_rows(s, n)),
                         arch.stripe_rows_round)
        if worst * s.W * channels * act_bits / 8 <= arch.np_input_memory_bytes:
            return n
        n += 1
    return 0


def _tile_extent(size: int, kernel: int, cuts: int, align: int) -> tuple[int, int]:
    """(pixels, pixels with the kernel's halo) of the largest of `cuts` tiles along one axis of
    `size` pixels: ceil(size / cuts), rounded up to a multiple of `align` when the axis is cut
    (a max pooling's stride: each tile pools whole windows), plus (kernel - 1) // 2 on each side
    that has a neighbouring tile."""
    own = math.ceil(size / cuts)
    if cuts > 1:
        own = _roundup(own, align)
    return own, own + (kernel - 1) // 2 * min(2, cuts - 1)


def _tile_bytes(s: ConvShape, rows: int, cols: int, act_bits: int, channels: int,
                arch: Config, align: tuple[int, int] = (1, 1)) -> int:
    """Input memory of the largest tile when the input is cut in `rows` x `cols` tiles (the
    tile rule, `max_tile_cols` set; extents by `_tile_extent`), the rows of each column and
    channel packed into `input_word_bits`-bit words."""
    word = arch.input_word_bits
    words = math.ceil(_tile_extent(s.H, s.R, rows, align[0])[1] * act_bits / word)
    return channels * _tile_extent(s.W, s.S, cols, align[1])[1] * words * word // 8


def _pool_align(layer: Layer) -> tuple[int, int]:
    """Pixels each tile of the layer's input is aligned to along (H, W): the stride of the max
    pooling the layer ends with (`info.pool` of an akida import), else 1."""
    pool = layer.extra.get("pool")
    if isinstance(pool, dict) and pool.get("type") == "max":
        stride = pool.get("stride") or pool.get("size")
        return int(stride[0]), int(stride[1])
    return 1, 1


def _tiles_needed(s: ConvShape, act_bits: int, channels: int, arch: Config,
                  align: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """(row cuts, column cuts) of the input over NPs: row stripes only (`_stripes_needed`)
    without `max_tile_cols`; with it, the fewest tiles, at most `max_stripe_rows` x
    `max_tile_cols` pixels each (halo aside), whose largest fits the NP input memory, more row
    cuts first among equal counts (as the akida 2.19.3 mapper tiles layers on both IP
    versions); `align` the max pooling's stride (`_tile_extent`); (0, 0) if none fits."""
    if arch.max_tile_cols is None:
        stripes = _stripes_needed(s, act_bits, channels, arch)
        return (stripes, 1) if stripes else (0, 0)
    best = (0, 0)
    least_cols = math.ceil(s.W / arch.max_tile_cols)
    for rows in range(math.ceil(s.H / arch.max_stripe_rows), s.H + 1):
        if best[0] and rows * least_cols > best[0] * best[1]:
            break
        if _tile_extent(s.H, s.R, rows, align[0])[0] > arch.max_stripe_rows:
            continue
        for cols in range(least_cols, s.W + 1):
            if best[0] and rows * cols > best[0] * best[1]:
                break
            if _tile_extent(s.W, s.S, cols, align[1])[0] > arch.max_tile_cols:
                continue
            if _tile_bytes(s, rows, cols, act_bits, channels, arch, align) \
                    <= arch.np_input_memory_bytes:
                best = (rows, cols)
                break
    return best


def _channel_split(s: ConvShape, act_bits: int, least: int, arch: Config,
                   align: tuple[int, int] = (1, 1)) -> tuple[int, int, int]:
    """(channel groups, row cuts, column cuts) of a standalone depthwise conv: the fewest NPs,
    at least `least` groups (its weights), fewer groups on a tie; the input memory can call
    for more channel groups as well as more tiles. (groups, 0, 0) when no split fits."""
    best = (least, 0, 0)
    for groups in range(least, s.C + 1):
        rows, cols = _tiles_needed(s, act_bits, math.ceil(s.C / groups), arch, align)
        if rows and (not best[1] or groups * rows * cols < math.prod(best)):
            best = (groups, rows, cols)
        if best[1] and groups >= math.prod(best):
            break
    return best


def _unsupported(name: str, producers: tuple[str, ...], layers: tuple[str, ...],
                 reason: str, bits: tuple[LayerBits, ...] = ()) -> Unit:
    return Unit(name=name, layers=layers, kind="unmappable", reason=reason, producers=producers,
                bits=bits)


def _pair(v: tuple[int, int]) -> str:
    return f"{v[0]}x{v[1]}"


def kernel_problem(s: ConvShape, strides: dict[int, tuple[int, ...]], where: str) -> str:
    """Why a conv's kernel, stride or dilation cannot run `where` ("on the NPs", "on the input
    unit"), given the strides each square kernel size supports there; '' when it can. Reasons
    hold no "; " (it separates a row's warnings)."""
    sizes = sorted(strides)
    if s.dilation != (1, 1):
        return f"dilation {_pair(s.dilation)} is not supported {where}"
    if s.R != s.S or s.R not in strides:
        if max(s.R, s.S) > sizes[-1]:
            return (f"{s.R}x{s.S} kernel exceeds the largest kernel {where}, "
                    f"{sizes[-1]}x{sizes[-1]}")
        return (f"{s.R}x{s.S} kernel is not supported {where} (kernels "
                f"{', '.join(f'{k}x{k}' for k in sizes)})")
    if s.stride[0] != s.stride[1] or s.stride[0] not in strides[s.R]:
        only = " only" if len(strides[s.R]) == 1 else ""
        return (f"stride {_pair(s.stride)} is not supported for a {s.R}x{s.S} kernel {where} "
                f"({s.R}x{s.S} takes stride {' or '.join(map(str, strides[s.R]))}{only})")
    return ""


def _layout_problem(s: ConvShape, wbits: int, arch: Config, depthwise: bool, fused: bool) -> str:
    """Why the NP weight memory has no layout for this kernel at `wbits` ('' when it has)."""
    if fused:
        table, what = arch.separable_dw_words, "a separable layer"
        widths = sorted(table) if table is not None else None
    else:
        tables = arch.depthwise_weight_words if depthwise else arch.conv_weight_words
        what = f"a {s.R}x{s.S} {'depthwise ' if depthwise else ''}convolution"
        widths = sorted(tables.get(s.R, {})) if tables is not None else None
    if widths is None or wbits in widths:
        return ""
    return (f"{wbits}-bit weights are not supported in {what} on the NPs (widths "
            f"{', '.join(map(str, widths)) or 'none'})")


def conv_unit(layer: Layer, producers: tuple[str, ...], arch: Config, bits: LayerBits,
              filters_cap: int, pointwise: Layer | None = None,
              pointwise_bits: LayerBits | None = None) -> Unit:
    """Requirements of a conv layer running at `bits` (or a depthwise + pointwise pair, the
    pointwise at `pointwise_bits`) on the NPs."""
    s = layer.shape
    assert isinstance(s, ConvShape)
    layers = (layer.name,) if pointwise is None else (layer.name, pointwise.name)
    unit_bits = (bits,) if pointwise_bits is None else (bits, pointwise_bits)
    depthwise = _is_depthwise(s)

    def unsupported(reason: str) -> Unit:
        return _unsupported(layer.name, producers, layers, reason, unit_bits)

    if s.groups > 1 and not depthwise:
        return unsupported(f"grouped convolution (groups={s.groups}) is not supported on the "
                           "NPs (only groups=1 or depthwise)")
    if depthwise and pointwise is None and "depthwise" not in arch.supported_ops:
        return unsupported("a depthwise convolution is supported only fused with the 1x1 "
                           "convolution that follows it (separable), and none follows")
    if not depthwise and "conv2d" not in arch.supported_ops:
        return unsupported("conv2d is not in supported_ops")
    problem = kernel_problem(s, arch.conv_kernel_strides, "on the NPs") or \
        _layout_problem(s, bits.weight, arch, depthwise, pointwise is not None)
    if problem:
        return unsupported(problem)
    if depthwise and pointwise is None:
        total, channel_split, sep = s.C, True, None
    else:
        total = pointwise.shape.K if pointwise is not None else s.K
        channel_split, sep = False, (total if pointwise is not None else None)
    pw_wbits = pointwise_bits.weight if pointwise_bits is not None else None

    def weight_bytes(k: int) -> int:
        return conv_weight_bytes(k, s, bits.weight, arch, sep, pw_wbits)

    groups = _filter_groups(total, lambda k: weight_bytes(k) <= arch.np_weight_memory_bytes,
                            arch, filters_cap)
    if groups == 0:
        channels = s.C // s.groups
        return unsupported(f"too large: one {s.R}x{s.S} filter over {channels} channel"
                           f"{'s' if channels > 1 else ''} at {bits.weight} bits needs "
                           f"{weight_bytes(1):,} B of weights, an NP holds "
                           f"{arch.np_weight_memory_bytes:,} B")
    align = _pool_align(pointwise if pointwise is not None else layer)
    if channel_split:
        groups, stripes, cols = _channel_split(s, bits.act, groups, arch, align)
    else:
        stripes, cols = _tiles_needed(s, bits.act, s.C, arch, align)
    per_np = math.ceil(total / groups)
    channels_per_np = per_np if channel_split else s.C
    if stripes == 0:
        what = "one input row" if arch.max_tile_cols is None else "one input pixel"
        return unsupported(f"too large: {what} ({s.W if arch.max_tile_cols is None else 1} x "
                           f"{channels_per_np} x {bits.act} bits) does not fit the "
                           f"{arch.np_input_memory_bytes:,} B NP input memory")
    wbytes = weight_bytes(_stored_filters(per_np, arch))
    return Unit(name=layer.name, layers=layers, kind="cnp", producers=producers,
                stripes=stripes, col_stripes=cols, groups=groups, channel_split=channel_split,
                filters_per_np=per_np, weight_bytes_per_np=wbytes,
                weight_bytes=wbytes * groups, bits=unit_bits)


def linear_unit(layer: Layer, producers: tuple[str, ...], arch: Config, bits: LayerBits) -> Unit:
    """Requirements of a fully connected layer running at `bits` on one FC-capable NP."""
    s = layer.shape
    assert isinstance(s, GemmShape)
    layers = (layer.name,)
    if "linear" not in arch.supported_ops:
        return _unsupported(layer.name, producers, layers, "linear is not in supported_ops",
                            (bits,))
    if s.batch > 1:
        return _unsupported(layer.name, producers, layers,
                            f"a batched product (batch={s.batch}) has no fixed weights to hold",
                            (bits,))
    inputs = s.K
    if inputs > arch.max_fc_inputs:
        return _unsupported(layer.name, producers, layers,
                            f"too large: {inputs:,} inputs, a fully connected NP takes at most "
                            f"{arch.max_fc_inputs:,}", (bits,))
    wbytes = math.ceil(s.K * s.N * bits.weight / 8)
    return Unit(name=layer.name, layers=layers, kind="fnp", producers=producers,
                filters_per_np=s.N, weight_bytes_per_np=wbytes, weight_bytes=wbytes,
                external_weights=wbytes > arch.fnp_weight_memory_bytes, bits=(bits,))


def plan_units(workload: Workload, arch: Config, filters_cap: int | None = None) -> list[Unit]:
    """Units in topological order with their NP requirements (not yet placed)."""
    preds = producers_of(workload)
    succs: dict[str, list[str]] = {n: [] for n in preds}
    for b, ps in preds.items():
        for a in ps:
            succs[a].append(b)
    layers = {layer.name: layer for layer in workload.layers}
    order = list(nx.topological_sort(_graph(preds)))
    cap = filters_cap or arch.max_filters_per_np
    unit_of: dict[str, str] = {}
    units: list[Unit] = []
    fused: set[str] = set()
    for name in order:
        if name in fused:
            continue
        layer = layers[name]
        producers = tuple(dict.fromkeys(unit_of[p] for p in preds[name]))
        first = not preds[name]
        bits = _layer_bits(layer, arch, first)
        s = layer.shape
        if layer.op == "matmul":
            unit = _unsupported(name, producers, (name,),
                                "activation x activation matmul: no fixed weights to hold in "
                                "NP memory", (bits,))
        elif isinstance(s, GemmShape):
            unit = linear_unit(layer, producers, arch, bits)
        elif first and arch.input_unit and _channels(s) <= arch.input_unit_max_channels:
            problem = _input_unit_problem(s, arch)
            bits = replace(bits, weight=arch.input_weight_bits)
            unit = (Unit(name=name, layers=(name,), kind="input_unit", producers=producers,
                         bits=(bits,), filters_per_np=s.K) if not problem else
                    _unsupported(name, producers, (name,), f"input layer: {problem}", (bits,)))
        else:
            pw = None
            if _is_depthwise(s) and "separable" in arch.supported_ops and len(succs[name]) == 1:
                nxt = layers[succs[name][0]]
                if isinstance(nxt.shape, ConvShape) and nxt.op == "conv2d" \
                        and _is_pointwise(nxt.shape) and preds[nxt.name] == [name]:
                    pw = nxt
            pw_bits = _layer_bits(pw, arch, False) if pw is not None else None
            unit = conv_unit(layer, producers, arch, bits, cap, pointwise=pw,
                             pointwise_bits=pw_bits)
            if pw is not None and pw_bits is not None:
                fused.add(pw.name)
                if unit.kind == "unmappable":
                    # the pair cannot run fused: report the depthwise, map the 1x1 on its own
                    units.append(replace(unit, layers=(name,), bits=(bits,)))
                    unit_of[name] = name
                    unit = conv_unit(pw, (name,), arch, pw_bits, cap)
                    name = pw.name
                else:
                    unit_of[pw.name] = name
        unit_of[name] = name
        units.append(unit)
    return units


def _layer_bits(layer: Layer, arch: Config, first: bool) -> LayerBits:
    """Widths `layer` runs at: the first layer reads raw input at `input_act_bits`."""
    bits = arch.layer_bits(layer.act_bits, layer.weight_bits)
    return replace(bits, events=arch.input_act_bits, act=arch.input_act_bits) if first else bits


def _input_unit_problem(s: ConvShape, arch: Config) -> str:
    """Why the input unit cannot run this first conv ('' when it can)."""
    if s.groups != 1:
        return f"grouped convolution (groups={s.groups}) is not supported on the input unit"
    problem = kernel_problem(s, arch.input_unit_kernel_strides, "on the input unit")
    if problem:
        return problem
    width, filters = s.W, s.K
    if arch.input_unit_max_width is not None and width > arch.input_unit_max_width:
        return f"input width {width} exceeds the input unit's {arch.input_unit_max_width}"
    if arch.input_unit_max_filters is not None:
        limit = arch.input_unit_max_filters.get(s.R)
        if limit is not None:
            limit = limit * arch.input_unit_max_channels // s.C
            if filters > limit:
                return f"{filters} filters exceed the input unit's {limit} for a {s.R}x{s.R} kernel " \
                       f"on {s.C} channel(s)"
    return ""


def _graph(preds: dict[str, list[str]]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(preds)
    g.add_edges_from((a, b) for b, ps in preds.items() for a in ps)
    return g


def place(units: list[Unit], arch: Config, mesh: Mesh) -> list[Unit]:
    """Give every NP unit its NPs, nearest its producers, opening passes as the mesh fills."""
    placed: dict[str, Unit] = {}
    out: list[Unit] = []
    pass_index = sequence = 0
    free = set(mesh.slots)
    for unit in units:
        if unit.kind == "input_unit":
            unit = replace(unit, pass_index=pass_index)
        elif unit.kind in ("cnp", "fnp"):
            n = unit.np_count
            eligible = _eligible(unit, mesh)
            capacity = len([s for s in mesh.slots if eligible(s)])
            held = {slot for p in unit.producers if p in placed
                    and placed[p].sequence_index == sequence for slot in placed[p].nps}
            pool = [s for s in free if eligible(s) and s not in held]
            if n <= capacity and n > len(pool):
                pass_index += 1
                free = set(mesh.slots)
                pool = [s for s in free if eligible(s) and s not in held]
                if n > len(pool):
                    sequence += 1
                    pool = [s for s in free if eligible(s)]
            if n > capacity:
                what = ("" if unit.kind == "cnp" else "FC-capable " if not unit.external_weights
                        or mesh.external_slots is None else "DRAM-streaming FC ")
                unit = replace(unit, kind="unmappable",
                               reason=f"too large: needs {n} NPs, the chip has {capacity} "
                                      f"{what}NPs")
            else:
                anchors = [slot[0] for p in unit.producers if p in placed
                           and placed[p].pass_index == pass_index for slot in placed[p].nps]
                if not anchors:
                    anchors = [mesh.dma]

                def score(slot: Slot, anchors=anchors, kind=unit.kind) -> tuple:
                    dist = sum(mesh.hops[a][slot[0]] for a in anchors) / len(anchors)
                    return (mesh.rank(slot, kind), dist, slot[0][1], slot[0][0], slot[1])

                chosen = tuple(sorted(pool, key=score)[:n])
                free -= set(chosen)
                unit = replace(unit, nps=chosen, pass_index=pass_index,
                               sequence_index=sequence)
        placed[unit.name] = unit
        out.append(unit)
    return out


def _eligible(unit: Unit, mesh: Mesh):
    """Which NPs can run `unit`: any but the FC-only ones for a conv, the FC NPs for a fully
    connected layer, the DRAM-streaming ones when its weights stay off chip."""
    if unit.kind == "cnp":
        return lambda slot: slot not in mesh.fc_only
    if unit.external_weights and mesh.external_slots is not None:
        return lambda slot: slot in mesh.external_slots
    return lambda slot: slot in mesh.fnp_slots


def _criteria(units: list[Unit]) -> tuple[int, int, int, int]:
    """Lower is better: (unmapped layers, sequences, passes, -NPs used), as the akida mapper
    ranks."""
    mapped = [u for u in units if u.kind != "unmappable"]
    passes = max((u.pass_index for u in mapped), default=0) + 1
    sequences = max((u.sequence_index for u in mapped), default=0) + 1
    return (sum(len(u.layers) for u in units if u.kind == "unmappable"), sequences, passes,
            -sum(u.np_count for u in mapped))


def map_workload(workload: Workload, arch: Config, mesh: Mesh | None = None) -> list[Unit]:
    """Plan and place every unit; `spread` mode searches a cap on filters per NP that uses the
    most NPs without more passes (bisection, as the akida mapper's default mode)."""
    mesh = mesh or build_mesh(arch)
    best = place(plan_units(workload, arch), arch, mesh)
    if arch.mapping_mode == "minimal":
        return best
    best_key = _criteria(best)
    lo, hi = 0, arch.max_filters_per_np
    while lo + 2 <= hi:
        mid = (lo + hi) // 2
        cand = place(plan_units(workload, arch, filters_cap=mid), arch, mesh)
        key = _criteria(cand)
        if key <= best_key:
            best, best_key, hi = cand, key, mid
        else:
            lo = mid
    return best
