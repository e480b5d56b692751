"""The count step of a zero-skip array: per layer, cycles from the lane-timing kernels and
actions (MACs done, gated and skipped from the bitmaps; buffer and DRAM bytes with metadata).
DRAM fills come from the tiling search shared with the systolic kind
(`accelsim.engines.traffic`), each compressed operand's tile at its stored size; results carry
the same per-level, per-operand access columns, tiling and latency split as the systolic kind."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from accelsim.arch.energy import MAC_COMPUTE, MAC_GATED
from accelsim.arch.schema import ArchBase, MemoryLevel
from accelsim.engines import systolic, traffic
from accelsim.engines.counts import LayerResult, ceil_div
from accelsim.engines.shared_gemm_operand import GemmProblem, gemm_problem
from accelsim.engines.zero_skip import bitmaps, work
from accelsim.engines.zero_skip import kernels as kern
from accelsim.engines.zero_skip.config import (
    ARCHS_KEPT,
    MAC_IDLE,
    ChannelLanes,
    Config,
    DenseArray,
    PlanarCartesian,
    RowBroadcast,
)
from accelsim.engines.zero_skip.formats import Format, StoredSize, all_nonzero, stored_size
from accelsim.workload.layer import Layer


@dataclass
class Work:
    """What one dataflow did with one layer: cycles and element counts (before bytes)."""

    compute_cycles: int
    busy_lane_cycles: int
    products: int
    act_reads: float
    weight_reads: float
    psum_reads: float = 0.0
    """Partial sums the lanes read back from the output's buffer."""
    psum_writes: float = 0.0
    """Partial sums the lanes write to the output's buffer (a `dense_array`'s final sums
    included)."""
    extra: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Effects a user would not expect from the counts alone (go to the row's warnings)."""


def _run_channel_lanes(v: work.ConvView, arch: Config, macs: work.MacCounts,
                       t: work.TapCounts) -> Work:
    a: ChannelLanes = arch.array
    skip_act = "act" in arch.skip
    passes = ceil_div(v.Kg, a.filters_per_pass)
    issue = arch.sync.issue_cycles
    if skip_act and min(a.brick_size, v.Cg) <= issue:
        # no brick outlasts the issue interval: every item takes exactly issue_cycles
        steps = ceil_div(v.R * v.S * ceil_div(v.Cg, a.brick_size), a.lanes)
        cycles = v.groups * passes * v.N * v.E * v.F * steps * issue
        busy = passes * t.nonzero_taps
    elif (skip_act and arch.fifo_depth == 1 and arch.barrier_mode == kern.BARRIER_PASS
          and (v.R * v.S == 1 or ceil_div(v.Cg, a.brick_size) % a.lanes == 0)):
        cycles = _lockstep_channel_lanes(v, a, issue) * passes
        busy = passes * t.nonzero_taps
    else:
        bricks, pad = work.brick_work(v, a.brick_size, skip_act)
        s, p, d = v.stride, v.padding, v.dilation
        cycles, busy, _ = kern.channel_lanes_cycles(
            bricks, pad, v.E, v.F, v.R, v.S, s[0], s[1], p[0], p[2], d[0], d[1], a.lanes,
            passes, arch.barrier_mode, arch.fifo_depth, issue, not skip_act)
    act_values = t.nonzero_taps if skip_act else int(t.inside.sum()) * v.C
    notes = []
    if skip_act and v.Cg < a.brick_size:
        notes.append(f"{v.Cg} channel(s) per group fill {v.Cg} of a brick's {a.brick_size} "
                     "lanes and a brick takes at least one cycle: skipped zeros save weight "
                     "reads (energy) more than cycles")
    return Work(int(cycles), int(busy), macs.done, act_reads=act_values * passes,
                weight_reads=macs.done, notes=notes)


def _lockstep_channel_lanes(v: work.ConvView, a: ChannelLanes, issue: int) -> int:
    """Cycles of one filter pass of lockstep lanes whose items each sit at one window position
    (`kern.item_maxima`): every window's items summed over the window taps by the strided
    prefix sums of the tap statistics, padding taps at the padding items' time; a 1 x 1 window
    over every pixel straight from the bitmap (`kern.lockstep_pixel_cycles`)."""
    if v.every_pixel_once:
        return kern.lockstep_pixel_cycles(work.as_bytes(v.act), v.groups, a.brick_size,
                                          a.lanes, issue)
    bricks, pad = work.brick_work(v, a.brick_size, True)
    per_pixel, per_pad = kern.item_maxima(bricks, pad, a.lanes, issue)
    g, n, k, h, w = per_pixel.shape
    s, p, d = v.stride, v.padding, v.dilation
    inside = bitmaps.tap_nonzero(per_pixel.reshape(1, g * n * k, h, w), v.E, v.F, v.R, v.S,
                                 s[0], s[1], p[0], p[2], d[0], d[1])
    rows = work.tap_inside(v)
    outside_taps = v.groups * v.N * (v.R * v.S * v.E * v.F) - v.groups * int(rows.sum())
    return int(inside.sum()) + outside_taps * int(per_pad.sum())


def _planar_timing(v: work.ConvView, arch: Config
                   ) -> tuple[tuple[int, int], tuple[int, int, int, int, int]]:
    """((output-channel group Kc, halo outputs per image and filter), the planar kernel's
    cycles, busy PE-cycles, products, act and weight reads) of layer `v`."""
    a: PlanarCartesian = arch.array
    group = work.output_channel_group(v, a.pe_rows, a.pe_cols, a.accumulator_entries)
    acts = work.planar_act_count(v, a.pe_rows, a.pe_cols, "act" in arch.skip)
    weights = work.planar_weight_count(v, group[0], "weight" in arch.skip)
    if (arch.barrier_mode == kern.BARRIER_PASS and arch.fifo_depth < 0
            and arch.sync.issue_cycles == 0):
        return group, kern.planar_decoupled_cycles(acts, weights, a.mult_f, a.mult_i,
                                                   kern.contiguous_plane(acts))
    return group, kern.planar_cartesian_cycles(acts, weights, a.mult_f, a.mult_i,
                                               arch.barrier_mode, arch.fifo_depth,
                                               arch.sync.issue_cycles)


def _run_planar(v: work.ConvView, arch: Config, macs: work.MacCounts) -> Work:
    (kc, halo), (cycles, busy, products, act_reads, weight_reads) = _planar_timing(v, arch)
    halo_psums = halo * v.N * v.K
    return Work(int(cycles), int(busy), int(products), act_reads=float(act_reads),
                weight_reads=float(weight_reads),
                psum_reads=(products + halo_psums) / 2,
                psum_writes=(products + halo_psums) / 2,
                extra={"output_channel_group": kc, "halo_psums": halo_psums,
                       "macs_wasted": int(products) - macs.done})


def identical_items_cycles(items: int, lane_work: np.ndarray, issue_cycles: int) -> int:
    """Cycles of `items` items that all ask the same per-lane work `lane_work[l]` (cycles):
    the slowest lane, or the dispatcher when it is slower, sets the pace of every item, with
    any FIFO depth and with or without barriers between items (each item ends
    max(issue_cycles, max work) after the previous one; the kernels' recursion gives the same)."""
    return items * max(issue_cycles, int(lane_work.max(initial=0)))


def _run_row_broadcast(v: work.ConvView, arch: Config, macs: work.MacCounts,
                       t: work.TapCounts) -> Work:
    a: RowBroadcast = arch.array
    lane_work = work.lane_weight_work(v, a.lanes, "weight" in arch.skip)
    s, p, d = v.stride, v.padding, v.dilation
    rows = lane_work.reshape(-1, a.lanes)
    if rows.shape[0] and (rows == rows[:1]).all():
        # every broadcast asks the same work: the taps on a non-zero when skipping, else all
        items = t.nonzero_taps if "act" in arch.skip else v.N * v.E * v.F * v.C * v.R * v.S
        cycles = identical_items_cycles(items, rows[0], arch.sync.issue_cycles)
        busy = items * int(rows[0].sum())
    else:
        cycles, busy, items = kern.row_broadcast_cycles(
            v.act.view(np.uint8), lane_work, v.E, v.F, s[0], s[1], p[0], p[2], d[0], d[1],
            "act" in arch.skip, arch.barrier_mode, arch.fifo_depth, arch.sync.issue_cycles)
    return Work(int(cycles), int(busy), macs.done, act_reads=float(items),
                weight_reads=float(macs.done))


def _register_fold(problem: GemmProblem, arch: Config) -> tuple[int, int]:
    """Rows and cols of the array a `dense_array`'s buffers see: wider than the PEs where the
    `pe:` registers hold more than one stationary or output word
    (`accelsim.engines.traffic.register_split`, as in the systolic kind)."""
    a: DenseArray = arch.array
    stationary, out = traffic.per_arch(_WORDS, arch, lambda z: (
        z.pe.register(traffic.STATIONARY[a.order]).words, z.pe.register("out").words),
        ARCHS_KEPT)
    ra, cb = traffic.register_split(problem, a.rows, a.cols, a.order, stationary, out,
                                    traffic.context(arch).bytes_)
    return a.rows * ra, a.cols * cb


def _run_dense_array(layer: Layer, arch: Config, macs: work.MacCounts) -> Work:
    cycles, counts, _, _ = _dense_array_counts(gemm_problem(layer), arch)
    return Work(int(cycles), macs.done, macs.done, act_reads=counts.act_reads,
                weight_reads=counts.weight_reads,
                psum_reads=counts.out_reads, psum_writes=counts.out_writes)


def _dense_array_counts(problem: GemmProblem, arch: Config
                        ) -> tuple[int, traffic.ArrayTraffic, dict[str, object], tuple[int, int]]:
    """(compute cycles, buffer reads and writes, the systolic kind's latency split without
    stalls or DRAM time, the rows and cols its buffers see: `_register_fold`) of a
    `dense_array` on `problem`: they depend on the shape alone, so they are kept per arch and
    problem (for the last `DENSE_PROBLEMS_KEPT` problems)."""
    kept = traffic.per_arch(_DENSE_COUNTS, arch, lambda _: {}, ARCHS_KEPT)
    hit = kept.get(problem)
    if hit is None:
        a: DenseArray = arch.array
        rows, cols = _register_fold(problem, arch)
        hit = kept[problem] = (
            systolic.compute_cycles(problem, a.rows, a.cols, a.order),
            systolic.sram_traffic(problem, rows, cols, a.order),
            systolic.latency_split(problem, _systolic_of(arch), 0.0, {}), (rows, cols))
        while len(kept) > DENSE_PROBLEMS_KEPT:
            kept.pop(next(iter(kept)))
    return hit


DENSE_PROBLEMS_KEPT = 256


def padding_processed(arch: Config) -> bool:
    """Whether the dataflow spends MACs on padding taps: dense lanes and arrays read the padded
    input; skipping lanes never see padding, and planar tiles hold only stored pixels."""
    return not isinstance(arch.array, PlanarCartesian) and "act" not in arch.skip


SPACE_OPERAND = {"act": "act", "weight": "weight", "psum": "out", "out": "out"}
"""The operand whose buffer holds each data space of the access columns."""


@dataclass
class _Bytes:
    """A layer's memory traffic: actions (data bytes per `<level>.read_bytes` / `.write_bytes`,
    metadata bytes per `<level>.metadata_read_bytes` / `_write_bytes`), the cycles each level
    needs at its bandwidth (data and metadata), metadata bytes per level, and the access
    columns (`accelsim.engines.traffic.counts_actions`)."""

    actions: dict[str, float]
    level_cycles: dict[str, float]
    metadata: dict[str, float]
    columns: dict[str, object]


def _per_value(size: StoredSize, compressed: bool, bits: int) -> tuple[float, float]:
    """(data, metadata) bytes per value read from a level: the stored stream per non-zero when
    the level holds the operand compressed, the plain value otherwise."""
    if not compressed or size.nonzeros == 0:
        return bits / 8, 0.0
    return size.value_bits / size.nonzeros / 8, size.metadata_bits / size.nonzeros / 8


def _per_element(size: StoredSize, compressed: bool, bits: int) -> tuple[float, float]:
    """(data, metadata) bytes per element (zeros included) of the operand as a level holds it:
    the stored size over the whole tensor when the level holds it compressed (an average over
    the real bitmap), the plain value otherwise."""
    if not compressed or size.elements == 0:
        return bits / 8, 0.0
    return size.value_bits / size.elements / 8, size.metadata_bits / size.elements / 8


@dataclass(frozen=True)
class _Facts:
    """What the count step reads of one arch on every layer, made once per arch."""

    dram: MemoryLevel | None
    buffers: dict[str, MemoryLevel | None]
    """The innermost on-chip level holding each operand (act, weight, out), None if none."""
    fmts: dict[str, Format]
    bits: dict[str, int]
    """Bits per value of act and weight."""
    word: dict[str, float]
    """Bytes per element of each data space (act, weight, psum, out)."""
    compressed_at: dict[str, tuple[str, ...]]
    """Names of the levels that hold act and weight in their compressed format."""
    bandwidth: dict[tuple[str, str], float]
    """Bytes per cycle of each (level name, 'read' | 'write')."""
    weights_read: bool
    """Whether the arch reads the weights' map (skips, gates or compresses them)."""
    counted_key: tuple
    """The arch's choices the tap and MAC counts depend on (`_counted`)."""
    level_names: dict[tuple[str, str], str]
    """The level holding each ('dram' | 'buffer', space) of the access counts, by name."""
    stored_keys: dict[str, tuple[str, str, str, int]]
    """Per operand, what its stored size depends on (`_stored`): the format as JSON (a key
    cheaper to hash than the format) and the bits per value."""

    def packed(self, op: str, level: MemoryLevel | None) -> bool:
        """Whether `level` holds `op` in its compressed format."""
        return level is not None and level.name in self.compressed_at[op]


def _make_facts(arch: Config) -> _Facts:
    p = arch.precision
    fmts = {"act": arch.act_format, "weight": arch.weight_format}
    weights_read = ("weight" in arch.skip or "weight" in arch.gate
                    or arch.weight_format.compressed)
    bandwidth = {}
    for lv in arch.memory:
        bandwidth[lv.name, "read"] = lv.read_bandwidth_bytes_per_cycle
        bandwidth[lv.name, "write"] = lv.write_bandwidth
    return _Facts(
        dram=arch.dram(),
        buffers={op: arch.buffer_for(op) for op in ("act", "weight", "out")},
        fmts=fmts,
        bits={"act": p.act_bits, "weight": p.weight_bits},
        word={"act": p.act_bits / 8, "weight": p.weight_bits / 8, "psum": p.acc_bits / 8,
              "out": p.act_bits / 8},
        compressed_at={op: tuple(lv.name for lv in arch.memory if fmt.applies_to(lv.name))
                       for op, fmt in fmts.items()},
        bandwidth=bandwidth,
        weights_read=weights_read,
        counted_key=(weights_read, tuple(arch.skip), tuple(arch.gate), padding_processed(arch)),
        level_names={(where, space): level.name for space, op in SPACE_OPERAND.items()
                     for where, level in (("dram", arch.dram()),
                                          ("buffer", arch.buffer_for(op)))
                     if level is not None},
        stored_keys={op: ("stored", op, fmt.model_dump_json(), bits)
                     for (op, fmt), bits in zip(fmts.items(), (p.act_bits, p.weight_bits))})


def _facts(arch: Config) -> _Facts:
    """`_Facts` of `arch`, kept for the archs last seen."""
    return traffic.per_arch(_FACTS, arch, _make_facts, ARCHS_KEPT)


def search_array(layer: Layer, v: work.ConvView, arch: Config, w: Work
                 ) -> tuple[traffic.Dataflow, tuple[int, int]]:
    """The fixed dataflow and array (rows, cols) the tiling search sees for the arch's
    dataflow: a `dense_array` is its own (widened by its registers); the lane dataflows keep
    their partial sums in the lanes for a whole window, so they are output stationary over the
    pixels and filters one pass holds: channel lanes one pixel x `filters_per_pass` filters,
    a planar array one image's output plane x its output-channel group, row-broadcast PEs one
    pixel x `lanes` filters."""
    a = arch.array
    if isinstance(a, DenseArray):
        return a.order, _dense_array_counts(gemm_problem(layer), arch)[3]
    if isinstance(a, ChannelLanes):
        return "os", (1, a.filters_per_pass)
    if isinstance(a, PlanarCartesian):
        return "os", (v.E * v.F, int(w.extra.get("output_channel_group", 1)))
    return "os", (1, a.lanes)


def memory_traffic(layer: Layer, v: work.ConvView, arch: Config, w: Work,
                   sizes: dict[str, StoredSize], tiling: traffic.Mapping | None = None
                   ) -> _Bytes:
    """Buffer reads by the lanes (`Work`), DRAM fills of the buffers from the tiling search
    (`accelsim.engines.traffic.tiled_fetches`, tiles at the operands' stored size in each
    buffer), psum and output traffic, metadata apart (`sizes`: each operand's stored size,
    `formats.stored_size`). `tiling`: a fitting mapping to count on instead
    of searching (another design's, to compare the two on the same tiling). Without a DRAM
    level the operands are resident: no fills, no search."""
    facts = _facts(arch)
    bits, word, dram, buffers = facts.bits, facts.word, facts.dram, facts.buffers
    packed = facts.packed
    array = {"act": w.act_reads, "weight": w.weight_reads}
    out_writes, out_reads = w.psum_writes, w.psum_reads
    outs = float(v.N * v.K * v.E * v.F)
    fetched = {"act": 0.0, "weight": 0.0}
    spill_w = spill_r = 0.0
    mapping = None
    if dram is not None:
        act_tile = _per_element(sizes["act"], packed("act", buffers["act"]), bits["act"])
        weight_tile = _per_element(sizes["weight"], packed("weight", buffers["weight"]),
                                   bits["weight"])
        tile_bytes = (act_tile[0] + act_tile[1], weight_tile[0] + weight_tile[1])
        dataflow, fold = search_array(layer, v, arch, w)
        if tiling is None:
            mapping, fetched["act"], fetched["weight"], outs, spill_w, spill_r = (
                traffic.tiled_fetches(layer, arch, gemm_problem(layer), dataflow, fold,
                                      tile_bytes))  # type: ignore[arg-type]
        else:
            mapping = tiling
            fetched["act"], fetched["weight"], outs, spill_w, spill_r = traffic.fetches_on(
                layer, gemm_problem(layer), dataflow, fold, tiling)
        if mapping.array_reloads > 1:
            lanes = traffic.reloaded(
                traffic.ArrayTraffic(array["act"], array["weight"], out_writes, out_reads,
                                     1, 1, 1), dataflow, mapping.array_reloads, outs)
            array = {"act": lanes.act_reads, "weight": lanes.weight_reads}
            out_writes, out_reads = lanes.out_writes, lanes.out_reads
    rbytes: dict[tuple[str, str], float] = {}
    wbytes: dict[tuple[str, str], float] = {}
    meta_moved: list[tuple[tuple[str, str], str, float]] = []   # ((where, space), verb, bytes)
    for op in ("act", "weight"):
        buf = buffers[op]
        if buf is not None:
            data, md = _per_value(sizes[op], packed(op, buf), bits[op])
            rbytes["buffer", op] = array[op] * data
            wbytes["buffer", op] = 0.0
            meta_moved.append((("buffer", op), "read", array[op] * md))
        if dram is None:
            continue
        if buf is None:  # streams from DRAM to the lanes
            n = array[op]
            data, md = _per_value(sizes[op], packed(op, dram), bits[op])
        else:
            n = fetched[op]
            data, md = _per_element(sizes[op], packed(op, dram), bits[op])
            fill, fill_md = _per_element(sizes[op], packed(op, buf), bits[op])
            wbytes["buffer", op] = n * fill
            meta_moved.append((("buffer", op), "write", n * fill_md))
        rbytes["dram", op] = n * data
        wbytes["dram", op] = 0.0
        meta_moved.append((("dram", op), "read", n * md))
    acc_b, act_b = word["psum"], word["out"]
    if buffers["out"] is not None:
        rbytes["buffer", "psum"] = (out_reads + spill_w) * acc_b
        wbytes["buffer", "psum"] = (out_writes + spill_r) * acc_b
        # a dense array writes its final sums as partial sums (as the systolic kind); lanes
        # that keep them write each output once, at act_bits
        final = 0.0 if isinstance(arch.array, DenseArray) else outs
        rbytes["buffer", "out"] = outs * act_b if dram is not None else 0.0
        wbytes["buffer", "out"] = final * act_b
        if dram is not None:
            rbytes["dram", "psum"] = spill_r * acc_b
            wbytes["dram", "psum"] = spill_w * acc_b
    elif dram is not None:  # partial sums and outputs go straight to DRAM
        rbytes["dram", "psum"] = out_reads * acc_b
        wbytes["dram", "psum"] = out_writes * acc_b
    if dram is not None:
        rbytes["dram", "out"] = 0.0
        wbytes["dram", "out"] = outs * act_b
    reads = {key: n / word[key[1]] for key, n in rbytes.items()}
    writes = {key: n / word[key[1]] for key, n in wbytes.items()}
    actions, level_cycles, columns = traffic.counts_actions(
        arch, reads, writes, rbytes, wbytes,
        _register_counts(arch, w, array["act"], array["weight"]), mapping)
    meta: dict[tuple[str, str], float] = {}  # metadata bytes by (level name, 'read' | 'write')
    for key, verb, n in meta_moved:
        if n:
            name = facts.level_names[key]
            meta[name, verb] = meta.get((name, verb), 0.0) + n
    metadata: dict[str, float] = {}
    for (name, verb), n in meta.items():
        actions[f"{name}.metadata_{verb}_bytes"] = n
        metadata[name] = metadata.get(name, 0.0) + n
        level_cycles[name] = level_cycles.get(name, 0.0) + n / facts.bandwidth[name, verb]
    return _Bytes(actions, level_cycles, metadata, columns)


def _register_counts(arch: Config, w: Work, act_reads: float, weight_reads: float
                     ) -> dict[tuple[str, str], float]:
    """Accesses of the PE registers (`Traffic.pe`): every product reads an act, a weight and a
    partial sum and writes the partial sum; an act or weight register is written once per
    value the lanes read from the buffer, except that a `dense_array` passes its streamed
    operands from PE to PE (a write per product, as in the systolic kind)."""
    products = float(w.products)
    written = {"act": act_reads, "weight": weight_reads, "out": products}
    a = arch.array
    if isinstance(a, DenseArray):
        stationary = traffic.STATIONARY[a.order]
        written = {op: (n if op == stationary and op != "out" else products)
                   for op, n in written.items()}
    pe: dict[tuple[str, str], float] = {}
    for op, n in written.items():
        pe[op, "reads"] = products
        pe[op, "writes"] = float(n)
    return pe


LANE_STEP_COST = {ChannelLanes: 16, PlanarCartesian: 16, RowBroadcast: 1}
"""Relative cost of one lane-step of each dataflow's kernel (a channel-lanes or planar step
does index arithmetic and a phase loop; a row-broadcast step is one add), in the units of one
tap of the tap statistics."""


def _items(v: work.ConvView, arch: Config) -> tuple[int, int, float]:
    """(items the dataflow issues for layer `v`, lanes each is dealt to, an estimate of one
    item's cycles), from the shapes alone."""
    a = arch.array
    if isinstance(a, ChannelLanes):
        per_window = v.R * v.S * ceil_div(v.Cg, a.brick_size)
        items = (v.groups * ceil_div(v.Kg, a.filters_per_pass) * v.N * v.E * v.F
                 * ceil_div(per_window, a.lanes))
        return items, a.lanes, float(min(a.brick_size, v.Cg))
    if isinstance(a, PlanarCartesian):
        rows, cols = work.pe_grid(v, a.pe_rows, a.pe_cols)
        tiles = min(rows * cols, v.H * v.W)
        reach = ceil_div(v.E, min(rows, v.H)) * ceil_div(v.F, min(cols, v.W))
        kc = max(1, min(v.Kg, a.accumulator_entries // max(1, reach)))
        phases = work.phase_count(v)
        per_item = phases * (ceil_div(ceil_div(kc * v.R * v.S, phases), a.mult_f)
                             * ceil_div(ceil_div(v.H * v.W, tiles * phases), a.mult_i))
        return v.groups * v.N * ceil_div(v.Kg, kc) * v.Cg, tiles, float(per_item)
    if isinstance(a, RowBroadcast):
        return v.N * v.E * v.F * v.C * v.R * v.S, a.lanes, float(ceil_div(v.Kg, a.lanes))
    return v.macs, 1, 1.0


def counting_steps(v: work.ConvView, arch: Config) -> int:
    """An estimate of the work of counting layer `v`: the tap statistics (every tap over the
    bitmap) plus the dataflow's lane-timing loop (items x lanes per item), each lane-step
    weighted by `LANE_STEP_COST`."""
    steps = v.R * v.S * v.N * v.C * v.H * v.W
    if isinstance(arch.array, DenseArray):
        return steps
    items, lanes, _ = _items(v, arch)
    return steps + items * lanes * LANE_STEP_COST[type(arch.array)]


def cycles_estimate(v: work.ConvView, arch: Config) -> float:
    """A figure proportional to the compute cycles of layer `v` (items x cycles per item), by
    which a sample's work is scaled to the whole layer."""
    items, _, per_item = _items(v, arch)
    return items * per_item


CUT_ORDER = {
    ChannelLanes: ("N", "H", "W", "groups", "Kg", "Cg"),
    RowBroadcast: ("N", "H", "W", "groups", "Cg", "Kg"),
    PlanarCartesian: ("N", "groups", "Cg", "H", "W", "Kg"),
    DenseArray: ("N", "H", "W", "groups", "Cg", "Kg"),
}
"""The axes a shapes-only layer too large to count whole is cut along, in order, per dataflow
(`work.statistical_sample`): images, rows and columns first, as every output window is a pass of
its own there; a planar array takes input channels as the items of a pass, so channels first
there; a channel-lanes pass serves many filters, so filters before channels; filters last for
the other dataflows, whose lanes each own some of them."""


def _scaled(part_work: Work, half_work: Work | None, sample: work.Sample, macs: work.MacCounts,
            part: work.MacCounts) -> Work:
    """The work of a whole layer from that of its sample (and of the sample's half): extensive
    counts extrapolated (`Sample.extrapolate`), MACs done as the whole layer's."""
    def grow(field: str) -> float:
        value = float(getattr(part_work, field))
        half = None if half_work is None else float(getattr(half_work, field))
        return sample.extrapolate(value, half)

    products = (macs.done if part_work.products == part.done
                else max(macs.done, round(grow("products"))))
    extra = dict(part_work.extra)
    if "halo_psums" in extra:
        half_halo = None if half_work is None else float(half_work.extra["halo_psums"])
        extra["halo_psums"] = round(sample.extrapolate(float(extra["halo_psums"]), half_halo))
        extra["macs_wasted"] = products - macs.done
    return Work(
        compute_cycles=round(grow("compute_cycles")),
        busy_lane_cycles=round(grow("busy_lane_cycles")),
        products=products, act_reads=grow("act_reads"),
        weight_reads=float(macs.done) if part_work.weight_reads == part.done
        else grow("weight_reads"),
        psum_reads=grow("psum_reads"), psum_writes=grow("psum_writes"),
        extra=extra, notes=[*part_work.notes, sample.note()])


def _scaled_size(size: StoredSize, elements: int, nonzeros: int) -> StoredSize:
    """A stored size measured on part of an i.i.d. operand, for the whole of `elements`."""
    r = elements / size.elements if size.elements else 0.0
    return StoredSize(round(size.value_bits * r), round(size.metadata_bits * r), elements,
                      nonzeros)


def _view(layer: Layer, arch: Config, uniform: bool, planar: bool) -> work.ConvView:
    """The layer's view over its (traced or i.i.d.) maps, made once per layer and the arch's
    choices it depends on (kept with the layer's maps)."""
    weights_read = _facts(arch).weights_read
    kept = work.layer_bitmaps(layer).views
    key = (uniform, planar, weights_read)
    if key not in kept:
        act, weight = work.operand_masks(layer, uniform, weights_read)
        kept[key] = work.conv_view(layer, act, weight, planar=planar)
    return kept[key]


def _counted(layer: Layer, arch: Config, uniform: bool, planar: bool
             ) -> tuple[work.ConvView, work.TapCounts, work.MacCounts]:
    """The layer's view (`_view`), tap statistics and MAC counts, made once per layer and the
    arch's choices they depend on (kept with the layer's maps)."""
    counted_key = _facts(arch).counted_key
    key = (uniform, planar, *counted_key)
    kept = work.layer_bitmaps(layer).counted
    if key not in kept:
        _, skip, gate, _ = counted_key
        v = _view(layer, arch, uniform, planar)
        taps = work.tap_counts(v, "act" in skip or "act" in gate,
                               "weight" in skip or "weight" in gate)
        kept[key] = v, taps, work.mac_counts(v, taps, skip, gate, key[-1])
    return kept[key]


def _stored(v: work.ConvView, op: str, arch: Config) -> StoredSize:
    """`stored_size` of the view's `op` map in the arch's format for it, made once per view
    and format."""
    facts = _facts(arch)
    fmt, bits = facts.fmts[op], facts.bits[op]
    return v.kept(facts.stored_keys[op],
                  lambda: stored_size(v.act if op == "act" else v.weight, fmt, bits))


def _dataflow(layer: Layer, v: work.ConvView, taps: work.TapCounts, macs: work.MacCounts,
              arch: Config) -> Work:
    if isinstance(arch.array, ChannelLanes):
        return _run_channel_lanes(v, arch, macs, taps)
    if isinstance(arch.array, PlanarCartesian):
        return _run_planar(v, arch, macs)
    if isinstance(arch.array, RowBroadcast):
        return _run_row_broadcast(v, arch, macs, taps)
    return _run_dense_array(layer, arch, macs)


def _whole_sizes(layer: Layer, v: work.ConvView, whole: work.ConvView, sample: work.Sample,
                 arch: Config) -> dict[str, StoredSize]:
    """Stored sizes of the whole layer's operands: measured where the sample did not cut them,
    scaled from the sample where it did, in closed form for dense weights."""
    p = arch.precision
    sizes = {}
    for op, fmt, bits, part_map, whole_map, density, cut in (
            ("act", arch.act_format, p.act_bits, v.act, whole.act, layer.act_density,
             sample.act_cut),
            ("weight", arch.weight_format, p.weight_bits, v.weight, whole.weight,
             layer.weight_density, sample.weight_cut)):
        if op == "weight" and all_nonzero(part_map):
            sizes[op] = stored_size(whole_map, fmt, bits)
        elif cut:
            sizes[op] = _scaled_size(stored_size(part_map, fmt, bits), whole_map.size,
                                     round(density * whole_map.size))
        else:
            sizes[op] = stored_size(part_map, fmt, bits)
    return sizes


def _counts(layer: Layer, arch: Config, uniform: bool, tiling: traffic.Mapping | None,
            moves: bool = True) -> tuple[work.MacCounts, Work, dict[str, StoredSize] | None,
                                         _Bytes | None]:
    """(MAC counts, the dataflow's work, stored sizes, memory traffic; the last two None unless
    `moves`) of one layer, as `count_layer` takes them."""
    planar = isinstance(arch.array, PlanarCartesian)
    sample = _sample(layer, arch)
    if sample is None:
        v, taps, macs = _counted(layer, arch, uniform, planar)
        w = _dataflow(layer, v, taps, macs, arch)
        seen = v
    else:
        v, taps, part = _counted(sample.layer, arch, uniform, planar)
        seen = work.shape_view(layer, planar=planar)
        macs = work.expected_mac_counts(layer, seen, sample, taps, arch.skip, arch.gate,
                                        padding_processed(arch))
        if isinstance(arch.array, DenseArray):
            w = _run_dense_array(layer, arch, macs)
            w.notes.append(sample.note())
        else:
            part_work = _dataflow(sample.layer, v, taps, part, arch)
            half_work = None
            if sample.half is not None:
                hv, htaps, hmacs = _counted(sample.half, arch, uniform, planar)
                half_work = _dataflow(sample.half, hv, htaps, hmacs, arch)
            w = _scaled(part_work, half_work, sample, macs, part)
    if not moves:
        return macs, w, None, None
    sizes = _sizes(v, arch) if sample is None else _whole_sizes(layer, v, seen, sample, arch)
    if tiling is not None:
        return macs, w, sizes, memory_traffic(layer, seen, arch, w, sizes, tiling)
    return macs, w, sizes, _last_traffic(layer, seen, arch, w, sizes)


def _sample(layer: Layer, arch: Config) -> work.Sample | None:
    """The part of the layer to count where it is too large to count whole
    (`work.statistical_sample`), else None."""
    return work.statistical_sample(layer, isinstance(arch.array, PlanarCartesian),
                                   CUT_ORDER[type(arch.array)],
                                   lambda view: counting_steps(view, arch),
                                   lambda view: cycles_estimate(view, arch))


def _sizes(v: work.ConvView, arch: Config) -> dict[str, StoredSize]:
    """Stored sizes of the view's operands in the arch's formats."""
    return {"act": _stored(v, "act", arch), "weight": _stored(v, "weight", arch)}


def _last_traffic(layer: Layer, v: work.ConvView, arch: Config, w: Work,
                  sizes: dict[str, StoredSize]) -> _Bytes:
    """`memory_traffic` with the searched tiling, reused when the layer's previous count on
    the same arch moved the same reads and stored sizes: a linear layer's i.i.d. pass reads as
    many non-zeros as its trace, and a format whose size follows from the non-zero count alone
    (CSR, bitmap) stores both in as many bits. Nothing in a `_Bytes` is changed once made."""
    key = (_content_key(arch), w.act_reads, w.weight_reads, w.psum_reads, w.psum_writes,
           w.products, w.extra.get("output_channel_group"), sizes["act"], sizes["weight"])
    maps = work.layer_bitmaps(layer)
    if maps.last_traffic is not None and maps.last_traffic[0] == key:
        return maps.last_traffic[1]
    moved = memory_traffic(layer, v, arch, w, sizes)
    maps.last_traffic = key, moved
    return moved


def _stall(arch: Config, w: Work, moved: _Bytes | None) -> float:
    """Cycles the lanes wait for the slowest memory level beyond their compute cycles (0 where
    the arch does not model memory stalls)."""
    if not arch.model_memory_stalls or moved is None:
        return 0.0
    return max(0.0, max(moved.level_cycles.values(), default=0.0) - w.compute_cycles)


def uniform_cycles(layer: Layer, arch: Config, traced: Work | None = None) -> float:
    """`count_layer(layer, arch, uniform=True).cycles` (the layer on i.i.d. maps at its
    densities), without the actions and columns that figure does not read. `traced`: the
    dataflow's work on the layer's own maps; on an arch that skips nothing that work reads
    no map, so only the stored sizes (hence memory stalls) are taken from the i.i.d. maps. A
    planar array without memory stalls needs only its timing kernel on the i.i.d. maps (no
    tap or MAC counts)."""
    planar = isinstance(arch.array, PlanarCartesian)
    whole = _sample(layer, arch) is None
    if traced is not None and not arch.skip and whole:
        if not arch.model_memory_stalls:
            return traced.compute_cycles
        v = _view(layer, arch, True, planar)
        return traced.compute_cycles + _stall(
            arch, traced, _last_traffic(layer, v, arch, traced, _sizes(v, arch)))
    if planar and not arch.model_memory_stalls and whole:
        return float(_planar_timing(_view(layer, arch, True, True), arch)[1][0])
    _, w, _, moved = _counts(layer, arch, True, None, moves=arch.model_memory_stalls)
    return w.compute_cycles + _stall(arch, w, moved)


def count_layer(layer: Layer, arch: Config, uniform: bool = False,
                tiling: traffic.Mapping | None = None) -> LayerResult:
    """Cycles and actions of one layer; `uniform` replaces traced bitmaps by i.i.d. ones;
    `tiling`: a fitting DRAM tiling to count on instead of searching one (`memory_traffic`).
    A shapes-only layer too large to count whole is counted on a `work.Sample`."""
    return _count_layer(layer, arch, uniform, tiling)[0]


def _count_layer(layer: Layer, arch: Config, uniform: bool = False,
                 tiling: traffic.Mapping | None = None) -> tuple[LayerResult, Work]:
    """`count_layer` and the dataflow's work it was made from."""
    macs, w, sizes, moved = _counts(layer, arch, uniform, tiling)
    assert sizes is not None and moved is not None
    stall = _stall(arch, w, moved)
    cycles = w.compute_cycles + stall
    peak_slots = arch.peak_macs_per_cycle * w.compute_cycles
    actions = dict(moved.actions)
    actions[MAC_COMPUTE] = w.products - macs.gated   # full MACs, wasted products included
    actions[MAC_GATED] = macs.gated
    actions[MAC_IDLE] = max(0, peak_slots - w.products)
    dram = _facts(arch).dram
    dram_bytes = 0.0
    if dram is not None:
        dram_bytes = sum(n for k, n in moved.actions.items() if k.startswith(f"{dram.name}."))
    return LayerResult(
        cycles=cycles,
        compute_cycles=w.compute_cycles,
        stall_cycles=stall,
        macs_dense=macs.dense,
        macs_done=macs.done,
        macs_skipped=macs.skipped,
        macs_gated=macs.gated,
        dram_bytes=dram_bytes,
        bound="memory" if stall > 0 else "compute",
        engine_mode="trace" if layer.has_trace else "statistical",
        utilization=min(1.0, macs.done / peak_slots) if peak_slots else 0.0,
        actions=actions,
        columns={
            "lane_efficiency": w.busy_lane_cycles / (arch.lanes * w.compute_cycles)
            if w.compute_cycles else 1.0,
            "metadata_bytes": sum(moved.metadata.values()),
            "dram_metadata_bytes": moved.metadata.get(dram.name, 0.0) if dram else 0.0,
            **w.extra, **moved.columns, **latency_split(layer, arch, w, stall, moved.actions),
        },
        warnings=[*w.notes, *_inflation_notes(arch, sizes, moved)],
    ), w


def _inflation_notes(arch: Config, sizes: dict[str, StoredSize], moved: _Bytes) -> list[str]:
    """Compressed operands that take more bytes than plain (metadata on nearly dense data):
    where they move, this design moves more than its dense equivalent."""
    facts = _facts(arch)
    notes = []
    for op, fmt in facts.fmts.items():
        size = sizes[op]
        plain_bytes = size.elements * facts.bits[op] / 8
        levels = facts.compressed_at[op]
        if (levels and size.elements and size.total_bytes > plain_bytes * (1 + 1e-9)
                and any(moved.metadata.get(name, 0.0) for name in levels)):
            notes.append(
                f"{op} stored as {fmt.kind} takes {size.total_bytes / plain_bytes:.3g}x its "
                f"plain bytes at density {size.nonzeros / size.elements:.3g} (metadata): "
                f"{', '.join(levels)} move more bytes than on the dense equivalent")
    return notes


def latency_split(layer: Layer, arch: Config, w: Work, stall: float,
                  actions: dict[str, float]) -> dict[str, object]:
    """Cycles of a layer by cause (`cycles_compute`, `_fill_drain`, `_load`, `_stall`, summing
    to `cycles`): a `dense_array` splits as the systolic kind does
    (`accelsim.engines.systolic.latency_split`); the lane dataflows stream their operands
    through the lanes with no fill, drain or stationary load, so their compute cycles (lane
    imbalance included, see `lane_efficiency`) are all compute. `cycles_dram_load` /
    `_offload`: DRAM read / write time of data and metadata at its bandwidth, overlapped with
    compute except for what shows as stall."""
    load, offload = systolic.dram_cycles(arch, actions)
    if isinstance(arch.array, DenseArray):
        split = _dense_array_counts(gemm_problem(layer), arch)[2]
        return {**split, "cycles_stall": stall, "cycles_dram_load": load,
                "cycles_dram_offload": offload}
    return {"cycles_compute": w.compute_cycles, "cycles_fill_drain": 0, "cycles_load": 0,
            "cycles_stall": stall, "cycles_dram_load": load, "cycles_dram_offload": offload}


def _systolic_of(arch: Config) -> systolic.Config:
    """The systolic description of a `dense_array` arch (same sides, dataflow and memory, SCALE-Sim
    timing), kept for the archs last seen; only its timing fields are read."""
    a: DenseArray = arch.array

    def make(zs: Config) -> systolic.Config:
        common = {f: getattr(zs, f) for f in ArchBase.model_fields if f != "kind"}
        return systolic.Config.model_construct(kind="systolic", rows=a.rows, cols=a.cols,
                                               dataflow=a.order, **common)
    return traffic.per_arch(_SYSTOLIC, arch, make, ARCHS_KEPT)


def cycles_depend_on_bitmaps(arch: Config) -> bool:
    """Whether an arch's cycles can change with where the non-zeros lie: only skipping (lane
    work) and compressed formats (bytes, hence memory stalls) read the bitmaps; gating changes
    energy but not cycles."""
    return bool(arch.skip) or arch.act_format.compressed or arch.weight_format.compressed


def simulate(layer: Layer, arch: Config) -> LayerResult:
    """Count one layer on a zero-skip arch, with the density-only prediction beside it (the
    i.i.d. bitmap is run only when the cycles can depend on it). A planar (SCNN-like) array
    that skips zeros also names vector rounding where it lifts the speed-up over its dense
    equivalent above dense MACs / MACs done."""
    key = (id(layer), _content_key(arch))
    hit = _COUNTED.get(key)
    if hit is not None and hit[0]() is layer:
        return hit[1]
    same_shape = _shape_key(layer, arch)
    if same_shape in _BY_SHAPE:
        return _copy(_BY_SHAPE[same_shape])
    result, traced = _count_layer(layer, arch)
    if same_shape is not None:
        _BY_SHAPE[same_shape] = _copy(result)
        _BY_SHAPE[same_shape].columns["cycles_if_uniform"] = result.cycles
        while len(_BY_SHAPE) > _COUNTED_LAYERS:
            _BY_SHAPE.pop(next(iter(_BY_SHAPE)))
    if layer.has_trace and cycles_depend_on_bitmaps(arch) and not _iid_is_trace(layer):
        result.columns["cycles_if_uniform"] = uniform_cycles(layer, arch, traced)
    else:
        result.columns["cycles_if_uniform"] = result.cycles
    if arch.skip and isinstance(arch.array, PlanarCartesian):
        result.warnings += _vector_rounding(result, simulate(layer, arch.dense_equivalent()), arch)
    _COUNTED[key] = (weakref.ref(layer), result)
    while len(_COUNTED) > _COUNTED_LAYERS:
        _COUNTED.pop(next(iter(_COUNTED)))
    return result


def _iid_is_trace(layer: Layer) -> bool:
    """Whether the layer's i.i.d. maps are its traced maps: every traced operand is all zeros
    or all non-zeros, the one map of that density (`work.iid_mask`)."""
    maps = work.layer_bitmaps(layer)
    return all(m is None or d in (0.0, 1.0)
               for m, d in ((maps.act, maps.act_density), (maps.weight, maps.weight_density)))


def _shape_key(layer: Layer, arch: Config) -> tuple | None:
    """What the counts of a traced layer depend on when the arch neither skips, gates nor
    compresses (its dense equivalent): the shapes, never the maps; None on other archs."""
    if arch.skip or arch.gate or cycles_depend_on_bitmaps(arch) or not layer.has_trace:
        return None
    return (_content_key(arch), layer.op, layer.shape, work.weights_known(layer),
            layer.declared_weight_density)


def _copy(result: LayerResult) -> LayerResult:
    """A result whose dicts and lists can be changed without changing `result`."""
    copied = object.__new__(LayerResult)
    copied.__dict__.update(result.__dict__, actions=dict(result.actions),
                           columns=dict(result.columns), tables=dict(result.tables),
                           warnings=list(result.warnings))
    return copied


def _content_key(arch: Config) -> str:
    """The arch's whole description as JSON (equal for equal descriptions in this process; a
    cache key, cheaper than `config_hash`), kept for the archs last seen."""
    return traffic.per_arch(_KEYS, arch, lambda a: a.model_dump_json(), ARCHS_KEPT)


_KEYS: dict[int, tuple[weakref.ref, str]] = {}
_FACTS: dict[int, tuple[weakref.ref, _Facts]] = {}
_SYSTOLIC: dict[int, tuple[weakref.ref, systolic.Config]] = {}
_WORDS: dict[int, tuple[weakref.ref, tuple[int, int]]] = {}
_DENSE_COUNTS: dict[int, tuple[weakref.ref, dict]] = {}
"""Per arch: a `dense_array`'s counts by problem (`_dense_array_counts`)."""
"""Words of a `dense_array`'s stationary and output PE registers, per arch."""
_BY_SHAPE: dict[tuple, LayerResult] = {}
"""Counts of traced layers on archs without skipping, gating or compression, by shape."""
_COUNTED: dict[tuple[int, str], tuple[weakref.ref, LayerResult]] = {}
"""The last layers counted, so the dense equivalent counted for `_vector_rounding` is not
counted again when `accelsim.simulate` asks for it."""
_COUNTED_LAYERS = 64


def _vector_rounding(result: LayerResult, dense: LayerResult, arch: Config) -> list[str]:
    """Planar PEs issue F x I products per cycle from ceil(nW / F) x ceil(nA / I) vector pairs:
    skipping a few zeros can drop a whole rounded-up vector, so compute cycles can fall by more
    than the MACs do."""
    speedup = dense.compute_cycles / result.compute_cycles if result.compute_cycles else 1.0
    bound = result.macs_dense / result.macs_done if result.macs_done else float("inf")
    if speedup <= bound * (1 + 1e-9):
        return []
    a: PlanarCartesian = arch.array
    return [f"vector rounding: products issue as {a.mult_f} x {a.mult_i} vectors, so skipped "
            f"zeros cut compute cycles {speedup:.3g}x where MACs fall {bound:.3g}x"]
