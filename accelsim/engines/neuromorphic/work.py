"""Work of one mapped unit, per frame, NP stripe and packet tile: events, synops, NP cycles.

Tiles cut a unit's input feature map into packets of `packet_rows` x `packet_cols` pixels,
numbered in raster order (a fully connected layer is one tile per frame). A stripe reads the
tiles that overlap its input rows; it receives the events of those rows and does the synops
whose outputs fall in its own output rows. Where the mapping also cuts the input in columns
(Akida 2.0 tiles), each row x column tile is a stripe of its own: it reads the packet tiles
that overlap its rows and columns and receives only the events inside them. NP cycles for a packet are
`max(events / events_per_cycle, synops_per_np / synops_per_cycle) + packet_overhead` (zero
when the packet is empty), or, where the config gives measured `cycles_per_event_filter`,
`max(events / events_per_cycle, events x cycles_per_event_filter[kernel] x filters per NP)
+ packet_overhead` for a conv (a fused separable unit: its input events x
`separable_cycles_per_event_filter` x pointwise filters per NP, the depthwise work included,
charged to the depthwise layer); a stripe's packet takes as long as its slowest NP: filter groups
all receive every event and do their share of the synops (the largest share sets the time);
channel groups (standalone depthwise) receive only their channels' events. A fused
separable NP does the depthwise work of all channels for its stripe, then its pointwise
filters on the depthwise outputs, which never leave the NP; a pointwise output pixel is
charged to the depthwise input tile that completes it. The input unit is a dense engine: it
does every non-padding MAC of its tiles at `input_unit_macs_per_cycle`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from accelsim.engines.neuromorphic.config import Config
from accelsim.engines.neuromorphic.events import LayerEvents, axis_fan_out, layer_events
from accelsim.engines.neuromorphic.mapping import Unit, stripe_cols, stripe_rows
from accelsim.workload.layer import ConvShape, Layer


@dataclass(frozen=True)
class TileGrid:
    """Packet tiles over an input of `rows` x `cols` pixels, raster order."""

    rows: int
    cols: int
    packet_rows: int
    packet_cols: int

    @property
    def n_row_tiles(self) -> int:
        return math.ceil(self.rows / self.packet_rows)

    @property
    def n_col_tiles(self) -> int:
        return math.ceil(self.cols / self.packet_cols)

    @property
    def n_tiles(self) -> int:
        return self.n_row_tiles * self.n_col_tiles

    def tile_of(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        return (row // self.packet_rows) * self.n_col_tiles + col // self.packet_cols

    def reduce(self, x: np.ndarray) -> np.ndarray:
        """Sum a [frames, rows, cols] array per tile -> [frames, n_tiles]."""
        y = np.add.reduceat(x, np.arange(0, self.rows, self.packet_rows), axis=1)
        y = np.add.reduceat(y, np.arange(0, self.cols, self.packet_cols), axis=2)
        return y.reshape(x.shape[0], -1)


def grid_for(layer: Layer, arch: Config) -> TileGrid:
    s = layer.shape
    if isinstance(s, ConvShape):
        return TileGrid(s.H, s.W, min(arch.packet_rows, s.H), min(arch.packet_cols or s.W, s.W))
    return TileGrid(1, 1, 1, 1)


@dataclass
class LayerCounts:
    """Whole-trace counts of one layer of a unit (all frames)."""

    events: float = 0.0
    """Input events (non-zero quantised activations)."""
    deliveries: float = 0.0
    """Events received by NPs (an event goes to every NP that needs it)."""
    synops: float = 0.0
    input_macs: float = 0.0
    """Dense MACs on the input unit."""
    np_cycles: float = 0.0
    """NP-cycles spent (summed over the NPs)."""
    busiest_cycles: float = 0.0
    """Cycles of the busiest NP stripe."""
    max_np_events: float = 0.0
    """Most events received by one NP."""
    statistical: bool = False


@dataclass
class StripeLoad:
    """One stripe's tiles, with per-frame events received and NP cycles spent on each."""

    tiles: np.ndarray
    events: np.ndarray
    """[frames, len(tiles)] events arriving for each tile (NoC traffic)."""
    cycles: np.ndarray
    """[frames, len(tiles)]"""
    nps: int
    """NPs in the stripe (each receives the events)."""


@dataclass
class UnitWork:
    grid: TileGrid
    stripes: list[StripeLoad]
    layers: dict[str, LayerCounts] = field(default_factory=dict)


def _cost(events: np.ndarray, synops_per_np: np.ndarray, arch: Config) -> np.ndarray:
    busy = np.maximum(events / arch.events_per_cycle_per_np,
                      synops_per_np / arch.synops_per_cycle_per_np)
    return np.where(events > 0, busy + arch.packet_overhead_cycles, 0.0)


def _measured_cost(events: np.ndarray, per_event: float, arch: Config) -> np.ndarray:
    """NP cycles of packets of `events` input events at `per_event` cycles each (the measured
    per-event cost x filters per NP)."""
    busy = np.maximum(events / arch.events_per_cycle_per_np, events * per_event)
    return np.where(events > 0, busy + arch.packet_overhead_cycles, 0.0)


def _per_event_cycles(unit: Unit, s: ConvShape, fused: bool, arch: Config) -> float | None:
    """Measured NP cycles per input event of a conv unit (None: use the synop rate)."""
    table = arch.cycles_per_event_filter
    if table is None or unit.kind != "cnp":
        return None
    if fused:
        c = arch.separable_cycles_per_event_filter
        return None if c is None else c * unit.filters_per_np
    if unit.channel_split or s.R not in table:
        return None
    return table[s.R] * unit.filters_per_np


def _events(layer: Layer, frames: int, bits: int, arch: Config, splits: int = 1) -> LayerEvents:
    """Events of `layer` with its activations quantised to `bits` (the layer's event width)."""
    return layer_events(layer, frames, bits, arch.act_scale_percentile, arch.event_skipping,
                        channel_splits=splits)


def _stripe_tiles(grid: TileGrid, lo: int, hi: int, col_lo: int, col_hi: int) -> np.ndarray:
    """Packet tiles (raster ids) overlapping input rows [lo, hi) and columns [col_lo, col_hi)."""
    rt = np.arange(lo // grid.packet_rows, (hi - 1) // grid.packet_rows + 1)
    ct = np.arange(col_lo // grid.packet_cols, (col_hi - 1) // grid.packet_cols + 1)
    return (rt[:, None] * grid.n_col_tiles + ct[None, :]).ravel()


def conv_unit_work(unit: Unit, first: Layer, pointwise: Layer | None, arch: Config,
                   frames: int) -> UnitWork:
    """Per-stripe loads of a conv unit on NPs or on the input unit."""
    s = first.shape
    assert isinstance(s, ConvShape)
    grid = grid_for(first, arch)
    splits = unit.groups if unit.channel_split else 1
    ev = _events(first, frames, unit.bits[0].events, arch, splits)
    counts = LayerCounts(events=ev.total, statistical=ev.statistical)
    pw_counts = LayerCounts()
    if pointwise is not None:
        pw_ev = _events(pointwise, frames, unit.bits[1].events, arch)
        pw_pixels = pw_ev.pixels
        pw_counts = LayerCounts(events=pw_ev.total, statistical=pw_ev.statistical)
        e_idx = np.clip(np.arange(s.E) * s.stride[0] - s.padding[0]
                        + (s.R - 1) * s.dilation[0], 0, s.H - 1)
        f_idx = np.clip(np.arange(s.F) * s.stride[1] - s.padding[2]
                        + (s.S - 1) * s.dilation[1], 0, s.W - 1)
        pw_tile = grid.tile_of(e_idx[:, None], f_idx[None, :])
    stripes: list[StripeLoad] = []
    nps = 1 if unit.kind == "input_unit" else unit.groups
    per_event = _per_event_cycles(unit, s, pointwise is not None, arch)
    cuts = [(r, c) for r in stripe_rows(s, unit.stripes)
            for c in stripe_cols(s, unit.col_stripes if unit.kind == "cnp" else 1)]
    for (e0, e1, lo, hi), (f0, f1, col_lo, col_hi) in cuts:
        tiles = _stripe_tiles(grid, lo, hi, col_lo, col_hi)
        inside = np.zeros((1, s.H, s.W))
        inside[:, lo:hi, col_lo:col_hi] = 1.0
        fan_rows = axis_fan_out(s.H, s.E, s.R, s.stride[0], s.padding[0], s.dilation[0], e0, e1)
        fan_cols = axis_fan_out(s.W, s.F, s.S, s.stride[1], s.padding[2], s.dilation[1], f0, f1)
        weight = fan_rows[None, :, None] * fan_cols[None, None, :]
        if unit.kind == "input_unit":
            macs = grid.reduce(np.broadcast_to(weight, (frames, s.H, s.W)))[:, tiles] * s.C * s.K
            events = grid.reduce(ev.pixels * inside)[:, tiles]
            cycles = macs / arch.input_unit_macs_per_cycle
            counts.input_macs += float(macs.sum())
        elif unit.channel_split:
            split = ev.channel_groups if ev.channel_groups is not None else ev.pixels[None]
            per_group = [(grid.reduce(g * inside)[:, tiles],
                          grid.reduce(g * weight)[:, tiles]) for g in split]
            events = sum(e for e, _ in per_group)
            cycles = np.max([_cost(e, y, arch) for e, y in per_group], axis=0)
            counts.max_np_events = max(counts.max_np_events,
                                       *(float(e.sum()) for e, _ in per_group))
            counts.synops += float(sum(y.sum() for _, y in per_group))
            counts.deliveries += float(events.sum())
        else:
            events = grid.reduce(ev.pixels * inside)[:, tiles]
            per_filter = grid.reduce(ev.pixels * weight)[:, tiles]
            taps = 1 if pointwise is not None else unit.filters_per_np
            cycles = (_cost(events, per_filter * taps, arch) if per_event is None
                      else _measured_cost(events, per_event, arch))
            counts.max_np_events = max(counts.max_np_events, float(events.sum()))
            counts.synops += float(per_filter.sum()) * (s.K // s.groups)
            counts.deliveries += float(events.sum()) * nps
        counts.np_cycles += float(cycles.sum()) * nps
        if pointwise is not None:
            in_stripe = np.zeros((s.E, s.F))
            in_stripe[e0:e1, f0:f1] = 1.0
            pw_events = np.zeros((frames, grid.n_tiles))
            np.add.at(pw_events, (slice(None), pw_tile.ravel()),
                      (pw_pixels * in_stripe[None]).reshape(frames, -1))
            pw_events = pw_events[:, tiles]
            pw_cycles = (_cost(pw_events, pw_events * unit.filters_per_np, arch)
                         if per_event is None else np.zeros_like(pw_events))
            pw_counts.synops += float(pw_events.sum()) * pointwise.shape.K
            pw_counts.deliveries += float(pw_events.sum()) * nps
            pw_counts.np_cycles += float(pw_cycles.sum()) * nps
            pw_counts.busiest_cycles = max(pw_counts.busiest_cycles, float(pw_cycles.sum()))
            pw_counts.max_np_events = max(pw_counts.max_np_events, float(pw_events.sum()))
            counts.busiest_cycles = max(counts.busiest_cycles, float(cycles.sum()))
            cycles = cycles + pw_cycles
        else:
            counts.busiest_cycles = max(counts.busiest_cycles, float(cycles.sum()))
        stripes.append(StripeLoad(tiles=tiles, events=events, cycles=cycles, nps=nps))
    layers = {first.name: counts}
    if pointwise is not None:
        layers[pointwise.name] = pw_counts
    return UnitWork(grid=grid, stripes=stripes, layers=layers)


def fc_unit_work(unit: Unit, layer: Layer, arch: Config, frames: int,
                 weight_stream_cycles: float) -> UnitWork:
    """One FC NP, one tile per frame; external weights are streamed in once per frame."""
    ev = _events(layer, frames, unit.bits[0].events, arch)
    events = ev.pixels.reshape(frames, 1)
    cycles = _cost(events, events * layer.shape.N, arch)
    if unit.external_weights:
        cycles = np.maximum(cycles, weight_stream_cycles)
    counts = LayerCounts(events=ev.total, deliveries=ev.total,
                         synops=ev.total * layer.shape.N, np_cycles=float(cycles.sum()),
                         busiest_cycles=float(cycles.sum()), max_np_events=ev.total,
                         statistical=ev.statistical)
    return UnitWork(grid=TileGrid(1, 1, 1, 1),
                    stripes=[StripeLoad(tiles=np.zeros(1, dtype=np.int64), events=events,
                                        cycles=cycles, nps=1)],
                    layers={layer.name: counts})


def dependency_tiles(consumer: Layer, consumer_grid: TileGrid, producer_first: Layer,
                     producer_last: Layer, producer_grid: TileGrid) -> np.ndarray:
    """For each consumer tile, the producer input tile whose completion (in raster order)
    delivers all the producer outputs the tile holds.

    Consumer input coordinates map onto the producer's output plane proportionally (pooling,
    resizing and flattening between them are not in the trace); a fully connected consumer
    needs the whole producer output."""
    n = consumer_grid.n_tiles
    ps = producer_first.shape
    if not isinstance(ps, ConvShape):
        return np.zeros(n, dtype=np.int64)
    if not isinstance(consumer.shape, ConvShape):
        return np.full(n, producer_grid.n_tiles - 1, dtype=np.int64)
    out = producer_last.shape
    assert isinstance(out, ConvShape)
    g = consumer_grid
    row_end = np.minimum(np.arange(1, g.n_row_tiles + 1) * g.packet_rows, g.rows)
    col_end = np.minimum(np.arange(1, g.n_col_tiles + 1) * g.packet_cols, g.cols)
    out_row = np.minimum(out.E - 1, np.ceil(row_end * out.E / g.rows).astype(np.int64) - 1)
    out_col = np.minimum(out.F - 1, np.ceil(col_end * out.F / g.cols).astype(np.int64) - 1)
    in_row = np.clip(out_row * ps.stride[0] - ps.padding[0] + (ps.R - 1) * ps.dilation[0],
                     0, ps.H - 1)
    in_col = np.clip(out_col * ps.stride[1] - ps.padding[2] + (ps.S - 1) * ps.dilation[1],
                     0, ps.W - 1)
    return producer_grid.tile_of(in_row[:, None], in_col[None, :]).ravel().astype(np.int64)
