"""Fields shared by every architecture description; each engine module adds its own `kind`.

Every number in a description is finite (no `.inf` or `.nan`), a boolean is never taken for a
number, and every count, size and rate has a documented upper bound far above any real design
(`MAX_*` below and in each engine's `Config`), so that a typo cannot ask an engine for gigabytes
of working memory or hours of counting.
"""

from __future__ import annotations

import hashlib
import json
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

Operand = Literal["act", "weight", "out"]

MAX_BITS = 64
"""Most bits of an operand or accumulator."""
MAX_BYTES = 2**50
"""Largest memory level, bytes (1 PiB)."""
MAX_BANDWIDTH_BYTES_PER_CYCLE = 2.0**32
"""Largest read or write bandwidth of a memory level, bytes per cycle."""
MAX_ENERGY_PJ_PER_BYTE = 1e6
"""Largest energy of moving one byte, pJ."""
MAX_CLOCK_MHZ = 1e6
"""Fastest clock, MHz (1 THz)."""
MAX_STATIC_POWER_MW = 1e9
"""Largest static power, mW (1 MW)."""
MAX_NODE_NM = 1000.0
"""Largest process node, nm."""

BOOL_FOR_NUMBER = "bool_for_number"
"""pydantic error type of a boolean given for a number (`ctx['key']`: the key path below the
error's location)."""

BitWidth = Annotated[int, Field(gt=0, le=MAX_BITS)]
"""An operand width in bits, 1 to `MAX_BITS`."""


def _accepts_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _accepts_bool(get_args(annotation)[0])
    if origin is Literal:
        return any(isinstance(a, bool) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return any(_accepts_bool(a) for a in get_args(annotation))
    return False


def _bool_for_number(annotation: Any, value: Any, where: str = "") -> str | None:
    """Where in `value` a boolean stands for a number `annotation` asks for ('' for the value
    itself, '.key' or '.0' inside a mapping or list), or None when there is none."""
    if isinstance(value, bool):
        return None if _accepts_bool(annotation) else where
    origin = get_origin(annotation)
    if origin is Annotated:
        return _bool_for_number(get_args(annotation)[0], value, where)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _bool_for_number(arg, value, where)
            if found is not None:
                return found
        return None
    args = get_args(annotation)
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            item_type = args[0] if (origin is list or (len(args) == 2 and args[1] is Ellipsis)) \
                else (args[i] if i < len(args) else None)
            found = _bool_for_number(item_type, item, f"{where}.{i}") if item_type else None
            if found is not None:
                return found
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        for key, item in value.items():
            found = (_bool_for_number(args[0], key, f"{where}.{key}")
                     or _bool_for_number(args[1], item, f"{where}.{key}"))
            if found is not None:
                return found
    return None


_ABSENT = object()
_FIELDS: dict[type, tuple[tuple[str, Any, bool], ...]] = {}


def _checked_fields(cls: type[BaseModel]) -> tuple[tuple[str, Any, bool], ...]:
    """(key as written, annotation, whether `_bool_for_number` looks inside the value) of each
    field of `cls`, made once per model class."""
    if cls not in _FIELDS:
        _FIELDS[cls] = tuple((field.alias or name, field.annotation, _descends(field.annotation))
                             for name, field in cls.model_fields.items())
    return _FIELDS[cls]


def _descends(annotation: Any) -> bool:
    """Whether `_bool_for_number` reads the items of a value of this annotation (lists, tuples,
    mappings), not only the value itself."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _descends(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_descends(a) for a in get_args(annotation))
    return origin in (tuple, list, dict)


def _holds_bool(value: Any, depth: int = 0) -> bool:
    """Whether `value` is a boolean or a list, tuple or mapping with one anywhere inside (True
    beyond `_SCAN_DEPTH` levels, where `_bool_for_number`, which goes only as deep as the
    annotation, decides)."""
    if isinstance(value, bool) or depth > _SCAN_DEPTH:
        return True
    if isinstance(value, dict):
        return any(_holds_bool(k, depth + 1) or _holds_bool(v, depth + 1)
                   for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_bool(v, depth + 1) for v in value)
    return False


_SCAN_DEPTH = 32


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown keys, non-finite numbers and booleans given for
    numbers, and is immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_number(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key, annotation, descends in _checked_fields(cls):
            value = data.get(key, _ABSENT)
            if isinstance(value, bool) or (descends and _holds_bool(value)):
                found = _bool_for_number(annotation, value)
                if found is not None:
                    raise PydanticCustomError(
                        BOOL_FOR_NUMBER, "'{key}' is a boolean where a number is expected; write "
                        "the number", {"key": f"{key}{found}"})
        return data


class Precision(StrictModel):
    """Operand widths in bits and whether arithmetic is integer or floating point."""

    act_bits: BitWidth = 8
    weight_bits: BitWidth = 8
    acc_bits: BitWidth = 32
    number_format: Literal["int", "fp"] = "int"


class MemoryLevel(StrictModel):
    """One storage level. Energy per byte is taken from the tech table unless given here."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["dram", "sram", "regfile"] = "sram"
    size_bytes: int | None = Field(default=None, gt=0, le=MAX_BYTES)
    """Capacity in bytes, at most `MAX_BYTES`."""
    read_bandwidth_bytes_per_cycle: float = Field(gt=0, le=MAX_BANDWIDTH_BYTES_PER_CYCLE)
    write_bandwidth_bytes_per_cycle: float | None = Field(
        default=None, gt=0, le=MAX_BANDWIDTH_BYTES_PER_CYCLE)
    read_energy_pj_per_byte: float | None = Field(default=None, gt=0, le=MAX_ENERGY_PJ_PER_BYTE)
    write_energy_pj_per_byte: float | None = Field(default=None, gt=0, le=MAX_ENERGY_PJ_PER_BYTE)
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
    node_nm: float = Field(default=45.0, gt=0, le=MAX_NODE_NM)
    """Process node in nm, above 0 and at most `MAX_NODE_NM`."""


class ArchBase(StrictModel):
    """Common fields of every architecture. Memory levels run from outermost (DRAM) inward."""

    name: str
    kind: str
    clock_mhz: float = Field(gt=0, le=MAX_CLOCK_MHZ)
    """Clock in MHz, at most `MAX_CLOCK_MHZ`."""
    precision: Precision = Precision()
    memory: tuple[MemoryLevel, ...] = Field(default=(), max_length=64)
    tech: Tech = Tech()
    static_power_mw: float = Field(default=0.0, ge=0.0, le=MAX_STATIC_POWER_MW)
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
