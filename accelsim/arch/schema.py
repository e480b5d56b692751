"""Fields shared by every architecture description; each engine module adds its own `kind`."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

Operand = Literal["act", "weight", "out"]


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown keys and is immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Precision(StrictModel):
    """Operand widths in bits and whether arithmetic is integer or floating point."""

    act_bits: PositiveInt = 8
    weight_bits: PositiveInt = 8
    acc_bits: PositiveInt = 32
    number_format: Literal["int", "fp"] = "int"


class MemoryLevel(StrictModel):
    """One storage level. Energy per byte is taken from the tech table unless given here."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["dram", "sram", "regfile"] = "sram"
    size_bytes: PositiveInt | None = None
    read_bandwidth_bytes_per_cycle: PositiveFloat
    write_bandwidth_bytes_per_cycle: PositiveFloat | None = None
    read_energy_pj_per_byte: PositiveFloat | None = None
    write_energy_pj_per_byte: PositiveFloat | None = None
    dram_type: str | None = None
    holds: tuple[Operand, ...] = ("act", "weight", "out")

    @model_validator(mode="after")
    def _sized(self) -> MemoryLevel:
        if self.kind != "dram" and self.size_bytes is None:
            raise ValueError(f"memory level '{self.name}' ({self.kind}) needs size_bytes")
        if self.kind == "dram" and self.dram_type is None and self.read_energy_pj_per_byte is None:
            raise ValueError(
                f"memory level '{self.name}' is DRAM: give dram_type (e.g. lpddr4, ddr4, hbm2) "
                "or read_energy_pj_per_byte"
            )
        return self

    @property
    def write_bandwidth(self) -> float:
        """Write bandwidth in bytes/cycle (the read bandwidth when not given)."""
        return self.write_bandwidth_bytes_per_cycle or self.read_bandwidth_bytes_per_cycle


class Tech(StrictModel):
    """Which energy/area table prices the actions, and the process node to scale it to."""

    table: str = "horowitz_45nm"
    node_nm: PositiveFloat = 45.0


class ArchBase(StrictModel):
    """Common fields of every architecture. Memory levels run from outermost (DRAM) inward."""

    name: str
    kind: str
    clock_mhz: PositiveFloat
    precision: Precision = Precision()
    memory: tuple[MemoryLevel, ...] = ()
    tech: Tech = Tech()
    static_power_mw: float = Field(default=0.0, ge=0.0)
    model_memory_stalls: bool = True
    notes: str = ""
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _memory_names_unique(self) -> ArchBase:
        names = [m.name for m in self.memory]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"memory level names must be unique, repeated: {dupes}")
        dram = [m.name for m in self.memory if m.kind == "dram"]
        if len(dram) > 1:
            raise ValueError(f"at most one dram level is allowed, got {dram}")
        return self

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    def dense_equivalent(self) -> ArchBase:
        """The same hardware with every sparsity feature switched off."""
        return self

    def extra_action_energy_pj(self) -> dict[str, float]:
        """Per-action energies (pJ) this kind defines itself, beyond MACs and memory."""
        return {}

    def dram(self) -> MemoryLevel | None:
        return next((m for m in self.memory if m.kind == "dram"), None)

    def buffer_for(self, operand: Operand) -> MemoryLevel | None:
        """The innermost on-chip level holding `operand`, or None when it streams from DRAM."""
        for level in reversed(self.memory):
            if level.kind != "dram" and operand in level.holds:
                return level
        return None

    def config_hash(self) -> str:
        """SHA-256 over the canonical JSON of this description (first 16 hex digits)."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canon.encode()).hexdigest()[:16]
