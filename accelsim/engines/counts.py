"""What an engine's count step returns for one layer, and the integer rounding counts use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class LayerResult:
    """Counts for one layer on one arch: cycles and action counts, no energy.

    `actions` maps `<component>.<action>` to a count (MACs, bytes, events...), priced later
    by `accelsim.arch.energy.price`. `columns` holds engine-specific result columns; `tables`
    holds engine-specific tables of this layer (e.g. GPU break-even curves, one row per
    density), which `accelsim.simulate.simulate` stacks over layers into `RunResult.tables`.
    `warnings` name the modelled effects that let a figure pass a physical bound, or why a
    layer has no result (NaN cycles); they go to the row's `warnings` column.
    """

    cycles: float
    compute_cycles: float
    macs_dense: int
    macs_done: int
    macs_skipped: int = 0
    macs_gated: int = 0
    dram_bytes: float = 0.0
    stall_cycles: float = 0.0
    bound: Literal["compute", "memory"] = "compute"
    engine_mode: Literal["trace", "statistical"] = "trace"
    utilization: float = 0.0
    actions: dict[str, float] = field(default_factory=dict)
    columns: dict[str, object] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling of a / b for positive b."""
    return -(-a // b)
