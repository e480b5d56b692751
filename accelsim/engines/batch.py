"""Counts for one layer on many design points of one kind, point by point in arrays: what an
engine's optional `simulate_batch(layer, archs)` returns (see `accelsim.kinds`), and what the
loop over its `simulate` makes of the per-point results for engines without one.

A batch holds no energy (pricing stays in `accelsim.arch.energy`, done by the caller) and no
per-layer tables (break-even curves): it is what whole-workload totals need.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from accelsim.arch.schema import ArchBase
from accelsim.engines.counts import LayerResult
from accelsim.workload.layer import Layer

MISSING = object()
"""Placeholder in `LayerBatch.columns` for a point whose result has no such column."""


@dataclass
class LayerBatch:
    """One layer's counts on P design points; entry p of every array is point p.

    Cycles are clock cycles of each point's own clock; MACs are multiply-accumulates; bytes are
    bytes. `actions` maps `<component>.<action>` to counts (0 where a point does not perform
    the action); `absent` names the actions some point's result does not list at all (their
    mask is True there), which matters for the `access_*` columns a point has. `columns` holds
    the engine-specific result columns as one value per point (`MISSING` where a point's
    result lacks the column); `warnings` the engine's warnings per point.
    """

    cycles: np.ndarray
    compute_cycles: np.ndarray
    stall_cycles: np.ndarray
    macs_dense: np.ndarray
    macs_done: np.ndarray
    macs_skipped: np.ndarray
    macs_gated: np.ndarray
    dram_bytes: np.ndarray
    utilization: np.ndarray
    memory_bound: np.ndarray
    """True where the point's layer is memory-bound (`LayerResult.bound == "memory"`)."""
    engine_mode: list[str]
    actions: dict[str, np.ndarray]
    absent: dict[str, np.ndarray] = field(default_factory=dict)
    columns: dict[str, list | np.ndarray] = field(default_factory=dict)
    """Each engine column's value per point: a list (`MISSING` where a point lacks it) or, where
    every point has a number, a number array."""
    warnings: list[list[str]] = field(default_factory=list)
    column_order: list[tuple[str, ...]] = field(default_factory=list)
    """Each point's engine column names in its result's order (equal tuples are one object);
    empty when every point has the order of `columns`."""
    action_order: list[tuple[str, ...]] = field(default_factory=list)
    """Each point's action names in its result's order, as `column_order` for `actions`."""

    def __len__(self) -> int:
        return len(self.cycles)

    @classmethod
    def from_results(cls, results: Sequence[LayerResult]) -> LayerBatch:
        """Stack per-point results (one `LayerResult` per design point)."""
        def column(name: str, dtype: type) -> np.ndarray:
            return np.array([getattr(r, name) for r in results], dtype=dtype)

        names = list(dict.fromkeys(a for r in results for a in r.actions))
        actions = {a: np.array([r.actions.get(a, 0.0) for r in results], dtype=float)
                   for a in names}
        absent = {}
        for a in names:
            mask = np.array([a not in r.actions for r in results])
            if mask.any():
                absent[a] = mask
        col_names = list(dict.fromkeys(c for r in results for c in r.columns))
        return cls(
            cycles=column("cycles", float),
            compute_cycles=column("compute_cycles", float),
            stall_cycles=column("stall_cycles", float),
            macs_dense=column("macs_dense", np.int64),
            macs_done=column("macs_done", np.int64),
            macs_skipped=column("macs_skipped", np.int64),
            macs_gated=column("macs_gated", np.int64),
            dram_bytes=column("dram_bytes", float),
            utilization=column("utilization", float),
            memory_bound=np.array([r.bound == "memory" for r in results]),
            engine_mode=[r.engine_mode for r in results],
            actions=actions,
            absent=absent,
            columns={c: [r.columns.get(c, MISSING) for r in results] for c in col_names},
            warnings=[list(r.warnings) for r in results],
            column_order=interned([tuple(r.columns) for r in results]),
            action_order=interned([tuple(r.actions) for r in results]),
        )

    def point(self, i: int) -> LayerResult:
        """Point i's counts as the `LayerResult` its engine's `simulate` gives (no tables)."""
        return LayerResult(
            cycles=float(self.cycles[i]),
            compute_cycles=float(self.compute_cycles[i]),
            macs_dense=int(self.macs_dense[i]),
            macs_done=int(self.macs_done[i]),
            macs_skipped=int(self.macs_skipped[i]),
            macs_gated=int(self.macs_gated[i]),
            dram_bytes=float(self.dram_bytes[i]),
            stall_cycles=float(self.stall_cycles[i]),
            bound="memory" if self.memory_bound[i] else "compute",
            engine_mode=self.engine_mode[i],  # type: ignore[arg-type]
            utilization=float(self.utilization[i]),
            actions={a: float(self.actions[a][i]) for a in
                     (self.action_order[i] if self.action_order else self.actions)
                     if not (a in self.absent and self.absent[a][i])},
            columns={c: _python(self.columns[c][i]) for c in
                     (self.column_order[i] if self.column_order else self.columns)
                     if self.columns[c][i] is not MISSING},
            warnings=list(self.warnings[i]),
        )


def _python(value: object) -> object:
    """A numpy scalar as the Python number `simulate` gives; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def merged(parts: Sequence[tuple[Sequence[int], LayerBatch]], n: int) -> LayerBatch:
    """One batch of n points from batches of some of them: `(indices, batch)` pairs that
    together cover every point once."""
    def scatter(field_: str, dtype: type) -> np.ndarray:
        out = np.zeros(n, dtype=dtype)
        for idx, b in parts:
            out[list(idx)] = getattr(b, field_)
        return out

    def spread(get: Callable[[LayerBatch], list], fill: object) -> list:
        out = [fill] * n
        for idx, b in parts:
            for i, v in zip(idx, get(b)):
                out[i] = v
        return out

    actions: dict[str, np.ndarray] = {}
    absent: dict[str, np.ndarray] = {}
    names = list(dict.fromkeys(a for _, b in parts for a in b.actions))
    for a in names:
        actions[a], absent[a] = np.zeros(n), np.ones(n, dtype=bool)
        for idx, b in parts:
            if a in b.actions:
                actions[a][list(idx)] = b.actions[a]
                absent[a][list(idx)] = b.absent.get(a, np.zeros(len(idx), dtype=bool))
    col_names = list(dict.fromkeys(c for _, b in parts for c in b.columns))
    return LayerBatch(
        cycles=scatter("cycles", float), compute_cycles=scatter("compute_cycles", float),
        stall_cycles=scatter("stall_cycles", float), macs_dense=scatter("macs_dense", np.int64),
        macs_done=scatter("macs_done", np.int64), macs_skipped=scatter("macs_skipped", np.int64),
        macs_gated=scatter("macs_gated", np.int64), dram_bytes=scatter("dram_bytes", float),
        utilization=scatter("utilization", float), memory_bound=scatter("memory_bound", bool),
        engine_mode=spread(lambda b: b.engine_mode, ""), actions=actions,
        absent={a: m for a, m in absent.items() if m.any()},
        columns={c: spread(lambda b, c=c: b.columns.get(c, [MISSING] * len(b)), MISSING)
                 for c in col_names},
        warnings=spread(lambda b: b.warnings, []),
        column_order=interned(spread(lambda b: b.column_order or [tuple(b.columns)] * len(b),
                                     ())),
        action_order=interned(spread(lambda b: b.action_order or [tuple(b.actions)] * len(b),
                                     ())))


def interned(orders: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """`orders` with equal tuples replaced by one object (points of one design share it)."""
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    return [seen.setdefault(o, o) for o in orders]


def loop(simulate: Callable[[Layer, ArchBase], LayerResult], layer: Layer,
         archs: Sequence[ArchBase]) -> LayerBatch:
    """The batch of an engine without `simulate_batch`: its `simulate` on every point."""
    return LayerBatch.from_results([simulate(layer, arch) for arch in archs])


_LAYER_MEMOS: dict[int, dict] = {}


def layer_memo(layer: Layer) -> dict:
    """A dict that lives as long as `layer` does, for statistics of its trace that do not depend
    on the arch (computed once per workload, reused by every design point and every batch)."""
    key = id(layer)
    if key not in _LAYER_MEMOS:
        _LAYER_MEMOS[key] = {}
        weakref.finalize(layer, _LAYER_MEMOS.pop, key, None)
    return _LAYER_MEMOS[key]
