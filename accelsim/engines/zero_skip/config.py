"""The YAML schema of `kind: zero_skip`: the array's dataflow, which operands are skipped or
gated, where lanes synchronise and compressed formats (see
`accelsim.engines.zero_skip` for what each dataflow models)."""

from __future__ import annotations

import weakref
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from accelsim.arch.energy import MAC_GATED, mac_energy_pj, memory_level_price
from accelsim.arch.pe_storage import PeStorage
from accelsim.arch.schema import ArchBase, StrictModel
from accelsim.engines import systolic, traffic
from accelsim.engines.zero_skip import kernels as kern
from accelsim.engines.zero_skip.formats import Format

SkipOperand = Literal["act", "weight"]
MAC_IDLE = "mac.idle"

MAX_LANES = 2**12
"""Most lanes (channel lanes, EIE PEs) of one array; the lane-timing kernels touch every lane
for every item they issue."""
MAX_BRICK = 2**12
"""Largest brick, channels."""
MAX_FILTERS_PER_PASS = 2**16
"""Most filters one channel-lanes pass serves."""
MAX_PE_SIDE = 2**8
"""Most PE rows (or columns) of a planar array."""
MAX_MULTIPLIERS = 2**10
"""Largest F or I vector of a planar PE."""
MAX_ACCUMULATOR_ENTRIES = 2**30
"""Largest accumulator buffer of a planar PE, entries."""
MAX_FIFO_DEPTH = 2**16
"""Deepest per-lane FIFO, items."""
MAX_ISSUE_CYCLES = 2**20
"""Longest dispatcher issue interval, cycles."""

Lanes = Annotated[int, Field(gt=0, le=MAX_LANES)]


class ChannelLanes(StrictModel):
    """Cnvlutin-like: lanes each stream the non-zeros of their bricks."""

    dataflow: Literal["channel_lanes"]
    lanes: Lanes
    brick_size: int = Field(gt=0, le=MAX_BRICK)
    filters_per_pass: int = Field(gt=0, le=MAX_FILTERS_PER_PASS)


class PlanarCartesian(StrictModel):
    """SCNN-like: planar tiles, input stationary, F x I Cartesian product per PE."""

    dataflow: Literal["planar_cartesian"]
    pe_rows: int = Field(gt=0, le=MAX_PE_SIDE)
    pe_cols: int = Field(gt=0, le=MAX_PE_SIDE)
    mult_f: int = Field(gt=0, le=MAX_MULTIPLIERS)
    mult_i: int = Field(gt=0, le=MAX_MULTIPLIERS)
    accumulator_entries: int = Field(gt=0, le=MAX_ACCUMULATOR_ENTRIES)


class RowBroadcast(StrictModel):
    """EIE-like: non-zero activations broadcast to PEs that own interleaved filters."""

    dataflow: Literal["row_broadcast"]
    lanes: Lanes


class DenseArray(StrictModel):
    """A dense systolic array (timing as the `systolic` engine); zeros can only be gated."""

    dataflow: Literal["dense_array"]
    rows: int = Field(gt=0, le=systolic.MAX_ARRAY_SIDE)
    cols: int = Field(gt=0, le=systolic.MAX_ARRAY_SIDE)
    order: systolic.Dataflow = "os"


Array = Annotated[Union[ChannelLanes, PlanarCartesian, RowBroadcast, DenseArray],  # noqa: UP007
                  Field(discriminator="dataflow")]


class Sync(StrictModel):
    """Where lanes wait for each other. fifo_depth: items a lane can hold, the one in progress
    included (1: lockstep; None: unbounded); issue_cycles: least cycles between two items
    from the dispatcher."""

    barrier: Literal["item", "pass", "layer"] = "pass"
    fifo_depth: int | None = Field(default=None, gt=0, le=MAX_FIFO_DEPTH)
    issue_cycles: int = Field(default=0, ge=0, le=MAX_ISSUE_CYCLES)


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
    pe: PeStorage = PeStorage()
    """Registers per PE (`accelsim.arch.pe_storage`, the systolic kind's schema): on a
    `dense_array` the stationary and output registers widen the array the buffers see, as in
    the systolic kind; every dataflow counts and prices the accesses of declared registers."""

    @model_validator(mode="before")
    @classmethod
    def _no_other_baseline(cls, data: Any) -> Any:
        if isinstance(data, dict) and "dense_baseline" in data:
            raise ValueError(
                "'dense_baseline' is gone: speedup_vs_dense always compares with this hardware "
                "with its sparsity features off. Compare with another design by naming it: "
                "`accelsim compare THIS.yaml W.npz --baseline OTHER.yaml` (speedup_vs_baseline); "
                "delete the key")
        return data

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
        p = self.precision
        self.pe.check_widths(p.act_bits, p.weight_bits, p.acc_bits)
        names = {m.name for m in self.memory}
        for key, fmt in (("act_format", self.act_format), ("weight_format", self.weight_format)):
            unknown = sorted(set(fmt.levels or ()) - names)
            if unknown:
                raise ValueError(f"{key}.levels names unknown memory level(s) {unknown}; "
                                 f"known: {sorted(names)}")
        return self

    def dense_equivalent(self) -> Config:
        """The same hardware with skipping, gating and compression off (one object per arch,
        kept for the archs last seen)."""
        return traffic.per_arch(_DENSE, self, lambda a: a.model_copy(update={
            "name": f"{a.name}-dense", "skip": (), "gate": (),
            "act_format": Format(), "weight_format": Format(),
        }), ARCHS_KEPT)

    def extra_action_energy_pj(self) -> dict[str, float]:
        """Gated and idle MACs as fractions of a full MAC; metadata bytes at each level cost
        what that level's data bytes cost."""
        mac = mac_energy_pj(self)
        extra = {MAC_GATED: mac * self.gated_mac_energy_fraction,
                 MAC_IDLE: mac * self.idle_mac_energy_fraction}
        for level in self.memory:
            price = memory_level_price(self, level)
            extra[f"{level.name}.metadata_read_bytes"] = price.read_pj_per_byte
            extra[f"{level.name}.metadata_write_bytes"] = price.write_pj_per_byte
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



_DENSE: dict[int, tuple[weakref.ref, Config]] = {}
ARCHS_KEPT = 1024
"""Archs whose dense equivalent, content key, count facts and systolic twin are kept
(`accelsim.engines.traffic.per_arch`): more than a sweep chunk's archs and their dense
equivalents (2 x 64), which are visited in turn for every layer."""
