"""Architecture description of an event-driven neuromorphic chip (BrainChip Akida-like).

A chip is a mesh of nodes, each with `nps_per_node` neural processors (NPs). A layer is mapped
onto NPs by filters and memory (see `neuromorphic_mapping`); events (non-zero quantised input
activations) travel between NPs over the mesh NoC and are processed as they arrive (see
`neuromorphic_pipeline`). Energy is affine: static floor x time + per event delivered to an NP
+ per synaptic operation + per event-hop on the NoC (+ DRAM bytes when weights live off chip).

Bit widths per layer (`Config.layer_bits`): a layer runs at the `act_bits` / `weight_bits` its
trace gives when the NPs support them. A narrower width the NPs lack keeps its values (its codes
fit the next supported width, which stores them). A wider one is requantised to the configured
`precision`: this covers float captures, whose traces carry the format's default 16 bits (a
trace without per-layer bits reads as 16), and e.g. an 8-bit model on Akida 1.0 (1, 2, 4 bits).
The first layer reads raw input at `input_act_bits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from accelsim.arch.schema import ArchBase
from accelsim.arch.tech import load_tech_table

MappableOp = Literal["conv2d", "depthwise", "separable", "linear"]

MAX_NODES = 1024
"""Most nodes on the mesh (hop distances are kept for every pair of nodes)."""
MAX_NPS_PER_NODE = 64
"""Most NPs of one node."""
MAX_COORDINATE = 2**16
"""Largest |column| or |row| of a mesh position."""
MAX_SIMULATED_FRAMES = 1024
"""Most frames run through the event simulation."""
MAX_COUNT = 2**40
"""Upper bound of every other count, size (bytes), width and rate (per cycle) of this schema."""
MAX_ENERGY_PJ = 1e6
"""Largest energy of one event, synaptic operation, hop or input MAC, pJ."""

Count = Annotated[int, Field(gt=0, le=MAX_COUNT)]
Count0 = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Rate = Annotated[float, Field(gt=0, le=MAX_COUNT)]
Rate0 = Annotated[float, Field(ge=0, le=MAX_COUNT)]
Energy = Annotated[float, Field(ge=0, le=MAX_ENERGY_PJ)]
Coordinate = Annotated[int, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]

EVENT_PROCESS = "events.process"
"""One event delivered to (decoded by) one NP."""
SYNOP_UPDATE = "synops.update"
"""One synaptic operation on an NP: an event's value times one weight, accumulated."""
NOC_HOP = "noc.hop"
"""One event moved across one mesh link."""
NP_CYCLE = "np.busy_cycle"
"""One cycle of one NP busy on a layer's events (dynamic power of a busy NP)."""
INPUT_MAC = "input_unit.mac"
"""One dense multiply-accumulate on the input unit (first layer, 8-bit pixels)."""


@dataclass(frozen=True)
class LayerBits:
    """Bit widths one layer runs at on the chip."""

    events: int
    """Width its input activations are quantised to; an event is a non-zero code."""
    act: int
    """Width the NPs store its input activations at (NP input memory)."""
    weight: int
    """Width its weights take in NP (or FC weight) memory."""


class Config(ArchBase):
    """An event-driven neuromorphic chip: nodes of NPs on a 2-D mesh.

    Units: rates per clock cycle of `clock_mhz`, memories in bytes, energies in pJ.
    """

    kind: Literal["neuromorphic"]

    # --- mesh -------------------------------------------------------------------------------
    nodes: int = Field(gt=0, le=MAX_NODES)
    """Nodes on the mesh."""
    nps_per_node: int = Field(4, gt=0, le=MAX_NPS_PER_NODE)
    node_positions: tuple[tuple[Coordinate, Coordinate], ...] | None = None
    """(column, row) of each node on the mesh; default row-major on `mesh_cols` columns."""
    mesh_cols: int | None = Field(None, gt=0, le=MAX_NODES)
    """Columns of the default near-square layout (default ceil(sqrt(nodes)))."""
    dma_node: tuple[Coordinate, Coordinate] | None = None
    """Mesh position where events enter and leave (input DMA, input unit): a node (whose
    first `dma_reserved_nps` NP slots the DMA engines take) or a stop of its own next to one;
    default the first node."""
    dma_reserved_nps: Count0 = 0
    fnp_per_node: Count0 = 1
    """NPs per node able to run fully connected layers (the lowest NP ids of each node), unless
    `fnp_slots` lists them."""
    fnp_slots: tuple[tuple[Coordinate, Coordinate, Count0], ...] | None = None
    """(column, row, NP id) of every NP that runs fully connected layers holding the weights in
    its own memory (akida's FNP3); None: the first `fnp_per_node` NPs of each node."""
    fnp_external_slots: tuple[tuple[Coordinate, Coordinate, Count0], ...] | None = None
    """NPs that run fully connected layers whose weights stay in DRAM (akida's FNP2), the only
    ones a layer larger than `fnp_weight_memory_bytes` can use; None: any FC-capable NP."""
    fc_only_slots: tuple[tuple[Coordinate, Coordinate, Count0], ...] = ()
    """NPs that run fully connected layers only, never a convolution."""

    # --- NP throughput and memory ------------------------------------------------------------
    events_per_cycle_per_np: Rate
    """Input events one NP decodes per cycle."""
    synops_per_cycle_per_np: Rate
    """Synaptic operations (event x weight accumulations) one NP performs per cycle (convs
    use it only without `cycles_per_event_filter`)."""
    cycles_per_event_filter: dict[int, Rate] | None = None
    """Square kernel size -> NP cycles per input event per filter the NP holds, for a conv
    on the NPs: a packet costs events x this x filters per NP (a strided conv pays per input
    event too). None: synops / `synops_per_cycle_per_np`."""
    separable_cycles_per_event_filter: Rate | None = None
    """NP cycles per input event per pointwise filter of a fused separable unit (its
    depthwise work included), with `cycles_per_event_filter`."""
    packet_overhead_cycles: Rate0 = 0.0
    """Fixed NP cycles per event packet (header decode, row bookkeeping)."""
    np_weight_memory_bytes: Count
    np_input_memory_bytes: Count
    """Input (event/feature) buffer of one NP: the input rows it holds for its stripe."""
    max_filters_per_np: Count
    max_stripe_rows: Count
    """Most input rows (first spatial axis) one NP handles; taller inputs are split in stripes."""
    stripe_rows_round: Count = 1
    """An NP's input rows (its stripe's rows with the kernel halo) take input memory rounded
    up to a multiple of this many rows (row stripes only, `max_tile_cols` unset)."""
    max_tile_cols: Count | None = None
    """Most input columns (second spatial axis) one NP handles. None: NPs take whole rows and
    a layer's input is cut in row stripes only. Set: it is cut in row x column tiles (both
    Akida IP versions, as akida 2.19.3 maps them), the fewest whose largest fits the input
    memory, more row cuts first among equal counts; a tile holds ceil(size / cuts) rows and
    columns (on a cut axis rounded up to the stride of a max pooling the layer ends with) plus
    the kernel's halo, (kernel - 1) // 2 on each side that has a neighbouring tile."""
    input_word_bits: Count = 32
    """With tiles: bits of one NP input memory word, each holding consecutive rows of one
    column and channel (a tile of r rows at b bits takes ceil(r x b / this) words per column
    and channel; Akida 1.0 packs them in bytes, 2.0 in 32-bit words)."""
    filter_align: Count = 8
    """Filters are split among NPs in multiples of this many."""
    weight_alloc_bits: dict[int, Count] = Field(default_factory=lambda: {1: 8, 2: 8, 4: 8})
    """Per weight width: conv weight memory is allocated per input channel in units of bits."""
    separable_alloc_bits: Count = 8
    """Allocation unit (bits per input channel) of a fused depthwise+pointwise layer."""
    weight_packing_efficiency: dict[int, float] = Field(
        default_factory=lambda: {1: 1.0, 2: 1.0, 4: 1.0, 8: 1.0})
    """Per weight width: share of allocated weight bits that hold weights (the rest is padding)."""
    fnp_weight_memory_bytes: Count
    """On-chip weight memory of an NP running a fully connected layer; larger layers keep their
    weights in DRAM and stream them once per frame."""
    max_fc_inputs: Count
    """Most inputs a fully connected layer may have."""
    weight_word_bits: Count = 50
    """Width of one NP weight-memory word (bits); used by the word tables below."""
    conv_weight_words: dict[int, dict[int, tuple[Count, Count]]] | None = None
    """Square kernel size -> weight width -> (words, filters): per input channel, `words` words
    hold `filters` filters (after the filters of an NP are rounded up to `filter_align`); the
    words per channel are then rounded up to `weight_words_round[width]`. None: the allocation
    rule of `weight_alloc_bits` / `weight_packing_efficiency`."""
    weight_words_round: dict[int, Count] = Field(default_factory=dict)
    """Weight width -> multiple the words per input channel are rounded up to (table rule)."""
    depthwise_weight_words: dict[int, dict[int, Count]] | None = None
    """Square kernel size -> weight width -> words one channel of a standalone depthwise conv
    takes; an NP's total is rounded up to `depthwise_words_round`."""
    depthwise_words_round: Count = 1
    separable_dw_words: dict[int, tuple[float, Count]] | None = None
    """Weight width -> (words per channel, channels rounded up to) of the depthwise kernels of a
    fused separable unit, whose pointwise filters take ceil(k x width / `pointwise_word_bits`)
    words per channel. None: the `separable_alloc_bits` rule."""
    pointwise_word_bits: Count = 48
    """Bits of a weight word that hold pointwise weights of a fused separable unit."""

    # --- what runs ---------------------------------------------------------------------------
    supported_ops: tuple[MappableOp, ...] = ("conv2d", "separable", "linear")
    """`separable` fuses a depthwise conv with the 1x1 conv that follows it onto the same NPs;
    `depthwise` allows a depthwise conv on its own (split by channels)."""
    supported_act_bits: tuple[Count, ...] = (1, 2, 4)
    supported_weight_bits: tuple[Count, ...] = (1, 2, 4)
    conv_kernel_strides: dict[int, tuple[Count, ...]] = Field(
        default_factory=lambda: {1: (1,), 3: (1, 2), 5: (1,), 7: (1,)})
    """Square kernel size -> strides the NPs support for it."""
    input_unit: bool = True
    """A dense input unit runs the first conv layer on raw (8-bit) pixels without using NPs."""
    input_unit_max_channels: Count = 3
    input_unit_kernel_strides: dict[int, tuple[Count, ...]] = Field(
        default_factory=lambda: {1: (1, 2), 3: (1, 2), 5: (1, 2), 7: (1, 2)})
    input_unit_max_filters: dict[int, Count] | None = None
    """Kernel size -> most filters the input unit holds with `input_unit_max_channels`
    channels; with c channels it holds that x max_channels / c (None: no limit)."""
    input_unit_max_width: Count | None = None
    input_act_bits: Count = 8
    input_weight_bits: Count = 8
    input_unit_macs_per_cycle: Rate = 1.0

    # --- NoC and I/O -------------------------------------------------------------------------
    link_bandwidth_bytes_per_cycle: Rate
    hop_latency_cycles: Rate0
    event_bytes: Rate
    """Bytes one event occupies on the NoC (coordinates + value)."""
    dma_bandwidth_bytes_per_cycle: Rate
    """Rate at which the DMA feeds input frames (and spilled activations) into the mesh."""
    frame_overhead_cycles: Rate0 = 0.0
    """Fixed cycles the DMA spends per frame and pass before injecting it (descriptor and
    sequence start-up, output read-back)."""

    # --- energy ------------------------------------------------------------------------------
    energy_per_event_pj: Energy
    energy_per_synop_pj: Energy
    energy_per_hop_pj: Energy
    energy_per_np_cycle_pj: Energy = 0.0
    """Energy of one NP cycle spent on events, on top of the per-event, per-synop and per-hop
    energies (a busy NP's dynamic power / clock)."""
    energy_per_input_mac_pj: Energy | None = None
    """Default: an int8 multiply + int32 add from the tech table at the arch's node."""

    # --- modelling choices -------------------------------------------------------------------
    act_scale_percentile: float = Field(default=100.0, gt=0.0, le=100.0)
    """Per-layer quantisation scale = this percentile of |x| over non-zeros / top level
    (100: max calibration)."""
    event_skipping: bool = True
    """False: every activation (zeros included) is sent and processed, the dense equivalent."""
    pass_reload: Literal["per_frame", "per_batch"] = "per_frame"
    """How a network of several passes reprograms the mesh: `per_frame`, each frame runs
    through every pass and each pass's weights are loaded from DRAM again for it (the weights
    of all passes do not fit the NPs at once); `per_batch`, all frames of the trace run through
    one pass before the next pass's weights are loaded. The reloads take DRAM read bytes and
    weight bytes / DRAM bandwidth cycles."""
    frame_pipelining: bool = True
    """True: the next frame enters while the previous is still in flight."""
    layer_overlap: Literal["tiles", "frames"] = "tiles"
    """tiles: a unit starts on a tile as soon as its producers have done the input tiles it
    needs (layers overlap within a frame); frames: a unit starts a frame only when its
    producers have done the whole frame (within a frame layers run one after another, across
    frames they still overlap when `frame_pipelining`)."""
    mapping_mode: Literal["minimal", "spread"] = "minimal"
    """minimal: fewest NPs by memory; spread: cap filters per NP to use as many NPs as fit in
    the same number of passes (the akida mapper's default search)."""
    packet_rows: Count = 1
    """Event granularity: rows of a feature map per packet."""
    packet_cols: Count | None = None
    """Columns per packet (None: whole rows)."""
    max_simulated_frames: int = Field(8, gt=0, le=MAX_SIMULATED_FRAMES)
    """Frames run through the event simulation; later frames are extrapolated at the measured
    steady-state interval (their counts are always exact)."""

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        p = self.precision
        if p.act_bits not in self.supported_act_bits:
            raise ValueError(f"precision.act_bits {p.act_bits} not in supported_act_bits "
                             f"{list(self.supported_act_bits)}")
        if p.weight_bits not in self.supported_weight_bits:
            raise ValueError(f"precision.weight_bits {p.weight_bits} not in supported_weight_bits "
                             f"{list(self.supported_weight_bits)}")
        for bits in self.supported_weight_bits:
            if self.conv_weight_words is not None:
                missing = [k for k, table in self.conv_weight_words.items() if bits not in table]
                if missing or bits not in self.weight_words_round:
                    raise ValueError(f"weight width {bits} needs conv_weight_words entries for "
                                     f"kernels {missing} and a weight_words_round entry")
            elif bits not in self.weight_alloc_bits or bits not in self.weight_packing_efficiency:
                raise ValueError(f"weight width {bits} needs weight_alloc_bits and "
                                 "weight_packing_efficiency entries")
        if any(not 0.0 < e <= 1.0 for e in self.weight_packing_efficiency.values()):
            raise ValueError("weight_packing_efficiency values must be in (0, 1]")
        positions = self.positions()
        if len(set(positions)) != len(positions):
            raise ValueError("node_positions must be distinct")
        if self.node_positions is not None and len(self.node_positions) != self.nodes:
            raise ValueError(f"node_positions lists {len(self.node_positions)} nodes, "
                             f"nodes is {self.nodes}")
        if self.dma_reserved_nps >= self.nps_per_node and self.nodes == 1:
            raise ValueError("dma_reserved_nps leaves no NP on a one-node mesh")
        if self.fnp_per_node > self.nps_per_node:
            raise ValueError("fnp_per_node cannot exceed nps_per_node")
        return self

    def positions(self) -> list[tuple[int, int]]:
        """(column, row) of every node, in node order."""
        if self.node_positions is not None:
            return [(int(c), int(r)) for c, r in self.node_positions]
        cols = self.mesh_cols or _ceil_sqrt(self.nodes)
        return [(i % cols + 1, i // cols + 1) for i in range(self.nodes)]

    def dma_position(self) -> tuple[int, int]:
        return tuple(self.dma_node) if self.dma_node is not None else self.positions()[0]

    def dense_equivalent(self) -> ArchBase:
        """The same chip processing every activation as an event (no zero skipping)."""
        if not self.event_skipping:
            return self
        return self.model_copy(update={"event_skipping": False, "name": f"{self.name} (dense)"})

    def layer_bits(self, act_bits: int, weight_bits: int) -> LayerBits:
        """Widths an NP layer whose trace gives `act_bits` / `weight_bits` runs at (see the
        module docstring: supported widths kept, narrower ones stored in the next supported
        width, wider ones requantised to `precision`)."""
        events, act = _fit_bits(act_bits, self.supported_act_bits, self.precision.act_bits)
        _, weight = _fit_bits(weight_bits, self.supported_weight_bits, self.precision.weight_bits)
        return LayerBits(events=events, act=act, weight=weight)

    def input_mac_energy_pj(self) -> float:
        if self.energy_per_input_mac_pj is not None:
            return self.energy_per_input_mac_pj
        tech = load_tech_table(self.tech.table)
        return ((tech.op_energy_pj("mult", "int", self.input_weight_bits)
                 + tech.op_energy_pj("add", "int", 32)) * tech.energy_factor(self.tech.node_nm))

    def extra_action_energy_pj(self) -> dict[str, float]:
        return {
            EVENT_PROCESS: self.energy_per_event_pj,
            SYNOP_UPDATE: self.energy_per_synop_pj,
            NOC_HOP: self.energy_per_hop_pj,
            NP_CYCLE: self.energy_per_np_cycle_pj,
            INPUT_MAC: self.input_mac_energy_pj(),
        }


def _fit_bits(bits: int, supported: tuple[int, ...], configured: int) -> tuple[int, int]:
    """(width the values keep, width the chip stores them at) for a `bits`-wide operand."""
    if bits > max(supported):
        return configured, configured
    return bits, min(b for b in supported if b >= bits)


def _ceil_sqrt(n: int) -> int:
    c = 1
    while c * c < n:
        c += 1
    return c
