"""The YAML schema of `kind: zero_skip`: the array's dataflow, which operands are skipped or
gated, where lanes synchronise, compressed formats and the dense baseline (see
`accelsim.engines.zero_skip` for what each dataflow models)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from accelsim.arch.energy import MAC_COMPUTE, MAC_GATED, action_energy_pj
from accelsim.arch.schema import ArchBase, MemoryLevel, StrictModel
from accelsim.engines import systolic
from accelsim.engines.zero_skip import kernels as kern
from accelsim.engines.zero_skip.formats import Format

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
