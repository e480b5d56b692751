"""Many zero-skip design points on one layer at once (`simulate_batch`, what a sweep uses):
points that would give the same counts are counted once.

Without a DRAM level every operand is resident on chip and no tiling is searched, so a memory
level's `size_bytes` never reaches the counts (only the pJ per byte the energy model prices
them at, after counting). The lanes see the FIFO depth `Config.fifo_depth` gives (1, lockstep,
under a barrier after every item, whatever `sync.fifo_depth` says). Points that differ only in
their names, (without DRAM) their levels' sizes and the FIFO depths they write but their lanes
do not see form one group, counted once (`count.simulate` on one member) for all of its
members. With a DRAM level the sizes bound the tiles of the tiling search, so they stay in the
key. A group's count is kept for later batches (a
sweep's next chunk) by layer and group, for the last `COUNTS_KEPT` of them.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from accelsim.engines.batch import LayerBatch
from accelsim.engines.counts import LayerResult
from accelsim.engines.zero_skip import count
from accelsim.engines.zero_skip.config import Config
from accelsim.workload.layer import Layer


def group_key(arch: Config) -> str:
    """What a point's counts depend on: its description (canonical JSON) without its name,
    without its memory levels' sizes where it has no DRAM level, and with the FIFO depth the
    lanes see (`Config.fifo_depth`, the only reader of `sync.fifo_depth`) in place of the one
    written."""
    exclude: dict[str, object] = {"name": True, "sync": {"fifo_depth"}}
    if arch.dram() is None:
        exclude["memory"] = {"__all__": {"size_bytes"}}
    return f"{arch.model_dump_json(exclude=exclude)} fifo_depth={arch.fifo_depth}"


def point_groups(archs: Sequence[Config]) -> list[list[int]]:
    """The indices of `archs` grouped by `group_key`, groups in order of their first point."""
    return [members for _, members in _grouped(archs)]


_KEPT = 2
"""Archs sequences whose groups are kept: `accelsim.simulate.simulate_totals` asks every layer
of a workload on the design points and then on their dense equivalents."""
_GROUPS: list[tuple[Sequence[Config], list[tuple[str, list[int]]]]] = []
"""The last `_KEPT` archs sequences seen, most recent last, each with its groups
(`group_key`, point indices)."""
COUNTS_KEPT = 4096
"""Most (layer, group) counts kept across batches (a few kB each): a sweep of a few hundred
groups on a workload of a few layers, points and dense equivalents, reuses all of its own."""
_COUNTS: dict[tuple[int, str], tuple[weakref.ref, LayerResult]] = {}
"""Counts by (id of the layer, `group_key`), oldest first, with a reference to the layer."""


def clear_counts() -> None:
    """Forget every kept group count and grouping (for timing batches from cold)."""
    _COUNTS.clear()
    _GROUPS.clear()


def _grouped(archs: Sequence[Config]) -> list[tuple[str, list[int]]]:
    """(`group_key`, indices) of each of `point_groups(archs)`, made once per archs sequence
    (which callers do not change) while it is among the last `_KEPT` seen."""
    for seen, groups in _GROUPS:
        if seen is archs:
            return groups
    keyed: dict[str, list[int]] = {}
    for i, arch in enumerate(archs):
        keyed.setdefault(group_key(arch), []).append(i)
    groups = list(keyed.items())
    _GROUPS.append((archs, groups))
    del _GROUPS[:-_KEPT]
    return groups


def _group_count(layer: Layer, key: str, arch: Config) -> LayerResult:
    """`count.simulate(layer, arch)` for the group `key` of `arch`, kept for the last
    `COUNTS_KEPT` (layer, group) pairs (shared by its members, never changed)."""
    hit = _COUNTS.get((id(layer), key))
    if hit is not None and hit[0]() is layer:
        return hit[1]
    counted = count.simulate(layer, arch)
    _COUNTS[id(layer), key] = (weakref.ref(layer), counted)
    while len(_COUNTS) > COUNTS_KEPT:
        del _COUNTS[next(iter(_COUNTS))]
    return counted


def simulate_batch(layer: Layer, archs: Sequence[Config]) -> LayerBatch:
    """`count.simulate(layer, arch)` for every arch of `archs`, the same fields, actions,
    columns and warnings in the same order: each group of `point_groups` counted once."""
    by_point: dict[int, LayerResult] = {}
    for key, members in _grouped(archs):
        counted = _group_count(layer, key, archs[members[0]])
        by_point.update(dict.fromkeys(members, counted))
    return LayerBatch.from_results([by_point[i] for i in range(len(archs))])
