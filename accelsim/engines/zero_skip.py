"""MAC arrays that skip or gate zero operands (Cnvlutin, SCNN, EIE, Eyeriss gating), driven by
the real non-zero bitmaps of each layer.

One engine, four published designs as parameter points:

* `array.dataflow` says how a layer's work is dealt to lanes:
  - `channel_lanes` (Cnvlutin): each output window's bricks (`brick_size` channels at one
    pixel) go round-robin to `lanes` lanes; a lane does one activation per cycle against
    `filters_per_pass` filters; more filters take more passes;
  - `planar_cartesian` (SCNN, PT-IS-CP-sparse): the input plane is tiled over a
    `pe_rows` x `pe_cols` grid of PEs (the halo of partial sums goes to neighbours); per input
    channel a PE multiplies every F-vector of non-zero weights of an output-channel group with
    every I-vector of its non-zero activations (F x I multipliers), ceil(nW/F) * ceil(nA/I)
    cycles; the group size Kc is the most filters whose partial sums fit the accumulator;
    strided layers are split by stride phase so every product is a useful one;
  - `row_broadcast` (EIE): each non-zero activation of an output pixel's input vector is
    broadcast to `lanes` PEs; PE l owns filters k = l mod lanes and spends one cycle per
    non-zero weight it holds for that activation;
  - `dense_array` (Eyeriss gating): a systolic array timed exactly as the `systolic` engine.
* `skip` / `gate`: operands whose zeros are skipped (cost neither cycles nor energy) or gated
  (cost cycles and `gated_mac_energy_fraction` of a MAC's energy).
* `sync`: where lanes wait for each other (`barrier`: every `item`, every `pass` = window /
  output-channel group / output pixel, or once per `layer`), the FIFO depth between the
  dispatcher and each lane, and the dispatcher's issue interval (see zero_skip_kernels).
* `act_format` / `weight_format`: compressed storage (bitmap, RLE, CSR) with its metadata, per
  memory level; metadata bytes are their own actions, `<level>.metadata_read_bytes`.

Counting, per layer: cycles from the kernels, MACs done / gated / skipped exactly from the
bitmaps (`macs_done + macs_skipped == macs_dense`), products wasted (SCNN products landing
outside the output plane), buffer and DRAM bytes with metadata. Shapes-only layers run on an
i.i.d. bitmap at their declared density (fixed seed: `zero_skip_work.iid_mask`), and trace
layers also report `cycles_if_uniform`, the same layer on an i.i.d. bitmap with the same
number of non-zeros, which is what a density-only model assumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from accelsim.arch.energy import MAC_COMPUTE, MAC_GATED, action_energy_pj
from accelsim.arch.schema import ArchBase, MemoryLevel, StrictModel
from accelsim.engines import systolic
from accelsim.engines import zero_skip_kernels as kern
from accelsim.engines import zero_skip_work as work
from accelsim.engines.base import LayerResult, ceil_div
from accelsim.engines.zero_skip_formats import Format, StoredSize, stored_size
from accelsim.workload.layer import Layer

SkipOperand = Literal["act", "weight"]
MAC_IDLE = "mac.idle"


class ChannelLanes(StrictModel):
    """Cnvlutin-like: lanes each stream the non-zeros of their bricks."""

    dataflow: Literal["channel_lanes"]
    lanes: PositiveInt
    brick_size: PositiveInt
    filters_per_pass: PositiveInt


class PlanarCartesian(StrictModel):
    """SCNN-like: planar tiles, input stationary, F x I Cartesian product per PE."""

    dataflow: Literal["planar_cartesian"]
    pe_rows: PositiveInt
    pe_cols: PositiveInt
    mult_f: PositiveInt
    mult_i: PositiveInt
    accumulator_entries: PositiveInt


class RowBroadcast(StrictModel):
    """EIE-like: non-zero activations broadcast to PEs that own interleaved filters."""

    dataflow: Literal["row_broadcast"]
    lanes: PositiveInt


class DenseArray(StrictModel):
    """A dense systolic array (timing as the `systolic` engine); zeros can only be gated."""

    dataflow: Literal["dense_array"]
    rows: PositiveInt
    cols: PositiveInt
    order: systolic.Dataflow = "os"


Array = Annotated[Union[ChannelLanes, PlanarCartesian, RowBroadcast, DenseArray],  # noqa: UP007
                  Field(discriminator="dataflow")]


class Sync(StrictModel):
    """Where lanes wait for each other. fifo_depth: items a lane can hold, the one in progress
    included (1: lockstep; None: unbounded); issue_cycles: least cycles between two items
    from the dispatcher."""

    barrier: Literal["item", "pass", "layer"] = "pass"
    fifo_depth: PositiveInt | None = None
    issue_cycles: NonNegativeInt = 0


class DenseBaseline(StrictModel):
    """What `speedup_vs_dense` compares with: this arch with skipping, gating and compression
    off (`same`), or a dense systolic array with the same memory, clock and technology."""

    kind: Literal["same", "systolic"] = "same"
    rows: PositiveInt | None = None
    cols: PositiveInt | None = None
    dataflow: systolic.Dataflow = "os"
    memory: tuple[MemoryLevel, ...] | None = None
    """Memory levels of a systolic baseline when they differ from this arch's (None: same)."""

    @model_validator(mode="after")
    def _sized(self) -> DenseBaseline:
        if self.kind == "systolic" and (self.rows is None or self.cols is None):
            raise ValueError("dense_baseline of kind 'systolic' needs rows and cols")
        return self


class Config(ArchBase):
    """A zero-skipping or zero-gating MAC array (see the module docstring for each field)."""

    kind: Literal["zero_skip"]
    array: Array
    skip: tuple[SkipOperand, ...] = ()
    gate: tuple[SkipOperand, ...] = ()
    sync: Sync = Sync()
    act_format: Format = Format()
    weight_format: Format = Format()
    gated_mac_energy_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    idle_mac_energy_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    dense_baseline: DenseBaseline = DenseBaseline()

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        both = sorted(set(self.skip) & set(self.gate))
        if both:
            raise ValueError(f"operand(s) {both} are both skipped and gated; pick one")
        if isinstance(self.array, ChannelLanes) and "weight" in self.skip:
            raise ValueError("channel_lanes shares each activation across filters, so it cannot "
                             "skip zero weights; gate them instead")
        if isinstance(self.array, DenseArray) and self.skip:
            raise ValueError("a dense_array cannot skip zeros (its timing is fixed); use gate")
        names = {m.name for m in self.memory}
        for key, fmt in (("act_format", self.act_format), ("weight_format", self.weight_format)):
            unknown = sorted(set(fmt.levels or ()) - names)
            if unknown:
                raise ValueError(f"{key}.levels names unknown memory level(s) {unknown}; "
                                 f"known: {sorted(names)}")
        return self

    def dense_equivalent(self) -> ArchBase:
        """The same hardware with skipping, gating and compression off, or the declared dense
        systolic baseline (see `dense_baseline`)."""
        if self.dense_baseline.kind == "systolic":
            b = self.dense_baseline
            common = {f: getattr(self, f) for f in ArchBase.model_fields
                      if f not in ("name", "kind", "memory")}
            return systolic.Config(name=f"{self.name}-dense-baseline", kind="systolic",
                                   rows=b.rows, cols=b.cols, dataflow=b.dataflow,
                                   memory=self.memory if b.memory is None else b.memory, **common)
        return self.model_copy(update={
            "name": f"{self.name}-dense", "skip": (), "gate": (),
            "act_format": Format(), "weight_format": Format(),
        })

    def extra_action_energy_pj(self) -> dict[str, float]:
        """Gated and idle MACs as fractions of a full MAC; metadata bytes at each level cost
        what that level's data bytes cost."""
        plain = ArchBase(**{f: getattr(self, f) for f in ArchBase.model_fields})
        table = action_energy_pj(plain)
        mac = table[MAC_COMPUTE]
        extra = {MAC_GATED: mac * self.gated_mac_energy_fraction,
                 MAC_IDLE: mac * self.idle_mac_energy_fraction}
        for level in self.memory:
            extra[f"{level.name}.metadata_read_bytes"] = table[f"{level.name}.read_bytes"]
            extra[f"{level.name}.metadata_write_bytes"] = table[f"{level.name}.write_bytes"]
        return extra

    @property
    def barrier_mode(self) -> int:
        return kern.BARRIER_NONE if self.sync.barrier == "layer" else kern.BARRIER_PASS

    @property
    def fifo_depth(self) -> int:
        """Kernel encoding: d >= 1 entries per lane (1 = lockstep), -1 unbounded."""
        if self.sync.barrier == "item":
            return 1
        return -1 if self.sync.fifo_depth is None else self.sync.fifo_depth

    @property
    def lanes(self) -> int:
        """Independent lanes the timing model tracks (PEs, neuron lanes, or array rows)."""
        a = self.array
        if isinstance(a, PlanarCartesian):
            return a.pe_rows * a.pe_cols
        if isinstance(a, DenseArray):
            return a.rows * a.cols
        return a.lanes

    @property
    def peak_macs_per_cycle(self) -> int:
        a = self.array
        if isinstance(a, ChannelLanes):
            return a.lanes * a.filters_per_pass
        if isinstance(a, PlanarCartesian):
            return a.pe_rows * a.pe_cols * a.mult_f * a.mult_i
        if isinstance(a, RowBroadcast):
            return a.lanes
        return a.rows * a.cols


@dataclass
class Work:
    """What one dataflow did with one layer: cycles and element counts (before bytes)."""

    compute_cycles: int
    busy_lane_cycles: int
    products: int
    act_reads: float
    weight_reads: float
    psum_accesses: float = 0.0
    act_passes: int = 1
    weight_passes: int = 1
    extra: dict[str, object] = field(default_factory=dict)


def _run_channel_lanes(v: work.ConvView, arch: Config, macs: work.MacCounts,
                       t: work.TapCounts) -> Work:
    a: ChannelLanes = arch.array
    skip_act = "act" in arch.skip
    bricks, pad = work.brick_work(v, a.brick_size, skip_act)
    passes = ceil_div(v.Kg, a.filters_per_pass)
    s, p, d = v.stride, v.padding, v.dilation
    cycles, busy, _ = kern.channel_lanes_cycles(
        bricks, pad, v.E, v.F, v.R, v.S, s[0], s[1], p[0], p[2], d[0], d[1], a.lanes, passes,
        arch.barrier_mode, arch.fifo_depth, arch.sync.issue_cycles)
    act_values = int(t.nonzero.sum()) if skip_act else int(t.inside.sum()) * v.C
    return Work(int(cycles), int(busy), macs.done, act_reads=act_values * passes,
                weight_reads=macs.done, act_passes=passes)


def _run_planar(v: work.ConvView, arch: Config, macs: work.MacCounts) -> Work:
    a: PlanarCartesian = arch.array
    kc = work.output_channel_group(v, a.pe_rows, a.pe_cols, a.accumulator_entries)
    acts = work.planar_act_count(v, a.pe_rows, a.pe_cols, "act" in arch.skip)
    weights = work.planar_weight_count(v, kc, "weight" in arch.skip)
    cycles, busy, products, act_reads, weight_reads = kern.planar_cartesian_cycles(
        acts, weights, a.mult_f, a.mult_i, arch.barrier_mode, arch.fifo_depth,
        arch.sync.issue_cycles)
    _, halo = work.output_reach(v, a.pe_rows, a.pe_cols)
    halo_psums = int(halo.sum()) * v.N * v.K
    return Work(int(cycles), int(busy), int(products), act_reads=float(act_reads),
                weight_reads=float(weight_reads),
                psum_accesses=float(products + halo_psums), weight_passes=v.N,
                extra={"output_channel_group": kc, "halo_psums": halo_psums,
                       "macs_wasted": int(products) - macs.done})


def identical_items_cycles(items: int, lane_work: np.ndarray, issue_cycles: int) -> int:
    """Cycles of `items` items that all ask the same per-lane work `lane_work[l]` (cycles):
    the slowest lane, or the dispatcher when it is slower, sets the pace of every item, with
    any FIFO depth and with or without barriers between items (each item ends
    max(issue_cycles, max work) after the previous one; the kernels' recursion gives the same)."""
    return items * max(issue_cycles, int(lane_work.max(initial=0)))


def _run_row_broadcast(v: work.ConvView, arch: Config, macs: work.MacCounts) -> Work:
    a: RowBroadcast = arch.array
    lane_work = work.lane_weight_work(v, a.lanes, "weight" in arch.skip)
    s, p, d = v.stride, v.padding, v.dilation
    rows = lane_work.reshape(-1, a.lanes)
    if "act" not in arch.skip and (rows == rows[:1]).all():
        items = v.N * v.E * v.F * v.C * v.R * v.S   # every tap broadcast, all the same work
        cycles = identical_items_cycles(items, rows[0], arch.sync.issue_cycles)
        busy = items * int(rows[0].sum())
    else:
        cycles, busy, items = kern.row_broadcast_cycles(
            v.act.view(np.uint8), lane_work, v.E, v.F, s[0], s[1], p[0], p[2], d[0], d[1],
            "act" in arch.skip, arch.barrier_mode, arch.fifo_depth, arch.sync.issue_cycles)
    return Work(int(cycles), int(busy), macs.done, act_reads=float(items),
                weight_reads=float(macs.done))


def _run_dense_array(layer: Layer, arch: Config, macs: work.MacCounts) -> Work:
    a: DenseArray = arch.array
    problem = systolic.gemm_problem(layer)
    cycles = systolic.compute_cycles(problem, a.rows, a.cols, a.order)
    traffic = systolic.sram_traffic(problem, a.rows, a.cols, a.order)
    return Work(int(cycles), macs.done, macs.done, act_reads=traffic.act_reads,
                weight_reads=traffic.weight_reads,
                psum_accesses=traffic.out_reads + traffic.out_writes,
                act_passes=traffic.act_passes, weight_passes=traffic.weight_passes)


def padding_processed(arch: Config) -> bool:
    """Whether the dataflow spends MACs on padding taps: dense lanes and arrays read the padded
    input; skipping lanes never see padding, and planar tiles hold only stored pixels."""
    return not isinstance(arch.array, PlanarCartesian) and "act" not in arch.skip


@dataclass
class _Bytes:
    """Accumulates data and metadata bytes per memory level, and the cycles each level needs."""

    actions: dict[str, float] = field(default_factory=dict)
    level_cycles: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, float] = field(default_factory=dict)

    def move(self, level: MemoryLevel | None, read: float = 0.0, write: float = 0.0,
             meta_read: float = 0.0, meta_write: float = 0.0) -> None:
        if level is None:
            return
        for action, n in (("read_bytes", read), ("write_bytes", write),
                          ("metadata_read_bytes", meta_read), ("metadata_write_bytes", meta_write)):
            if n:
                key = f"{level.name}.{action}"
                self.actions[key] = self.actions.get(key, 0.0) + n
        self.metadata[level.name] = self.metadata.get(level.name, 0.0) + meta_read + meta_write
        self.level_cycles[level.name] = (self.level_cycles.get(level.name, 0.0)
                                         + (read + meta_read) / level.read_bandwidth_bytes_per_cycle
                                         + (write + meta_write) / level.write_bandwidth)


def _per_value(size: StoredSize, fmt: Format, level: MemoryLevel | None,
               bits: int) -> tuple[float, float]:
    """(data, metadata) bytes per value read from `level`: the stored stream per non-zero when
    the level holds the operand compressed, the plain value otherwise."""
    if level is None or not fmt.applies_to(level.name) or size.nonzeros == 0:
        return bits / 8, 0.0
    return size.value_bits / size.nonzeros / 8, size.metadata_bits / size.nonzeros / 8


def _stored(size: StoredSize, fmt: Format, level: MemoryLevel | None,
            bits: int) -> tuple[float, float]:
    """(data, metadata) bytes of the whole operand as `level` holds it."""
    if level is None or not fmt.applies_to(level.name):
        return size.elements * bits / 8, 0.0
    return size.value_bits / 8, size.metadata_bytes


def memory_traffic(v: work.ConvView, arch: Config, w: Work) -> _Bytes:
    """Buffer reads by the lanes, DRAM fills of the buffers, psum and output traffic."""
    p = arch.precision
    acc_b = p.acc_bits / 8
    sizes = {"act": stored_size(v.act, arch.act_format, p.act_bits),
             "weight": stored_size(v.weight, arch.weight_format, p.weight_bits)}
    fmts = {"act": arch.act_format, "weight": arch.weight_format}
    bits = {"act": p.act_bits, "weight": p.weight_bits}
    reads = {"act": w.act_reads, "weight": w.weight_reads}
    passes = {"act": w.act_passes, "weight": w.weight_passes}
    out = _Bytes()
    dram = arch.dram()
    for op in ("act", "weight"):
        buf = arch.buffer_for(op)
        data, meta = _per_value(sizes[op], fmts[op], buf, bits[op])
        out.move(buf, read=reads[op] * data, meta_read=reads[op] * meta)
        if dram is None:
            continue
        buf_data, buf_meta = _stored(sizes[op], fmts[op], buf, bits[op])
        capacity = 0.0 if buf is None else buf.size_bytes / len(buf.holds)
        refetch = 1 if buf_data + buf_meta <= capacity else passes[op]
        dram_data, dram_meta = _stored(sizes[op], fmts[op], dram, bits[op])
        out.move(dram, read=dram_data * refetch, meta_read=dram_meta * refetch)
        out.move(buf, write=buf_data * refetch, meta_write=buf_meta * refetch)
    out_buf = arch.buffer_for("out")
    out_bytes = v.N * v.K * v.E * v.F * p.act_bits / 8
    out.move(out_buf, read=w.psum_accesses / 2 * acc_b,
             write=w.psum_accesses / 2 * acc_b + out_bytes)
    if dram is not None:
        out.move(out_buf, read=out_bytes)
        out.move(dram, write=out_bytes)
    return out


def count(layer: Layer, arch: Config, uniform: bool = False) -> LayerResult:
    """Cycles and actions of one layer; `uniform` replaces traced bitmaps by i.i.d. ones."""
    act, weight = work.operand_masks(layer, uniform)
    planar = isinstance(arch.array, PlanarCartesian)
    v = work.conv_view(layer, act, weight, planar=planar)
    taps = work.tap_counts(v)
    macs = work.mac_counts(v, taps, arch.skip, arch.gate, padding_processed(arch))
    if isinstance(arch.array, ChannelLanes):
        w = _run_channel_lanes(v, arch, macs, taps)
    elif planar:
        w = _run_planar(v, arch, macs)
    elif isinstance(arch.array, RowBroadcast):
        w = _run_row_broadcast(v, arch, macs)
    else:
        w = _run_dense_array(layer, arch, macs)
    traffic = memory_traffic(v, arch, w)
    memory_cycles = max(traffic.level_cycles.values(), default=0.0)
    stall = max(0.0, memory_cycles - w.compute_cycles) if arch.model_memory_stalls else 0.0
    cycles = w.compute_cycles + stall
    peak_slots = arch.peak_macs_per_cycle * w.compute_cycles
    actions = dict(traffic.actions)
    actions[MAC_COMPUTE] = w.products - macs.gated   # full MACs, wasted products included
    actions[MAC_GATED] = macs.gated
    actions[MAC_IDLE] = max(0, peak_slots - w.products)
    dram = arch.dram()
    dram_bytes = 0.0
    if dram is not None:
        dram_bytes = sum(n for k, n in traffic.actions.items() if k.startswith(f"{dram.name}."))
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
            "metadata_bytes": sum(traffic.metadata.values()),
            "dram_metadata_bytes": traffic.metadata.get(dram.name, 0.0) if dram else 0.0,
            **w.extra,
        },
    )


def cycles_depend_on_bitmaps(arch: Config) -> bool:
    """Whether an arch's cycles can change with where the non-zeros lie: only skipping (lane
    work) and compressed formats (bytes, hence memory stalls) read the bitmaps; gating changes
    energy but not cycles."""
    return bool(arch.skip) or arch.act_format.compressed or arch.weight_format.compressed


def simulate(layer: Layer, arch: Config) -> LayerResult:
    """Count one layer on a zero-skip arch, with the density-only prediction beside it (the
    i.i.d. bitmap is run only when the cycles can depend on it)."""
    result = count(layer, arch)
    if layer.has_trace and cycles_depend_on_bitmaps(arch):
        uniform = count(layer, arch, uniform=True)
        result.columns["cycles_if_uniform"] = uniform.cycles
    else:
        result.columns["cycles_if_uniform"] = result.cycles
    return result
